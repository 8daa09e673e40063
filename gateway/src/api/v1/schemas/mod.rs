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
    ApiKeyId, AuditAction, AuditRecord, ChannelName, ChannelPattern, Duration, ErrorBody, Grant,
    GroupInput, GroupPatch, GroupsCsv, IdempotencyKey, KeyName, MsgId, Permission, Role, RoleName,
    Scope, Subject, SubjectQuery, UserId, UserInput, UserPatch, UsersCsv,
};

/// Says in the document that an object schema of `components` needs at
/// least one of `fields` as a non-empty array (what a derive cannot say):
/// the schema becomes `allOf: [itself, anyOf: [{required: [field],
/// properties: {field: {minItems: 1}}}, …]]`.
pub(in crate::api::v1) fn at_least_one(
    components: &mut utoipa::openapi::Components,
    schema: &str,
    fields: &[&str],
) {
    use utoipa::openapi::schema::{AllOfBuilder, AnyOfBuilder, ArrayBuilder, ObjectBuilder};
    let Some(own) = components.schemas.remove(schema) else {
        panic!("no schema {schema} in the document");
    };
    let mut any = AnyOfBuilder::new();
    for field in fields {
        any = any.item(
            ObjectBuilder::new()
                .required(*field)
                .property(*field, ArrayBuilder::new().min_items(Some(1))),
        );
    }
    let all = AllOfBuilder::new().item(own).item(any);
    components.schemas.insert(schema.to_owned(), all.into());
}
