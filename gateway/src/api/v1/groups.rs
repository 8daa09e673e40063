//! `/v1/groups`: create in batches (JSON array or CSV, `?mode=upsert`,
//! `Idempotency-Key`), read one or a page, page through members, add and
//! remove members in batches, delete. A group's channel is
//! `groups.<id>`: only members (and holders of `manage_group`) may use it.
//!
//! Deleting a group removes it and its memberships; its channel's history
//! expires as usual.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use tokenim_auth::{AuditAction, Scope};
use tokenim_protocol::{ErrorCode, UserId};

use super::batch::{self, BatchQuery, BatchResponse, Mode};
use super::caller::Caller;
use super::{JsonBody, Listing, Page, Params, idempotency};
use crate::api::error::ApiError;
use crate::state::AppState;
use crate::store::{Group, GroupId};

/// Creates (or upserts) a batch of groups.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Params(query): Params<BatchQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    caller.require(&state, Scope::GroupsWrite).await?;
    let bytes = batch::read_body(&state, body).await?;
    let format = batch::format(&headers)?;
    let upsert = query.mode == Mode::Upsert;
    let shape = format!("POST /v1/groups {:?} {format:?}", query.mode);
    let request = [shape.as_bytes(), &bytes];
    let work = async {
        let items = crate::records::parse_groups(
            &bytes,
            format,
            state.config.api.max_batch_items,
            &batch::limits(&state),
            crate::unix_millis(),
        )?;
        let results = batch::store_groups(&state, items, upsert).await?;
        Ok(BatchResponse::new(results).outcome())
    };
    idempotency::once(&state, &caller, &headers, &request, work).await
}

fn group_id(id: &str) -> Result<GroupId, ApiError> {
    GroupId::new(id).map_err(|_| {
        ApiError::bad_request(
            ErrorCode::InvalidGroup,
            format!("invalid group id {id:?}: 1 to 64 bytes of A-Z a-z 0-9 _ - . @"),
        )
    })
}

async fn existing(state: &AppState, id: &GroupId) -> Result<Group, ApiError> {
    state
        .store
        .group(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format_args!("group {id}")))
}

/// One group.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Group>, ApiError> {
    caller.require(&state, Scope::GroupsRead).await?;
    Ok(Json(existing(&state, &group_id(&id)?).await?))
}

/// A page of groups.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Params(page): Params<Page>,
) -> Result<Json<Listing<Group>>, ApiError> {
    caller.require(&state, Scope::GroupsRead).await?;
    let groups = state
        .store
        .list_groups(page.after.as_deref(), page.limit())
        .await?;
    Ok(Json(Listing::new(groups, page.limit(), |g| {
        g.id.to_string()
    })))
}

/// A page of a group's members.
pub async fn members(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Params(page): Params<Page>,
) -> Result<Json<Listing<UserId>>, ApiError> {
    caller.require(&state, Scope::GroupsRead).await?;
    let id = group_id(&id)?;
    existing(&state, &id).await?;
    let members = state
        .store
        .members(&id, page.after.as_deref(), page.limit())
        .await?;
    Ok(Json(Listing::new(
        members,
        page.limit(),
        ToString::to_string,
    )))
}

/// `{"users": [...]}`: members to add or remove.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembersBody {
    users: Vec<UserId>,
}

/// What a membership change did.
#[derive(Debug, Serialize)]
pub struct MembersChange {
    /// Users that became (or stopped being) members.
    changed: usize,
    /// Users that already were (or were not) members.
    unchanged: usize,
}

fn checked(state: &AppState, mut users: Vec<UserId>) -> Result<Vec<UserId>, ApiError> {
    let max = state.config.api.max_batch_items;
    if users.len() > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::TooManyItems,
            format!("at most {max} users per request"),
        ));
    }
    users.sort();
    users.dedup();
    Ok(users)
}

/// Adds members (every user must exist: otherwise nothing is added and
/// the unknown ones are named).
pub async fn add_members(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<MembersBody>,
) -> Result<Json<MembersChange>, ApiError> {
    caller.require(&state, Scope::GroupsWrite).await?;
    let id = group_id(&id)?;
    existing(&state, &id).await?;
    let users = checked(&state, body.users)?;
    let unknown = state.store.unknown_users(&users).await?;
    if !unknown.is_empty() {
        let names: Vec<&str> = unknown.iter().map(UserId::as_str).collect();
        return Err(ApiError::bad_request(
            ErrorCode::UnknownMember,
            format!("not known users: {}; nothing was added", names.join(", ")),
        ));
    }
    let added = state
        .store
        .add_members(&id, &users, crate::unix_millis())
        .await?;
    if added > 0 {
        state.store.bump_access().await?;
        state.access.refresh().await?;
    }
    Ok(Json(MembersChange {
        changed: added,
        unchanged: users.len() - added,
    }))
}

/// Removes members.
pub async fn remove_members(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<MembersBody>,
) -> Result<Json<MembersChange>, ApiError> {
    caller.require(&state, Scope::GroupsWrite).await?;
    let id = group_id(&id)?;
    existing(&state, &id).await?;
    let users = checked(&state, body.users)?;
    let removed = state.store.remove_members(&id, &users).await?;
    if removed > 0 {
        state.store.bump_access().await?;
        state.access.refresh().await?;
    }
    Ok(Json(MembersChange {
        changed: removed,
        unchanged: users.len() - removed,
    }))
}

/// Deletes a group and its memberships.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(&state, Scope::GroupsWrite).await?;
    let id = group_id(&id)?;
    if !state.store.delete_group(&id).await? {
        return Err(ApiError::not_found(format_args!("group {id}")));
    }
    state.store.bump_access().await?;
    state.access.refresh().await?;
    caller
        .audit(
            &state,
            AuditAction::GroupDeleted,
            id.as_str(),
            serde_json::Value::Null,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
