//! [`Error`]: every way a client call can fail, in one enum whose variants
//! tests can match on.

use tokenim_protocol::{DecodeError, EncodeError, ErrorBody, ReplyBody};
use tokio_tungstenite::tungstenite;

use crate::CloseInfo;

/// A failed client call. Each variant's doc says what the caller should do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server refused the WebSocket upgrade with this HTTP status. The
    /// gateway's body is JSON `{"code","name","message"}`; 401 means the
    /// token in the header or query was refused, and the same token will be
    /// refused again.
    #[error("upgrade refused with HTTP {status}: {body}")]
    Http {
        /// The HTTP status code.
        status: u16,
        /// The response body, as text (lossy UTF-8, at most 64 KiB).
        body: String,
    },
    /// The connection could not be opened or broke: bad URL, TCP failure,
    /// a malformed handshake, or a WebSocket protocol error. Reconnect with
    /// backoff.
    #[error("websocket: {0}")]
    WebSocket(#[from] tungstenite::Error),
    /// The server answered the command with an error reply; nothing was
    /// changed. The body's stable `code` says why and whether to retry.
    #[error("server error {} {}: {}", .0.code.code(), .0.name, .0.message)]
    Server(ErrorBody),
    /// The reply to this request could not be decoded: client and server
    /// disagree about the protocol. Not worth retrying.
    #[error("undecodable reply: {0}")]
    Decode(#[from] DecodeError),
    /// The command could not be encoded with the connection's codec.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The connection is closed, or closed while the request waited. Holds
    /// the server's close code and reason when it sent a close frame
    /// (see [`CloseInfo::disconnect_code`] for whether to reconnect).
    #[error("connection closed{}", close_suffix(.0))]
    Closed(Option<CloseInfo>),
    /// No reply within [`crate::ConnectOptions::request_timeout`] (or
    /// `connect` took longer than that). The connection may still be open;
    /// a reply that comes later is delivered as [`crate::Event::Reply`].
    #[error("timed out")]
    Timeout,
    /// The server answered with a result of another command's type.
    #[error("unexpected reply: {0:?}")]
    UnexpectedReply(ReplyBody),
}

fn close_suffix(info: &Option<CloseInfo>) -> String {
    info.as_ref().map(|i| format!(": {i}")).unwrap_or_default()
}
