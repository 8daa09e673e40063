//! What the server sends unasked: an [`Event`] is a push or a reply that no
//! request was waiting for; [`CloseInfo`] is the close frame that ended the
//! connection.

use std::fmt;

use tokenim_protocol::{DisconnectCode, Push, Reply};

/// One frame from the server that is not the answer to a pending request,
/// in the order the server sent it. Read with
/// [`crate::Client::next_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A push: message, join, leave or disconnect.
    Push(Push),
    /// A reply whose id no request is waiting for: the answer to a frame
    /// sent with [`crate::Client::send_raw`], an error reply with id 0 to a
    /// frame the server could not read, or a reply that arrived after its
    /// request timed out.
    Reply(Reply),
}

/// The code and reason of the close frame the server ended the connection
/// with. tokenim's own codes are 4000–4999 (see [`DisconnectCode`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseInfo {
    /// The WebSocket close code.
    pub code: u16,
    /// The reason text (at most 123 bytes).
    pub reason: String,
}

impl CloseInfo {
    /// The tokenim disconnect code, if the close code is one.
    ///
    /// ```
    /// use tokenim_client::CloseInfo;
    /// use tokenim_client::protocol::DisconnectCode;
    /// let info = CloseInfo { code: 4001, reason: "slow consumer".into() };
    /// assert_eq!(info.disconnect_code(), Some(DisconnectCode::SlowConsumer));
    /// ```
    pub fn disconnect_code(&self) -> Option<DisconnectCode> {
        DisconnectCode::from_code(self.code)
    }
}

impl fmt::Display for CloseInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.reason)
    }
}
