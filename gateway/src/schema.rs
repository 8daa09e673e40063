//! OpenAPI schemas of the types the API shows but the gateway does not
//! own: ids and the error body from `tokenim-protocol`, scopes,
//! permissions, roles, grants and audit records from `tokenim-auth`, and
//! what a batch item looks like on the way in. Those crates stay free of
//! `utoipa`: each type here stands in for its namesake, only in the
//! document, and the gateway's own types point at it with
//! `#[schema(value_type = schema::…)]`.
//!
//! This module imports no other gateway module, so stored records (in
//! [`store`](crate::store)) and API bodies (in [`api`](crate::api)) can
//! both name it without the store depending on the HTTP layer.
//!
//! Where the real crate can say it, the schema is built from it (the
//! variants of [`ErrorCode`](tokenim_protocol::ErrorCode),
//! [`Scope`](tokenim_auth::Scope), [`Permission`](tokenim_auth::Permission)
//! and [`AuditAction`](tokenim_auth::AuditAction)), so a new variant shows
//! up in the document (and in the test that keeps `docs/openapi.json`
//! current) without anyone editing this file.

use std::borrow::Cow;
use std::collections::BTreeSet;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

/// A string schema with a grammar.
fn string(description: &str, pattern: &str, example: &str) -> RefOr<Schema> {
    grammar(description, pattern, example).into()
}

/// [`string`], still open to further bounds (lengths).
fn grammar(description: &str, pattern: impl Into<String>, example: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .pattern(Some(pattern))
        .examples([example])
}

/// `min` to `max` characters, none a control character.
fn printable(description: &str, min: usize, max: usize, example: &str) -> RefOr<Schema> {
    grammar(description, format!("^[^{NOT_CONTROL}]*$"), example)
        .min_length(Some(min))
        .max_length(Some(max))
        .into()
}

/// A string schema that is one of `names`.
fn one_of_names(description: &str, names: impl IntoIterator<Item = &'static str>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .enum_values(Some(names))
        .into()
}

/// Implements `ToSchema` for a stand-in, named after the type it stands
/// in for.
macro_rules! stand_in {
    ($(#[$doc:meta])* $ty:ident => $schema:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $ty;

        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                $schema
            }
        }

        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($ty))
            }
        }
    };
}

stand_in! {
    /// [`tokenim_protocol::UserId`] (also a group's id).
    UserId => string(
        "1 to 64 bytes of `A-Z a-z 0-9 _ - . @`.",
        "^[A-Za-z0-9_.@-]{1,64}$",
        "alice",
    )
}

stand_in! {
    /// [`tokenim_protocol::ChannelName`].
    ChannelName => string(
        "1 to 128 bytes of `A-Z a-z 0-9 _ - . : @ = /`, or a user's personal \
         channel: `#` and the user id.",
        "^(#[A-Za-z0-9_.@-]{1,64}|[A-Za-z0-9_.:@=/-]{1,128})$",
        "rooms.lobby",
    )
}

stand_in! {
    /// [`tokenim_auth::ChannelPattern`].
    ChannelPattern => string(
        "A channel name (that channel only), or the start of one followed \
         by `*` (every channel whose name starts so; `*` alone is every channel).",
        "^(#[A-Za-z0-9_.@-]{1,64}|[A-Za-z0-9_.:@=/-]{1,128}|#[A-Za-z0-9_.@-]{0,63}\\*|[A-Za-z0-9_.:@=/-]{0,127}\\*)$",
        "rooms.*",
    )
}

stand_in! {
    /// [`tokenim_auth::ApiKeyId`].
    ApiKeyId => string(
        "An API key's public id: `ak_` and 16 lowercase hex digits.",
        "^ak_[0-9a-f]{16}$",
        "ak_0123456789abcdef",
    )
}

/// humantime's units, longest first (a regex alternation takes the first
/// that matches).
const DURATION_UNITS: &str = "nanos|nsec|ns|usec|us|µs|millis|msec|ms|seconds|second|secs|sec|s|\
minutes|minute|mins|min|m|hours|hour|hrs|hr|h|days|day|d|weeks|week|wks|wk|w|months|month|M|\
years|year|yrs|yr|y";

