//! `/healthz` (the process answers), `/readyz` (it accepts new clients;
//! not while draining) and `/metrics` (Prometheus text format).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::state::AppState;

/// Liveness: 200 while the process serves HTTP.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: 200, or 503 while draining or while Redis is unreachable.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining")
    } else if !state.broker.is_ready() {
        (StatusCode::SERVICE_UNAVAILABLE, "broker unavailable")
    } else {
        (StatusCode::OK, "ready")
    }
}

/// Prometheus exposition of every `tokenim_*` metric.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
