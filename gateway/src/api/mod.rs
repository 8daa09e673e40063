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

pub mod demo;
pub mod dev;
pub mod error;
pub mod health;
pub mod v1;
pub mod ws;

use axum::Router;
use axum::routing::get;

use crate::state::AppState;

/// The node's router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(demo::page))
        .route("/ws", get(ws::upgrade))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/dev/token", get(dev::token))
        .merge(v1::router(state.clone()))
        .fallback(error::no_route)
        .method_not_allowed_fallback(error::wrong_method)
        .with_state(state)
}
