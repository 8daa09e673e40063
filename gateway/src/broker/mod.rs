//! [`Broker`]: how a published message reaches every node's [`Hub`].
//!
//! A closed set of implementations behind one enum (the way socketioxide's
//! `Parser` dispatches), so nothing else in the gateway is generic over it.
//! Today there is the in-process [`LocalBroker`], the default for a single
//! node; a Redis pub/sub broker joins it for clusters.
//!
//! [`Hub`]: crate::hub::Hub

mod local;

pub use local::LocalBroker;

use tokenim_protocol::{ChannelName, Data, ErrorCode, Push, Seq, UserId};

/// A publish or subscription that could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The backend cannot be reached; the publisher should retry later.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
}

impl BrokerError {
    /// The reply error code for this failure.
    pub fn code(&self) -> ErrorCode {
        ErrorCode::Internal
    }
}

/// The node's broker.
#[derive(Debug)]
pub enum Broker {
    /// Everything in this process.
    Local(LocalBroker),
}

impl Broker {
    /// Publishes a message to a channel: gives it the channel's next
    /// sequence number and delivers it to every subscriber. Returns the
    /// sequence number.
    pub async fn publish(
        &self,
        channel: &ChannelName,
        from: Option<UserId>,
        data: Data,
    ) -> Result<Seq, BrokerError> {
        match self {
            Broker::Local(b) => Ok(b.publish(channel, from, data)),
        }
    }

    /// Delivers an ephemeral push (join, leave) to a channel's
    /// subscribers, without a sequence number.
    pub async fn publish_event(
        &self,
        channel: &ChannelName,
        push: &Push,
        except: Option<tokenim_protocol::SessionId>,
    ) -> Result<(), BrokerError> {
        match self {
            Broker::Local(b) => {
                b.publish_event(channel, push, except);
                Ok(())
            }
        }
    }

    /// Starts receiving a channel on this node (called for the first local
    /// subscriber).
    pub async fn subscribe(&self, _channel: &ChannelName) -> Result<(), BrokerError> {
        match self {
            Broker::Local(_) => Ok(()),
        }
    }

    /// Stops receiving a channel on this node (called after the last local
    /// subscriber left).
    pub async fn unsubscribe(&self, _channel: &ChannelName) -> Result<(), BrokerError> {
        match self {
            Broker::Local(_) => Ok(()),
        }
    }

    /// The latest sequence number of a channel (0 before its first message).
    pub async fn last_seq(&self, channel: &ChannelName) -> Result<Seq, BrokerError> {
        match self {
            Broker::Local(b) => Ok(b.last_seq(channel)),
        }
    }
}
