//! `/v1/users`: create in batches (JSON array or CSV, `?mode=upsert` or
//! `merge`,
//! `Idempotency-Key`), read one, many (`?ids=a,b`) or a page, change some
//! fields of one (`PATCH`, a JSON merge patch), list a user's groups,
//! delete.
//!
//! Deleting a user removes its record and memberships, revokes every
//! token issued so far and closes its connections on every node. The id
//! may be created again; tokens minted before the deletion stay revoked.

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
use super::{Listing, Page, Params, schemas, user_id};
use crate::api::error::ApiError;
use crate::import::merge::{merge_user, read_patch};
use crate::import::{RecordInput, UserInput};
use crate::state::AppState;
use crate::store::User;

/// Creates (or upserts) a batch of users.
#[utoipa::path(
    post,
    path = "/v1/users",
    operation_id = "create_users",
    tag = "users",
    description = "Scope: `users:write`, and `users:roles` for `?mode=upsert` and for items that \
give roles (without it such an item is refused with `missing_scope`). Creates (or, with \
`?mode=upsert`, creates or replaces; with `?mode=merge`, creates or changes the fields given) up to \
`api.max_batch_items` users from a JSON array, a CSV file (a header row naming some of \
`id,name,avatar_url,roles,metadata`, `id` required) or JSON lines, at most `api.max_body_bytes`. \
Each item has its result, in input order: a refused item (`status: error`) does not stop the \
others; retry exactly the refused ones, fixed. Users created or updated with roles are audited. \
With an `Idempotency-Key` a retry gets the first answer again (`Idempotent-Replayed: true`) \
and does nothing twice.",
    params(
        BatchQuery,
        ("Idempotency-Key" = Option<schemas::IdempotencyKey>, Header, nullable = false, description = "1 to 255 visible ASCII characters; kept for `api.idempotency_ttl`."),
    ),
    request_body(
        description = "The users: a JSON array, CSV, or one JSON object per line.",
        content(
            (Vec<schemas::UserInput> = "application/json", example = json!([{"id": "alice", "name": "Alice", "roles": ["moderator"]}, {"id": "bob"}])),
            (schemas::UsersCsv = "text/csv"),
            (schemas::UserInput = "application/x-ndjson"),
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
        batch::Kind::Users,
    )
    .await
}

/// One user.
#[utoipa::path(
    get,
    path = "/v1/users/{id}",
    operation_id = "get_user",
    tag = "users",
    description = "Scope: `users:read`.",
    params(("id" = schemas::UserId, Path, description = "The user's id.")),
    responses(
        (status = 200, description = "The user.", body = User),
        (status = 400, description = "Not a valid user id (`invalid_user`).", body = schemas::ErrorBody),
        (status = 404, description = "No such user (`not_found`).", body = schemas::ErrorBody),
        schemas::ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<User>, ApiError> {
    caller.require(&state, Scope::UsersRead).await?;
    let id = user_id(&id)?;
    let user = state
        .store
        .user(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format_args!("user {id}")))?;
    Ok(Json(user))
}

/// Where `roles` is in [`UserInput::COLUMNS`].
const ROLES: usize = 3;

/// Changes some fields of a user.
#[utoipa::path(
    patch,
    path = "/v1/users/{id}",
    operation_id = "patch_user",
    tag = "users",
    summary = "Changes some fields of a user",
    description = "Scope: `users:write`, and `users:roles` to change `roles`. A JSON merge patch (RFC 7386, `Content-Type: \
application/merge-patch+json` or `application/json`): the fields given replace the stored ones \
and the others stay; `metadata` is merged key by key (`null` removes a key), `roles` replaces \
the list (each role must exist), `avatar_url: null` removes the picture, `name: null` resets \
the name to the id. `id` may be given only unchanged. The result is checked as a created user \
is; nothing is stored when a field is refused. The same merge as `POST /v1/users?mode=merge`. \
Audited as `user.updated` (the fields changed, and the roles before and after).",
    params(("id" = schemas::UserId, Path, description = "The user's id.")),
    request_body(
        description = "The fields to change.",
        content(
            (schemas::UserPatch = "application/merge-patch+json"),
            (schemas::UserPatch = "application/json"),
        ),
    ),
    responses(
        (status = 200, description = "The user as stored now.", body = User),
        (status = 400, description = "Not a valid user id (`invalid_user`), not an object (`invalid_body`), an unknown or changed field or a refused value (`invalid_field`, naming it).", body = schemas::ErrorBody),
        (status = 404, description = "No such user, or a role given that does not exist (`not_found`, naming it).", body = schemas::ErrorBody),
        (status = 409, description = "The user kept changing while the patch was applied (`conflict`): retry.", body = schemas::ErrorBody),
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
) -> Result<Json<User>, ApiError> {
    caller.require(&state, Scope::UsersWrite).await?;
    let id = user_id(&id)?;
    let limits = batch::limits(&state);
    let now = crate::clock::unix_millis();
    let (new, given) =
        read_patch::<UserInput>(id.as_str(), &body.0, &limits, now).map_err(patch::refused)?;
    if given.has(ROLES) {
        caller.require(&state, Scope::UsersRoles).await?;
    }
    let policy = state.store.policy().await?;
    if let Some(message) = batch::unknown_role(&policy, &new) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            message,
        ));
    }
    let merged = state
        .store
        .merge_user(&id, |old| {
            merge_user(old, &new, given, &limits).map_err(|e| (e.code, e.message))
        })
        .await?;
    let (before, after) = match patch::outcome(merged, format_args!("user {id}"))? {
        Patched::Unchanged(user) => return Ok(Json(user)),
        Patched::Changed(before, after) => (before, after),
    };
    state.access.refresh().await?;
    let detail = serde_json::json!({
        "changed": patch::changed_fields(&UserInput::COLUMNS, given),
        "roles_before": before.roles,
        "roles": after.roles,
    });
    caller
        .audit(&state, AuditAction::UserUpdated, id.as_str(), detail)
        .await?;
    Ok(Json(after))
}

