//! What a client sends: a [`ClientFrame`] is a command id plus a
//! [`Command`]. Every command gets exactly one [`crate::Reply`] with the same
//! id.
//!
//! On the wire the id and the command's fields sit in one object, and
//! `type` names the command:
//!
//! ```json
//! {"id":3,"type":"publish","channel":"rooms.lobby","data":{"text":"hi"}}
//! ```

use serde::{Deserialize, Serialize};

use crate::{ChannelName, CommandId, Data, Seq, UserId};

/// One command from a client, with the id its reply will carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientFrame {
    /// Chosen by the client; echoed in the reply.
    pub id: CommandId,
    /// What to do.
    #[serde(flatten)]
    pub command: Command,
}

/// The names `type` may hold, as [`Command::kind`] gives them.
pub const COMMAND_TYPES: [&str; 10] = [
    "connect",
    "refresh",
    "subscribe",
    "unsubscribe",
    "publish",
    "send",
    "history",
    "ack",
    "presence",
    "ping",
];

/// How a [`ClientFrame`] is read: `type` is checked to be a name before
/// the command is (serde would take an integer `type` as the position of a
/// variant, so `{"type":6}` would run the seventh command).
#[derive(Deserialize)]
struct WireFrame {
    id: CommandId,
    #[serde(flatten)]
    _type: TypeIsName,
    #[serde(flatten)]
    command: Command,
}

impl<'de> Deserialize<'de> for ClientFrame {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let WireFrame { id, command, .. } = WireFrame::deserialize(deserializer)?;
        Ok(ClientFrame { id, command })
    }
}

/// Reads a frame's entries, refusing a `type` that is not a string with
/// serde's "unknown variant" error (so it is `1001 unknown_command`).
struct TypeIsName;

impl<'de> Deserialize<'de> for TypeIsName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(TypeIsName)
    }
}

impl<'de> serde::de::Visitor<'de> for TypeIsName {
    type Value = TypeIsName;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a command object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        use serde::de::IgnoredAny;
        while let Some(key) = map.next_key::<KeyName>()? {
            if key.0 {
                map.next_value::<TypeName>()?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(TypeIsName)
    }
}

/// A key of a frame: whether it is `type`.
struct KeyName(bool);

impl<'de> Deserialize<'de> for KeyName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Key;
        impl serde::de::Visitor<'_> for Key {
            type Value = KeyName;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<KeyName, E> {
                Ok(KeyName(v == "type"))
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<KeyName, E> {
                Ok(KeyName(v == b"type"))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<KeyName, E> {
                Ok(KeyName(false))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<KeyName, E> {
                Ok(KeyName(false))
            }
        }
        deserializer.deserialize_identifier(Key)
    }
}

/// A `type` that is a number or a bool names no command.
fn not_a_name<E: serde::de::Error>(v: impl std::fmt::Display) -> Result<TypeName, E> {
    Err(E::unknown_variant(&v.to_string(), &COMMAND_TYPES))
}

/// The value of `type`: any string passes here (the command's own reading
/// names an unknown one); anything else is an unknown variant.
struct TypeName;

impl<'de> Deserialize<'de> for TypeName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Name;
        impl serde::de::Visitor<'_> for Name {
            type Value = TypeName;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a command name")
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<TypeName, E> {
                Ok(TypeName)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<TypeName, E> {
                not_a_name(v)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<TypeName, E> {
                not_a_name(v)
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<TypeName, E> {
                not_a_name(v)
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<TypeName, E> {
                not_a_name(v)
            }
        }
        deserializer.deserialize_any(Name)
    }
}

/// The commands a client can send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    /// Authenticate with a token (for clients that cannot set headers).
    /// Must be the first command unless the token came with the upgrade
    /// request.
    Connect {
        /// The user's JWT.
        token: String,
    },
    /// Replace the connection's token before it expires, so the
    /// connection is not closed with `token expired`.
    Refresh {
        /// A new JWT for the same user.
        token: String,
    },
    /// Start receiving messages published to a channel. With `since`, a
    /// client that was connected before gets what it missed first (in the
    /// reply), then live messages.
    Subscribe {
        /// The channel.
        channel: ChannelName,
        /// The last position the client saw in this channel.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<StreamPosition>,
    },
    /// Stop receiving a channel's messages.
    Unsubscribe {
        /// The channel.
        channel: ChannelName,
    },
    /// Publish a message to every subscriber of a channel.
    Publish {
        /// The channel (not a personal `#user` channel: use `send`).
        channel: ChannelName,
        /// The payload, any JSON value.
        data: Data,
        /// A client-chosen id (1–64 characters): a publish retried with the
        /// same id within the server's idempotency window is stored and
        /// delivered once, and answered with the first one's sequence.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        msg_id: Option<String>,
    },
    /// Send a direct message to a user, on every connection of theirs.
    Send {
        /// The recipient.
        to: UserId,
        /// The payload, any JSON value.
        data: Data,
    },
    /// Application-level ping; the reply is an empty `ping` result.
    Ping {},
    /// Who is subscribed to a channel now, on every node.
    Presence {
        /// The channel (the token must allow subscribing to it).
        channel: ChannelName,
    },
    /// Messages kept in a channel's history: the last `limit`, or the
    /// first `limit` after `since`.
    History {
        /// The channel (the token must allow subscribing to it; your own
        /// personal channel is allowed).
        channel: ChannelName,
        /// Only messages with a sequence above this one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<Seq>,
        /// At most this many (default and maximum set by the server).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// Confirms that direct messages up to `seq` of your personal channel
    /// were received; unconfirmed ones are delivered again on the next
    /// connection.
    Ack {
        /// The highest sequence of your personal channel received.
        seq: Seq,
    },
}

/// A position in a channel: a sequence number within an epoch. The epoch
/// changes when the channel's history was lost (e.g. the store restarted
/// empty); a position from another epoch cannot be resumed from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StreamPosition {
    /// The last sequence seen.
    pub seq: Seq,
    /// The epoch it belongs to.
    pub epoch: String,
}

impl Command {
    /// The command's `type` on the wire, also used as a metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            Command::Connect { .. } => "connect",
            Command::Refresh { .. } => "refresh",
            Command::Subscribe { .. } => "subscribe",
            Command::Unsubscribe { .. } => "unsubscribe",
            Command::Publish { .. } => "publish",
            Command::Send { .. } => "send",
            Command::Ping {} => "ping",
            Command::Presence { .. } => "presence",
            Command::History { .. } => "history",
            Command::Ack { .. } => "ack",
        }
    }
}
