//! [`ApiError`]: an HTTP error with the protocol's stable error body
//! `{"code":1102,"name":"invalid_token","message":"..."}`.

use axum::Json;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tokenim_protocol::{ErrorBody, ErrorCode};

/// An error answered with `status` and an [`ErrorBody`].
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code and name.
    pub code: ErrorCode,
    /// Human message.
    pub message: String,
}

impl ApiError {
    /// Builds an error.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
}

/// Seconds a client waits before retrying a `429` or `503`.
const RETRY_AFTER_SECS: &str = "1";

impl IntoResponse for ApiError {
    /// The error body, with `WWW-Authenticate` on a `401` (which
    /// credentials the endpoint takes) and `Retry-After` when waiting helps
    /// (`unavailable`, `rate_limited`, `too_many_jobs`).
    fn into_response(self) -> Response {
        let challenge = (self.status == StatusCode::UNAUTHORIZED).then_some(match self.code {
            ErrorCode::InvalidToken | ErrorCode::TokenExpired | ErrorCode::TokenRevoked => {
                r#"Bearer realm="tokenim", error="invalid_token""#
            }
            _ => r#"Basic realm="tokenim", charset="UTF-8""#,
        });
        let retry = matches!(
            self.code,
            ErrorCode::Unavailable | ErrorCode::RateLimited | ErrorCode::TooManyJobs
        )
        .then_some(RETRY_AFTER_SECS);
        let mut response =
            (self.status, Json(ErrorBody::new(self.code, self.message))).into_response();
        let headers = response.headers_mut();
        if let Some(challenge) = challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        if let Some(secs) = retry {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static(secs));
        }
        if matches!(
            self.status,
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        ) {
            // What the client still sends is not read: the connection ends.
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// A rule's refusal (from [`crate::access`]): 413 for a message too
/// large, 403 for a permission, 400 for anything else the caller sent.
impl From<ErrorBody> for ApiError {
    fn from(e: ErrorBody) -> Self {
        let status = match e.code {
            ErrorCode::MessageTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        };
        Self::new(status, e.code, e.message)
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        let status = match e {
            crate::store::StoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            crate::store::StoreError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        tracing::warn!(error = %e, "store request failed");
        Self::new(status, e.code(), e.to_string())
    }
}

impl From<crate::broker::BrokerError> for ApiError {
    fn from(e: crate::broker::BrokerError) -> Self {
        let status = match e {
            crate::broker::BrokerError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            crate::broker::BrokerError::Unconfirmed(_) => StatusCode::GATEWAY_TIMEOUT,
        };
        Self::new(status, e.code(), e.to_string())
    }
}

impl From<tokenim_auth::ApiKeyError> for ApiError {
    fn from(e: tokenim_auth::ApiKeyError) -> Self {
        let status = match e {
            tokenim_auth::ApiKeyError::MissingScope(_) => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        };
        Self::new(status, e.code(), e.to_string())
    }
}

impl From<crate::import::BodyError> for ApiError {
    fn from(e: crate::import::BodyError) -> Self {
        let status = match e.code() {
            ErrorCode::TooManyItems => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        Self::new(status, e.code(), e.to_string())
    }
}

impl ApiError {
    /// 400 with `code`.
    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 `not_found`.
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("{what} does not exist"),
        )
    }
}

/// The answer for a path no route serves: 404 `not_found`, with the error
/// body every other refusal carries.
pub async fn no_route(uri: Uri) -> ApiError {
    ApiError::not_found(format_args!("route {}", uri.path()))
}

/// The answer for a method a route does not take: 405 `bad_request`
/// (the router adds `Allow` with the methods it does take).
pub async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::BadRequest,
        format!("{method} is not allowed on {}", uri.path()),
    )
}
