//! `Idempotency-Key`: a request sent again with the same key (by the same
//! API key) gets the first response again and does nothing twice. The
//! same key with a different request is `idempotency_conflict` (422); a
//! retry while the first is still running is told so (409). Responses are
//! kept for `api.idempotency_ttl`. A request that failed as a whole
//! (nothing done) is not kept, so its retry runs.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tokenim_protocol::ErrorCode;

use super::caller::Caller;
use crate::api::error::ApiError;
use crate::state::AppState;
use crate::store::idempotency::{Claim, SavedResponse};

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// Set on a replayed response.
pub const REPLAYED: &str = "idempotent-replayed";

/// A finished response body to keep: status and JSON text.
pub type Outcome = (StatusCode, String);

fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// Runs `work` once per idempotency key (when the request has one).
pub async fn once(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    request: &[&[u8]],
    work: impl Future<Output = Result<Outcome, ApiError>>,
) -> Result<Response, ApiError> {
    let Some(key) = headers.get(HEADER) else {
        let (status, body) = work.await?;
        return Ok(json_response(status, body));
    };
    let key = key
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::bad_request(
                ErrorCode::BadRequest,
                "Idempotency-Key: 1 to 255 visible ASCII characters",
            )
        })?;
    let mut hash = Sha256::new();
    for part in request {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part);
    }
    let fingerprint: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let scoped = format!("{}/{key}", caller.key.id);
    let ttl = state.config.api.idempotency_ttl.as_millis() as u64;
    match state
        .store
        .claim_idempotent(&scoped, &fingerprint, crate::clock::unix_millis(), ttl)
        .await?
    {
        Claim::Fresh => {}
        Claim::Replay(saved) => {
            let status = StatusCode::from_u16(saved.status).unwrap_or(StatusCode::OK);
            let mut response = json_response(status, saved.body);
            response
                .headers_mut()
                .insert(REPLAYED, HeaderValue::from_static("true"));
            return Ok(response);
        }
        Claim::InProgress => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::IdempotencyConflict,
                "a request with this Idempotency-Key is still running; retry later",
            ));
        }
        Claim::Conflict => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::IdempotencyConflict,
                "this Idempotency-Key was used with a different request",
            ));
        }
    }
    match work.await {
        Ok((status, body)) => {
            let saved = SavedResponse {
                status: status.as_u16(),
                body: body.clone(),
            };
            state.store.finish_idempotent(&scoped, saved).await?;
            Ok(json_response(status, body))
        }
        Err(e) => {
            if let Err(release) = state.store.release_idempotent(&scoped).await {
                tracing::warn!(error = %release, "idempotency claim not released; it expires");
            }
            Err(e)
        }
    }
}
