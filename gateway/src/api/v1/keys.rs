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

use super::caller::Caller;
use super::{Page, schemas};
use crate::api::error::ApiError;
use crate::state::AppState;

/// A key as listed: everything but the secret's hash. Times are
/// milliseconds since the Unix epoch.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyView {
    /// The key's id (the user name of Basic authentication).
    #[schema(value_type = schemas::ApiKeyId)]
    id: ApiKeyId,
    /// What the key is for.
    name: String,
    /// What the key may call.
    #[schema(value_type = BTreeSet<schemas::Scope>)]
    scopes: BTreeSet<Scope>,
    /// When it was created.
    created_at: u64,
    /// When it stops working; absent: never.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    expires_at: Option<u64>,
    /// When its secret was last rotated.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    rotated_at: Option<u64>,
    /// Until when the secret before the last rotation still works.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    previous_secret_valid_until: Option<u64>,
    /// When it was revoked.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    revoked_at: Option<u64>,
}

schemas::page! {
    /// A page of API keys.
    KeyPage of KeyView
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
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyWithSecret {
    #[serde(flatten)]
    key: KeyView,
    /// The secret: store it now, it is never shown again.
    secret: String,
}

/// `POST /v1/keys`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// What the key is for: 1 to 128 characters, none a control character.
    #[schema(value_type = schemas::KeyName)]
    name: String,
    /// What the key may call: at least one scope (repeats are dropped).
    #[schema(value_type = Vec<schemas::Scope>, min_items = 1)]
    scopes: BTreeSet<Scope>,
    /// Lifetime, e.g. `90d`; absent: never expires.
    #[serde(default, deserialize_with = "super::duration::optional")]
    #[schema(value_type = Option<schemas::Duration>, examples("90d"))]
    expires_in: Option<Duration>,
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidField,
            "name: 1 to 128 characters, none a control character",
        ));
    }
    Ok(())
}

/// Creates a key.
#[utoipa::path(
    post,
    path = "/v1/keys",
    operation_id = "create_key",
    tag = "keys",
    description = "Scope: `keys:admin`. The answer holds the secret: store it now, it is never shown again.",
    request_body = CreateKey,
    responses(
        (status = 201, description = "The key, with its secret.", body = KeyWithSecret),
        (status = 400, description = "Malformed JSON (`invalid_body`), a bad `name` or no `scopes` (`invalid_field`).", body = schemas::ErrorBody),
        schemas::JsonBodyErrors,
        schemas::ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: super::JsonBody<CreateKey>,
) -> Result<(StatusCode, Json<KeyWithSecret>), ApiError> {
    caller.require(&state, Scope::KeysAdmin).await?;
    let req = body.0;
    check_name(&req.name)?;
    if req.scopes.is_empty() {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidField,
            "field `scopes`: a key needs at least one scope",
        ));
    }
    let now = crate::clock::unix_millis();
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
#[utoipa::path(
    get,
    path = "/v1/keys",
    operation_id = "list_keys",
    tag = "keys",
    description = "Scope: `keys:admin`. A page of keys in id order, revoked ones included, with `count`, how many there are.",
    params(Page),
    responses(
        (status = 200, description = "A page of keys.", body = KeyPage),
        (status = 400, description = "A bad query parameter (`bad_request`).", body = schemas::ErrorBody),
        schemas::ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
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
    let count = state.store.count_keys().await?;
    Ok(Json(
        super::Listing::new(
            keys.iter().map(KeyView::from).collect(),
            page.limit(),
            |k| k.id.to_string(),
        )
        .counted(count),
    ))
}

/// 404 for key `id`.
fn missing(id: &ApiKeyId) -> ApiError {
    ApiError::not_found(format_args!("key {id}"))
}

/// Key `id` as stored, or 404.
async fn existing_key(state: &AppState, id: &ApiKeyId) -> Result<ApiKey, ApiError> {
    state.store.key(id).await?.ok_or_else(|| missing(id))
}

fn key_id(id: &str) -> Result<ApiKeyId, ApiError> {
    ApiKeyId::parse(id).map_err(|_| ApiError::not_found(format_args!("key {id:?}")))
}

/// One key.
#[utoipa::path(
    get,
    path = "/v1/keys/{id}",
    operation_id = "get_key",
    tag = "keys",
    description = "Scope: `keys:admin`.",
    params(("id" = schemas::ApiKeyId, Path, description = "The key's id.")),
    responses(
        (status = 200, description = "The key.", body = KeyView),
        (status = 404, description = "No such key (`not_found`).", body = schemas::ErrorBody),
        schemas::ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<KeyView>, ApiError> {
    caller.require(&state, Scope::KeysAdmin).await?;
    let id = key_id(&id)?;
    let key = existing_key(&state, &id).await?;
    Ok(Json((&key).into()))
}

/// `POST /v1/keys/{id}/rotate`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotate {
    /// How long the old secret keeps working (default `api.rotation_overlap`).
    #[serde(default, deserialize_with = "super::duration::optional")]
    #[schema(value_type = Option<schemas::Duration>, examples("24h"))]
    overlap: Option<Duration>,
}

