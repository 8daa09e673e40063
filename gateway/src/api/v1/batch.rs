//! What the batch endpoints share: the body (bounded), its format, the
//! create/upsert/merge mode, storing parsed items and the per-item response.
//! Import jobs store their items through the same functions.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use tokenim_auth::{AuditAction, AuditRecord, Scope};
use tokenim_protocol::ErrorCode;

use super::caller::Caller;
use crate::api::error::ApiError;
use crate::import::{Format, Given, ParsedItem, RecordLimits};
use crate::state::AppState;
pub use crate::store::merge::Mode;
use crate::store::{Group, ItemResult, ItemStatus, NewGroup, StoreError, User};

/// The query of a batch request.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BatchQuery {
    /// `create` (the default: existing items are left alone and reported
    /// `exists`), `upsert` (an existing item is replaced whole: a field
    /// left out gets its default) or `merge` (an existing item gets only
    /// the fields given: a JSON key present, a CSV cell not empty;
    /// `metadata` merged key by key, `null` removing a key).
    #[serde(default)]
    #[param(inline)]
    pub mode: Mode,
}

/// What a batch did, with a result per item in input order.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BatchResponse {
    /// Items created.
    pub created: usize,
    /// Items that existed and were left unchanged.
    pub exists: usize,
    /// Items updated (upsert, merge).
    pub updated: usize,
    /// Items refused: retry exactly these, fixed.
    pub failed: usize,
    /// One result per item.
    pub results: Vec<ItemResult>,
}

impl BatchResponse {
    /// Counts the results.
    pub fn new(results: Vec<ItemResult>) -> Self {
        let count = |s| results.iter().filter(|r| r.status == s).count();
        Self {
            created: count(ItemStatus::Created),
            exists: count(ItemStatus::Exists),
            updated: count(ItemStatus::Updated),
            failed: count(ItemStatus::Error),
            results,
        }
    }

    /// As a kept response.
    pub fn outcome(&self) -> super::idempotency::Outcome {
        let body = serde_json::to_string(self).expect("responses serialize");
        (StatusCode::OK, body)
    }
}

/// What a batch holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Users (`users:write`).
    Users,
    /// Groups (`groups:write`).
    Groups,
}

/// A batch request: checks the scope, reads the body (bounded), parses it
/// as its `Content-Type` says, stores every valid item and answers a
/// result per item, once per `Idempotency-Key`.
pub async fn handle(
    state: &AppState,
    caller: &Caller,
    mode: Mode,
    headers: &HeaderMap,
    body: Body,
    kind: Kind,
) -> Result<axum::response::Response, ApiError> {
    let scope = match kind {
        Kind::Users => Scope::UsersWrite,
        Kind::Groups => Scope::GroupsWrite,
    };
    caller.require(state, scope).await?;
    require_mode(state, caller, kind, mode).await?;
    let bytes = read_body(state, body).await?;
    let format = format(headers)?;
    let shape = format!("POST {kind:?} {mode:?} {format:?}");
    let request = [shape.as_bytes(), &bytes];
    let work = async {
        let (max, limits, now) = (
            state.config.api.max_batch_items,
            limits(state),
            crate::clock::unix_millis(),
        );
        let (results, action) = match kind {
            Kind::Users => {
                let items = crate::import::parse_users(&bytes, format, max, &limits, now)?;
                let results = store_users(state, caller, items, mode).await?;
                (results, AuditAction::UsersBatch)
            }
            Kind::Groups => {
                let items = crate::import::parse_groups(&bytes, format, max, &limits, now)?;
                let results = store_groups(state, items, mode).await?;
                (results, AuditAction::GroupsBatch)
            }
        };
        let detail = summary(&results, mode);
        caller.audit(state, action, "batch", detail).await?;
        Ok(BatchResponse::new(results).outcome())
    };
    super::idempotency::once(state, caller, headers, &request, work).await
}

