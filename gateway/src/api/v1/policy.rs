//! `/v1/roles` and `/v1/grants` (`roles:admin`): define roles, grant and
//! revoke permissions. Changes apply to live connections without a
//! reconnect: at once on this node, within `api.access_refresh` on others.
//! The built-in roles `user` (every user without roles) and `app` (every
//! API key) can be redefined but not deleted.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tokenim_auth::{
    AuditAction, DEFAULT_APP_ROLE, DEFAULT_USER_ROLE, Grant, Permission, Role, RoleName, Scope,
    Subject,
};
use tokenim_protocol::ErrorCode;

use super::caller::Caller;
use super::{JsonBody, Params, schemas};
use crate::api::error::ApiError;
use crate::state::AppState;

/// Most grants kept: the policy is one document every node holds.
pub const MAX_GRANTS: usize = 10_000;
/// Most roles.
pub const MAX_ROLES: usize = 1_000;

/// Every role.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Roles {
    /// The roles, by name.
    #[schema(value_type = Vec<schemas::Role>)]
    items: Vec<Role>,
}

/// Lists the roles.
#[utoipa::path(
    get,
    path = "/v1/roles",
    operation_id = "list_roles",
    tag = "policy",
    description = "Scope: `roles:admin`. Every role, the built-in `user` and `app` included.",
    responses(
        (status = 200, description = "The roles.", body = Roles),
        schemas::ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
pub async fn roles(State(state): State<AppState>, caller: Caller) -> Result<Json<Roles>, ApiError> {
    caller.require(&state, Scope::RolesAdmin).await?;
    let policy = state.store.policy().await?;
    Ok(Json(Roles {
        items: policy.roles().collect(),
    }))
}

/// A role name from a path (400 `invalid_field` when it is not one).
pub fn role_name(name: &str) -> Result<RoleName, ApiError> {
    RoleName::new(name).map_err(|e| ApiError::bad_request(ErrorCode::InvalidField, e.to_string()))
}

/// `PUT /v1/roles/{name}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    /// What holders of the role may do, on every channel (repeats are
    /// dropped).
    #[schema(value_type = Vec<schemas::Permission>)]
    permissions: BTreeSet<Permission>,
}

/// Defines or redefines a role.
#[utoipa::path(
    put,
    path = "/v1/roles/{name}",
    operation_id = "set_role",
    tag = "policy",
    description = "Scope: `roles:admin`. Holders get the new permissions without reconnecting: at \
once on this node, within `api.access_refresh` on others.",
    params(("name" = schemas::RoleName, Path, description = "The role's name.")),
    request_body = RoleBody,
    responses(
        (status = 200, description = "The role as stored.", body = schemas::Role),
        (status = 400, description = "Malformed JSON (`invalid_body`) or a bad role name (`invalid_field`).", body = schemas::ErrorBody),
        (status = 409, description = "There are 1,000 roles already (`too_many_items`).", body = schemas::ErrorBody),
        schemas::JsonBodyErrors,
        schemas::ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
pub async fn set_role(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<RoleBody>,
) -> Result<Json<Role>, ApiError> {
    caller.require(&state, Scope::RolesAdmin).await?;
    let name = role_name(&name)?;
    let permissions = body.permissions;
    let stored = state
        .store
        .update_policy(|p| {
            let known = p.role(&name).is_some();
            if !known && p.roles().count() >= MAX_ROLES {
                return false;
            }
            p.set_role(name.clone(), permissions.clone());
            true
        })
        .await?;
    if !stored {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::TooManyItems,
            format!("at most {MAX_ROLES} roles"),
        ));
    }
    state.access.refresh().await?;
    caller
        .audit(
            &state,
            AuditAction::RoleSet,
            name.as_str(),
            serde_json::json!({ "permissions": permissions }),
        )
        .await?;
    Ok(Json(Role { name, permissions }))
}