stand_in! {
    /// A duration in a request body ([`crate::api::v1::duration`]).
    Duration => string(
        "A duration: numbers with units, e.g. `90d`, `12h`, `1h 30m`, `250ms` \
         (units: ns, us, ms, s, m, h, d, w, M (30.44 days), y (365.25 days), and their \
         long forms); `0` is none. Longer than 100 years is lowered to 100 years.",
        &format!(
            "^(0|[0-9]{{1,9}} *({DURATION_UNITS})( *[0-9]{{1,9}} *({DURATION_UNITS})){{0,7}})$"
        ),
        "24h",
    )
}

stand_in! {
    /// An API key's name.
    KeyName => printable(
        "What a key is for: 1 to 128 characters, none a control character.",
        1,
        128,
        "billing backend",
    )
}

/// No control character (Unicode category Cc), as a regex class body.
const NOT_CONTROL: &str = "\\u0000-\\u001f\\u007f-\\u009f";

stand_in! {
    /// A user's or group's display name.
    DisplayName => printable("1 to 256 characters, none a control character.", 1, 256, "Ann Lee")
}

stand_in! {
    /// A user's picture URL.
    AvatarUrl => grammar(
        "An absolute `http://` or `https://` URL with a host, at most 2,048 characters, \
         without spaces or control characters.",
        format!("^[hH][tT][tT][pP][sS]?://[^/\\s{NOT_CONTROL}][^\\s{NOT_CONTROL}]*$"),
        "https://cdn.example.com/ann.png",
    )
    .max_length(Some(2048))
    .into()
}

/// A CSV file of records whose header names `id` and then some of
/// `others`, in that order. (The server takes the columns in any order;
/// the document gives one, so that a generated header is always valid.)
fn csv(description: &str, others: &[&str], example: &str) -> RefOr<Schema> {
    let columns: String = others.iter().map(|c| format!("(,{c})?")).collect();
    string(
        description,
        &format!("^id{columns}(\\r?\\n[^\"]*)?$"),
        example,
    )
}

stand_in! {
    /// A CSV file of users.
    UsersCsv => csv(
        "A header row naming `id` and any of `name`, `avatar_url`, `roles` (`;`-separated \
         role names) and `metadata` (a JSON object), then one row per user.",
        &["name", "avatar_url", "roles", "metadata"],
        "id,name,roles\nalice,Alice,moderator;editor\nbob,,\n",
    )
}

stand_in! {
    /// A CSV file of groups.
    GroupsCsv => csv(
        "A header row naming `id` and any of `name`, `owner`, `members` (`;`-separated \
         user ids) and `metadata` (a JSON object), then one row per group.",
        &["name", "owner", "members", "metadata"],
        "id,name,owner,members\nteam-a,Team A,alice,bob;carol\n",
    )
}

stand_in! {
    /// An `Idempotency-Key` header.
    IdempotencyKey => string(
        "1 to 255 visible ASCII characters; kept for `api.idempotency_ttl`.",
        "^[!-~]{1,255}$",
        "import-2026-09-01",
    )
}

stand_in! {
    /// A message's `msg_id` (deduplication of retried publishes).
    MsgId => string(
        "1 to 64 visible ASCII characters, unique per channel for the \
         deduplication window.",
        "^[!-~]{1,64}$",
        "order-1234",
    )
}

stand_in! {
    /// [`tokenim_auth::Subject`] as written in a query: `user:<id>`,
    /// `role:<name>` or `app:<key id>`.
    SubjectQuery => string(
        "`user:<id>`, `role:<name>` or `app:<key id>`.",
        "^(user:[A-Za-z0-9_.@-]{1,64}|role:[a-z0-9_-]{1,32}|app:ak_[0-9a-f]{16})$",
        "role:moderator",
    )
}

