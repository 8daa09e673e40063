//! Frames as the generator sees them: commands it writes ([`Outgoing`]:
//! [`connect`], [`subscribe`], [`publish`], [`send`], [`ack`]), the [`Stamp`] each broadcast payload
//! carries, and [`Inbound`], the lean view of a server frame that reads only
//! what the measurements need (push kind, `seq`, the send stamp, a reply's
//! id, `seq` or error code) and skips the rest without allocating.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokenim_protocol::{ChannelName, Codec};

/// Largest server frame [`decode`] accepts (the gateway's frames are far
/// smaller; this only bounds a misbehaving peer).
const MAX_FRAME: usize = 1 << 20;

/// The outcome of a command, as far as the generator cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// A result; the `seq` it carried, if any (subscribe, publish, send).
    Ok(Option<u64>),
    /// An error reply with this code.
    Error(u16),
}

/// A command as the generator writes it: `id`, `type` and the fields
/// its kind uses. Written through the protocol's codecs but independent
/// of `tokenim_protocol::Command`, so optional fields the protocol grows
/// do not touch the generator (the tests check that the protocol reads
/// each kind back as the command meant).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Outgoing<'a> {
    /// The command id its reply will carry.
    pub id: u64,
    /// The command's type (`connect`, `subscribe`, `publish`, `send`,
    /// `ack`).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The channel of `subscribe` and `publish`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<&'a str>,
    /// The recipient of `send`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<&'a str>,
    /// The token of `connect`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<&'a str>,
    /// The payload of `publish` and `send`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<&'a Stamp>,
    /// The sequence `ack` confirms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

impl<'a> Outgoing<'a> {
    /// A command of `kind` with no fields yet.
    pub fn new(id: u64, kind: &'static str) -> Outgoing<'a> {
        Outgoing {
            id,
            kind,
            channel: None,
            to: None,
            token: None,
            data: None,
            seq: None,
        }
    }

    /// Encodes it (the payload of one WebSocket message).
    pub fn encode(&self, codec: Codec) -> Bytes {
        codec
            .encode(self)
            .expect("commands built here always encode")
    }
}

/// A `connect` command.
pub fn connect(codec: Codec, id: u64, token: &str) -> Bytes {
    Outgoing {
        token: Some(token),
        ..Outgoing::new(id, "connect")
    }
    .encode(codec)
}

/// A `subscribe` command.
pub fn subscribe(codec: Codec, id: u64, channel: &ChannelName) -> Bytes {
    Outgoing {
        channel: Some(channel.as_str()),
        ..Outgoing::new(id, "subscribe")
    }
    .encode(codec)
}

/// A `publish` command carrying `stamp`.
pub fn publish(codec: Codec, id: u64, channel: &ChannelName, stamp: &Stamp) -> Bytes {
    Outgoing {
        channel: Some(channel.as_str()),
        data: Some(stamp),
        ..Outgoing::new(id, "publish")
    }
    .encode(codec)
}

/// A `send` command: `stamp` as a direct message to user `to`.
pub fn send(codec: Codec, id: u64, to: &str, stamp: &Stamp) -> Bytes {
    Outgoing {
        to: Some(to),
        data: Some(stamp),
        ..Outgoing::new(id, "send")
    }
    .encode(codec)
}

/// An `ack` command: direct messages up to `seq` of the user's personal
/// channel were received (so they are not delivered again on its next
/// connection).
pub fn ack(codec: Codec, id: u64, seq: u64) -> Bytes {
    Outgoing {
        seq: Some(seq),
        ..Outgoing::new(id, "ack")
    }
    .encode(codec)
}

/// The payload of a broadcast message: who sent it, which of theirs it is,
/// and when it was *meant* to be sent (so latency includes any time the
/// publisher fell behind: no coordinated omission).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// Intended send time, microseconds since the Unix epoch.
    pub t: u64,
    /// Publisher index.
    #[serde(default)]
    pub p: u32,
    /// The publisher's message number, from 0.
    #[serde(default)]
    pub n: u64,
    /// Filler to reach the requested payload size; never decoded.
    #[serde(default, skip_serializing_if = "String::is_empty", skip_deserializing)]
    pub pad: String,
}

/// The push kinds of protocol version 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushKind {
    /// A published message.
    Message,
    /// Someone subscribed.
    Join,
    /// Someone left.
    Leave,
    /// The server is closing the connection.
    Disconnect,
    /// A kind this generator does not know.
    #[serde(other)]
    Other,
}

