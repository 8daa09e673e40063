//! `/v1/users`: create in batches (JSON array or CSV, `?mode=upsert`,
//! `Idempotency-Key`), read one, many (`?ids=a,b`) or a page, list a
//! user's groups, delete.
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
use tokenim_protocol::{DisconnectCode, ErrorCode, UserId};

use super::batch::{self, BatchQuery, BatchResponse, Mode};
use super::caller::Caller;
use super::{Listing, Page, Params, idempotency};
use crate::api::error::ApiError;
use crate::state::AppState;
use crate::store::User;

/// Creates (or upserts) a batch of users.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Params(query): Params<BatchQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    caller.require(&state, Scope::UsersWrite).await?;
    let bytes = batch::read_body(&state, body).await?;
    let format = batch::format(&headers)?;
    let upsert = query.mode == Mode::Upsert;
    let shape = format!("POST /v1/users {:?} {format:?}", query.mode);
    let request = [shape.as_bytes(), &bytes];
    let work = async {
        let items = crate::records::parse_users(
            &bytes,
            format,
            state.config.api.max_batch_items,
            &batch::limits(&state),
            crate::unix_millis(),
        )?;
        let results = batch::store_users(&state, &caller, items, upsert).await?;
        Ok(BatchResponse::new(results).outcome())
    };
    idempotency::once(&state, &caller, &headers, &request, work).await
}

/// A user id from a path, or 400.
pub fn user_id(id: &str) -> Result<UserId, ApiError> {
    UserId::new(id).map_err(|e| ApiError::bad_request(ErrorCode::InvalidUser, e.to_string()))
}

/// One user.
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

/// `GET /v1/users`: `?ids=a,b,c` (at most `api.max_batch_items`), or a
/// page `?after=&limit=`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    ids: Option<String>,
    after: Option<String>,
    limit: Option<usize>,
}

/// Users by id, or a page.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum UsersResponse {
    /// `?ids=`: found users, and the ids not found.
    Many {
        /// Found users, in the order asked.
        items: Vec<User>,
        /// Ids with no user.
        missing: Vec<UserId>,
    },
    /// A page.
    Page(Listing<User>),
}

/// Several users, or a page of users.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Params(query): Params<ListQuery>,
) -> Result<Json<UsersResponse>, ApiError> {
    caller.require(&state, Scope::UsersRead).await?;
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
    let page = Page {
        after: query.after,
        limit: query.limit,
    };
    let users = state
        .store
        .list_users(page.after.as_deref(), page.limit())
        .await?;
    Ok(Json(UsersResponse::Page(Listing::new(
        users,
        page.limit(),
        |u| u.id.to_string(),
    ))))
}

/// The groups a user belongs to, a page at a time.
pub async fn groups(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Params(page): Params<Page>,
) -> Result<Json<Listing<UserId>>, ApiError> {
    caller.require(&state, Scope::GroupsRead).await?;
    let id = user_id(&id)?;
    let groups = state
        .store
        .groups_of(&id, page.after.as_deref(), page.limit())
        .await?;
    Ok(Json(Listing::new(
        groups,
        page.limit(),
        ToString::to_string,
    )))
}

/// Deletes a user (see the module doc).
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(&state, Scope::UsersWrite).await?;
    let id = user_id(&id)?;
    if !state.store.delete_user(&id).await? {
        return Err(ApiError::not_found(format_args!("user {id}")));
    }
    state
        .store
        .revoke_tokens(&id, super::moderation::revocation_time())
        .await?;
    state.access.refresh().await?;
    state
        .broker
        .disconnect_user(&id, DisconnectCode::TokenRevoked)
        .await?;
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
