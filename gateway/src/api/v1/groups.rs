//! `/v1/groups`: create in batches (JSON array or CSV, `?mode=upsert` or
//! `merge`, `Idempotency-Key`), read one or a page, change some fields of
//! one (`PATCH`, a JSON merge patch), page through members, add and
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

use super::batch::{self, BatchQuery, BatchResponse};
use super::caller::Caller;
use super::patch::{self, Patched};
use super::{JsonBody, Listing, Page, Params, schemas};
use crate::api::error::ApiError;
use crate::import::merge::{merge_group, read_patch};
use crate::import::{GroupInput, RecordInput};
use crate::state::AppState;
use crate::store::{Group, GroupId};

/// Creates (or upserts) a batch of groups.
#[utoipa::path(
    post,
    path = "/v1/groups",
    operation_id = "create_groups",
    tag = "groups",
    description = "Scope: `groups:write`. Creates (or, with `?mode=upsert`, creates or updates) up to \
`api.max_batch_items` groups with their first members from a JSON array, a CSV file (a header \
row naming some of `id,name,owner,members,metadata`, `id` required) or JSON lines, at most \
`api.max_body_bytes`. Each item has its result, in input order: a refused item (`status: error`, \
e.g. `unknown_member`) does not stop the others. With an `Idempotency-Key` a retry gets the \
first answer again (`Idempotent-Replayed: true`) and does nothing twice.",
    params(
        BatchQuery,
        ("Idempotency-Key" = Option<schemas::IdempotencyKey>, Header, nullable = false, description = "1 to 255 visible ASCII characters; kept for `api.idempotency_ttl`."),
    ),
    request_body(
        description = "The groups: a JSON array, CSV, or one JSON object per line.",
        content(
            (Vec<schemas::GroupInput> = "application/json", example = json!([{"id": "team-a", "name": "Team A", "owner": "alice", "members": ["bob"]}])),
            (schemas::GroupsCsv = "text/csv"),
            (schemas::GroupInput = "application/x-ndjson"),
        ),
    ),
    responses(
        (status = 200, description = "A result per item.", body = BatchResponse, headers(
            ("Idempotent-Replayed" = String, description = "`true` when this is the kept answer of an earlier request with the same `Idempotency-Key`."),
        )),
        schemas::BatchErrors,
        schemas::ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Params(query): Params<BatchQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    batch::handle(
        &state,
        &caller,
        query.mode,
        &headers,
        body,
        batch::Kind::Groups,
    )
    .await
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
#[utoipa::path(
    get,
    path = "/v1/groups/{id}",
    operation_id = "get_group",
    tag = "groups",
    description = "Scope: `groups:read`.",
    params(("id" = schemas::UserId, Path, description = "The group's id.")),
    responses(
        (status = 200, description = "The group.", body = Group),
        (status = 400, description = "Not a valid group id (`invalid_group`).", body = schemas::ErrorBody),
        (status = 404, description = "No such group (`not_found`).", body = schemas::ErrorBody),
        schemas::ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Group>, ApiError> {
    caller.require(&state, Scope::GroupsRead).await?;
    Ok(Json(existing(&state, &group_id(&id)?).await?))
}

/// Changes some fields of a group.
#[utoipa::path(
    patch,
    path = "/v1/groups/{id}",
    operation_id = "patch_group",
    tag = "groups",
    summary = "Changes some fields of a group",
    description = "Scope: `groups:write`. A JSON merge patch (RFC 7386, `Content-Type: \
application/merge-patch+json` or `application/json`) of `name`, `owner` and `metadata`: the \
fields given replace the stored ones and the others stay; `metadata` is merged key by key \
(`null` removes a key), `owner: null` removes the owner (who stays a member), `name: null` \
resets the name to the id. A new owner must be a known user and becomes a member. `id` may be \
given only unchanged; members change through `/v1/groups/{id}/members`. The same merge as \
`POST /v1/groups?mode=merge`. Audited as `group.updated`.",
    params(("id" = schemas::UserId, Path, description = "The group's id.")),
    request_body(
        description = "The fields to change.",
        content(
            (schemas::GroupPatch = "application/merge-patch+json"),
            (schemas::GroupPatch = "application/json"),
        ),
    ),
    responses(
        (status = 200, description = "The group as stored now.", body = Group),
        (status = 400, description = "Not a valid group id (`invalid_group`), not an object (`invalid_body`), an unknown or changed field or a refused value (`invalid_field`).", body = schemas::ErrorBody),
        (status = 404, description = "No such group (`not_found`), or an owner who is not a known user (`unknown_member`).", body = schemas::ErrorBody),
        (status = 409, description = "The group kept changing while the patch was applied (`conflict`): retry.", body = schemas::ErrorBody),
        (status = 415, description = "The body is not sent as JSON (`invalid_body`).", body = schemas::ErrorBody),
        schemas::ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
pub async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: super::JsonBytes,
) -> Result<Json<Group>, ApiError> {
    caller.require(&state, Scope::GroupsWrite).await?;
    let id = group_id(&id)?;
    let limits = batch::limits(&state);
    let now = crate::clock::unix_millis();
    let (new, given) =
        read_patch::<GroupInput>(id.as_str(), &body.0, &limits, now).map_err(patch::refused)?;
    if given.has(MEMBERS) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidField,
            format!("field `members`: add and remove members with /v1/groups/{id}/members"),
        ));
    }
    let owner = new.group.owner.as_slice();
    require_known(&state, owner).await?;
    let merged = state
        .store
        .merge_group(&id, |old| {
            merge_group(old, &new.group, given, &limits).map_err(|e| (e.code, e.message))
        })
        .await?;
    let (before, after) = match patch::outcome(merged, format_args!("group {id}"))? {
        Patched::Unchanged(group) => return Ok(Json(group)),
        Patched::Changed(before, after) => (before, after),
    };
    // The owner is always a member.
    state.store.add_members(&id, owner, now).await?;
    state.access.refresh().await?;
    let detail = serde_json::json!({
        "changed": patch::changed_fields(&GroupInput::COLUMNS, given),
        "owner_before": before.owner,
        "owner": after.owner,
    });
    caller
        .audit(&state, AuditAction::GroupUpdated, id.as_str(), detail)
        .await?;
    Ok(Json(after))
}

