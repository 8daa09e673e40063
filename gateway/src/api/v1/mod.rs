//! `/v1`: the server API an application's backend calls, authenticated
//! with an API key ([`caller`]) and described by `docs/openapi.json`.
//!
//! | routes | module | scope |
//! |---|---|---|
//! | `/v1/keys…` | [`keys`] | `keys:admin` |
//! | `/v1/users…` | [`users`] | `users:read`, `users:write`, `users:delete`, `users:roles` |
//! | `/v1/roles/{name}/users…` | [`role_holders`] | `users:roles` |
//! | `/v1/groups…` | [`groups`] | `groups:read`, `groups:write` |
//! | `/v1/tokens`, `/v1/users/{id}/ban…` | [`moderation`] | `tokens:mint`, `users:moderate` |
//! | `/v1/publish` | [`publish`] | `messages:publish` |
//! | `/v1/roles…`, `/v1/grants…` | [`policy`] | `roles:admin` |
//! | `/v1/audit` | [`audit`] | `audit:read` |
//! | `/v1/jobs…` | [`jobs`] | `users:write`, `groups:write`, `jobs:read` |
//! | `/v1/openapi.json` | [`openapi`] | none |
//!
//! Every error is `{"code","name","message"}` with a stable code. Every
//! handler carries a `#[utoipa::path]` annotation naming types of
//! [`schemas`]; [`openapi`] gathers them into the document.

pub mod audit;
pub mod batch;
pub mod caller;
pub mod duration;
pub mod groups;
pub mod idempotency;
pub mod jobs;
pub mod keys;
pub mod moderation;
pub mod openapi;
pub mod patch;
pub mod policy;
pub mod publish;
pub mod rate_limit;
pub mod role_holders;
pub mod schemas;
pub mod users;

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::routing::{get, post, put};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokenim_protocol::{ErrorCode, UserId};

use crate::api::error::ApiError;
use crate::state::AppState;

/// The `/v1` routes.
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/v1/keys", post(keys::create).get(keys::list))
        .route(
            "/v1/keys/{id}",
            get(keys::get).patch(keys::update).delete(keys::delete),
        )
        .route("/v1/keys/{id}/rotate", post(keys::rotate))
        .route("/v1/keys/{id}/revoke", post(keys::revoke))
        .route("/v1/users", post(users::create).get(users::list))
        .route(
            "/v1/users/{id}",
            get(users::get).patch(users::patch).delete(users::delete),
        )
        .route("/v1/users/{id}/groups", get(users::groups))
        .route(
            "/v1/users/{id}/revoke-tokens",
            post(moderation::revoke_tokens),
        )
        .route("/v1/users/{id}/disconnect", post(moderation::disconnect))
        .route(
            "/v1/users/{id}/ban",
            post(moderation::ban).delete(moderation::unban),
        )
        .route("/v1/tokens", post(moderation::mint))
        .route("/v1/groups", post(groups::create).get(groups::list))
        .route(
            "/v1/groups/{id}",
            get(groups::get).patch(groups::patch).delete(groups::delete),
        )
        .route(
            "/v1/groups/{id}/members",
            get(groups::members).post(groups::add_members),
        )
        .route(
            "/v1/groups/{id}/members/remove",
            post(groups::remove_members),
        )
        .route("/v1/publish", post(publish::publish))
        .route("/v1/roles", get(policy::roles))
        .route(
            "/v1/roles/{name}",
            put(policy::set_role).delete(policy::delete_role),
        )
        .route("/v1/roles/{name}/users", post(role_holders::add))
        .route("/v1/roles/{name}/users/remove", post(role_holders::remove))
        .route("/v1/grants", get(policy::grants).post(policy::grant))
        .route("/v1/grants/revoke", post(policy::revoke))
        .route("/v1/audit", get(audit::query))
        .route("/v1/jobs/import/users", post(jobs::import_users))
        .route("/v1/jobs/import/groups", post(jobs::import_groups))
        .route("/v1/jobs", get(jobs::list))
        .route("/v1/jobs/{id}", get(jobs::get))
        .route("/v1/jobs/{id}/failures", get(jobs::failures))
        .route("/v1/openapi.json", get(openapi))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            rate_limit::limit,
        ))
}

/// The OpenAPI document of this API: `docs/openapi.json`, kept equal to
/// what [`openapi::ApiDoc`] generates by that module's tests.
pub const OPENAPI: &str = include_str!("../../../../docs/openapi.json");

/// This document.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    operation_id = "openapi",
    tag = "meta",
    description = "The OpenAPI 3.1 document of this API (no API key needed).",
    responses((status = 200, description = "This document.", body = Object, content_type = "application/json")),
)]
async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
}

/// A JSON object body; a bad one is `invalid_body` with serde's message:
/// 415 when not sent as JSON, 400 when not JSON, 422 when not an object
/// or not of `T`'s shape.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let value = match axum::Json::<serde_json::Value>::from_request(req, state).await {
            Ok(axum::Json(value)) => value,
            Err(e) => {
                return Err(ApiError::new(
                    e.status(),
                    ErrorCode::InvalidBody,
                    e.body_text(),
                ));
            }
        };
        object(value).map(Self)
    }
}

