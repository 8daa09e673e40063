//! What the handlers' `#[utoipa::path]` annotations and bodies name: the
//! stand-ins for types of `tokenim-protocol` and `tokenim-auth`
//! (re-exported from [`crate::schema`]), a page type per listing, and the
//! shared error answers. It names no handler, so every handler may use it
//! and only [`openapi`](super::openapi) gathers them.

mod pages;
pub mod responses;

pub(crate) use self::pages::page;
pub use self::pages::{GroupPage, IdPage, ItemResultPage, JobPage, UserPage};
pub use self::responses::{ApiKeyErrors, BatchErrors, JsonBodyErrors};
pub use crate::schema::{
    ApiKeyId, AuditAction, AuditRecord, ChannelName, ChannelPattern, ErrorBody, Grant, GroupInput,
    Permission, Role, RoleName, Scope, Subject, UserId, UserInput,
};
