//! Tokens and moderation: mint a user token (`tokens:mint`); revoke a
//! user's tokens, close its connections, ban and unban it
//! (`users:moderate`). Revocations and bans apply on every node: live
//! connections are closed at once (through the broker) and new ones are
//! refused.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tokenim_auth::{AuditAction, ChannelScope, MintRequest, Scope};
use tokenim_protocol::{DisconnectCode, ErrorCode, UserId};

use super::caller::Caller;
use super::{JsonBody, optional_json, schemas, user_id};
use crate::api::error::ApiError;
use crate::state::AppState;
use crate::store::policy::Ban;

/// `POST /v1/tokens`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MintBody {
    /// The user the token is for (its `sub`).
    #[schema(value_type = schemas::UserId)]
    user: UserId,
    /// Lifetime (e.g. `1h`; default `1h`, at most `api.max_token_ttl`).
    #[serde(default, deserialize_with = "super::duration::optional")]
    #[schema(value_type = Option<schemas::Duration>, examples("1h"))]
    ttl: Option<Duration>,
    /// Channel patterns the token may subscribe to (default: any).
    #[schema(value_type = Option<Vec<schemas::ChannelPattern>>)]
    channels: Option<Vec<String>>,
    /// Channel patterns the token may publish to (default: any).
    #[schema(value_type = Option<Vec<schemas::ChannelPattern>>)]
    publish: Option<Vec<String>>,
}

/// A minted token.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Minted {
    /// The token (a JWT): what the client sends in `connect`.
    token: String,
    /// The user it is for.
    #[schema(value_type = schemas::UserId)]
    user: UserId,
    /// Milliseconds since the Unix epoch.
    expires_at: u64,
}

/// The first `iat` a revocation made now lets through: the next second,
/// so a token minted in the same second as the revocation is revoked too
/// (the mint endpoint issues tokens no earlier than this).
pub fn revocation_time() -> u64 {
    crate::clock::unix_secs() + 1
}

fn check_patterns(field: &str, patterns: Option<&Vec<String>>) -> Result<(), ApiError> {
    ChannelScope::from_claim(patterns.map(Vec::as_slice))
        .map(drop)
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidField, format!("{field}: {e}")))
}

/// Revokes every token `user` was issued so far and closes its
/// connections on every node (4503); returns the first `iat` still
/// accepted.
pub async fn revoke_and_close(state: &AppState, user: &UserId) -> Result<u64, ApiError> {
    let before = revocation_time();
    state.store.revoke_tokens(user, before).await?;
    state.access.refresh().await?;
    state
        .broker
        .disconnect_user(user, DisconnectCode::TokenRevoked)
        .await?;
    Ok(before)
}