/// Where `members` is in [`GroupInput::COLUMNS`].
const MEMBERS: usize = 3;

/// A page of groups.
#[utoipa::path(
    get,
    path = "/v1/groups",
    operation_id = "list_groups",
    tag = "groups",
    description = "Scope: `groups:read`. Groups in id order, with `count`, how many there are.",
    params(Page),
    responses(
        (status = 200, description = "A page of groups.", body = schemas::GroupPage),
        (status = 400, description = "A bad query parameter (`bad_request`).", body = schemas::ErrorBody),
        schemas::ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
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
    let count = state.store.count_groups().await?;
    Ok(Json(
        Listing::new(groups, page.limit(), |g| g.id.to_string()).counted(count),
    ))
}

/// A page of a group's members.
#[utoipa::path(
    get,
    path = "/v1/groups/{id}/members",
    operation_id = "list_group_members",
    tag = "groups",
    description = "Scope: `groups:read`. Member ids in id order, with `count`, how many members the group has.",
    params(("id" = schemas::UserId, Path, description = "The group's id."), Page),
    responses(
        (status = 200, description = "A page of member ids.", body = schemas::IdPage),
        (status = 400, description = "Not a valid group id (`invalid_group`) or a bad query parameter (`bad_request`).", body = schemas::ErrorBody),
        (status = 404, description = "No such group (`not_found`).", body = schemas::ErrorBody),
        schemas::ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
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
    let count = state.store.count_members(&id).await?;
    Ok(Json(
        Listing::new(members, page.limit(), ToString::to_string).counted(count),
    ))
}

/// `{"users": [...]}`: members to add or remove.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MembersBody {
    /// The users (at most `api.max_batch_items`; repeats count once).
    #[schema(value_type = Vec<schemas::UserId>)]
    pub users: Vec<UserId>,
}