/// What a mode needs beyond the kind's scope: an upsert of users replaces
/// their roles, so it needs `users:roles`.
pub async fn require_mode(
    state: &AppState,
    caller: &Caller,
    kind: Kind,
    mode: Mode,
) -> Result<(), ApiError> {
    if kind == Kind::Users && mode == Mode::Upsert {
        caller.require(state, Scope::UsersRoles).await?;
    }
    Ok(())
}

/// Where `roles` is in `UserInput::COLUMNS`.
const ROLES: usize = 3;

/// Ids named in a batch's audit record at most.
const AUDITED_IDS: usize = 100;

/// What a batch's audit record says: its mode, how many items ended how,
/// and the ids it changed (the first [`AUDITED_IDS`]).
fn summary(results: &[ItemResult], mode: Mode) -> serde_json::Value {
    let count = |status| results.iter().filter(|r| r.status == status).count();
    let changed: Vec<&str> = results
        .iter()
        .filter(|r| matches!(r.status, ItemStatus::Created | ItemStatus::Updated))
        .filter_map(|r| r.id.as_deref())
        .take(AUDITED_IDS)
        .collect();
    serde_json::json!({
        "mode": mode,
        "created": count(ItemStatus::Created),
        "updated": count(ItemStatus::Updated),
        "exists": count(ItemStatus::Exists),
        "failed": count(ItemStatus::Error),
        "changed": changed,
    })
}

/// Reads a body of at most `api.max_body_bytes`.
pub async fn read_body(state: &AppState, body: Body) -> Result<Bytes, ApiError> {
    let max = state.config.api.max_body_bytes;
    axum::body::to_bytes(body, max).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::BodyTooLarge,
            format!("the body is larger than {max} bytes; import it as a job"),
        )
    })
}

/// The body's format from `Content-Type` (absent: JSON).
pub fn format(headers: &HeaderMap) -> Result<Format, ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(Format::Json);
    };
    value
        .to_str()
        .ok()
        .and_then(Format::from_content_type)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::InvalidBody,
                "Content-Type must be application/json, text/csv or application/x-ndjson",
            )
        })
}

/// The record limits from configuration.
pub fn limits(state: &AppState) -> RecordLimits {
    RecordLimits {
        max_metadata_bytes: state.config.api.max_metadata_bytes,
        max_members: state.config.api.max_batch_items,
    }
}

fn result(
    index: usize,
    id: Option<String>,
    outcome: Result<ItemStatus, ErrorCodeMsg>,
) -> ItemResult {
    match outcome {
        Ok(status) => ItemResult {
            index,
            id,
            status,
            error: None,
        },
        Err((code, message)) => ItemResult {
            index,
            id,
            status: ItemStatus::Error,
            error: Some(tokenim_protocol::ErrorBody::new(code, message)),
        },
    }
}

type ErrorCodeMsg = (ErrorCode, String);

/// A valid record with its position, id as written and fields given.
type Placed<T> = (usize, Option<String>, Given, T);

/// Splits parsed items into the valid records (with their positions) and
/// the refused ones' results.
fn split<T>(items: Vec<ParsedItem<T>>) -> (Vec<Placed<T>>, Vec<ItemResult>) {
    let mut valid = Vec::new();
    let mut refused = Vec::new();
    for item in items {
        match item.result {
            Ok(record) => valid.push((item.index, item.id, item.given, record)),
            Err(e) => refused.push(result(item.index, item.id, Err((e.code, e.message)))),
        }
    }
    (valid, refused)
}

