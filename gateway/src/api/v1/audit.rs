//! `GET /v1/audit` (`audit:read`): the audit log, oldest first, filtered
//! by time range (`from`, `to`: ms since the Unix epoch), `actor`,
//! `action` (e.g. `key.created`), `target`, and paginated (`after`,
//! `limit`).

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use tokenim_auth::{AuditAction, Scope};
use tokenim_protocol::ErrorCode;

use super::Params;
use super::caller::Caller;
use crate::api::error::ApiError;
use crate::state::AppState;
use crate::store::audit::{AuditPage, AuditQuery};

/// The query string.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    from: Option<u64>,
    to: Option<u64>,
    actor: Option<String>,
    action: Option<String>,
    target: Option<String>,
    after: Option<u64>,
    limit: Option<usize>,
}

/// Reads the audit log.
pub async fn query(
    State(state): State<AppState>,
    caller: Caller,
    Params(q): Params<Query>,
) -> Result<Json<AuditPage>, ApiError> {
    caller.require(&state, Scope::AuditRead).await?;
    let action = q
        .action
        .as_deref()
        .map(|a| {
            AuditAction::parse(a).ok_or_else(|| {
                ApiError::bad_request(ErrorCode::BadRequest, format!("unknown action {a:?}"))
            })
        })
        .transpose()?;
    let page = state
        .store
        .audit_log(&AuditQuery {
            from: q.from,
            to: q.to,
            actor: q.actor,
            action,
            target: q.target,
            after: q.after,
            limit: q.limit.unwrap_or(super::DEFAULT_PAGE),
        })
        .await?;
    Ok(Json(page))
}
