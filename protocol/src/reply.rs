//! The server's answer to each command, and [`ServerFrame`], the union of
//! everything a server sends.
//!
//! ```json
//! {"id":3,"result":{"type":"publish","channel":"rooms.lobby","seq":18}}
//! {"id":4,"error":{"code":1104,"name":"permission_denied","message":"token may not publish to rooms.vip"}}
//! ```

use serde::{Deserialize, Serialize};

use crate::{ChannelName, CommandId, ErrorCode, Millis, Publication, Push, Seq, SessionId, UserId};

/// The one reply to a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// The id of the command this answers (0 if the command's id could not
    /// be read).
    pub id: CommandId,
    /// Result or error.
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl Reply {
    /// A successful reply.
    pub fn ok(id: CommandId, body: ReplyBody) -> Self {
        Self {
            id,
            outcome: Outcome::Result(body),
        }
    }

    /// An error reply.
    pub fn error(id: CommandId, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            id,
            outcome: Outcome::Error(ErrorBody::new(code, message)),
        }
    }
}

/// Either a `result` or an `error` field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The command succeeded.
    Result(ReplyBody),
    /// The command failed; nothing was changed.
    Error(ErrorBody),
}

/// An error with its stable code, stable name, and a human message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The stable numeric code.
    pub code: ErrorCode,
    /// The stable name of the code.
    pub name: String,
    /// What went wrong, for humans; may change between releases.
    pub message: String,
}

impl ErrorBody {
    /// Builds the body for a code.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            name: code.name().to_owned(),
            message: message.into(),
        }
    }
}

/// The result of a successful command; `type` repeats the command's type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ReplyBody {
    /// Authenticated.
    Connect {
        /// Who the token says you are.
        user: UserId,
        /// This connection's id.
        session: SessionId,
        /// When the token expires (ms since epoch), if it does.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<Millis>,
        /// How often the server pings; a client that hears nothing for
        /// about twice this long should reconnect.
        ping_interval_ms: u64,
    },
    /// Token replaced.
    Refresh {
        /// When the new token expires (ms since epoch), if it does.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<Millis>,
    },
    /// Subscribed; every message with a sequence above `seq` will be
    /// delivered (a message at or below it may arrive too: ignore it).
    Subscribe {
        /// The channel.
        channel: ChannelName,
        /// The channel's latest sequence (0 if nothing was published yet).
        seq: Seq,
        /// The channel's current epoch.
        epoch: String,
        /// With `since`: whether everything after it was recovered.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recovered: Option<bool>,
        /// With `since` and not recovered: why (`history_gap`,
        /// `epoch_changed`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gap: Option<ErrorCode>,
        /// With `since`: the missed messages still kept, oldest first.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        publications: Vec<Publication>,
    },
    /// Unsubscribed.
    Unsubscribe {
        /// The channel.
        channel: ChannelName,
    },
    /// Published.
    Publish {
        /// The channel.
        channel: ChannelName,
        /// The sequence the message was given.
        seq: Seq,
        /// The publish repeated an earlier one's `msg_id`: nothing new was
        /// published; `seq` is the earlier one's.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        duplicate: bool,
    },
    /// Direct message delivered to the recipient's personal channel.
    Send {
        /// The recipient.
        to: UserId,
        /// The sequence in the recipient's personal channel.
        seq: Seq,
    },
    /// Pong.
    Ping {},
    /// Messages from a channel's history, oldest first.
    History {
        /// The channel.
        channel: ChannelName,
        /// The channel's latest sequence.
        seq: Seq,
        /// The channel's current epoch.
        epoch: String,
        /// The messages.
        publications: Vec<Publication>,
        /// More messages follow the last one returned: ask again with
        /// `since` set to its sequence.
        more: bool,
    },
    /// Acknowledged.
    Ack {
        /// The highest acknowledged sequence of your personal channel.
        seq: Seq,
    },
    /// Who is in a channel.
    Presence {
        /// The channel.
        channel: ChannelName,
        /// Each user subscribed to it, with how many connections, sorted by
        /// user id.
        users: Vec<PresenceEntry>,
    },
}

/// One user in a `presence` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceEntry {
    /// The user.
    pub user: UserId,
    /// How many of the user's connections are subscribed.
    pub connections: u32,
}

impl ReplyBody {
    /// A plain `subscribe` result (no recovery asked).
    pub fn subscribed(channel: ChannelName, seq: Seq, epoch: impl Into<String>) -> Self {
        ReplyBody::Subscribe {
            channel,
            seq,
            epoch: epoch.into(),
            recovered: None,
            gap: None,
            publications: Vec::new(),
        }
    }

    /// A `publish` result for a new message.
    pub fn published(channel: ChannelName, seq: Seq) -> Self {
        ReplyBody::Publish {
            channel,
            seq,
            duplicate: false,
        }
    }
}

/// Anything a server sends: a reply (has `id`) or a push (has `push`).
/// Clients decode incoming frames as this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ServerFrame {
    /// The answer to a command.
    Reply(Reply),
    /// A server-initiated frame.
    Push(Push),
}
