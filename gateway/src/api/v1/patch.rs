//! What `PATCH /v1/users/{id}` and `PATCH /v1/groups/{id}` share: how a
//! refused patch and the merge's outcome are answered.

use std::fmt::Display;

use axum::http::StatusCode;
use tokenim_protocol::ErrorCode;

use crate::api::error::ApiError;
use crate::import::{Given, ItemError};
use crate::store::Merged;

/// A patch that cannot be applied: 400 with its code (`invalid_body`,
/// `invalid_field`, `invalid_user`…).
pub fn refused(e: ItemError) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, e.code, e.message)
}

/// What a patch did to the record.
#[derive(Debug)]
pub enum Patched<T> {
    /// Nothing differed: the record as stored.
    Unchanged(T),
    /// Stored: the record before and after.
    Changed(T, T),
}

/// The merge's outcome, or its answer: 404 for a record that does not
/// exist (`what`), 409 `conflict` when it kept changing, 400 for a
/// refused field.
pub fn outcome<T>(merged: Merged<T>, what: impl Display) -> Result<Patched<T>, ApiError> {
    match merged {
        Merged::Missing => Err(ApiError::not_found(what)),
        Merged::Refused((ErrorCode::Conflict, message)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::Conflict,
            message,
        )),
        Merged::Refused((code, message)) => {
            Err(ApiError::new(StatusCode::BAD_REQUEST, code, message))
        }
        Merged::Unchanged(record) => Ok(Patched::Unchanged(record)),
        Merged::Changed { before, after } => Ok(Patched::Changed(before, after)),
    }
}

/// The fields a patch gave, `id` aside, as its audit record names them.
pub fn changed_fields(columns: &[&'static str; 5], given: Given) -> Vec<&'static str> {
    (1..columns.len())
        .filter(|&i| given.has(i))
        .map(|i| columns[i])
        .collect()
}
