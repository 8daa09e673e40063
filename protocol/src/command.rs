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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientFrame {
    /// Chosen by the client; echoed in the reply.
    pub id: CommandId,
    /// What to do.
    #[serde(flatten)]
    pub command: Command,
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
