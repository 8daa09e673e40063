//! [`Caller`]: the API key a request is authenticated with.
//!
//! Credentials come as `Authorization: Basic base64(<key id>:<secret>)`
//! (what `curl -u id:secret` sends) or `Authorization: Bearer <key
//! id>:<secret>`. Each failure has its own code (missing credentials,
//! unknown key, wrong secret, expired, revoked, missing scope) and is
//! written to the audit log with the client's address. Keys are read
//! from the store on every request, so a revocation applies on every node
//! at once.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use base64::Engine;
use tokenim_auth::{ApiKey, ApiKeyError, ApiKeyId, AuditAction, AuditRecord, Scope};

use super::rate_limit::{RateSlot, refused};
use crate::api::error::ApiError;
use crate::guard::{Failure, Limit, VIA_API};
use crate::limiter::ConnInfo;
use crate::state::AppState;

/// The actor of a request whose key could not be established.
pub const ANONYMOUS: &str = "anonymous";

/// An authenticated API key and where the request came from.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key.
    pub key: ApiKey,
    /// The client's address.
    pub source: Option<String>,
}

impl Caller {
    /// The key id, as the audit log's actor.
    pub fn actor(&self) -> &str {
        self.key.id.as_str()
    }

    /// Checks a scope; a refusal is audited.
    pub async fn require(&self, state: &AppState, scope: Scope) -> Result<(), ApiError> {
        if let Err(e) = self.key.require(scope) {
            let from = Source {
                ip: None,
                text: self.source.clone(),
            };
            audit_failure(state, self.actor(), &from, &e).await;
            return Err(e.into());
        }
        Ok(())
    }

    /// Appends an audit record for something this caller did.
    pub async fn audit(
        &self,
        state: &AppState,
        action: AuditAction,
        target: &str,
        detail: serde_json::Value,
    ) -> Result<(), ApiError> {
        let mut record =
            AuditRecord::new(crate::clock::unix_millis(), self.actor(), action, target);
        record.source = self.source.clone();
        record.detail = detail;
        state.store.audit(record).await?;
        Ok(())
    }
}

/// The `<key id>` and `<secret>` of the request's credentials.
fn credentials(headers: &HeaderMap) -> Result<(String, String), ApiKeyError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(ApiKeyError::Missing)?;
    let (scheme, rest) = value.split_once(' ').ok_or(ApiKeyError::Missing)?;
    let pair = if scheme.eq_ignore_ascii_case("basic") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .map_err(|_| ApiKeyError::Missing)?;
        String::from_utf8(raw).map_err(|_| ApiKeyError::Missing)?
    } else if scheme.eq_ignore_ascii_case("bearer") {
        rest.trim().to_owned()
    } else {
        return Err(ApiKeyError::Missing);
    };
    let (id, secret) = pair.split_once(':').ok_or(ApiKeyError::Missing)?;
    Ok((id.to_owned(), secret.to_owned()))
}

/// Audits a refused request (folded per source, reason and minute, see
/// [`crate::guard::FailureLog`]) and, unless the key proved itself, counts
/// it against the source's failed authentications. A request that did not
/// prove its key is `anonymous`, with the key it named as the target; a
/// key that proved itself but lacks a scope is the actor.
async fn audit_failure(state: &AppState, key: &str, from: &Source, e: &ApiKeyError) {
    state.metrics.auth_failure(e.reason());
    let actor = match e {
        ApiKeyError::MissingScope(_) => key,
        _ => {
            if let Some(ip) = from.ip {
                state.guard.failed_from(ip);
            }
            ANONYMOUS
        }
    };
    let failure = Failure {
        source: from.text.clone(),
        via: VIA_API,
        reason: e.reason(),
        actor: actor.to_owned(),
        target: key.to_owned(),
        message: e.to_string(),
    };
    state
        .guard
        .failures
        .record(failure, crate::clock::unix_millis())
        .await;
}

/// Where a request came from.
#[derive(Debug, Clone, Default)]
struct Source {
    ip: Option<std::net::IpAddr>,
    text: Option<String>,
}

/// A presented key id as an audit target: the id when it has the shape
/// of one, else a placeholder, since what stands there may be a secret
/// (id and secret given the wrong way round).
fn presented_id(id: &str) -> String {
    match ApiKeyId::parse(id) {
        Ok(id) => id.as_str().to_owned(),
        Err(_) => NOT_A_KEY_ID.to_owned(),
    }
}

/// The audit target of credentials whose key id is malformed.
pub const NOT_A_KEY_ID: &str = "(malformed key id)";

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ip = parts
            .extensions
            .get::<ConnInfo>()
            .map(|c| state.proxies.client_ip(c.peer, &parts.headers));
        let from = Source {
            ip,
            text: ip.map(|ip| ip.to_string()),
        };
        let slot = parts.extensions.get::<RateSlot>().cloned();
        if let Some(ip) = ip {
            let verdict = state.guard.may_authenticate(ip);
            if !verdict.allowed {
                if let Some(slot) = &slot {
                    slot.set(verdict);
                }
                let failure = Failure {
                    source: from.text.clone(),
                    via: VIA_API,
                    reason: "rate_limited",
                    actor: ANONYMOUS.to_owned(),
                    target: ANONYMOUS.to_owned(),
                    message: "too many failed authentications from this address".into(),
                };
                let now = crate::clock::unix_millis();
                state.guard.failures.record(failure, now).await;
                return Err(refused(Limit::AuthFailures, verdict));
            }
        }
        let (id, secret) = match credentials(&parts.headers) {
            Ok(pair) => pair,
            Err(e) => {
                audit_failure(state, ANONYMOUS, &from, &e).await;
                return Err(e.into());
            }
        };
        let key = match ApiKeyId::parse(&id) {
            Ok(key_id) => state.store.key(&key_id).await?,
            Err(_) => None,
        };
        let Some(key) = key else {
            let shown = presented_id(&id);
            let e = ApiKeyError::Unknown(shown.clone());
            audit_failure(state, &shown, &from, &e).await;
            return Err(e.into());
        };
        if let Err(e) = key.authenticate(&secret, crate::clock::unix_millis()) {
            audit_failure(state, key.id.as_str(), &from, &e).await;
            return Err(e.into());
        }
        let verdict = state.guard.request_by(&key.id);
        if let Some(slot) = &slot {
            slot.set(verdict);
        }
        if !verdict.allowed {
            return Err(refused(Limit::Key, verdict));
        }
        Ok(Caller {
            key,
            source: from.text,
        })
    }
}
