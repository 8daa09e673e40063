//! The HTTP surface of a node: the WebSocket endpoint, health and metrics,
//! the demo page and the development token endpoint.
//!
//! | route | module | what |
//! |---|---|---|
//! | `GET /ws` | [`ws`] | WebSocket upgrade (the protocol in `docs/PROTOCOL.md`) |
//! | `GET /healthz`, `/readyz`, `/metrics` | [`health`] | liveness, readiness, Prometheus |
//! | `GET /` | [`demo`] | the demo chat page |
//! | `GET /dev/token` | [`dev`] | development only: mint a token for any user |
//! | `/v1/...` | [`v1`] | the server API: keys, users, groups, tokens, moderation, publish, roles, grants, audit, jobs |
//!
//! With `api.listen` set, `/v1` and `/metrics` are served only on that
//! internal address ([`routers`]); `/healthz` and `/readyz` on both.

pub mod demo;
pub mod dev;
pub mod error;
pub mod health;
pub mod v1;
pub mod ws;

use axum::Router;
use axum::routing::get;

use crate::state::AppState;

/// The node's routers: the public one, and the internal one when
/// `api.listen` is set (the server API and `/metrics` then move there).
pub fn routers(state: AppState) -> (Router, Option<Router>) {
    let public = Router::new()
        .route("/", get(demo::page))
        .route("/ws", get(ws::upgrade))
        .route("/dev/token", get(dev::token));
    let internal = Router::new()
        .route("/metrics", get(health::metrics))
        .merge(v1::router(state.clone()));
    if state.config.api.listen.is_some() {
        let internal = finish(probes(internal), state.clone());
        (finish(probes(public), state), Some(internal))
    } else {
        (finish(probes(public.merge(internal)), state), None)
    }
}

/// `router` with the liveness and readiness probes (served everywhere).
fn probes(router: Router<AppState>) -> Router<AppState> {
    router
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
}

/// Largest HTTP request head accepted (request line and headers): a
/// larger one is answered `431` with the error body.
pub const MAX_REQUEST_HEAD: usize = 16 << 10;

/// `router` answering unknown routes and methods with the error body, and
/// refusing request heads over [`MAX_REQUEST_HEAD`].
fn finish(router: Router<AppState>, state: AppState) -> Router {
    router
        .fallback(error::no_route)
        .method_not_allowed_fallback(error::wrong_method)
        .layer(axum::middleware::from_fn(head_limit))
        .with_state(state)
}

/// Refuses a request whose head is over [`MAX_REQUEST_HEAD`] (431).
async fn head_limit(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let line = req.method().as_str().len() + req.uri().to_string().len() + 12;
    let headers: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if line + headers > MAX_REQUEST_HEAD {
        return error::ApiError::new(
            axum::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            tokenim_protocol::ErrorCode::BadRequest,
            format!("the request head is over {} KiB", MAX_REQUEST_HEAD >> 10),
        )
        .into_response();
    }
    next.run(req).await
}
