//! `/v1/roles/{name}/users`: give a role to many users at once, or take
//! it from them (scope `users:roles`). Each user's record is changed with
//! compare-and-swap, so a concurrent change of the same user is not lost;
//! each user whose roles changed is audited as `user.roles_changed` with
//! the roles before and after.

use axum::Json;
use axum::extract::{Path, State};
use tokenim_auth::{AuditAction, AuditRecord, RoleName, Scope};
use tokenim_protocol::UserId;

use super::caller::Caller;
use super::groups::{MembersBody, MembersChange, checked, require_known};
use super::{JsonBody, schemas};
use crate::api::error::ApiError;
use crate::state::AppState;
use crate::store::Merged;

/// Gives a role to users.
#[utoipa::path(
    post,
    path = "/v1/roles/{name}/users",
    operation_id = "add_role_holders",
    tag = "users",
    summary = "Gives a role to users",
    description = "Scope: `users:roles`. The role must exist and every user must exist: otherwise \
nothing is changed and the unknown ones are named (`unknown_member`). Users that hold the role \
already are counted `unchanged`. Sessions of the users get the role's permissions without \
reconnecting. Each changed user is audited as `user.roles_changed`.",
    params(("name" = schemas::RoleName, Path, description = "The role's name.")),
    request_body = MembersBody,
    responses(
        (status = 200, description = "How many users got the role, and how many held it.", body = MembersChange),
        (status = 400, description = "Malformed JSON (`invalid_body`) or a bad role name (`invalid_field`).", body = schemas::ErrorBody),
        (status = 404, description = "No such role (`not_found`), or unknown users (`unknown_member`, naming them).", body = schemas::ErrorBody),
        (status = 409, description = "A user kept changing while its roles were changed (`conflict`): retry; the users before it were changed.", body = schemas::ErrorBody),
        (status = 413, description = "More than `api.max_batch_items` users (`too_many_items`).", body = schemas::ErrorBody),
        schemas::JsonBodyErrors,
        schemas::ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
pub async fn add(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<MembersBody>,
) -> Result<Json<MembersChange>, ApiError> {
    caller.require(&state, Scope::UsersRoles).await?;
    let role = super::policy::role_name(&name)?;
    if state.store.policy().await?.role(&role).is_none() {
        return Err(ApiError::not_found(format_args!(
            "role {role}: define it first (PUT /v1/roles/{role})"
        )));
    }
    let users = checked(&state, body.users)?;
    require_known(&state, &users).await?;
    change(&state, &caller, &role, &users, true).await.map(Json)
}

/// Takes a role from users.
#[utoipa::path(
    post,
    path = "/v1/roles/{name}/users/remove",
    operation_id = "remove_role_holders",
    tag = "users",
    summary = "Takes a role from users",
    description = "Scope: `users:roles`. Users that do not hold the role, or do not exist, are \
counted `unchanged`. Each changed user is audited as `user.roles_changed`.",
    params(("name" = schemas::RoleName, Path, description = "The role's name.")),
    request_body = MembersBody,
    responses(
        (status = 200, description = "How many users lost the role, and how many did not hold it.", body = MembersChange),
        (status = 400, description = "Malformed JSON (`invalid_body`) or a bad role name (`invalid_field`).", body = schemas::ErrorBody),
        (status = 409, description = "A user kept changing while its roles were changed (`conflict`): retry; the users before it were changed.", body = schemas::ErrorBody),
        (status = 413, description = "More than `api.max_batch_items` users (`too_many_items`).", body = schemas::ErrorBody),
        schemas::JsonBodyErrors,
        schemas::ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<MembersBody>,
) -> Result<Json<MembersChange>, ApiError> {
    caller.require(&state, Scope::UsersRoles).await?;
    let role = super::policy::role_name(&name)?;
    let users = checked(&state, body.users)?;
    change(&state, &caller, &role, &users, false)
        .await
        .map(Json)
}

/// Gives (`add`) or takes `role` to or from each of `users`, auditing
/// each change; the audit records of the users changed are written even
/// when a later user fails.
async fn change(
    state: &AppState,
    caller: &Caller,
    role: &RoleName,
    users: &[UserId],
    add: bool,
) -> Result<MembersChange, ApiError> {
    let now = crate::clock::unix_millis();
    let mut audits = Vec::new();
    let mut failure = None;
    for id in users {
        let merged = state.store.merge_user(id, |old| {
            let mut user = old.clone();
            let holds = old.roles.contains(role);
            if add && !holds {
                user.roles.push(role.clone());
            } else if !add && holds {
                user.roles.retain(|r| r != role);
            }
            user.updated_at = now.max(old.updated_at);
            Ok(user)
        });
        match merged.await {
            Ok(Merged::Changed { before, after }) => {
                let mut r = AuditRecord::new(
                    now,
                    caller.actor(),
                    AuditAction::UserRolesChanged,
                    id.as_str(),
                );
                r.source = caller.source.clone();
                r.detail =
                    serde_json::json!({ "roles_before": before.roles, "roles": after.roles });
                audits.push(r);
            }
            Ok(Merged::Unchanged(_) | Merged::Missing) => {}
            Ok(Merged::Refused((code, message))) => {
                failure = Some(ApiError::new(
                    axum::http::StatusCode::CONFLICT,
                    code,
                    format!("user {id}: {message}"),
                ));
                break;
            }
            Err(e) => {
                failure = Some(e.into());
                break;
            }
        }
    }
    let changed = audits.len();
    if changed > 0 {
        state.store.audit_many(audits).await?;
        state.access.refresh().await?;
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(MembersChange {
            changed,
            unchanged: users.len() - changed,
        }),
    }
}