/// Mints a token for a user.
#[utoipa::path(
    post,
    path = "/v1/tokens",
    operation_id = "mint_token",
    tag = "moderation",
    description = "Scope: `tokens:mint`. Signs a token for any user id (the user need not have a \
record), optionally limited to channel patterns. A banned user gets none.",
    request_body = MintBody,
    responses(
        (status = 200, description = "The token.", body = Minted),
        (status = 400, description = "Malformed JSON (`invalid_body`), or a bad `ttl` or channel pattern (`invalid_field`).", body = schemas::ErrorBody),
        schemas::JsonBodyErrors,
        schemas::ApiKeyErrors,
        (status = 403, description = "The key lacks `tokens:mint` (`missing_scope`), or the user is banned (`user_banned`).", body = schemas::ErrorBody),
        (status = 503, description = "No configured key can sign tokens (`internal`: an HS256 secret or a private key is needed), or the store cannot be reached (`unavailable`).", body = schemas::ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub async fn mint(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<MintBody>,
) -> Result<Json<Minted>, ApiError> {
    caller.require(&state, Scope::TokensMint).await?;
    let Some(signer) = state.minter.as_ref() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal,
            "no configured key can sign tokens (HS256 secret or a private key is needed)",
        ));
    };
    let ttl = body.ttl.unwrap_or(Duration::from_secs(3600));
    let max = state.config.api.max_token_ttl;
    if ttl.is_zero() || ttl > max {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidField,
            format!(
                "ttl: more than 0 and at most {}",
                humantime_serde::re::humantime::format_duration(max)
            ),
        ));
    }
    check_patterns("channels", body.channels.as_ref())?;
    check_patterns("publish", body.publish.as_ref())?;
    let access = state.store.user_access(&body.user).await?;
    let now_ms = crate::clock::unix_millis();
    if access.ban.as_ref().is_some_and(|b| b.active(now_ms)) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::UserBanned,
            format!("user {} is banned", body.user),
        ));
    }
    let issued_at = access
        .revocation
        .map_or(0, |r| r.before)
        .max(crate::clock::unix_secs());
    let auth = &state.config.auth;
    let detail = serde_json::json!({
        "ttl_secs": ttl.as_secs().max(1),
        "channels": body.channels,
        "publish": body.publish,
    });
    let request = MintRequest {
        audience: auth.audience.clone(),
        issuer: auth.issuer.clone(),
        subscribe: body.channels,
        publish: body.publish,
        ..MintRequest::new(body.user.clone(), issued_at, ttl.as_secs().max(1))
    };
    let token = signer.sign(&request).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            e.to_string(),
        )
    })?;
    caller
        .audit(&state, AuditAction::TokenMinted, body.user.as_str(), detail)
        .await?;
    Ok(Json(Minted {
        token,
        user: body.user,
        expires_at: (issued_at + ttl.as_secs().max(1)) * 1000,
    }))
}

