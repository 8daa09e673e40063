//! Rate limits on `/v1` ([`crate::guard::Guard`]): the middleware that
//! counts every request against its source address and answers with the
//! `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` headers
//! of the bucket that decided (the API key's once [`super::caller`] knows
//! it, else the address's), and `Retry-After` on a `429`.

use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokenim_protocol::ErrorCode;

use crate::api::error::ApiError;
use crate::guard::Limit;
use crate::limiter::ConnInfo;
use crate::rate::Verdict;
use crate::state::AppState;

/// The verdict the response's headers report, filled in as the request
/// goes through the limits.
#[derive(Debug, Clone, Default)]
pub struct RateSlot(Arc<Mutex<Option<Verdict>>>);

impl RateSlot {
    /// Reports `verdict` (a later one wins).
    pub fn set(&self, verdict: Verdict) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(verdict);
    }

    fn get(&self) -> Option<Verdict> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The `429 rate_limited` answer of `limit`.
pub fn refused(limit: Limit, verdict: Verdict) -> ApiError {
    let what = match limit {
        Limit::Key => "this API key's request rate (api.rate_limits.per_key)",
        Limit::Ip => "this address's request rate (api.rate_limits.per_ip)",
        Limit::AuthFailures => {
            "this address's failed authentications (api.rate_limits.auth_failures_per_ip)"
        }
    };
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
        format!(
            "too many requests: over {what}; retry in {} s",
            verdict.retry_after_secs
        ),
    )
}

/// Counts the request against its address, then adds the headers.
pub async fn limit(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let slot = RateSlot::default();
    req.extensions_mut().insert(slot.clone());
    if let Some(info) = req.extensions().get::<ConnInfo>() {
        let client = state.proxies.client_ip(info.peer, req.headers());
        let verdict = state.guard.request_from(client);
        slot.set(verdict);
        if !verdict.allowed {
            let mut response = refused(Limit::Ip, verdict).into_response();
            headers(response.headers_mut(), verdict, true);
            return response;
        }
    }
    let mut response = next.run(req).await;
    if let Some(verdict) = slot.get() {
        let limited = response.status() == StatusCode::TOO_MANY_REQUESTS && !verdict.allowed;
        headers(response.headers_mut(), verdict, limited);
    }
    response
}

/// Writes the rate-limit headers of `verdict` (and `Retry-After` when it
/// refused the request).
fn headers(h: &mut HeaderMap, verdict: Verdict, refused: bool) {
    let set = |h: &mut HeaderMap, name: HeaderName, value: u64| {
        h.insert(name, HeaderValue::from(value));
    };
    set(h, HeaderName::from_static("ratelimit-limit"), verdict.limit);
    set(
        h,
        HeaderName::from_static("ratelimit-remaining"),
        verdict.remaining,
    );
    set(
        h,
        HeaderName::from_static("ratelimit-reset"),
        verdict.reset_secs,
    );
    if refused {
        set(h, header::RETRY_AFTER, verdict.retry_after_secs);
    }
}