/// `GET /v1/users`: `?ids=a,b,c` (at most `api.max_batch_items`), or a
/// page `?after=&limit=`, narrowed by `prefix`, `name` and a metadata
/// field.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Comma-separated ids (at most `api.max_batch_items`): the answer has
    /// the users found and the ids missing. The other parameters are then
    /// checked but not used.
    #[param(pattern = "^,*([A-Za-z0-9_.@-]{1,64}(,+|$))*$")]
    ids: Option<String>,
    /// The `next` of the previous page.
    after: Option<String>,
    /// Page size: default 100, at least 1, lowered to 1,000 if larger.
    #[serde(default, deserialize_with = "super::page_size")]
    #[param(minimum = 1)]
    limit: Option<usize>,
    /// Only users whose id starts with this.
    prefix: Option<String>,
    /// Only users whose name contains this, letter case aside.
    #[param(min_length = 1)]
    name: Option<String>,
    /// Only users whose metadata has this top-level key (with
    /// `metadata_value`: with that value).
    #[param(min_length = 1)]
    metadata_key: Option<String>,
    /// Only users whose metadata has a top-level field (with
    /// `metadata_key`: that field) with this value: a string as it is, a
    /// number or `true`/`false` as written in JSON.
    metadata_value: Option<String>,
}

/// Users read at most per page of a search by `name` or metadata: a
/// search that matches little returns a short page with a `next` to go on
/// from.
pub const MAX_USERS_SCANNED: usize = 10_000;

impl ListQuery {
    /// The search by name and metadata, if one was asked (400 for an empty
    /// `name` or `metadata_key`, which would match everything).
    fn search(&self) -> Result<Option<impl Fn(&User) -> bool + use<>>, ApiError> {
        for (param, value) in [("name", &self.name), ("metadata_key", &self.metadata_key)] {
            if value.as_ref().is_some_and(String::is_empty) {
                return Err(ApiError::bad_request(
                    ErrorCode::BadRequest,
                    format!("{param}: at least one character"),
                ));
            }
        }
        let name = self.name.as_ref().map(|n| n.to_lowercase());
        let (key, value) = (self.metadata_key.clone(), self.metadata_value.clone());
        let by_value = value.is_some();
        if name.is_none() && key.is_none() && !by_value {
            return Ok(None);
        }
        let matches = move |found: &serde_json::Value| {
            value.as_ref().is_none_or(|v| match found {
                serde_json::Value::String(s) => s == v,
                other => serde_json::from_str::<serde_json::Value>(v).is_ok_and(|w| w == *other),
            })
        };
        Ok(Some(move |user: &User| {
            let named = name
                .as_ref()
                .is_none_or(|n| user.name.to_lowercase().contains(n.as_str()));
            let tagged = match &key {
                Some(k) => user.metadata.get(k).is_some_and(&matches),
                None if by_value => user.metadata.values().any(&matches),
                None => true,
            };
            named && tagged
        }))
    }
}

/// Users by id, or a page.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum UsersResponse {
    /// `?ids=`: found users, and the ids not found.
    Many {
        /// Found users, in the order asked.
        items: Vec<User>,
        /// Ids with no user.
        #[schema(value_type = Vec<schemas::UserId>)]
        missing: Vec<UserId>,
    },
    /// A page.
    #[schema(value_type = schemas::UserPage)]
    Page(Listing<User>),
}

