//! [`DisconnectCode`]: why the server ended a connection, and whether the
//! client should reconnect. The only place close codes are defined.
//!
//! The code is both the WebSocket close code and the `code` of the
//! `disconnect` push sent just before the close frame. All codes sit in the
//! private-use range 4000–4999:
//!
//! | range | client should |
//! |---|---|
//! | 4000–4499 | reconnect, with backoff and jitter |
//! | 4500–4999 | not reconnect until something changes (new token, fixed client) |

use serde::{Deserialize, Serialize};

/// Longest disconnect reason in bytes: a close frame's payload is at most
/// 125 bytes, two of which hold the code.
pub const MAX_REASON_LEN: usize = 123;

macro_rules! disconnect_codes {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $reason:literal; )*) => {
        /// A stable close code.
        ///
        /// ```
        /// use tokenim_protocol::DisconnectCode;
        /// assert_eq!(DisconnectCode::SlowConsumer.code(), 4001);
        /// assert!(DisconnectCode::SlowConsumer.reconnect());
        /// assert!(!DisconnectCode::InvalidToken.reconnect());
        /// ```
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u16)]
        #[non_exhaustive]
        pub enum DisconnectCode {
            $( $(#[$doc])* $variant = $code, )*
        }

        impl DisconnectCode {
            /// Every code, in numeric order.
            pub const ALL: &'static [DisconnectCode] = &[$(DisconnectCode::$variant),*];

            /// The numeric close code.
            pub fn code(self) -> u16 {
                self as u16
            }

            /// The default human-readable reason (≤ [`MAX_REASON_LEN`] bytes),
            /// also the metric label.
            pub fn reason(self) -> &'static str {
                match self { $(DisconnectCode::$variant => $reason,)* }
            }

            /// The code with this number, if there is one.
            pub fn from_code(code: u16) -> Option<Self> {
                match code { $($code => Some(DisconnectCode::$variant),)* _ => None }
            }
        }
    };
}

disconnect_codes! {
    /// The node is shutting down or draining; reconnect (to another node).
    Shutdown = 4000, "shutdown";
    /// The connection's outbound queue filled up because the client read
    /// too slowly; reconnect and resume.
    SlowConsumer = 4001, "slow consumer";
    /// Nothing was heard from the client (not even a pong) within the idle
    /// timeout.
    IdleTimeout = 4002, "idle timeout";
    /// The token expired on a live connection and was not refreshed: get a
    /// new token, then reconnect.
    TokenExpired = 4003, "token expired";
    /// No `connect` frame with a valid token arrived within the deadline.
    AuthTimeout = 4004, "auth timeout";
    /// The server failed; reconnect with backoff.
    Internal = 4005, "internal error";
    /// The token was refused (bad signature, wrong audience, ...). A new
    /// attempt with the same token fails the same way.
    InvalidToken = 4500, "invalid token";
    /// The client broke the protocol (e.g. binary frames on a JSON
    /// connection, a text frame that is not UTF-8).
    ProtocolViolation = 4501, "protocol violation";
    /// A frame or message exceeded the configured size limit.
    MessageTooLarge = 4502, "message too large";
    /// The user's tokens were revoked by the application: get a new token
    /// (issued after the revocation), then reconnect.
    TokenRevoked = 4503, "token revoked";
    /// The user was banned by the application: do not reconnect until the
    /// ban ends.
    Banned = 4504, "banned";
}

/// Codes in this range are final: the client does not reconnect, whether
/// it knows the code or not (a newer server may define more).
const FINAL: std::ops::Range<u16> = 4500..5000;

impl DisconnectCode {
    /// Whether the client should reconnect (codes 4000–4499).
    pub fn reconnect(self) -> bool {
        reconnect_after(self.code())
    }
}

/// Whether a client should reconnect after the server closed with `code`,
/// a code this version defines or not: no for 4500–4999, yes for every
/// other code (4000–4499, and WebSocket codes such as 1001 or 1006).
///
/// ```
/// use tokenim_protocol::disconnect::reconnect_after;
/// assert!(reconnect_after(4001));
/// assert!(reconnect_after(1006));
/// assert!(!reconnect_after(4500));
/// assert!(!reconnect_after(4999)); // not defined here, final all the same
/// ```
pub fn reconnect_after(code: u16) -> bool {
    !FINAL.contains(&code)
}

/// The `disconnect` push: sent just before the server closes the socket
/// with the same code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disconnect {
    /// The close code (see [`DisconnectCode`]).
    pub code: u16,
    /// Human-readable reason, at most [`MAX_REASON_LEN`] bytes.
    pub reason: String,
    /// Whether the client should reconnect.
    pub reconnect: bool,
}

impl From<DisconnectCode> for Disconnect {
    fn from(code: DisconnectCode) -> Self {
        Self {
            code: code.code(),
            reason: code.reason().to_owned(),
            reconnect: code.reconnect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_private_range_and_reasons_fit_a_close_frame() {
        for &c in DisconnectCode::ALL {
            assert!((4000..5000).contains(&c.code()));
            assert!(c.reason().len() <= MAX_REASON_LEN);
            assert_eq!(DisconnectCode::from_code(c.code()), Some(c));
        }
    }
}
