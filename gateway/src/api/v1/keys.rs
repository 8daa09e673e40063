//! `/v1/keys`: create, list, read, rotate and revoke API keys (scope
//! `keys:admin`). A secret appears in a response only when it is made.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tokenim_auth::{ApiKey, ApiKeyId, AuditAction, Scope};
use tokenim_protocol::ErrorCode;

use super::Page;
use super::caller::Caller;
use crate::api::error::ApiError;
use crate::state::AppState;

/// A key as listed: everything but the secret's hash.
#[derive(Debug, Serialize)]
pub struct KeyView {
    id: ApiKeyId,
    name: String,
    scopes: BTreeSet<Scope>,
    created_at: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rotated_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_secret_valid_until: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revoked_at: Option<u64>,
}

impl From<&ApiKey> for KeyView {
    fn from(k: &ApiKey) -> Self {
        Self {
            id: k.id.clone(),
            name: k.name.clone(),
            scopes: k.scopes.clone(),
            created_at: k.created_at,
            expires_at: k.expires_at,
            rotated_at: k.rotated_at,
            previous_secret_valid_until: k.previous.as_ref().map(|p| p.valid_until),
            revoked_at: k.revoked_at,
        }
    }
}

/// A key with its secret, shown once.
#[derive(Debug, Serialize)]
pub struct KeyWithSecret {
    #[serde(flatten)]
    key: KeyView,
    /// The secret: store it now, it is never shown again.
    secret: String,
}

/// `POST /v1/keys`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    name: String,
    scopes: BTreeSet<Scope>,
    /// Lifetime, e.g. `90d`; absent: never expires.
    #[serde(default, with = "humantime_serde")]
    expires_in: Option<Duration>,
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidField,
            "name: 1 to 128 bytes without control characters",
        ));
    }
    Ok(())
}

/// Creates a key.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: super::JsonBody<CreateKey>,
) -> Result<(StatusCode, Json<KeyWithSecret>), ApiError> {
    caller.require(&state, Scope::KeysAdmin).await?;
    let req = body.0;
    check_name(&req.name)?;
    let now = crate::unix_millis();
    let expires_at = req.expires_in.map(|d| now + d.as_millis() as u64);
    let (key, secret) = ApiKey::create(&req.name, req.scopes, expires_at, now);
    state.store.insert_key(&key).await?;
    caller
        .audit(
            &state,
            AuditAction::KeyCreated,
            key.id.as_str(),
            serde_json::json!({ "name": key.name, "scopes": key.scopes, "expires_at": key.expires_at }),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(KeyWithSecret {
            key: (&key).into(),
            secret: secret.expose().to_owned(),
        }),
    ))
}

/// Lists keys by id.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    super::Params(page): super::Params<Page>,
) -> Result<Json<super::Listing<KeyView>>, ApiError> {
    caller.require(&state, Scope::KeysAdmin).await?;
    let keys = state
        .store
        .list_keys(page.after.as_deref(), page.limit())
        .await?;
    Ok(Json(super::Listing::new(
        keys.iter().map(KeyView::from).collect(),
        page.limit(),
        |k| k.id.to_string(),
    )))
}

fn key_id(id: &str) -> Result<ApiKeyId, ApiError> {
    ApiKeyId::parse(id).map_err(|_| ApiError::not_found(format_args!("key {id:?}")))
}

/// One key.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<KeyView>, ApiError> {
    caller.require(&state, Scope::KeysAdmin).await?;
    let id = key_id(&id)?;
    let key = state
        .store
        .key(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format_args!("key {id}")))?;
    Ok(Json((&key).into()))
}

/// `POST /v1/keys/{id}/rotate`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotate {
    /// How long the old secret keeps working (default `api.rotation_overlap`).
    #[serde(default, with = "humantime_serde")]
    overlap: Option<Duration>,
}

/// Gives a key a new secret.
pub async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<KeyWithSecret>, ApiError> {
    caller.require(&state, Scope::KeysAdmin).await?;
    let id = key_id(&id)?;
    let overlap = super::optional_json::<Rotate>(&body)?
        .overlap
        .unwrap_or(state.config.api.rotation_overlap);
    let now = crate::unix_millis();
    let (key, secret) = state
        .store
        .update_key(&id, |k| {
            (k.revoked_at.is_none()).then(|| k.rotate(overlap.as_millis() as u64, now))
        })
        .await?
        .ok_or_else(|| ApiError::not_found(format_args!("key {id}")))?;
    let Some(secret) = secret else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::ApiKeyRevoked,
            "a revoked key cannot be rotated",
        ));
    };
    caller
        .audit(
            &state,
            AuditAction::KeyRotated,
            key.id.as_str(),
            serde_json::json!({ "overlap_ms": overlap.as_millis() as u64 }),
        )
        .await?;
    Ok(Json(KeyWithSecret {
        key: (&key).into(),
        secret: secret.expose().to_owned(),
    }))
}

/// Revokes a key, at once and on every node.
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<KeyView>, ApiError> {
    caller.require(&state, Scope::KeysAdmin).await?;
    let id = key_id(&id)?;
    let now = crate::unix_millis();
    let (key, ()) = state
        .store
        .update_key(&id, |k| k.revoke(now))
        .await?
        .ok_or_else(|| ApiError::not_found(format_args!("key {id}")))?;
    caller
        .audit(
            &state,
            AuditAction::KeyRevoked,
            key.id.as_str(),
            serde_json::Value::Null,
        )
        .await?;
    Ok(Json((&key).into()))
}
