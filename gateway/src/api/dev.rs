//! `GET /dev/token?user=<id>[&ttl=<seconds>]`: development mode only.
//! Mints a token for any user id with the node's signing key so the demo
//! page and local experiments need no backend. Off (404) outside
//! development mode.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tokenim_auth::MintRequest;
use tokenim_protocol::{ErrorCode, UserId};

use super::error::ApiError;
use crate::state::AppState;

/// Default token lifetime: one hour.
const DEFAULT_TTL_SECS: u64 = 3_600;
/// Longest token lifetime the endpoint mints: one day.
const MAX_TTL_SECS: u64 = 86_400;

/// Query parameters.
#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    user: String,
    ttl: Option<u64>,
}

/// The minted token.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    token: String,
    user: UserId,
    /// Milliseconds since the Unix epoch.
    expires_at: u64,
}

/// Mints a development token.
pub async fn token(
    State(state): State<AppState>,
    query: Result<Query<TokenQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<TokenResponse>, ApiError> {
    let Some(signer) = state.signer.as_ref() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::PermissionDenied,
            "the development token endpoint is off (this node is not in development mode); tokens come from your application's backend",
        ));
    };
    let Query(query) = query.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            e.body_text(),
        )
    })?;
    let user = UserId::new(&query.user).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidUser,
            e.to_string(),
        )
    })?;
    let ttl = query.ttl.unwrap_or(DEFAULT_TTL_SECS);
    if ttl == 0 || ttl > MAX_TTL_SECS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            format!("ttl must be 1..={MAX_TTL_SECS} seconds"),
        ));
    }
    let now = crate::clock::unix_secs();
    let auth = &state.config.auth;
    let request = MintRequest {
        user: user.clone(),
        issued_at: now,
        ttl_secs: ttl,
        audience: auth.audience.clone(),
        issuer: auth.issuer.clone(),
        subscribe: None,
        publish: None,
        token_id: None,
    };
    let token = signer.sign(&request).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            e.to_string(),
        )
    })?;
    Ok(Json(TokenResponse {
        token,
        user,
        expires_at: (now + ttl) * 1000,
    }))
}
