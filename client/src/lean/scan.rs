//! The receive path's decoder: reads a `message` push's `channel`, `seq`
//! and the stamp's `t` (its intended send time) by walking the encoded
//! bytes, JSON or MessagePack, without building a value, validating
//! UTF-8 or allocating. Every other field is skipped by its length or
//! its brackets.
//!
//! [`message`] answers `None` for anything that is not a `message` push
//! (a reply, a join, a malformed frame); callers then fall back to the
//! serde decode in [`super::frame`]. [`decode_message`] is the full,
//! slow decode through `tokenim-protocol` that tests and `--verify` use
//! to check the scanner frame by frame ([`agrees`]).

use tokenim_protocol::{Codec, Push, ServerFrame};

/// What the scanner reads from a `message` push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scanned<'a> {
    /// The channel name's bytes, as encoded (channel names need no
    /// escaping).
    pub channel: &'a [u8],
    /// The message's sequence in its channel.
    pub seq: u64,
    /// `data.t` when the payload is an object whose `t` is an unsigned
    /// integer (a [`super::Stamp`]).
    pub t: Option<u64>,
}

/// Reads a `message` push; `None` for any other frame.
#[inline]
pub fn message(codec: Codec, frame: &[u8]) -> Option<Scanned<'_>> {
    match codec {
        Codec::Json => json::message(frame),
        Codec::MsgPack => msgpack::message(frame),
    }
}

/// The same fields as [`Scanned`], from a full decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The channel.
    pub channel: String,
    /// The sequence.
    pub seq: u64,
    /// The stamp's `t`, if the payload is a stamp.
    pub t: Option<u64>,
}

/// Decodes a frame completely with `tokenim-protocol`; `Some` for a
/// `message` push.
pub fn decode_message(codec: Codec, frame: &[u8]) -> Option<Decoded> {
    match codec.decode_server(frame).ok()? {
        ServerFrame::Push(Push::Message(p)) => Some(Decoded {
            channel: p.channel.as_str().to_owned(),
            seq: p.seq,
            t: serde_json::from_str::<serde_json::Value>(p.data.as_json())
                .ok()
                .and_then(|v| v.as_object()?.get("t")?.as_u64()),
        }),
        _ => None,
    }
}

/// Whether the scanner and the full decode read `frame` the same way.
pub fn agrees(codec: Codec, frame: &[u8]) -> bool {
    match (message(codec, frame), decode_message(codec, frame)) {
        (None, None) => true,
        (Some(s), Some(d)) => s.channel == d.channel.as_bytes() && s.seq == d.seq && s.t == d.t,
        _ => false,
    }
}

/// Which top-level field is which.
enum Field {
    Push,
    Channel,
    Seq,
    Data,
    Other,
}

impl Field {
    #[inline]
    fn of(key: &[u8]) -> Field {
        match key {
            b"push" => Field::Push,
            b"channel" => Field::Channel,
            b"seq" => Field::Seq,
            b"data" => Field::Data,
            _ => Field::Other,
        }
    }
}

/// What a walk collected; a message once `push` said so.
#[derive(Default)]
struct Found<'a> {
    message: bool,
    channel: Option<&'a [u8]>,
    seq: Option<u64>,
    t: Option<u64>,
}

impl<'a> Found<'a> {
    fn finish(self) -> Option<Scanned<'a>> {
        if !self.message {
            return None;
        }
        Some(Scanned {
            channel: self.channel?,
            seq: self.seq?,
            t: self.t,
        })
    }
}

mod json;

mod msgpack;

#[cfg(test)]
mod tests;
