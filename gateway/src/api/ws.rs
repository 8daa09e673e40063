//! `GET /ws`: the WebSocket upgrade.
//!
//! Checks, in order: the node is not draining (503), the request is a
//! valid WebSocket handshake (400), its `Origin` is allowed (403), the
//! subprotocol is one of ours (400), and a token in the `Authorization`
//! header or `?token=` query, if present, is valid (401), not revoked
//! (401, `1112 token_revoked`) and not for a banned user (403, `1111
//! user_banned`); see [`crate::access`]. Then it answers
//! `101` and hands the raw connection (TCP, or TLS over TCP) to a session task with tungstenite
//! configured from `limits`. Every refusal is counted by reason.

use std::sync::Arc;

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokenim_auth::TokenError;
use tokenim_protocol::{Codec, ErrorCode};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::error::ApiError;
use crate::access::Refusal;
use crate::config::OriginConfig;
use crate::limiter::ConnInfo;
use crate::metrics::Rejection;
use crate::session::auth::{self, Refused};
use crate::session::{self, conn::Conn};
use crate::state::AppState;
use crate::stream::Stream;

/// Query parameters of the upgrade request.
#[derive(Debug, Deserialize)]
pub struct WsQuery {
    /// A token, for clients that can set neither headers nor send a
    /// `connect` frame first. Prefer the header: URLs end up in logs.
    token: Option<String>,
}

/// Upgrades to a WebSocket session.
pub async fn upgrade(
    State(state): State<AppState>,
    Extension(info): Extension<ConnInfo>,
    query: Result<Query<WsQuery>, QueryRejection>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let reject = |why: Rejection, status: StatusCode, code: ErrorCode, message: &str| {
        state.metrics.rejected(why);
        ApiError::new(status, code, message)
    };
    if state.is_draining() {
        return Err(reject(
            Rejection::Draining,
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal,
            "this node is draining; connect to another",
        ));
    }
    let headers = req.headers();
    let client = state.proxies.client_ip(info.peer, headers);
    // Behind a trusted proxy, the client's own connection cap applies now
    // that its address is known; the slot lives as long as the session.
    let client_slot = if state.proxies.trusts(info.peer.ip()) {
        let slot = state.limiter.acquire_ip(client).map_err(|why| {
            reject(
                why,
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                "too many connections from this address",
            )
        })?;
        Some(slot)
    } else {
        None
    };
    let Some(key) = handshake_key(headers) else {
        return Err(reject(
            Rejection::BadHandshake,
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            "expected a WebSocket upgrade: GET with Connection: upgrade, Upgrade: websocket, Sec-WebSocket-Version: 13 and a Sec-WebSocket-Key",
        ));
    };
    if !origin_allowed(&state.config.origins, headers) {
        return Err(reject(
            Rejection::Origin,
            StatusCode::FORBIDDEN,
            ErrorCode::PermissionDenied,
            "origin not allowed",
        ));
    }
    let Some((codec, echo_protocol)) = choose_codec(headers) else {
        return Err(reject(
            Rejection::BadHandshake,
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            "unsupported subprotocol: use tokenim.v1.json or tokenim.v1.msgpack",
        ));
    };
    let header_token = match bearer(headers) {
        Ok(token) => token,
        Err(e) => {
            state.metrics.auth_failure(e.reason());
            auth::audit_failure(&state, client, e.reason(), None, e.to_string()).await;
            return Err(refused_status(&Refused::Token(e)));
        }
    };
    let token = header_token.or_else(|| query.ok().and_then(|Query(q)| q.token));
    let admitted = match token {
        Some(token) => {
            let admitted = auth::authenticate(&state, client, &token)
                .await
                .map_err(|r| refused_status(&r))?;
            // Boxed: the connection's task holds what it captures for its
            // whole life, so a pointer costs 8 bytes where the claims cost 144.
            Some(Box::new(admitted))
        }
        None => None,
    };

    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut req);
    let task_state = state.clone();
    state.tracker.spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => return tracing::debug!(error = %e, "upgrade did not complete"),
        };
        let Ok(parts) = upgraded.downcast::<TokioIo<Stream>>() else {
            return tracing::error!("upgraded connection is not a tokenim stream");
        };
        let stream = parts.io.into_inner();
        let config = Some(task_state.ws_config);
        // `read_buf` may point into hyper's 8 KiB request buffer: copy what
        // the client sent early and let the buffer go, or every session
        // would keep 8 KiB alive.
        let early = (!parts.read_buf.is_empty()).then(|| parts.read_buf.to_vec());
        drop(parts.read_buf);
        let ws = match early {
            None => WebSocketStream::from_raw_socket(stream, Role::Server, config).await,
            Some(early) => {
                WebSocketStream::from_partially_read(stream, early, Role::Server, config).await
            }
        };
        let conn = Conn::new(ws, codec, Arc::clone(&task_state.framing));
        session::run(conn, task_state.clone(), admitted, client, info.permit).await;
        drop(client_slot);
    });

    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = response.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&accept).expect("base64 is a valid header"),
    );
    if echo_protocol {
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(codec.subprotocol()),
        );
    }
    Ok(response)
}

