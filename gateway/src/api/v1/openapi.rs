//! The OpenAPI 3.1 document of `/v1`, built from the handlers'
//! `#[utoipa::path]` annotations and the request and response types'
//! `ToSchema` derives. It is checked in as `docs/openapi.json` and served
//! from there by `GET /v1/openapi.json` (no build step at run time); the
//! tests below fail when the file and the code disagree, and rewrite it
//! when asked:
//!
//! ```text
//! TOKENIM_WRITE_OPENAPI=1 cargo nextest run -p tokenim-gateway openapi
//! ```
//!
//! Types from `tokenim-protocol` and `tokenim-auth` are described by
//! stand-ins (re-exported here from [`crate::schema`]), so those crates do
//! not depend on `utoipa`; the pages of each listing are in `pages`.

mod pages;

use std::collections::BTreeMap;

use utoipa::openapi::schema::{Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{IntoResponses, Modify, OpenApi};

pub use self::pages::{GroupPage, IdPage, ItemResultPage, KeyPage, UserPage};
pub use crate::schema::{
    ApiKeyId, AuditAction, AuditRecord, ChannelName, ChannelPattern, ErrorBody, Grant, GroupInput,
    Permission, Role, RoleName, Scope, Subject, UserId, UserInput,
};
use super::{audit, groups, jobs, keys, moderation, policy, publish, users};

/// The name of the security scheme every authenticated operation names.
pub const SECURITY_SCHEME: &str = "api_key";

/// The document's description: authentication, scopes, errors.
const DESCRIPTION: &str = "\
The HTTP API an application's backend calls: users and groups (one at a \
time, in batches, or imported from a file as a job), API keys, roles and \
grants, user tokens, moderation, publishing, and the audit log.

## Authentication

Every operation but this document needs an API key, sent as \
`Authorization: Basic base64(<key id>:<secret>)` (what `curl -u <key id>:<secret>` \
sends) or `Authorization: Bearer <key id>:<secret>`. A request without a valid \
key is answered 401 with the reason's code (`missing_credentials`, \
`unknown_api_key`, `wrong_secret`, `api_key_expired`, `api_key_revoked`), and \
the attempt is written to the audit log.

## Scopes

A key holds scopes; each operation needs one, named in its description. A key \
without it is answered 403 `missing_scope`.

| scope | allows |
|---|---|
| `users:read` | reading users |
| `users:write` | creating, updating and deleting users; user import jobs |
| `groups:read` | reading groups, their members, and a user's groups |
| `groups:write` | creating, updating and deleting groups; adding and removing members; group import jobs |
| `messages:publish` | publishing to channels and sending to users, as the server |
| `tokens:mint` | minting user tokens |
| `users:moderate` | revoking a user's tokens, closing its connections, banning and unbanning it |
| `keys:admin` | creating, listing, rotating and revoking API keys |
| `roles:admin` | defining roles; granting and revoking permissions |
| `audit:read` | reading the audit log |

## Errors

Every error is answered with an `ErrorBody`: \
`{\"code\": 1009, \"name\": \"not_found\", \"message\": \"user \\\"bob\\\" does not exist\"}`. \
`code` and `name` are stable and listed in the schema; `message` is for humans \
and may change. Codes 1000–1099: the request is wrong; 1100–1199: \
authentication and permission; 1200–1299: state and limits (retry later or ask \
for less); 1900–1999: the server failed (retry with backoff).

## Batches

`POST /v1/users` and `POST /v1/groups` take a JSON array, a CSV file or JSON \
lines, of at most `api.max_batch_items` items, and answer with one result per \
item in input order: a refused item does not stop the others. With an \
`Idempotency-Key` header a retried request gets the first answer again and \
does nothing twice. Larger files go to the import jobs (`/v1/jobs/import/…`).";

/// The document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "tokenim server API", version = env!("CARGO_PKG_VERSION"), description = DESCRIPTION),
    paths(
        keys::create,
        keys::list,
        keys::get,
        delete_key,
        keys::rotate,
        keys::revoke,
        users::create,
        users::list,
        users::get,
        users::delete,
        users::groups,
        moderation::revoke_tokens,
        moderation::disconnect,
        moderation::ban,
        moderation::unban,
        moderation::mint,
        groups::create,
        groups::list,
        groups::get,
        groups::delete,
        groups::members,
        groups::add_members,
        groups::remove_members,
        publish::publish,
        policy::roles,
        policy::set_role,
        policy::delete_role,
        policy::grants,
        policy::grant,
        policy::revoke,
        audit::query,
        jobs::import_users,
        jobs::import_groups,
        jobs::get,
        jobs::failures,
        super::openapi,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Components),
    tags(
        (name = "keys", description = "API keys (`keys:admin`). A secret is shown only when it is made."),
        (name = "users", description = "Users: batches, reads, deletion (`users:read`, `users:write`)."),
        (name = "moderation", description = "User tokens (`tokens:mint`) and moderation: revoke tokens, disconnect, ban (`users:moderate`). Applies on every node at once."),
        (name = "groups", description = "Groups and their members (`groups:read`, `groups:write`). A group's channel is `groups.<id>`: only members (and holders of `manage_group`) may use it."),
        (name = "publish", description = "Publishing from the application's backend (`messages:publish`)."),
        (name = "policy", description = "Roles and grants (`roles:admin`). Changes apply to live connections without a reconnect."),
        (name = "audit", description = "The audit log (`audit:read`)."),
        (name = "jobs", description = "Import jobs for files of any size (`users:write`, `groups:write`)."),
        (name = "meta", description = "This document."),
    ),
)]
pub struct ApiDoc;

