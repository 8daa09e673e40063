//! What the server sends without being asked: a [`Push`].
//!
//! `push` names the kind on the wire:
//!
//! ```json
//! {"push":"message","channel":"rooms.lobby","seq":17,"from":"alice","data":{"text":"hi"},"time":1700000000000}
//! ```

use serde::{Deserialize, Serialize};

use crate::{ChannelName, Data, Disconnect, ErrorCode, Millis, Seq, SessionId, UserId};

/// A server-initiated frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "push", rename_all = "snake_case")]
pub enum Push {
    /// A message published to a channel the connection is subscribed to,
    /// or a direct message (channel `#<your user id>`).
    Message(Publication),
    /// A connection subscribed to a channel this connection is in.
    Join(Presence),
    /// A connection left a channel this connection is in (unsubscribed or
    /// disconnected).
    Leave(Presence),
    /// The server is about to close the connection with this code.
    Disconnect(Disconnect),
    /// Messages of a channel this connection is subscribed to could not
    /// be delivered, or the channel's epoch changed, while it stayed
    /// connected: the channel goes on after this position.
    Gap(Gap),
}

/// A published message as every subscriber receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publication {
    /// Where it was published (`#user` for a direct message to `user`).
    pub channel: ChannelName,
    /// Its place in the channel: consecutive, the same for every subscriber.
    pub seq: Seq,
    /// The user who sent it; absent when the application's server
    /// published it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<UserId>,
    /// The payload.
    pub data: Data,
    /// When the gateway accepted it, in milliseconds since the Unix epoch.
    pub time: Millis,
}

/// Where a channel goes on after messages were lost in it, or after its
/// epoch changed (see [`Push::Gap`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// The channel.
    pub channel: ChannelName,
    /// The channel's epoch from now on.
    pub epoch: String,
    /// Messages up to this `seq` (of `epoch`) that the connection has not
    /// received are lost to it; the next message has a higher `seq`.
    pub seq: Seq,
    /// [`ErrorCode::HistoryGap`] (messages lost, same epoch) or
    /// [`ErrorCode::EpochChanged`] (a new epoch: forget the old position).
    pub code: ErrorCode,
}

/// Who joined or left a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// The channel.
    pub channel: ChannelName,
    /// The user.
    pub user: UserId,
    /// The user's connection (a user may hold several).
    pub session: SessionId,
}