/// The answer refusing an upgrade for `refused`: 403 for a banned user
/// (another token will not help), 401 for a bad or revoked token.
fn refused_status(refused: &Refused) -> ApiError {
    let status = match refused {
        Refused::Access(Refusal::Banned) => StatusCode::FORBIDDEN,
        _ => StatusCode::UNAUTHORIZED,
    };
    ApiError::new(status, refused.code(), refused.to_string())
}

/// Whether a comma-separated header holds `token` (case-insensitive).
fn header_has(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The `Sec-WebSocket-Key` of a valid handshake request.
fn handshake_key(headers: &HeaderMap) -> Option<&HeaderValue> {
    let version_ok = headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v == "13");
    (version_ok
        && header_has(headers, header::CONNECTION, "upgrade")
        && header_has(headers, header::UPGRADE, "websocket"))
    .then(|| headers.get(header::SEC_WEBSOCKET_KEY))
    .flatten()
}

/// The codec, and whether to echo the subprotocol (only when one was
/// asked for). `None` if the client asked only for protocols we lack.
fn choose_codec(headers: &HeaderMap) -> Option<(Codec, bool)> {
    let mut asked = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .peekable();
    if asked.peek().is_none() {
        return Some((Codec::Json, false));
    }
    asked.find_map(Codec::from_subprotocol).map(|c| (c, true))
}

/// The token of the `Authorization` header: `None` without the header. A
/// header with another scheme or no token is refused (`1102
/// invalid_token`), never passed over for the query or a `connect` frame:
/// a client that sent credentials meant them.
fn bearer(headers: &HeaderMap) -> Result<Option<String>, TokenError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty());
    match token {
        Some(token) => Ok(Some(token.to_owned())),
        None => Err(TokenError::Malformed {
            detail: "the Authorization header is not `Bearer <jwt>`",
        }),
    }
}

/// Cross-site WebSocket hijacking check: the origin must be the gateway's
/// own host, or listed, or absent when absent origins are allowed.
fn origin_allowed(config: &OriginConfig, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return config.allow_missing;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if config
        .allowed
        .iter()
        .any(|a| a == "*" || a.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), HeaderValue::from_str(v).unwrap()))
            .collect()
    }

    #[test]
    fn origin_rules() {
        let closed = OriginConfig::default();
        let same = headers(&[
            (header::ORIGIN, "http://chat.local:8080"),
            (header::HOST, "chat.local:8080"),
        ]);
        assert!(origin_allowed(&closed, &same));
        let cross = headers(&[
            (header::ORIGIN, "https://evil.example"),
            (header::HOST, "chat.local:8080"),
        ]);
        assert!(!origin_allowed(&closed, &cross));
        assert!(!origin_allowed(
            &closed,
            &headers(&[(header::HOST, "chat.local")])
        ));
        let open = OriginConfig {
            allowed: vec!["https://evil.example".into()],
            allow_missing: true,
        };
        assert!(origin_allowed(&open, &cross));
        assert!(origin_allowed(&open, &headers(&[])));
    }

    #[test]
    fn codec_negotiation() {
        assert_eq!(choose_codec(&headers(&[])), Some((Codec::Json, false)));
        let mp = headers(&[(header::SEC_WEBSOCKET_PROTOCOL, "x, tokenim.v1.msgpack")]);
        assert_eq!(choose_codec(&mp), Some((Codec::MsgPack, true)));
        assert_eq!(
            choose_codec(&headers(&[(header::SEC_WEBSOCKET_PROTOCOL, "mqtt")])),
            None
        );
    }

    #[test]
    fn bearer_token() {
        let token = |value: &str| bearer(&headers(&[(header::AUTHORIZATION, value)]));
        assert_eq!(token("Bearer abc").unwrap().as_deref(), Some("abc"));
        assert_eq!(token("bearer  abc ").unwrap().as_deref(), Some("abc"));
        assert_eq!(bearer(&HeaderMap::new()).unwrap(), None);
        for refused in ["Basic abc", "Bearer", "Bearer ", "Bearer   ", "abc"] {
            let e = token(refused).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidToken, "{refused:?}");
        }
    }
}
