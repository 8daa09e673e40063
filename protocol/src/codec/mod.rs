//! [`Codec`]: how frames become bytes, chosen per connection by WebSocket
//! subprotocol.
//!
//! | subprotocol | codec | WebSocket frames |
//! |---|---|---|
//! | `tokenim.v1.json` (also when none is asked for) | JSON | text |
//! | `tokenim.v1.msgpack` | MessagePack (maps with string keys) | binary |
//!
//! Both codecs carry the same structure with the same field names. `Codec`
//! is a stateless `Copy` enum that dispatches to the two modules below, so
//! nothing that holds one is generic over it.

mod json;
mod msgpack;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{ClientFrame, CommandId, DecodeError, EncodeError, ServerFrame};

/// Default largest frame [`Codec::decode_client`] accepts: 1 MiB. The
/// gateway decodes with its own, smaller, configured limit.
pub const DEFAULT_MAX_FRAME_LEN: usize = 1 << 20;

/// Deepest nesting accepted when decoding, in either codec.
pub const MAX_DEPTH: usize = 128;

/// One of the two wire codecs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Codec {
    /// JSON in WebSocket text frames.
    #[default]
    Json,
    /// MessagePack in WebSocket binary frames.
    MsgPack,
}

impl Codec {
    /// Both codecs, JSON first.
    pub const ALL: [Codec; 2] = [Codec::Json, Codec::MsgPack];

    /// The codec for a WebSocket subprotocol name, if it is one of ours.
    ///
    /// ```
    /// use tokenim_protocol::Codec;
    /// assert_eq!(Codec::from_subprotocol("tokenim.v1.msgpack"), Some(Codec::MsgPack));
    /// assert_eq!(Codec::from_subprotocol("chat"), None);
    /// ```
    pub fn from_subprotocol(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.subprotocol() == name)
    }

    /// The subprotocol name.
    pub fn subprotocol(self) -> &'static str {
        match self {
            Codec::Json => "tokenim.v1.json",
            Codec::MsgPack => "tokenim.v1.msgpack",
        }
    }

    /// Whether frames go in WebSocket text frames (JSON) or binary
    /// frames (MessagePack).
    pub fn is_text(self) -> bool {
        matches!(self, Codec::Json)
    }

    /// A short name for logs and metric labels: `json` or `msgpack`.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Json => "json",
            Codec::MsgPack => "msgpack",
        }
    }

    /// Encodes any frame. For JSON the bytes are valid UTF-8.
    pub fn encode<T: Serialize>(self, value: &T) -> Result<Bytes, EncodeError> {
        match self {
            Codec::Json => json::encode(value),
            Codec::MsgPack => msgpack::encode(value),
        }
    }

    /// Decodes any frame type, refusing frames over `max_len` bytes.
    pub fn decode<T: DeserializeOwned>(
        self,
        bytes: &[u8],
        max_len: usize,
    ) -> Result<T, DecodeError> {
        if bytes.len() > max_len {
            return Err(DecodeError::TooLarge {
                size: bytes.len(),
                max: max_len,
            });
        }
        match self {
            Codec::Json => json::decode(bytes),
            Codec::MsgPack => msgpack::decode(bytes),
        }
    }

    /// Decodes a client command, up to [`DEFAULT_MAX_FRAME_LEN`] bytes.
    pub fn decode_client(self, bytes: &[u8]) -> Result<ClientFrame, DecodeError> {
        self.decode(bytes, DEFAULT_MAX_FRAME_LEN)
    }

    /// Decodes a server frame (reply or push), up to
    /// [`DEFAULT_MAX_FRAME_LEN`] bytes.
    ///
    /// Frames that start with the `push` field, as every push encoded by
    /// this crate does, are decoded straight as a [`crate::Push`]; anything
    /// else goes through the general (slower, buffering) path.
    pub fn decode_server(self, bytes: &[u8]) -> Result<ServerFrame, DecodeError> {
        if self.starts_with_push_field(bytes) {
            if let Ok(push) = self.decode(bytes, DEFAULT_MAX_FRAME_LEN) {
                return Ok(ServerFrame::Push(push));
            }
        }
        self.decode(bytes, DEFAULT_MAX_FRAME_LEN)
    }

    /// Whether an encoded map's first key is `push`.
    fn starts_with_push_field(self, bytes: &[u8]) -> bool {
        match self {
            Codec::Json => bytes.starts_with(br#"{"push""#),
            // fixmap marker, then fixstr of length 4: "push"
            Codec::MsgPack => {
                bytes.len() > 5 && bytes[0] & 0xf0 == 0x80 && &bytes[1..6] == b"\xa4push"
            }
        }
    }

    /// Reads just the `id` of a frame that failed to decode, so the error
    /// reply can carry it. `None` if even that is unreadable.
    pub fn peek_id(self, bytes: &[u8]) -> Option<CommandId> {
        #[derive(serde::Deserialize)]
        struct IdOnly {
            id: CommandId,
        }
        self.decode::<IdOnly>(bytes, DEFAULT_MAX_FRAME_LEN)
            .ok()
            .map(|f| f.id)
    }
}

#[cfg(test)]
mod tests;