/// `value` as a `T`, read from a JSON object only: serde would also read
/// a struct from an array of its fields in order, which no document
/// describes.
fn object<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    let shape = |message: String| {
        ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidBody,
            message,
        )
    };
    if !value.is_object() {
        return Err(shape("the body must be a JSON object".to_owned()));
    }
    serde_json::from_value(value)
        .map_err(|e| shape(format!("the body is not of the expected shape: {e}")))
}

/// Query parameters; bad ones are `bad_request` with serde's message.
#[derive(Debug)]
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(e) => Err(ApiError::bad_request(ErrorCode::BadRequest, e.body_text())),
        }
    }
}

/// A body that is empty or sent as JSON (`Content-Type: application/json`,
/// or a `+json` type such as `application/merge-patch+json`), as bytes;
/// any other type is 415 `invalid_body`.
#[derive(Debug)]
pub struct JsonBytes(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_json);
        let body = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::new(e.status(), ErrorCode::InvalidBody, e.body_text()))?;
        if !json && !is_blank(&body) {
            return Err(ApiError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::InvalidBody,
                "send the body as Content-Type: application/json",
            ));
        }
        Ok(Self(body))
    }
}

/// Whether a `Content-Type` is JSON: `application/json` or
/// `application/<anything>+json`, with any parameters.
fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    let essence = essence.to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}

fn is_blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}

/// An optional JSON object body: empty is `T::default()`. Not JSON is 400
/// `invalid_body`; not an object or of the wrong shape 422, as for
/// [`JsonBody`].
pub fn optional_json<T: DeserializeOwned + Default>(body: &JsonBytes) -> Result<T, ApiError> {
    if is_blank(&body.0) {
        return Ok(T::default());
    }
    let value = serde_json::from_slice(&body.0)
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidBody, format!("not JSON: {e}")))?;
    object(value)
}

/// A user id from a path, or 400.
pub fn user_id(id: &str) -> Result<UserId, ApiError> {
    UserId::new(id).map_err(|e| ApiError::bad_request(ErrorCode::InvalidUser, e.to_string()))
}

/// Default page size.
pub const DEFAULT_PAGE: usize = 100;

/// `?after=<cursor>&limit=<n>` of a listing.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// The `next` of the previous page.
    pub after: Option<String>,
    /// Page size: default 100, at least 1, lowered to 1,000 if larger.
    #[serde(default, deserialize_with = "page_size")]
    #[param(minimum = 1)]
    pub limit: Option<usize>,
}

/// A page size: a whole number, of any size (one larger than the largest
/// page is lowered to it, see [`Page::limit`]). 0 is refused: a page of
/// nothing is never what a caller means, and would read as the end of the
/// listing.
pub(crate) fn page_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    match whole_number(d, "limit")? {
        Some(0) => Err(serde::de::Error::custom("limit must be at least 1")),
        limit => Ok(limit),
    }
}

/// An item index to page on from (`after`), of any size: one past the
/// last item is the end.
pub(crate) fn index<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    whole_number(d, "after")
}

/// A whole number in a query, of any size: one larger than `usize` is
/// `usize::MAX` (it can only mean "all" or "past the end").
fn whole_number<'de, D: serde::Deserializer<'de>>(
    d: D,
    name: &str,
) -> Result<Option<usize>, D::Error> {
    let Some(text) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(serde::de::Error::custom(format!(
            "{name}: a whole number, not {text:?}"
        )));
    }
    // Only digits, so an error is a number too large.
    Ok(Some(text.parse().unwrap_or(usize::MAX)))
}

/// A query number the document gives as `int64` (a time in ms, an audit
/// record's id): at most `i64::MAX`, as the document says.
pub(crate) fn int64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Option::<u64>::deserialize(d)? {
        Some(n) if n > i64::MAX as u64 => Err(serde::de::Error::custom(format!(
            "{n} is larger than {}",
            i64::MAX
        ))),
        n => Ok(n),
    }
}

impl Page {
    /// The page size asked for, within bounds.
    pub fn limit(&self) -> usize {
        page_limit(self.limit)
    }
}

/// A page size asked for (`limit`), within bounds: the default when not
/// given, lowered to the largest page.
pub fn page_limit(limit: Option<usize>) -> usize {
    limit
        .unwrap_or(DEFAULT_PAGE)
        .min(crate::store::users::MAX_PAGE)
}

/// A page of a listing (described per item type by [`schemas::UserPage`]
/// and its siblings).
#[derive(Debug, Serialize)]
pub struct Listing<T> {
    /// The items, in order.
    pub items: Vec<T>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// How many items the whole listing holds (every page); absent where
    /// counting would read every item (a filtered listing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

impl<T> Listing<T> {
    /// A page; `next` is the cursor of the last item when the page is
    /// full (there may be more).
    pub fn new(items: Vec<T>, limit: usize, cursor: impl Fn(&T) -> String) -> Self {
        let next = (items.len() == limit)
            .then(|| items.last().map(cursor))
            .flatten();
        Self::page(items, next)
    }

    /// A page with `next` as found.
    pub fn page(items: Vec<T>, next: Option<String>) -> Self {
        Self {
            items,
            next,
            count: None,
        }
    }

    /// The page with the listing's total.
    pub fn counted(self, count: u64) -> Self {
        Self {
            count: Some(count),
            ..self
        }
    }
}