/// Deletes a role (its holders lose what it gave).
#[utoipa::path(
    delete,
    path = "/v1/roles/{name}",
    operation_id = "delete_role",
    tag = "policy",
    summary = "Deletes a role",
    description = "Scope: `roles:admin`. Its holders lose what it gave, and the grants made to it \
are revoked with it. The built-in roles `user` and `app` can be redefined, not deleted.",
    params(("name" = schemas::RoleName, Path, description = "The role's name.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, description = "A bad role name (`invalid_field`).", body = schemas::ErrorBody),
        (status = 404, description = "No such role (`not_found`).", body = schemas::ErrorBody),
        (status = 409, description = "A built-in role (`permission_denied`).", body = schemas::ErrorBody),
        schemas::ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
pub async fn delete_role(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(&state, Scope::RolesAdmin).await?;
    let name = role_name(&name)?;
    if [DEFAULT_USER_ROLE, DEFAULT_APP_ROLE].contains(&name.as_str()) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::PermissionDenied,
            "the built-in roles user and app can be redefined, not deleted",
        ));
    }
    if !state.store.update_policy(|p| p.remove_role(&name)).await? {
        return Err(ApiError::not_found(format_args!("role {name}")));
    }
    state.access.refresh().await?;
    caller
        .audit(
            &state,
            AuditAction::RoleDeleted,
            name.as_str(),
            serde_json::Value::Null,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/grants?subject=user:alice`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GrantQuery {
    /// Only grants to this subject (`user:<id>`, `role:<name>`, `app:<key id>`).
    #[param(value_type = Option<schemas::SubjectQuery>)]
    subject: Option<String>,
}

/// Grants, oldest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Grants {
    /// The grants, oldest first.
    #[schema(value_type = Vec<schemas::Grant>)]
    items: Vec<Grant>,
}

/// Lists grants.
#[utoipa::path(
    get,
    path = "/v1/grants",
    operation_id = "list_grants",
    tag = "policy",
    description = "Scope: `roles:admin`. Every grant, or those to one subject, oldest first.",
    params(GrantQuery),
    responses(
        (status = 200, description = "The grants.", body = Grants),
        (status = 400, description = "A bad query parameter (`bad_request`).", body = schemas::ErrorBody),
        schemas::ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
pub async fn grants(
    State(state): State<AppState>,
    caller: Caller,
    Params(query): Params<GrantQuery>,
) -> Result<Json<Grants>, ApiError> {
    caller.require(&state, Scope::RolesAdmin).await?;
    let subject = match query.subject.as_deref() {
        Some(s) => Some(Subject::parse(s).ok_or_else(|| {
            ApiError::bad_request(
                ErrorCode::BadRequest,
                format!("subject {s:?} is not user:<id>, role:<name> or app:<key id>"),
            )
        })?),
        None => None,
    };
    let policy = state.store.policy().await?;
    let items = policy
        .grants()
        .iter()
        .filter(|g| subject.as_ref().is_none_or(|s| &g.subject == s))
        .cloned()
        .collect();
    Ok(Json(Grants { items }))
}

fn target(grant: &Grant) -> String {
    grant.subject.to_string()
}

/// A grant's subject must exist: the role, the user (created through the
/// API) or the API key.
async fn check_subject(state: &AppState, subject: &Subject) -> Result<(), ApiError> {
    let exists = match subject {
        Subject::Role(r) => state.store.policy().await?.role(r).is_some(),
        Subject::User(u) => state.store.user(u).await?.is_some(),
        Subject::App(k) => state.store.key(k).await?.is_some(),
    };
    if exists {
        Ok(())
    } else {
        Err(ApiError::not_found(format_args!("{subject}")))
    }
}

/// Grants a permission (`201`, or `200` if it was granted already).
#[utoipa::path(
    post,
    path = "/v1/grants",
    operation_id = "grant",
    tag = "policy",
    summary = "Grants a permission",
    description = "Scope: `roles:admin`. Applies to live connections without a reconnect: at once \
on this node, within `api.access_refresh` on others.",
    request_body = schemas::Grant,
    responses(
        (status = 200, description = "It was granted already.", body = schemas::Grant),
        (status = 201, description = "Granted.", body = schemas::Grant),
        (status = 400, description = "Malformed JSON (`invalid_body`).", body = schemas::ErrorBody),
        (status = 404, description = "The subject (a role, a user created through the API, an API key) does not exist (`not_found`, naming it).", body = schemas::ErrorBody),
        (status = 409, description = "There are 10,000 grants already (`too_many_items`): revoke some, or grant to roles.", body = schemas::ErrorBody),
        schemas::JsonBodyErrors,
        schemas::ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
pub async fn grant(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(grant): JsonBody<Grant>,
) -> Result<(StatusCode, Json<Grant>), ApiError> {
    caller.require(&state, Scope::RolesAdmin).await?;
    check_subject(&state, &grant.subject).await?;
    let added = state
        .store
        .update_policy(|p| {
            if p.grants().len() >= MAX_GRANTS {
                return None;
            }
            Some(p.grant(grant.clone()))
        })
        .await?;
    let Some(added) = added else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::TooManyItems,
            format!("at most {MAX_GRANTS} grants; revoke some, or grant to roles"),
        ));
    };
    state.access.refresh().await?;
    if !added {
        return Ok((StatusCode::OK, Json(grant)));
    }
    caller
        .audit(
            &state,
            AuditAction::GrantAdded,
            &target(&grant),
            serde_json::to_value(&grant).unwrap_or_default(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(grant)))
}

/// Revokes a grant (the body is the grant, as listed).
#[utoipa::path(
    post,
    path = "/v1/grants/revoke",
    operation_id = "revoke_grant",
    tag = "policy",
    summary = "Revokes a grant",
    description = "Scope: `roles:admin`. The body is the grant, as listed.",
    request_body = schemas::Grant,
    responses(
        (status = 204, description = "Revoked."),
        (status = 400, description = "Malformed JSON (`invalid_body`).", body = schemas::ErrorBody),
        (status = 404, description = "No such grant (`not_found`).", body = schemas::ErrorBody),
        schemas::JsonBodyErrors,
        schemas::ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(grant): JsonBody<Grant>,
) -> Result<StatusCode, ApiError> {
    caller.require(&state, Scope::RolesAdmin).await?;
    if !state.store.update_policy(|p| p.revoke(&grant)).await? {
        return Err(ApiError::not_found("this grant"));
    }
    state.access.refresh().await?;
    caller
        .audit(
            &state,
            AuditAction::GrantRevoked,
            &target(&grant),
            serde_json::to_value(&grant).unwrap_or_default(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
