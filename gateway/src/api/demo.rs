//! The demo chat page: one self-contained HTML file, compiled in, served
//! in development mode only (it needs `/dev/token`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Html;
use tokenim_protocol::ErrorCode;

use super::error::ApiError;
use crate::state::AppState;

/// `GET /`: the demo chat page; 404 outside development mode.
pub async fn page(State(state): State<AppState>) -> Result<Html<&'static str>, ApiError> {
    if !state.config.dev_mode() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "the demo page is served only in development mode",
        ));
    }
    Ok(Html(include_str!("../../static/index.html")))
}