/// Several users, or a page of users.
#[utoipa::path(
    get,
    path = "/v1/users",
    operation_id = "list_users",
    tag = "users",
    description = "Scope: `users:read`. With `ids`, those users (and the ids not found); without, a \
page of users in id order, with `count`, how many users there are (with `prefix`: how many \
have it). `prefix` narrows by id; `name` (letters in any case) and `metadata_key` + \
`metadata_value` search by name and metadata: such a page reads at most 10,000 users, so a \
search that matches little may give a short page (even an empty one) with a `next` to go on \
from, and has no `count`.",
    params(ListQuery),
    responses(
        (status = 200, description = "The users asked for, or a page.", body = UsersResponse),
        (status = 400, description = "Not a valid user id (`invalid_user`) or a bad query parameter (`bad_request`).", body = schemas::ErrorBody),
        (status = 413, description = "More than `api.max_batch_items` ids (`too_many_items`).", body = schemas::ErrorBody),
        schemas::ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Params(query): Params<ListQuery>,
) -> Result<Json<UsersResponse>, ApiError> {
    caller.require(&state, Scope::UsersRead).await?;
    // Checked even when `ids` makes it unused: a bad parameter is refused.
    let search = query.search()?;
    if let Some(ids) = query.ids {
        let ids = ids
            .split(',')
            .filter(|s| !s.is_empty())
            .map(user_id)
            .collect::<Result<Vec<_>, _>>()?;
        let max = state.config.api.max_batch_items;
        if ids.len() > max {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::TooManyItems,
                format!("at most {max} ids per request"),
            ));
        }
        let found = state.store.users(&ids).await?;
        let missing = ids
            .iter()
            .zip(&found)
            .filter(|(_, u)| u.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        let items = found.into_iter().flatten().collect();
        return Ok(Json(UsersResponse::Many { items, missing }));
    }
    let limit = super::page_limit(query.limit);
    let prefix = query.prefix.as_deref().unwrap_or("");
    let after = query.after.as_deref();
    if let Some(keep) = search {
        let (users, next) = state
            .store
            .find_users(prefix, after, limit, MAX_USERS_SCANNED, keep)
            .await?;
        return Ok(Json(UsersResponse::Page(Listing::page(users, next))));
    }
    let users = state.store.list_users(prefix, after, limit).await?;
    let count = state.store.count_users(prefix).await?;
    Ok(Json(UsersResponse::Page(
        Listing::new(users, limit, |u| u.id.to_string()).counted(count),
    )))
}

/// The groups a user belongs to, a page at a time.
#[utoipa::path(
    get,
    path = "/v1/users/{id}/groups",
    operation_id = "list_user_groups",
    tag = "users",
    description = "Scope: `groups:read`. The ids of the groups the user is a member of, in id order, with `count`, how many.",
    params(("id" = schemas::UserId, Path, description = "The user's id."), Page),
    responses(
        (status = 200, description = "A page of group ids.", body = schemas::IdPage),
        (status = 400, description = "Not a valid user id (`invalid_user`) or a bad query parameter (`bad_request`).", body = schemas::ErrorBody),
        (status = 404, description = "No such user (`not_found`).", body = schemas::ErrorBody),
        schemas::ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
pub async fn groups(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Params(page): Params<Page>,
) -> Result<Json<Listing<UserId>>, ApiError> {
    caller.require(&state, Scope::GroupsRead).await?;
    let id = user_id(&id)?;
    if state.store.user(&id).await?.is_none() {
        return Err(ApiError::not_found(format_args!("user {id}")));
    }
    let groups = state
        .store
        .groups_of(&id, page.after.as_deref(), page.limit())
        .await?;
    let count = state.store.count_groups_of(&id).await?;
    Ok(Json(
        Listing::new(groups, page.limit(), ToString::to_string).counted(count),
    ))
}

/// Deletes a user (see the module doc).
#[utoipa::path(
    delete,
    path = "/v1/users/{id}",
    operation_id = "delete_user",
    tag = "users",
    summary = "Deletes a user",
    description = "Scope: `users:delete`. Removes the user's record and memberships, revokes every \
token issued to it so far and closes its connections on every node. The id may be created \
again; tokens minted before the deletion stay revoked.",
    params(("id" = schemas::UserId, Path, description = "The user's id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, description = "Not a valid user id (`invalid_user`).", body = schemas::ErrorBody),
        (status = 404, description = "No such user (`not_found`).", body = schemas::ErrorBody),
        schemas::ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(&state, Scope::UsersDelete).await?;
    let id = user_id(&id)?;
    if !state.store.delete_user(&id).await? {
        return Err(ApiError::not_found(format_args!("user {id}")));
    }
    super::moderation::revoke_and_close(&state, &id).await?;
    caller
        .audit(
            &state,
            AuditAction::UserDeleted,
            id.as_str(),
            serde_json::Value::Null,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
