//! Turning frames into WebSocket messages, once.
//!
//! A JSON frame becomes a text message and a MessagePack frame a binary
//! message. The result holds a reference-counted buffer, so one encoded
//! push is cloned into every subscriber's queue without copying.

use serde::Serialize;
use tokenim_protocol::{Codec, EncodeError};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// Encodes `frame` with `codec` as a WebSocket message.
pub fn to_message<T: Serialize>(codec: Codec, frame: &T) -> Result<Message, EncodeError> {
    let bytes = codec.encode(frame)?;
    if codec.is_text() {
        Utf8Bytes::try_from(bytes)
            .map(Message::Text)
            .map_err(|e| EncodeError(e.to_string()))
    } else {
        Ok(Message::Binary(bytes))
    }
}

/// Encodes `frame` at most once per codec, on first use.
#[derive(Debug)]
pub struct EncodeOnce<'a, T> {
    frame: &'a T,
    cache: [Option<Message>; 2],
}

impl<'a, T: Serialize> EncodeOnce<'a, T> {
    /// Nothing encoded yet.
    pub fn new(frame: &'a T) -> Self {
        Self {
            frame,
            cache: [None, None],
        }
    }

    /// The frame in `codec`, encoding it if this is the first request.
    pub fn get(&mut self, codec: Codec) -> Result<Message, EncodeError> {
        let slot = &mut self.cache[codec as usize];
        if let Some(m) = slot {
            return Ok(m.clone());
        }
        let m = to_message(codec, self.frame)?;
        *slot = Some(m.clone());
        Ok(m)
    }
}
