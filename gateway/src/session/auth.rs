//! The unauthenticated phase of a session: waiting for a `connect` frame.
//!
//! Browsers cannot set headers on a WebSocket, so a client may send its
//! token as the first command. Until it does, other commands get
//! `not_connected`; after `limits.auth_timeout` the socket is closed with
//! 4004. A refused token is answered with its error and then closed: an
//! invalid one with 4500 or 4003, a valid one whose user is banned with
//! 1111 and 4504, a revoked one with 1112 and 4503 (see [`super::access`]).

use tokenim_auth::{TokenError, TokenVerifier, UserClaims};
use tokenim_protocol::{Command, CommandId, DisconnectCode, ErrorCode, Reply};

use super::conn::{Conn, Incoming};
use crate::access::{self, Admitted};
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

/// The close code for a refused token.
pub fn close_code(e: &TokenError) -> DisconnectCode {
    match e.code() {
        ErrorCode::TokenExpired => DisconnectCode::TokenExpired,
        _ => DisconnectCode::InvalidToken,
    }
}

/// Waits for a valid `connect` whose user may connect. Returns its command
/// id (to reply to once the session exists) and the admitted token.
pub async fn await_connect(
    conn: &mut Conn,
    state: &AppState,
) -> Result<(CommandId, Admitted), AuthEnd> {
    let deadline = tokio::time::sleep(state.config.limits.auth_timeout);
    tokio::pin!(deadline);
    loop {
        let incoming = tokio::select! {
            () = &mut deadline => {
                state.metrics.auth_failure("timeout");
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
                        let (code, message, close) =
                            match verify(&state.verifier, &state.metrics, &token) {
                                Ok(claims) => match access::admit(
                                    &state.access,
                                    &state.store,
                                    &state.metrics,
                                    claims,
                                )
                                .await
                                {
                                    Ok(admitted) => return Ok((frame.id, admitted)),
                                    Err(r) => (r.code(), r.to_string(), r.close_code()),
                                },
                                Err(e) => (e.code(), e.to_string(), close_code(&e)),
                            };
                        state.metrics.error(code);
                        if conn
                            .send(&Reply::error(frame.id, code, message))
                            .await
                            .is_err()
                        {
                            return Err(AuthEnd::Gone);
                        }
                        return Err(AuthEnd::Close(close));
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
