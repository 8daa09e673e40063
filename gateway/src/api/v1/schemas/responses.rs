//! The error answers operations share, written once in the document's
//! `components.responses` and referred to by each operation.

use std::collections::BTreeMap;

use utoipa::IntoResponses;
use utoipa::openapi::{Components, ContentBuilder, Ref, RefOr, Response, ResponseBuilder};

/// Error answers every authenticated operation can give, as `(status,
/// component name, description)`.
const API_KEY_ERRORS: [(u16, &str, &str); 5] = [
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
        429,
        "RateLimited",
        "Over a rate limit (`rate_limited`): this key's or this address's requests \
         (`api.rate_limits`), or this address's failed authentications. `Retry-After` says \
         when to retry; every answer carries `RateLimit-Limit`, `RateLimit-Remaining` and \
         `RateLimit-Reset`.",
    ),
    (
        500,
        "Internal",
        "The store failed (`internal`); see the server's logs.",
    ),
    (
        503,
        "Unavailable",
        "The store (PostgreSQL, Redis) or the broker (Redis) cannot be reached or did not \
         answer in time (`unavailable`). A request's writes are all or nothing; when the store \
         stopped answering during the commit they may have been applied, so retry (after \
         `Retry-After`) with the same `Idempotency-Key`.",
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
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        refs(&BATCH_ERRORS)
    }
}

fn refs(errors: &[(u16, &str, &str)]) -> BTreeMap<String, RefOr<Response>> {
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

/// The answers every authenticated operation can give: 401, 403, 429,
/// 500 and 503, as references to shared responses.
#[derive(Debug)]
pub struct ApiKeyErrors;

impl IntoResponses for ApiKeyErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        refs(&API_KEY_ERRORS)
    }
}

/// The answers of an operation that takes a JSON body: 415 and 422, as
/// references to shared responses.
#[derive(Debug)]
pub struct JsonBodyErrors;

impl IntoResponses for JsonBodyErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        refs(&JSON_BODY_ERRORS)
    }
}

/// Writes every shared error answer into the document's components.
pub(in crate::api::v1) fn add_to(components: &mut Components) {
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
