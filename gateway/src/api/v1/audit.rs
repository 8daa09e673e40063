//! `GET /v1/audit` (`audit:read`): the audit log, oldest first, filtered
//! by time range (`from`, `to`: ms since the Unix epoch), `actor`,
//! `action` (e.g. `key.created`), `target`, and paginated (`after`,
//! `limit`).

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use tokenim_auth::{AuditAction, Scope};
use tokenim_protocol::ErrorCode;

use super::caller::Caller;
use super::{Params, schemas};
use crate::api::error::ApiError;
use crate::state::AppState;
use crate::store::audit::{AuditPage, AuditQuery};

/// The query string.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Query {
    /// Only records at or after this time (ms since the Unix epoch).
    #[serde(default, deserialize_with = "super::int64")]
    from: Option<u64>,
    /// Only records before this time (ms since the Unix epoch).
    #[serde(default, deserialize_with = "super::int64")]
    to: Option<u64>,
    /// Only records of this actor (an API key id, `config` or `anonymous`).
    actor: Option<String>,
    /// Only records of this action.
    #[param(value_type = Option<schemas::AuditAction>)]
    action: Option<String>,
    /// Only records about this target.
    target: Option<String>,
    /// The `next` of the previous page.
    #[serde(default, deserialize_with = "super::int64")]
    after: Option<u64>,
    /// Page size: default 100, at least 1, lowered to 1,000 if larger.
    #[serde(default, deserialize_with = "super::page_size")]
    #[param(minimum = 1)]
    limit: Option<usize>,
}

/// Reads the audit log.
#[utoipa::path(
    get,
    path = "/v1/audit",
    operation_id = "query_audit_log",
    tag = "audit",
    description = "Scope: `audit:read`. Records oldest first, filtered and a page at a time. A \
query whose filters match little may answer a short page with a `next` to continue from.",
    params(Query),
    responses(
        (status = 200, description = "A page of records.", body = AuditPage),
        (status = 400, description = "An unknown action or a bad query parameter (`bad_request`).", body = schemas::ErrorBody),
        schemas::ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
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