stand_in! {
    /// [`tokenim_auth::RoleName`].
    RoleName => string(
        "A role's name: 1 to 32 bytes of `a-z 0-9 _ -`. Built in: `user` \
         (every user without roles) and `app` (every API key).",
        "^[a-z0-9_-]{1,32}$",
        "moderator",
    )
}

stand_in! {
    /// [`tokenim_auth::Scope`].
    Scope => one_of_names(
        "What an API key may call; each endpoint names the scope it needs.",
        tokenim_auth::Scope::ALL.map(tokenim_auth::Scope::as_str),
    )
}

stand_in! {
    /// [`tokenim_auth::Permission`].
    Permission => one_of_names(
        "Something a user or application may do on a channel: `send` (direct \
         messages), `publish`, `subscribe`, `history`, `presence`, \
         `manage_group` (a group's channel without being a member).",
        tokenim_auth::Permission::ALL.map(tokenim_auth::Permission::as_str),
    )
}

stand_in! {
    /// [`tokenim_auth::AuditAction`].
    AuditAction => one_of_names(
        "What an audit record is about.",
        tokenim_auth::AuditAction::ALL.map(tokenim_auth::AuditAction::as_str),
    )
}

stand_in! {
    /// [`tokenim_protocol::ErrorBody`]: every error answer's body.
    ErrorBody => error_body()
}

/// `{"code","name","message"}`, with every code and name the server has.
fn error_body() -> RefOr<Schema> {
    use tokenim_protocol::ErrorCode;
    let codes = ErrorCode::ALL.iter().map(|c| c.code());
    let names = ErrorCode::ALL.iter().map(|c| c.name());
    ObjectBuilder::new()
        .description(Some(
            "An error: a stable numeric code, its stable name, and a message for \
             humans that may change between releases. Codes by range: 1000–1099 the \
             request is wrong (fix it), 1100–1199 authentication and permission, \
             1200–1299 state and limits (retry later or ask for less), 1900–1999 the \
             server failed (retry with backoff).",
        ))
        .property(
            "code",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .description(Some("The stable numeric code."))
                .enum_values(Some(codes)),
        )
        .required("code")
        .property(
            "name",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("The code's stable snake_case name."))
                .enum_values(Some(names)),
        )
        .required("name")
        .property(
            "message",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("What went wrong, for humans.")),
        )
        .required("message")
        .examples([serde_json::json!({
            "code": 1009,
            "name": "not_found",
            "message": "user \"bob\" does not exist",
        })])
        .into()
}

/// [`tokenim_auth::Role`].
#[derive(Debug, ToSchema)]
#[schema(description = "A role and the permissions it gives.")]
pub struct Role {
    /// The role's name.
    pub name: RoleName,
    /// What holders of the role may do, on every channel.
    pub permissions: BTreeSet<Permission>,
}

stand_in! {
    /// [`tokenim_auth::Subject`].
    Subject => subject()
}

/// `{"user": <id>}`, `{"role": <name>}` or `{"app": <key id>}`: exactly
/// one field.
fn subject() -> RefOr<Schema> {
    let variant = |field: &str, description: &str, schema: RefOr<Schema>| {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(description))
            .property(field, schema)
            .required(field)
            .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)))
    };
    OneOfBuilder::new()
        .item(variant("user", "One user.", UserId::schema()))
        .item(variant("role", "Every holder of a role.", RoleName::schema()))
        .item(variant("app", "One application key.", ApiKeyId::schema()))
        .description(Some(
            "Who a grant is for: `{\"user\": <id>}`, `{\"role\": <name>}` or `{\"app\": <key id>}`.",
        ))
        .into()
}

/// [`tokenim_auth::Grant`].
#[derive(Debug, ToSchema)]
#[schema(
    description = "One permission given to a subject, on every channel or on the channels a pattern matches."
)]
pub struct Grant {
    /// Who receives it.
    pub subject: Subject,
    /// What it allows.
    pub permission: Permission,
    /// On which channels; absent: every channel.
    #[schema(nullable = false)]
    pub channels: Option<ChannelPattern>,
}