/// The lean view of any server frame: every field the generator reads and
/// nothing else (channel names, user ids and unknown payload fields are
/// skipped without allocating).
#[derive(Debug, Clone, Deserialize)]
pub struct Inbound {
    /// A reply's command id.
    pub id: Option<u64>,
    /// A push's kind.
    pub push: Option<PushKind>,
    /// A message push's sequence number.
    pub seq: Option<u64>,
    /// A message push's payload, when it is a [`Stamp`].
    pub data: Option<StampView>,
    /// A successful reply's body.
    pub result: Option<ResultView>,
    /// An error reply's body.
    pub error: Option<CodeView>,
    /// A disconnect push's code.
    pub code: Option<u16>,
}

/// The part of a [`Stamp`] the receive path reads.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct StampView {
    /// Intended send time, microseconds since the Unix epoch.
    pub t: u64,
}

/// The part of a reply's `result` the generator reads.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct ResultView {
    /// The sequence number of subscribe, publish and send replies.
    pub seq: Option<u64>,
}

/// The code of an error reply.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct CodeView {
    /// The stable error code.
    pub code: u16,
}

impl Inbound {
    /// The reply outcome (meaningful when [`Inbound::id`] is set).
    pub fn reply(&self) -> Reply {
        match (&self.error, &self.result) {
            (Some(error), _) => Reply::Error(error.code),
            (None, Some(result)) => Reply::Ok(result.seq),
            (None, None) => Reply::Ok(None),
        }
    }
}

/// Decodes the lean view of a server frame; `None` if it is not one (for
/// example a message whose data is not a [`Stamp`]).
pub fn decode(codec: Codec, bytes: &[u8]) -> Option<Inbound> {
    codec.decode(bytes, MAX_FRAME).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenim_protocol::{Command, Data};

    #[test]
    fn the_protocol_reads_every_command_as_meant() {
        let channel = ChannelName::new("loadtest.x").unwrap();
        let stamp = Stamp {
            t: 17,
            p: 2,
            n: 3,
            pad: "xyz".into(),
        };
        let data = Data::from_value(&stamp).unwrap();
        for codec in Codec::ALL {
            let read = |bytes: Bytes| codec.decode_client(&bytes).unwrap();
            let f = read(connect(codec, 1, "tok"));
            assert!(matches!(f.command, Command::Connect { token, .. } if token == "tok"));
            let f = read(subscribe(codec, 2, &channel));
            assert_eq!(f.id, 2);
            assert!(matches!(f.command, Command::Subscribe { channel: c, .. } if c == channel));
            let f = read(publish(codec, 3, &channel, &stamp));
            let Command::Publish {
                channel: c,
                data: d,
                ..
            } = f.command
            else {
                panic!("{f:?}");
            };
            assert_eq!((c, d.as_json()), (channel.clone(), data.as_json()));
            let f = read(send(codec, 4, "lt-9", &stamp));
            let Command::Send { to, data: d, .. } = f.command else {
                panic!("{f:?}");
            };
            assert_eq!((to.as_str(), d.as_json()), ("lt-9", data.as_json()));
            let f = read(ack(codec, 5, 77));
            assert!(matches!(f.command, Command::Ack { seq: 77, .. }), "{f:?}");
        }
    }

    #[test]
    fn lean_decode_reads_seq_and_stamp_in_both_codecs() {
        let stamp = Stamp {
            t: 1_700_000_000_123_456,
            p: 3,
            n: 9,
            pad: "xxxx".into(),
        };
        let push = tokenim_protocol::Push::Message(tokenim_protocol::Publication {
            channel: ChannelName::new("loadtest.a").unwrap(),
            seq: 42,
            from: None,
            data: Data::from_value(&stamp).unwrap(),
            time: 1,
        });
        for codec in Codec::ALL {
            let bytes = codec.encode(&push).unwrap();
            let lean = decode(codec, &bytes).unwrap();
            assert_eq!(lean.push, Some(PushKind::Message));
            assert_eq!(lean.seq, Some(42));
            assert_eq!(lean.data.unwrap().t, stamp.t);
            assert_eq!(lean.id, None);
        }
    }

    #[test]
    fn lean_decode_reads_replies_and_skips_unknown_pushes() {
        let json = Codec::Json;
        let ok = decode(
            json,
            br#"{"id":5,"result":{"type":"publish","channel":"c","seq":18}}"#,
        )
        .unwrap();
        assert_eq!((ok.id, ok.reply()), (Some(5), Reply::Ok(Some(18))));
        let err = decode(
            json,
            br#"{"id":6,"error":{"code":1203,"name":"rate_limited","message":"x"}}"#,
        )
        .unwrap();
        assert_eq!(err.reply(), Reply::Error(1203));
        let join = decode(
            json,
            br#"{"push":"join","channel":"c","user":"u","session":4}"#,
        )
        .unwrap();
        assert_eq!(join.push, Some(PushKind::Join));
        let odd = decode(json, br#"{"push":"typing","channel":"c"}"#).unwrap();
        assert_eq!(odd.push, Some(PushKind::Other));
        assert!(decode(json, b"not json").is_none());
    }
}