/// The document as served: pretty JSON and a final newline.
pub fn document() -> String {
    let mut json = ApiDoc::openapi()
        .to_pretty_json()
        .expect("the document serializes");
    json.push('\n');
    json
}

/// Error answers every authenticated operation can give, as `(status,
/// component name, description)`.
const API_KEY_ERRORS: [(u16, &str, &str); 4] = [
    (
        401,
        "Unauthenticated",
        "No valid API key (`missing_credentials`, `unknown_api_key`, `wrong_secret`, \
         `api_key_expired`, `api_key_revoked`). The attempt is audited.",
    ),
    (
        403,
        "MissingScope",
        "The key lacks the scope this operation needs (`missing_scope`). The attempt is audited.",
    ),
    (
        500,
        "Internal",
        "The store failed (`internal`); see the server's logs.",
    ),
    (
        503,
        "Unavailable",
        "The store or the broker (Redis) cannot be reached (`unavailable`); nothing \
         was changed. Retry with backoff.",
    ),
];

/// Error answers of an operation that takes a JSON body.
const JSON_BODY_ERRORS: [(u16, &str, &str); 2] = [
    (
        415,
        "NotJson",
        "The body is not sent as `Content-Type: application/json` (`invalid_body`).",
    ),
    (
        422,
        "WrongShape",
        "The body is JSON but not of the expected shape: a missing, unknown or mistyped \
         field (`invalid_body`; the message names it).",
    ),
];

/// Error answers of the batch endpoints (`POST /v1/users`, `/v1/groups`).
const BATCH_ERRORS: [(u16, &str, &str); 5] = [
    (
        400,
        "BatchUnreadable",
        "The body cannot be read at all (`invalid_body`; nothing was stored), or a bad `mode` \
         or `Idempotency-Key` (`bad_request`).",
    ),
    (
        409,
        "IdempotentRequestRunning",
        "A request with this `Idempotency-Key` is still running (`idempotency_conflict`): retry later.",
    ),
    (
        413,
        "BatchTooLarge",
        "More than `api.max_batch_items` items (`too_many_items`) or `api.max_body_bytes` bytes \
         (`body_too_large`): split it, or import it as a job.",
    ),
    (
        415,
        "BatchFormat",
        "`Content-Type` is not `application/json`, `text/csv` or `application/x-ndjson` (`invalid_body`).",
    ),
    (
        422,
        "IdempotencyKeyReused",
        "This `Idempotency-Key` was used with a different request (`idempotency_conflict`).",
    ),
];

/// The error answers of a batch endpoint, as references to shared
/// responses.
#[derive(Debug)]
pub struct BatchErrors;

impl IntoResponses for BatchErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        refs(&BATCH_ERRORS)
    }
}

fn refs(errors: &[(u16, &str, &str)]) -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
    errors
        .iter()
        .map(|(status, name, _)| {
            (
                status.to_string(),
                RefOr::Ref(Ref::from_response_name(*name)),
            )
        })
        .collect()
}

/// The answers every authenticated operation can give: 401, 403, 500
/// and 503, as references to shared responses.
#[derive(Debug)]
pub struct ApiKeyErrors;

impl IntoResponses for ApiKeyErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        refs(&API_KEY_ERRORS)
    }
}

/// The answers of an operation that takes a JSON body: 415 and 422, as
/// references to shared responses.
#[derive(Debug)]
pub struct JsonBodyErrors;

impl IntoResponses for JsonBodyErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        refs(&JSON_BODY_ERRORS)
    }
}

/// A body a handler may go without (`request_body = Option<T>`) is `T`
/// and not required: utoipa would write `null | T`, but these handlers
/// read an empty body as the defaults and refuse a JSON `null`.
fn unwrap_optional_bodies(doc: &mut utoipa::openapi::OpenApi) {
    for item in doc.paths.paths.values_mut() {
        let operations = [&mut item.post, &mut item.put, &mut item.patch];
        for operation in operations.into_iter().flatten() {
            let Some(body) = operation.request_body.as_mut() else {
                continue;
            };
            for content in body.content.values_mut() {
                if let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema
                    && let [RefOr::T(Schema::Object(null)), inner] = one_of.items.as_slice()
                    && null.schema_type == SchemaType::Type(Type::Null)
                {
                    content.schema = Some(inner.clone());
                }
            }
        }
    }
}

/// Adds the security scheme and the shared error responses, and writes
/// optional bodies as such.
#[derive(Debug)]
struct Components;

impl Modify for Components {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        unwrap_optional_bodies(doc);
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            SECURITY_SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "The API key's id as the user name and its secret as the password. \
                         `Authorization: Bearer <key id>:<secret>` is accepted too.",
                    ))
                    .build(),
            ),
        );
        for (_, name, description) in API_KEY_ERRORS
            .iter()
            .chain(&JSON_BODY_ERRORS)
            .chain(&BATCH_ERRORS)
        {
            let response = ResponseBuilder::new()
                .description(*description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build();
            components
                .responses
                .insert((*name).to_owned(), response.into());
        }
    }
}

/// Revokes a key; the same as `POST /v1/keys/{id}/revoke`.
#[utoipa::path(
    delete,
    path = "/v1/keys/{id}",
    operation_id = "delete_key",
    tag = "keys",
    description = "Scope: `keys:admin`. Revokes the key at once, on every node; it stays listed with its `revoked_at`.",
    params(("id" = ApiKeyId, Path, description = "The key's id.")),
    responses(
        (status = 200, description = "The revoked key.", body = keys::KeyView),
        (status = 404, description = "No such key (`not_found`).", body = ErrorBody),
        ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
#[allow(dead_code, reason = "documents the second route of `keys::revoke`")]
fn delete_key() {}

#[cfg(test)]
mod tests;
