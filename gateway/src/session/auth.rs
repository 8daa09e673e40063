//! The unauthenticated phase of a session: waiting for a `connect` frame.
//!
//! Browsers cannot set headers on a WebSocket, so a client may send its
//! token as the first command. Until it does, other commands get
//! `not_connected`; after `limits.auth_timeout` the socket is closed with
//! 4004. A refused token is answered with its error and then closed: an
//! invalid one with 4500 or 4003, a valid one whose user is banned with
//! 1111 and 4504, a revoked one with 1112 and 4503 (see [`super::access`]).

use std::fmt;
use std::net::IpAddr;

use tokenim_auth::{TokenError, TokenVerifier, UserClaims};
use tokenim_protocol::{Command, CommandId, DisconnectCode, ErrorCode, Reply, UserId};

use super::conn::{Conn, Incoming};
use crate::access::{self, Admitted, Refusal};
use crate::guard::{Failure, VIA_WEBSOCKET};
use crate::metrics::Metrics;
use crate::state::AppState;

/// How the wait for `connect` ended without a user.
#[derive(Debug)]
pub enum AuthEnd {
    /// Close with this code.
    Close(DisconnectCode),
    /// The peer is gone; nothing to send.
    Gone,
}

/// Verifies a token now, counting a failure by reason.
pub fn verify(
    verifier: &TokenVerifier,
    metrics: &Metrics,
    token: &str,
) -> Result<UserClaims, TokenError> {
    let result = verifier.verify(token, crate::clock::unix_secs());
    if let Err(e) = &result {
        metrics.auth_failure(e.reason());
    }
    result
}

/// Why a token did not open a session.
#[derive(Debug)]
pub enum Refused {
    /// Not a valid token.
    Token(TokenError),
    /// A valid token whose user may not connect.
    Access(Refusal),
}

impl Refused {
    /// The error code the client is told.
    pub fn code(&self) -> ErrorCode {
        match self {
            Refused::Token(e) => e.code(),
            Refused::Access(r) => r.code(),
        }
    }

    /// The close code ending the connection.
    pub fn close_code(&self) -> DisconnectCode {
        match self {
            Refused::Token(e) if e.code() == ErrorCode::TokenExpired => {
                DisconnectCode::TokenExpired
            }
            Refused::Token(_) => DisconnectCode::InvalidToken,
            Refused::Access(r) => r.close_code(),
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Refused::Token(e) => e.reason(),
            Refused::Access(r) => r.reason(),
        }
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Token(e) => e.fmt(f),
            Refused::Access(r) => r.fmt(f),
        }
    }
}

/// Verifies `token` and admits its user (one store round trip), or says
/// why not. A refusal is counted by reason and folded into the audit log.
pub async fn authenticate(
    state: &AppState,
    client: IpAddr,
    token: &str,
) -> Result<Admitted, Refused> {
    let refused = match verify(&state.verifier, &state.metrics, token) {
        Ok(claims) => {
            let user = claims.user.clone();
            match access::admit(&state.access, &state.store, &state.metrics, claims).await {
                Ok(admitted) => return Ok(admitted),
                Err(r) => (Refused::Access(r), Some(user)),
            }
        }
        Err(e) => (Refused::Token(e), None),
    };
    let (refused, user) = refused;
    audit_failure(
        state,
        client,
        refused.reason(),
        user.as_ref(),
        refused.to_string(),
    )
    .await;
    Err(refused)
}

/// A failed authentication on a socket from `client`, into the audit log
/// as `auth.failed` via `websocket` (folded per address, reason and minute
/// like the server API's): the target is `user:<id>` when the token was
/// valid, `websocket` otherwise (nothing from an invalid token is kept).
pub async fn audit_failure(
    state: &AppState,
    client: IpAddr,
    reason: &'static str,
    user: Option<&UserId>,
    message: String,
) {
    let failure = Failure {
        source: Some(client.to_string()),
        via: VIA_WEBSOCKET,
        reason,
        actor: "anonymous".to_owned(),
        target: user.map_or_else(|| VIA_WEBSOCKET.to_owned(), |u| format!("user:{u}")),
        message,
    };
    state
        .guard
        .failures
        .record(failure, crate::clock::unix_millis())
        .await;
}

/// Waits for a valid `connect` whose user may connect. Returns its command
/// id (to reply to once the session exists) and the admitted token.
pub async fn await_connect(
    conn: &mut Conn,
    state: &AppState,
    client: IpAddr,
) -> Result<(CommandId, Admitted), AuthEnd> {
    let deadline = tokio::time::sleep(state.config.limits.auth_timeout);
    tokio::pin!(deadline);
    loop {
        let incoming = tokio::select! {
            () = &mut deadline => {
                state.metrics.auth_failure("timeout");
                let message = "no connect frame within limits.auth_timeout".to_owned();
                audit_failure(state, client, "timeout", None, message).await;
                return Err(AuthEnd::Close(DisconnectCode::AuthTimeout));
            }
            () = state.shutdown.cancelled() => return Err(AuthEnd::Close(DisconnectCode::Shutdown)),
            incoming = conn.recv() => incoming,
        };
        let reply = match incoming {
            Incoming::Command(frame) => {
                state.metrics.command(frame.command.kind());
                match frame.command {
                    Command::Connect { token } => {
                        let refused = match authenticate(state, client, &token).await {
                            Ok(admitted) => return Ok((frame.id, admitted)),
                            Err(refused) => refused,
                        };
                        state.metrics.error(refused.code());
                        let reply = Reply::error(frame.id, refused.code(), refused.to_string());
                        if conn.send(&reply).await.is_err() {
                            return Err(AuthEnd::Gone);
                        }
                        return Err(AuthEnd::Close(refused.close_code()));
                    }
                    _ => Reply::error(
                        frame.id,
                        ErrorCode::NotConnected,
                        "send connect with a token first",
                    ),
                }
            }
            Incoming::Invalid(id, e) => Reply::error(id, e.code(), e.to_string()),
            Incoming::Control => continue,
            Incoming::Closed => return Err(AuthEnd::Gone),
            Incoming::Violation(code) => return Err(AuthEnd::Close(code)),
        };
        if let tokenim_protocol::reply::Outcome::Error(e) = &reply.outcome {
            state.metrics.error(e.code);
        }
        if conn.send(&reply).await.is_err() {
            return Err(AuthEnd::Gone);
        }
    }
}
