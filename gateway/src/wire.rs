//! Turning frames into WebSocket messages, once.
//!
//! A JSON frame becomes a text message and a MessagePack frame a binary
//! message. The result holds a reference-counted buffer, so one encoded
//! push is cloned into every subscriber's queue without copying.
//! [`Framing`] is what every connection of a node reads while it frames.

use std::time::Duration;

use serde::Serialize;
use tokenim_protocol::{Codec, EncodeError};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::config::Limits;
use crate::metrics::Metrics;

/// The limits a connection frames within and the counters it bumps: one
/// per node, shared by every connection (one pointer each, not a copy).
#[derive(Debug)]
pub struct Framing {
    /// Frames, writes and disconnects are counted here.
    pub metrics: Metrics,
    /// `limits.write_timeout`: longest wait for a write or flush.
    pub write_timeout: Duration,
    /// `limits.max_message_size`: largest command decoded.
    pub max_message_size: usize,
}

impl Framing {
    /// The framing of a node with `limits`.
    pub fn new(limits: &Limits, metrics: Metrics) -> Self {
        Self {
            metrics,
            write_timeout: limits.write_timeout,
            max_message_size: limits.max_message_size,
        }
    }
}

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