/// Revokes every token of a user issued so far and closes its
/// connections.
#[utoipa::path(
    post,
    path = "/v1/users/{id}/revoke-tokens",
    operation_id = "revoke_user_tokens",
    tag = "moderation",
    summary = "Revokes every token of a user issued so far",
    description = "Scope: `users:moderate`. Tokens issued until now (this second included) are \
refused on every node and the user's connections close with 4503; tokens minted afterwards work.",
    params(("id" = schemas::UserId, Path, description = "The user's id.")),
    responses(
        (status = 204, description = "Revoked."),
        (status = 400, description = "Not a valid user id (`invalid_user`).", body = schemas::ErrorBody),
        schemas::ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
pub async fn revoke_tokens(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(&state, Scope::UsersModerate).await?;
    let id = user_id(&id)?;
    let before = revoke_and_close(&state, &id).await?;
    caller
        .audit(
            &state,
            AuditAction::TokensRevoked,
            id.as_str(),
            serde_json::json!({ "issued_before": before }),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/users/{id}/disconnect`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisconnectBody {
    /// Why (kept in the audit log; at most 512 characters).
    #[serde(default)]
    #[schema(max_length = 512)]
    reason: Option<String>,
}

/// The longest `reason` of a ban or a disconnect, in characters.
const MAX_REASON_CHARS: usize = 512;

/// 400 `invalid_field` for a `reason` over [`MAX_REASON_CHARS`].
fn check_reason(reason: &str) -> Result<(), ApiError> {
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidField,
            format!("reason: at most {MAX_REASON_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Closes a user's connections on every node with 4000 `shutdown`: the
/// clients may reconnect (to keep them out, ban the user).
#[utoipa::path(
    post,
    path = "/v1/users/{id}/disconnect",
    operation_id = "disconnect_user",
    tag = "moderation",
    summary = "Closes a user's connections",
    description = "Scope: `users:moderate`. Closes the user's connections on every node with 4000 \
`shutdown`: the clients may reconnect (to keep them out, ban the user). The body is optional.",
    params(("id" = schemas::UserId, Path, description = "The user's id.")),
    request_body = Option<DisconnectBody>,
    responses(
        (status = 204, description = "Closed (or there were none)."),
        (status = 400, description = "Not a valid user id (`invalid_user`), a bad body (`invalid_body`) or a `reason` over 512 characters (`invalid_field`).", body = schemas::ErrorBody),
        schemas::JsonBodyErrors,
        schemas::ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
pub async fn disconnect(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: super::JsonBytes,
) -> Result<StatusCode, ApiError> {
    caller.require(&state, Scope::UsersModerate).await?;
    let id = user_id(&id)?;
    let body: DisconnectBody = optional_json(&body)?;
    check_reason(body.reason.as_deref().unwrap_or(""))?;
    state
        .broker
        .disconnect_user(&id, DisconnectCode::Shutdown)
        .await?;
    caller
        .audit(
            &state,
            AuditAction::UserDisconnected,
            id.as_str(),
            serde_json::json!({ "reason": body.reason }),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/users/{id}/ban`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BanBody {
    /// How long (e.g. `24h`); absent: until lifted.
    #[serde(default, deserialize_with = "super::duration::optional")]
    #[schema(value_type = Option<schemas::Duration>, examples("24h"))]
    duration: Option<Duration>,
    /// Why (at most 512 characters).
    #[serde(default)]
    #[schema(max_length = 512)]
    reason: String,
}

/// Bans a user: its connections close with 4504 and it can neither
/// connect nor get a token until the ban ends.
#[utoipa::path(
    post,
    path = "/v1/users/{id}/ban",
    operation_id = "ban_user",
    tag = "moderation",
    summary = "Bans a user",
    description = "Scope: `users:moderate`. The user's connections close with 4504 on every node \
and it can neither connect nor get a token until the ban ends. A new ban replaces the old one. \
The body is optional (no body: banned until lifted).",
    params(("id" = schemas::UserId, Path, description = "The user's id.")),
    request_body = Option<BanBody>,
    responses(
        (status = 200, description = "The ban.", body = Ban),
        (status = 400, description = "Not a valid user id (`invalid_user`), a bad body (`invalid_body`) or a `reason` over 512 characters (`invalid_field`).", body = schemas::ErrorBody),
        schemas::JsonBodyErrors,
        schemas::ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
pub async fn ban(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: super::JsonBytes,
) -> Result<Json<Ban>, ApiError> {
    caller.require(&state, Scope::UsersModerate).await?;
    let id = user_id(&id)?;
    let body: BanBody = optional_json(&body)?;
    check_reason(&body.reason)?;
    let now = crate::clock::unix_millis();
    let ban = Ban {
        since: now,
        until: body.duration.map(|d| now + d.as_millis() as u64),
        reason: body.reason,
    };
    state.store.ban(&id, &ban).await?;
    state.access.refresh().await?;
    state
        .broker
        .disconnect_user(&id, DisconnectCode::Banned)
        .await?;
    caller
        .audit(
            &state,
            AuditAction::UserBanned,
            id.as_str(),
            serde_json::json!({ "until": ban.until, "reason": ban.reason }),
        )
        .await?;
    Ok(Json(ban))
}

/// Lifts a user's ban.
#[utoipa::path(
    delete,
    path = "/v1/users/{id}/ban",
    operation_id = "unban_user",
    tag = "moderation",
    description = "Scope: `users:moderate`.",
    params(("id" = schemas::UserId, Path, description = "The user's id.")),
    responses(
        (status = 204, description = "Lifted."),
        (status = 400, description = "Not a valid user id (`invalid_user`).", body = schemas::ErrorBody),
        (status = 404, description = "The user is not banned (`not_found`).", body = schemas::ErrorBody),
        schemas::ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
pub async fn unban(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(&state, Scope::UsersModerate).await?;
    let id = user_id(&id)?;
    if !state.store.unban(&id).await? {
        return Err(ApiError::not_found(format_args!("a ban of {id}")));
    }
    state.access.refresh().await?;
    caller
        .audit(
            &state,
            AuditAction::UserUnbanned,
            id.as_str(),
            serde_json::Value::Null,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
