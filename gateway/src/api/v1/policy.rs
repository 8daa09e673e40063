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
use super::{JsonBody, Params};
use crate::api::error::ApiError;
use crate::state::AppState;

/// Most grants kept: the policy is one document every node holds.
pub const MAX_GRANTS: usize = 10_000;
/// Most roles.
pub const MAX_ROLES: usize = 1_000;

/// Every role.
#[derive(Debug, Serialize)]
pub struct Roles {
    items: Vec<Role>,
}

/// Lists the roles.
pub async fn roles(State(state): State<AppState>, caller: Caller) -> Result<Json<Roles>, ApiError> {
    caller.require(&state, Scope::RolesAdmin).await?;
    let policy = state.store.policy().await?;
    Ok(Json(Roles {
        items: policy.roles().collect(),
    }))
}

fn role_name(name: &str) -> Result<RoleName, ApiError> {
    RoleName::new(name).map_err(|e| ApiError::bad_request(ErrorCode::InvalidField, e.to_string()))
}

/// `PUT /v1/roles/{name}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    permissions: BTreeSet<Permission>,
}

/// Defines or redefines a role.
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
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantQuery {
    /// Only grants to this subject (`user:<id>`, `role:<name>`, `app:<key id>`).
    subject: Option<String>,
}

/// Grants, oldest first.
#[derive(Debug, Serialize)]
pub struct Grants {
    items: Vec<Grant>,
}

/// Lists grants.
pub async fn grants(
    State(state): State<AppState>,
    caller: Caller,
    Params(query): Params<GrantQuery>,
) -> Result<Json<Grants>, ApiError> {
    caller.require(&state, Scope::RolesAdmin).await?;
    let policy = state.store.policy().await?;
    let items = policy
        .grants()
        .iter()
        .filter(|g| {
            query
                .subject
                .as_deref()
                .is_none_or(|s| g.subject.to_string() == s)
        })
        .cloned()
        .collect();
    Ok(Json(Grants { items }))
}

fn target(grant: &Grant) -> String {
    grant.subject.to_string()
}

async fn check_subject(state: &AppState, subject: &Subject) -> Result<(), ApiError> {
    if let Subject::Role(r) = subject
        && state.store.policy().await?.role(r).is_none()
    {
        return Err(ApiError::not_found(format_args!("role {r}")));
    }
    Ok(())
}

/// Grants a permission (`201`, or `200` if it was granted already).
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
