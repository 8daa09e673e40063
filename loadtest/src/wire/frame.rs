//! Frames as the generator sees them: the commands it writes
//! ([`subscribe`], [`publish`], [`send`], [`ack`]), each a
//! `tokenim_protocol::Command` encoded with the protocol's codec; the
//! [`Stamp`] each broadcast payload carries; and [`Reply`], the outcome
//! of a command read from the protocol's own decode of a reply
//! ([`reply`]).

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokenim_client::lean;
use tokenim_protocol::{
    ChannelName, Codec, Command, Data, Outcome, ReplyBody, ServerFrame, UserId,
};

/// The outcome of a command, as far as the generator cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// A result; the `seq` it carried, if any (subscribe, publish, send).
    Ok(Option<u64>),
    /// An error reply with this code.
    Error(u16),
}

impl Reply {
    /// The outcome of a protocol reply.
    pub fn of(reply: &tokenim_protocol::Reply) -> Reply {
        match &reply.outcome {
            Outcome::Error(body) => Reply::Error(body.code.code()),
            Outcome::Result(body) => Reply::Ok(match body {
                ReplyBody::Subscribe { seq, .. }
                | ReplyBody::Publish { seq, .. }
                | ReplyBody::Send { seq, .. }
                | ReplyBody::History { seq, .. }
                | ReplyBody::Ack { seq } => Some(*seq),
                _ => None,
            }),
        }
    }
}

/// The command id and outcome of `bytes` if it is a reply; `None` for a
/// push or anything undecodable.
pub fn reply(codec: Codec, bytes: &[u8]) -> Option<(u64, Reply)> {
    match codec.decode_server(bytes).ok()? {
        ServerFrame::Reply(reply) => Some((reply.id, Reply::of(&reply))),
        ServerFrame::Push(_) => None,
    }
}

/// A `subscribe` command.
pub fn subscribe(codec: Codec, id: u64, channel: &ChannelName) -> Bytes {
    let channel = channel.clone();
    lean::encode(
        codec,
        id,
        Command::Subscribe {
            channel,
            since: None,
        },
    )
}

/// A `publish` command carrying `stamp`.
pub fn publish(codec: Codec, id: u64, channel: &ChannelName, stamp: &Stamp) -> Bytes {
    let command = Command::Publish {
        channel: channel.clone(),
        data: stamp.data(),
        msg_id: None,
    };
    lean::encode(codec, id, command)
}

/// A `send` command: `stamp` as a direct message to user `to`.
pub fn send(codec: Codec, id: u64, to: &UserId, stamp: &Stamp) -> Bytes {
    let command = Command::Send {
        to: to.clone(),
        data: stamp.data(),
    };
    lean::encode(codec, id, command)
}

/// An `ack` command: direct messages up to `seq` of the user's personal
/// channel were received (so they are not delivered again on its next
/// connection).
pub fn ack(codec: Codec, id: u64, seq: u64) -> Bytes {
    lean::encode(codec, id, Command::Ack { seq })
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

impl Stamp {
    /// The stamp as a message's `data`.
    pub fn data(&self) -> Data {
        Data::from_value(self).expect("a stamp is plain JSON")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenim_protocol::Publication;

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
        let to = UserId::new("lt-9").unwrap();
        for codec in Codec::ALL {
            let read = |bytes: Bytes| codec.decode_client(&bytes).unwrap();
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
            let f = read(send(codec, 4, &to, &stamp));
            let Command::Send { to, data: d, .. } = f.command else {
                panic!("{f:?}");
            };
            assert_eq!((to.as_str(), d.as_json()), ("lt-9", data.as_json()));
            let f = read(ack(codec, 5, 77));
            assert!(matches!(f.command, Command::Ack { seq: 77, .. }), "{f:?}");
        }
    }

    #[test]
    fn replies_are_read_and_pushes_skipped() {
        let json = Codec::Json;
        let ok = br#"{"id":5,"result":{"type":"publish","channel":"c","seq":18}}"#;
        assert_eq!(reply(json, ok), Some((5, Reply::Ok(Some(18)))));
        let err = br#"{"id":6,"error":{"code":1203,"name":"rate_limited","message":"x"}}"#;
        assert_eq!(reply(json, err), Some((6, Reply::Error(1203))));
        let join = br#"{"push":"join","channel":"c","user":"u","session":4}"#;
        assert_eq!(reply(json, join), None);
        assert_eq!(reply(json, b"not json"), None);
        let push = tokenim_protocol::Push::Message(Publication {
            channel: ChannelName::new("loadtest.a").unwrap(),
            seq: 42,
            from: None,
            data: Stamp {
                t: 1,
                p: 0,
                n: 0,
                pad: String::new(),
            }
            .data(),
            time: 1,
        });
        for codec in Codec::ALL {
            assert_eq!(reply(codec, &codec.encode(&push).unwrap()), None);
        }
    }
}