/// Stores parsed users; a result per item, in input order. Users created
/// or updated with roles are audited, and move the access version.
pub async fn store_users(
    state: &AppState,
    caller: &Caller,
    items: Vec<ParsedItem<User>>,
    mode: Mode,
) -> Result<Vec<ItemResult>, StoreError> {
    let (valid, mut results) = split(items);
    // Roles are given only with `users:roles`, and must exist.
    let may_give_roles = caller.key.scopes.contains(&Scope::UsersRoles);
    let policy = state.store.policy().await?;
    let mut checked = Vec::with_capacity(valid.len());
    for (index, id, given, user) in valid {
        let gives_roles = match mode {
            Mode::Merge => given.has(ROLES),
            Mode::Create | Mode::Upsert => !user.roles.is_empty(),
        };
        let refusal = if gives_roles && !may_give_roles {
            Some((
                ErrorCode::MissingScope,
                "giving roles needs the `users:roles` scope".to_owned(),
            ))
        } else {
            unknown_role(&policy, &user).map(|m| (ErrorCode::InvalidField, m))
        };
        match refusal {
            Some(refusal) => results.push(result(index, id, Err(refusal))),
            None => checked.push((index, id, given, user)),
        }
    }
    let valid = checked;
    let (places, users): (Vec<_>, Vec<(User, Given)>) = valid
        .into_iter()
        .map(|(i, id, given, u)| ((i, id), (u, given)))
        .unzip();
    let (users, given): (Vec<User>, Vec<Given>) = users.into_iter().unzip();
    let limits = limits(state);
    let merge = |i: usize, old: &User| {
        crate::import::merge::merge_user(old, &users[i], given[i], &limits)
            .map_err(|e| (e.code, e.message))
    };
    let outcomes = state
        .store
        .create_users(users.clone(), mode.existing(&merge))
        .await?;
    let now = crate::clock::unix_millis();
    let mut audits = Vec::new();
    for (((index, id), user), outcome) in places.into_iter().zip(&users).zip(outcomes) {
        let changed = matches!(outcome, Ok(ItemStatus::Created | ItemStatus::Updated));
        if changed && !user.roles.is_empty() {
            let mut r = AuditRecord::new(
                now,
                caller.actor(),
                AuditAction::UserRolesChanged,
                user.id.as_str(),
            );
            r.source = caller.source.clone();
            r.detail = serde_json::json!({ "roles": user.roles });
            audits.push(r);
        }
        results.push(result(index, id, outcome));
    }
    state.store.audit_many(audits).await?;
    state.access.refresh().await?;
    results.sort_by_key(|r| r.index);
    Ok(results)
}

/// Why `user` may not be stored as it is: the first of its roles that
/// `policy` does not define, said as an `invalid_field` message.
pub fn unknown_role(policy: &tokenim_auth::Policy, user: &User) -> Option<String> {
    let role = user.roles.iter().find(|r| policy.role(r).is_none())?;
    let role = role.as_str();
    Some(format!(
        "role {role:?} does not exist: define it first (PUT /v1/roles/{role})"
    ))
}

/// Stores parsed groups; a result per item, in input order.
pub async fn store_groups(
    state: &AppState,
    items: Vec<ParsedItem<NewGroup>>,
    mode: Mode,
) -> Result<Vec<ItemResult>, StoreError> {
    let (valid, mut results) = split(items);
    let (places, groups): (Vec<_>, Vec<(NewGroup, Given)>) = valid
        .into_iter()
        .map(|(i, id, given, g)| ((i, id), (g, given)))
        .unzip();
    let (groups, given): (Vec<NewGroup>, Vec<Given>) = groups.into_iter().unzip();
    let limits = limits(state);
    let merge = |i: usize, old: &Group| {
        crate::import::merge::merge_group(old, &groups[i].group, given[i], &limits)
            .map_err(|e| (e.code, e.message))
    };
    let outcomes = state
        .store
        .create_groups(
            groups.clone(),
            mode.existing(&merge),
            crate::clock::unix_millis(),
        )
        .await?;
    for ((index, id), outcome) in places.into_iter().zip(outcomes) {
        results.push(result(index, id, outcome));
    }
    state.access.refresh().await?;
    results.sort_by_key(|r| r.index);
    Ok(results)
}
