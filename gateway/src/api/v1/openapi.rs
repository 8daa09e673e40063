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
//! What the handlers' annotations name (stand-ins, pages, the shared
//! error answers) is in [`schemas`](super::schemas); this module only
//! gathers the handlers into the document, so nothing below it names it.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::schemas::{self, ErrorBody, responses};
use super::{audit, groups, jobs, keys, moderation, policy, publish, role_holders, users};

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
| `users:write` | creating and updating users (their roles aside); user import jobs |
| `users:delete` | deleting users |
| `users:roles` | giving and taking users' roles (in a batch or upsert, a patch, `/v1/roles/{name}/users`) |
| `groups:read` | reading groups, their members, and a user's groups |
| `groups:write` | creating, updating and deleting groups; adding and removing members; group import jobs |
| `messages:publish` | publishing to channels and sending to users, as the server |
| `tokens:mint` | minting user tokens |
| `users:moderate` | revoking a user's tokens, closing its connections, banning and unbanning it |
| `keys:admin` | creating, listing, rotating and revoking API keys |
| `roles:admin` | defining roles; granting and revoking permissions |
| `audit:read` | reading the audit log |
| `jobs:read` | reading import jobs of every kind and their failures |

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
item in input order: a refused item does not stop the others. `?mode=create` \
(the default) leaves existing records alone, `upsert` replaces them whole, \
`merge` changes only the fields each item gives. With an \
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
        keys::update,
        keys::delete,
        keys::rotate,
        keys::revoke,
        users::create,
        users::list,
        users::get,
        users::patch,
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
        groups::patch,
        groups::delete,
        groups::members,
        groups::add_members,
        groups::remove_members,
        publish::publish,
        policy::roles,
        policy::set_role,
        policy::delete_role,
        role_holders::add,
        role_holders::remove,
        policy::grants,
        policy::grant,
        policy::revoke,
        audit::query,
        jobs::import_users,
        jobs::import_groups,
        jobs::list,
        jobs::get,
        jobs::failures,
        super::openapi,
    ),
    // Stand-ins only parameters name (utoipa collects those of bodies).
    components(schemas(ErrorBody, schemas::IdempotencyKey, schemas::SubjectQuery)),
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
        responses::add_to(components);
        // Publishing to nothing is refused (`invalid_field`).
        schemas::at_least_one(components, "PublishBody", &["channels", "users"]);
    }
}

#[cfg(test)]
mod tests;