/// [`tokenim_auth::AuditRecord`].
#[derive(Debug, ToSchema)]
#[schema(description = "One entry of the audit log.")]
pub struct AuditRecord {
    /// Position in the log.
    pub id: u64,
    /// When, in milliseconds since the Unix epoch.
    pub time: u64,
    /// Who: an API key id, `config` (start-up), or `anonymous`.
    pub actor: String,
    /// What.
    pub action: AuditAction,
    /// On what: a key id, a user id, a role, a grant's subject.
    pub target: String,
    /// The client address the request came from, when there was one.
    #[schema(nullable = false)]
    pub source: Option<String>,
    /// Anything else worth keeping (the grant, the scopes, the reason).
    #[schema(value_type = Object, required = false)]
    pub detail: serde_json::Value,
}

/// A user as sent in a batch or an import (JSON, or a CSV row whose
/// header names some of `id,name,avatar_url,roles,metadata`: `roles`
/// holds `;`-separated names and `metadata` a JSON object). Unknown fields
/// are refused; `null` is the same as absent.
#[derive(Debug, ToSchema)]
pub struct UserInput {
    /// The user id (1 to 64 bytes of `A-Z a-z 0-9 _ - . @`).
    pub id: String,
    /// Display name; absent: the id.
    pub name: Option<DisplayName>,
    /// Picture URL (http or https).
    pub avatar_url: Option<AvatarUrl>,
    /// Roles held; none: the role `user`.
    #[schema(required = false)]
    pub roles: Vec<RoleName>,
    /// A JSON object kept with the user (at most `api.max_metadata_bytes`).
    #[schema(value_type = Object, required = false)]
    pub metadata: serde_json::Value,
}

/// A group as sent in a batch or an import (JSON, or a CSV row whose
/// header names some of `id,name,owner,members,metadata`: `members` holds
/// `;`-separated user ids and `metadata` a JSON object). Unknown fields
/// are refused; `null` is the same as absent.
#[derive(Debug, ToSchema)]
pub struct GroupInput {
    /// The group id (1 to 64 bytes of `A-Z a-z 0-9 _ - . @`).
    pub id: String,
    /// Display name; absent: the id.
    pub name: Option<DisplayName>,
    /// The owning user, also made a member.
    pub owner: Option<UserId>,
    /// The first members, in order; repeats are dropped. Every member must
    /// be a known user.
    #[schema(required = false)]
    pub members: Vec<UserId>,
    /// A JSON object kept with the group (at most `api.max_metadata_bytes`).
    #[schema(value_type = Object, required = false)]
    pub metadata: serde_json::Value,
}

/// The body of `PATCH /v1/users/{id}`: a JSON merge patch (RFC 7386) of
/// the fields to change; the others stay. (An `id` equal to the path's is
/// let through, so a record read can be sent back; another is refused.)
#[derive(Debug, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// The display name; `null`: the id.
    pub name: Option<DisplayName>,
    /// Picture URL (http or https); `null` removes it.
    pub avatar_url: Option<AvatarUrl>,
    /// Roles held, replacing the old ones (needs `users:roles`); `null`
    /// or `[]`: none (the role `user`).
    pub roles: Option<Vec<RoleName>>,
    /// Merged key by key into the stored metadata: a key set to `null` is
    /// removed. `null` removes all of it.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

/// The body of `PATCH /v1/groups/{id}`: a JSON merge patch (RFC 7386) of
/// the fields to change; the others stay. Members change through
/// `/v1/groups/{id}/members`. (An `id` equal to the path's is let
/// through; another is refused.)
#[derive(Debug, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupPatch {
    /// The display name; `null`: the id.
    pub name: Option<DisplayName>,
    /// The owning user (a known user, made a member); `null` removes the
    /// owner, who stays a member.
    pub owner: Option<UserId>,
    /// Merged key by key into the stored metadata: a key set to `null` is
    /// removed. `null` removes all of it.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}
