//! The bootstrap admin key: how the first request to the server API can
//! be authenticated at all.
//!
//! With `api.admin_key` set, that key (all scopes) is created if the store
//! lacks it, and made valid again if it was revoked, expired or changed (so
//! the operator can never be locked out while the configuration holds it).
//! Without it, the first node to start on an empty store creates one and
//! writes its secret, once, to `api.bootstrap_key_file` (mode 0600; the
//! log names the file, never the secret), and to standard error as well
//! only when `api.print_bootstrap_key` asks for it.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use tokenim_auth::{ApiKey, ApiKeyId, ApiSecret, AuditAction, AuditRecord, Scope};

use crate::config::ApiConfig;
use crate::store::{Store, StoreError};

/// The `actor` of what the node does by itself at start-up.
pub const CONFIG_ACTOR: &str = "config";
/// The name of the bootstrap key.
pub const ADMIN_KEY_NAME: &str = "bootstrap admin";

/// The file the bootstrap key goes to when `api.bootstrap_key_file` is
/// not set, inside the store's directory.
pub const DEFAULT_KEY_FILE: &str = "bootstrap-admin-key";

/// Makes sure an admin key exists (see the module doc); `store_dir` is the
/// default directory of the key file.
pub async fn ensure_admin_key(
    store: &Store,
    api: &ApiConfig,
    store_dir: &Path,
) -> Result<(), StoreError> {
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
        let path = api
            .bootstrap_key_file
            .clone()
            .unwrap_or_else(|| store_dir.join(DEFAULT_KEY_FILE));
        hand_over(&path, &key.id, &secret, api.print_bootstrap_key);
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

/// Gives the operator the secret of a key made at first start: in a file
/// only its owner can read, and on standard error if asked (or if the file
/// cannot be written, since the secret is shown nowhere else).
fn hand_over(path: &Path, id: &ApiKeyId, secret: &ApiSecret, print: bool) {
    let text = format!(
        "# tokenim bootstrap admin API key (all scopes), created at first start.\n# Use it as: curl -u \"$(tail -n1 {file})\" http://<gateway>/v1/keys\n{id}:{secret}\n",
        file = path.display(),
        secret = secret.expose()
    );
    match write_private(path, &text) {
        Ok(()) => tracing::warn!(
            key = %id,
            file = %path.display(),
            "created the bootstrap admin key (all scopes); its secret is in the file (mode 0600): move it to a secret store and delete the file"
        ),
        Err(e) => tracing::error!(
            key = %id,
            file = %path.display(),
            error = %e,
            "created the bootstrap admin key, but its file could not be written: the secret follows on standard error only"
        ),
    }
    if print || !path.exists() {
        eprintln!(
            "tokenim: bootstrap admin key (all scopes), shown only now:\n  {id}:{}",
            secret.expose()
        );
    }
}

/// Writes `text` to a new file at `path` readable by its owner only.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    // A file that already existed keeps its mode: make it private.
    #[cfg(unix)]
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}