/// What a membership change did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MembersChange {
    /// Users that became (or stopped being) members.
    pub changed: usize,
    /// Users that already were (or were not) members.
    pub unchanged: usize,
}

/// `users` without repeats, at most `api.max_batch_items` (413).
pub fn checked(state: &AppState, mut users: Vec<UserId>) -> Result<Vec<UserId>, ApiError> {
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

/// 404 `unknown_member` naming the ones of `users` that are not known
/// users (as a grant to an unknown subject is 404: what the request
/// names does not exist).
pub async fn require_known(state: &AppState, users: &[UserId]) -> Result<(), ApiError> {
    let unknown = state.store.unknown_users(users).await?;
    if unknown.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = unknown.iter().map(UserId::as_str).collect();
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::UnknownMember,
        format!(
            "not known users: {}; create them first; nothing was changed",
            names.join(", ")
        ),
    ))
}

/// Adds members (every user must exist: otherwise nothing is added and
/// the unknown ones are named).
#[utoipa::path(
    post,
    path = "/v1/groups/{id}/members",
    operation_id = "add_group_members",
    tag = "groups",
    summary = "Adds members",
    description = "Scope: `groups:write`. Every user must exist: otherwise nothing is added and the \
unknown ones are named (`unknown_member`).",
    params(("id" = schemas::UserId, Path, description = "The group's id.")),
    request_body = MembersBody,
    responses(
        (status = 200, description = "How many became members, and how many were already.", body = MembersChange),
        (status = 400, description = "Malformed JSON (`invalid_body`) or not a valid group id (`invalid_group`).", body = schemas::ErrorBody),
        (status = 404, description = "No such group (`not_found`), or unknown users (`unknown_member`, naming them).", body = schemas::ErrorBody),
        (status = 413, description = "More than `api.max_batch_items` users (`too_many_items`).", body = schemas::ErrorBody),
        schemas::JsonBodyErrors,
        schemas::ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
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
    require_known(&state, &users).await?;
    let added = state
        .store
        .add_members(&id, &users, crate::clock::unix_millis())
        .await?;
    state.access.refresh().await?;
    if added > 0 {
        let detail = serde_json::json!({ "users": users, "added": added });
        caller
            .audit(&state, AuditAction::MembersAdded, id.as_str(), detail)
            .await?;
    }
    Ok(Json(MembersChange {
        changed: added,
        unchanged: users.len() - added,
    }))
}

/// Removes members.
#[utoipa::path(
    post,
    path = "/v1/groups/{id}/members/remove",
    operation_id = "remove_group_members",
    tag = "groups",
    description = "Scope: `groups:write`.",
    params(("id" = schemas::UserId, Path, description = "The group's id.")),
    request_body = MembersBody,
    responses(
        (status = 200, description = "How many stopped being members, and how many were not.", body = MembersChange),
        (status = 400, description = "Malformed JSON (`invalid_body`) or not a valid group id (`invalid_group`).", body = schemas::ErrorBody),
        (status = 404, description = "No such group (`not_found`).", body = schemas::ErrorBody),
        (status = 413, description = "More than `api.max_batch_items` users (`too_many_items`).", body = schemas::ErrorBody),
        schemas::JsonBodyErrors,
        schemas::ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
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
    state.access.refresh().await?;
    if removed > 0 {
        let detail = serde_json::json!({ "users": users, "removed": removed });
        caller
            .audit(&state, AuditAction::MembersRemoved, id.as_str(), detail)
            .await?;
    }
    Ok(Json(MembersChange {
        changed: removed,
        unchanged: users.len() - removed,
    }))
}

/// Deletes a group and its memberships.
#[utoipa::path(
    delete,
    path = "/v1/groups/{id}",
    operation_id = "delete_group",
    tag = "groups",
    description = "Scope: `groups:write`. Its channel's history expires as usual.",
    params(("id" = schemas::UserId, Path, description = "The group's id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, description = "Not a valid group id (`invalid_group`).", body = schemas::ErrorBody),
        (status = 404, description = "No such group (`not_found`).", body = schemas::ErrorBody),
        schemas::ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
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