/// Gives a key a new secret.
#[utoipa::path(
    post,
    path = "/v1/keys/{id}/rotate",
    operation_id = "rotate_key",
    tag = "keys",
    description = "Scope: `keys:admin`. The old secret keeps working for `overlap`; the new one is shown only in this answer. The body is optional. While a previous secret still works, another rotation is refused (`rotation_in_progress`) unless `overlap` is `0s`, which ends the previous secret on purpose.",
    params(("id" = schemas::ApiKeyId, Path, description = "The key's id.")),
    request_body = Option<Rotate>,
    responses(
        (status = 200, description = "The key, with its new secret.", body = KeyWithSecret),
        (status = 400, description = "A bad body (`invalid_body`).", body = schemas::ErrorBody),
        (status = 404, description = "No such key (`not_found`).", body = schemas::ErrorBody),
        (status = 409, description = "The key is revoked (`api_key_revoked`), or its previous secret still works (`rotation_in_progress`).", body = schemas::ErrorBody),
        schemas::JsonBodyErrors,
        schemas::ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
pub async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: super::JsonBytes,
) -> Result<Json<KeyWithSecret>, ApiError> {
    caller.require(&state, Scope::KeysAdmin).await?;
    let id = key_id(&id)?;
    let overlap = super::optional_json::<Rotate>(&body)?
        .overlap
        .unwrap_or(state.config.api.rotation_overlap);
    let now = crate::clock::unix_millis();
    // A second rotation inside the overlap would end the first old secret
    // at once: refused unless asked for with an overlap of 0.
    let (key, outcome) = state
        .store
        .update_key(&id, |k| {
            if k.revoked_at.is_some() {
                return Err(None);
            }
            match &k.previous {
                Some(p) if now < p.valid_until && !overlap.is_zero() => Err(Some(p.valid_until)),
                _ => Ok(k.rotate(overlap.as_millis() as u64, now)),
            }
        })
        .await?
        .ok_or_else(|| missing(&id))?;
    let secret = match outcome {
        Ok(secret) => secret,
        Err(None) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::ApiKeyRevoked,
                "a revoked key cannot be rotated",
            ));
        }
        Err(Some(until)) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::RotationInProgress,
                format!(
                    "the previous secret of key {id} works until {until} (ms since the epoch); rotating again now would end it at once: wait, or rotate with \"overlap\": \"0s\" to end it on purpose"
                ),
            ));
        }
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

/// 409 `last_admin_key` when `target` is the last working key that holds
/// `keys:admin` (`what` says what it therefore keeps).
async fn not_the_last_admin(
    state: &AppState,
    target: &ApiKey,
    now: u64,
    what: &str,
) -> Result<(), ApiError> {
    if target.is_live(now)
        && target.scopes.contains(&Scope::KeysAdmin)
        && !state.store.another_admin_key(&target.id, now).await?
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::LastAdminKey,
            format!(
                "this is the last working key that holds keys:admin: {what}; create another first"
            ),
        ));
    }
    Ok(())
}

/// `PATCH /v1/keys/{id}`: the fields to change.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateKey {
    /// A new name: 1 to 128 characters, none a control character.
    #[serde(default)]
    #[schema(value_type = Option<schemas::KeyName>, nullable = false)]
    name: Option<String>,
    /// The new scopes (replacing the old ones): at least one (repeats
    /// are dropped).
    #[serde(default)]
    #[schema(value_type = Option<Vec<schemas::Scope>>, nullable = false, min_items = 1)]
    scopes: Option<BTreeSet<Scope>>,
    /// A new lifetime from now, e.g. `30d`; `null`: never expires.
    #[serde(default, deserialize_with = "super::duration::nullable")]
    #[schema(value_type = Option<schemas::Duration>, examples("30d"))]
    expires_in: Option<Option<Duration>>,
}

