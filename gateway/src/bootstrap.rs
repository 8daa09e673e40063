//! The bootstrap admin key: how the first request to the server API can
//! be authenticated at all.
//!
//! With `api.admin_key` set, that key (all scopes) is created if the store
//! lacks it, and made valid again if it was revoked, expired or changed (so
//! the operator can never be locked out while the configuration holds it).
//! Without it, the first node to start on an empty store creates one and
//! prints it, once, on standard output.

use std::collections::BTreeSet;

use tokenim_auth::{ApiKey, ApiKeyId, ApiSecret, AuditAction, AuditRecord, Scope};

use crate::config::ApiConfig;
use crate::store::{Store, StoreError};

/// The `actor` of what the node does by itself at start-up.
pub const CONFIG_ACTOR: &str = "config";
/// The name of the bootstrap key.
pub const ADMIN_KEY_NAME: &str = "bootstrap admin";

/// Makes sure an admin key exists (see the module doc).
pub async fn ensure_admin_key(store: &Store, api: &ApiConfig) -> Result<(), StoreError> {
    let now = crate::clock::unix_millis();
    let all: BTreeSet<Scope> = Scope::ALL.into();
    let (key, shown) = match api.admin_key() {
        Some((id, secret)) => {
            let id = ApiKeyId::parse(id).map_err(|e| StoreError::Failed(e.to_string()))?;
            let secret = ApiSecret::from_config(secret);
            let key = ApiKey::with_secret(id, ADMIN_KEY_NAME, all, &secret, now);
            if !store.insert_key(&key).await? {
                return restore(store, &key, &secret, now).await;
            }
            (key, None)
        }
        None => {
            // Only the first start on an empty store creates one.
            if store.kv().incr("bootstrap", 1).await? != 1 {
                return Ok(());
            }
            let (key, secret) = ApiKey::create(ADMIN_KEY_NAME, all, None, now);
            (key, Some(secret))
        }
    };
    if shown.is_some() && !store.insert_key(&key).await? {
        return Ok(());
    }
    if let Some(secret) = shown {
        println!(
            "tokenim: created the bootstrap admin key (all scopes). Its secret is shown only now:\n  key id: {}\n  secret: {}\n  e.g. curl -u {}:{} http://<gateway>/v1/keys",
            key.id,
            secret.expose(),
            key.id,
            secret.expose()
        );
    }
    tracing::info!(key = %key.id, "bootstrap admin key created");
    let mut record = AuditRecord::new(now, CONFIG_ACTOR, AuditAction::KeyCreated, key.id.as_str());
    record.detail = serde_json::json!({ "name": key.name, "scopes": key.scopes });
    store.audit(record).await.map(drop)
}

/// Makes the stored configured key match the configuration again: not
/// revoked, no expiry, every scope, the configured secret. Says so in the
/// log and the audit log when anything had to change.
async fn restore(
    store: &Store,
    configured: &ApiKey,
    secret: &ApiSecret,
    now: u64,
) -> Result<(), StoreError> {
    let changed = store
        .update_key(&configured.id, |k| {
            let was = (
                k.revoked_at,
                k.expires_at,
                k.scopes.clone(),
                k.secret.matches(secret.expose()),
            );
            k.revoked_at = None;
            k.expires_at = None;
            k.scopes.clone_from(&configured.scopes);
            if !k.secret.matches(secret.expose()) {
                k.secret = configured.secret.clone();
                k.previous = None;
            }
            (was != (None, None, configured.scopes.clone(), true)).then_some(was)
        })
        .await?
        .and_then(|(_, was)| was);
    let Some((revoked_at, expires_at, scopes, secret_matched)) = changed else {
        return Ok(());
    };
    tracing::warn!(
        key = %configured.id,
        revoked_at,
        expires_at,
        secret_matched,
        "the configured bootstrap admin key (api.admin_key) was not valid as configured; restored"
    );
    let mut record = AuditRecord::new(
        now,
        CONFIG_ACTOR,
        AuditAction::KeyRestored,
        configured.id.as_str(),
    );
    record.detail = serde_json::json!({
        "revoked_at": revoked_at,
        "expires_at": expires_at,
        "scopes": scopes,
        "secret_reset": !secret_matched,
    });
    store.audit(record).await.map(drop)
}
