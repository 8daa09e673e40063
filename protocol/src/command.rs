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

use crate::{ChannelName, CommandId, Data, UserId};

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
    /// Start receiving messages published to a channel.
    Subscribe {
        /// The channel.
        channel: ChannelName,
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
        }
    }
}