/// Changes a key's name, scopes or expiry.
#[utoipa::path(
    patch,
    path = "/v1/keys/{id}",
    operation_id = "update_key",
    tag = "keys",
    summary = "Changes a key's name, scopes or expiry",
    description = "Scope: `keys:admin`. The fields given replace the stored ones: `scopes` the whole \
set (at least one), `expires_in` a lifetime counted from now (`null`: never expires). The secret \
stays. Requests with the key see the change at once, on every node. The last working key that \
holds `keys:admin` keeps it and its lifetime (`409 last_admin_key`). Audited as `key.updated` \
with the fields before and after. A key configured as `api.admin_key` gets its configured scopes \
back at the next start.",
    params(("id" = schemas::ApiKeyId, Path, description = "The key's id.")),
    request_body = UpdateKey,
    responses(
        (status = 200, description = "The key as stored now.", body = KeyView),
        (status = 400, description = "Malformed JSON or an unknown field (`invalid_body`), a bad `name` or no `scopes` (`invalid_field`).", body = schemas::ErrorBody),
        (status = 404, description = "No such key (`not_found`).", body = schemas::ErrorBody),
        (status = 409, description = "The key is revoked (`api_key_revoked`), or the change would leave no working `keys:admin` key (`last_admin_key`).", body = schemas::ErrorBody),
        schemas::JsonBodyErrors,
        schemas::ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    super::JsonBody(req): super::JsonBody<UpdateKey>,
) -> Result<Json<KeyView>, ApiError> {
    caller.require(&state, Scope::KeysAdmin).await?;
    let id = key_id(&id)?;
    if let Some(name) = &req.name {
        check_name(name)?;
    }
    if req.scopes.as_ref().is_some_and(BTreeSet::is_empty) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidField,
            "field `scopes`: a key needs at least one scope",
        ));
    }
    let now = crate::clock::unix_millis();
    let target = existing_key(&state, &id).await?;
    let drops_admin = req
        .scopes
        .as_ref()
        .is_some_and(|s| !s.contains(&Scope::KeysAdmin))
        || matches!(req.expires_in, Some(Some(_)));
    if drops_admin {
        not_the_last_admin(
            &state,
            &target,
            now,
            "it keeps keys:admin and never expires",
        )
        .await?;
    }
    let (key, before) = state
        .store
        .update_key(&id, |k| {
            if k.revoked_at.is_some() {
                return None;
            }
            let before = serde_json::json!({
                "name": k.name, "scopes": k.scopes, "expires_at": k.expires_at,
            });
            if let Some(name) = &req.name {
                k.name.clone_from(name);
            }
            if let Some(scopes) = &req.scopes {
                k.scopes.clone_from(scopes);
            }
            if let Some(expires_in) = req.expires_in {
                k.expires_at = expires_in.map(|d| now + d.as_millis() as u64);
            }
            Some(before)
        })
        .await?
        .ok_or_else(|| missing(&id))?;
    let Some(before) = before else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::ApiKeyRevoked,
            "a revoked key cannot be changed",
        ));
    };
    let after = serde_json::json!({
        "name": key.name, "scopes": key.scopes, "expires_at": key.expires_at,
    });
    if before != after {
        let detail = serde_json::json!({ "before": before, "after": after });
        caller
            .audit(&state, AuditAction::KeyUpdated, key.id.as_str(), detail)
            .await?;
    }
    Ok(Json((&key).into()))
}

/// Revokes a key, at once and on every node.
#[utoipa::path(
    post,
    path = "/v1/keys/{id}/revoke",
    operation_id = "revoke_key",
    tag = "keys",
    description = "Scope: `keys:admin`. Revokes the key at once, on every node; it stays listed with its `revoked_at` (`DELETE /v1/keys/{id}` removes it instead). The last working key that holds `keys:admin` cannot be revoked (`409 last_admin_key`): create another first.",
    params(("id" = schemas::ApiKeyId, Path, description = "The key's id.")),
    responses(
        (status = 200, description = "The revoked key.", body = KeyView),
        (status = 404, description = "No such key (`not_found`).", body = schemas::ErrorBody),
        (status = 409, description = "The last working `keys:admin` key (`last_admin_key`).", body = schemas::ErrorBody),
        schemas::ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<KeyView>, ApiError> {
    caller.require(&state, Scope::KeysAdmin).await?;
    let id = key_id(&id)?;
    let now = crate::clock::unix_millis();
    let target = existing_key(&state, &id).await?;
    not_the_last_admin(&state, &target, now, "it cannot be revoked").await?;
    let (key, ()) = state
        .store
        .update_key(&id, |k| k.revoke(now))
        .await?
        .ok_or_else(|| missing(&id))?;
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

/// Deletes a key.
#[utoipa::path(
    delete,
    path = "/v1/keys/{id}",
    operation_id = "delete_key",
    tag = "keys",
    description = "Scope: `keys:admin`. Deletes the key: at once, on every node, requests with it \
are refused (`unknown_api_key`) and it is no longer listed (its audit records stay). To keep a \
key listed with its `revoked_at`, revoke it instead. The last working key that holds \
`keys:admin` cannot be deleted (`409 last_admin_key`): create another first. Audited as \
`key.deleted`.",
    params(("id" = schemas::ApiKeyId, Path, description = "The key's id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "No such key (`not_found`).", body = schemas::ErrorBody),
        (status = 409, description = "The last working key that holds `keys:admin` (`last_admin_key`).", body = schemas::ErrorBody),
        schemas::ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(&state, Scope::KeysAdmin).await?;
    let id = key_id(&id)?;
    let now = crate::clock::unix_millis();
    let target = existing_key(&state, &id).await?;
    not_the_last_admin(&state, &target, now, "it cannot be deleted").await?;
    let key = state
        .store
        .delete_key(&id)
        .await?
        .ok_or_else(|| missing(&id))?;
    caller
        .audit(
            &state,
            AuditAction::KeyDeleted,
            key.id.as_str(),
            serde_json::json!({ "name": key.name, "scopes": key.scopes }),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
