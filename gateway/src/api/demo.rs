//! The demo chat page: one self-contained HTML file, compiled in.

use axum::response::Html;

/// `GET /`: the demo chat page.
pub async fn page() -> Html<&'static str> {
    Html(include_str!("../../static/index.html"))
}
