//! [`Broker`]: how a published message reaches every node's [`Hub`].
//!
//! A closed set of implementations behind one enum (the way socketioxide's
//! `Parser` dispatches), so nothing else in the gateway is generic over it:
//!
//! * [`LocalBroker`]: in-process, the default for a single node.
//! * [`RedisBroker`]: Redis pub/sub (sharded on a Redis Cluster), for
//!   several nodes acting as one.
//!
//! Both give every message of a channel the next sequence number before it
//! is delivered, answer presence, and pass the same contract tests.
//!
//! [`Hub`]: crate::hub::Hub

mod local;
pub mod redis;

pub use self::local::LocalBroker;
pub use self::redis::{PresenceMember, RedisBroker};

use tokenim_protocol::{
    ChannelName, Data, DisconnectCode, ErrorCode, PresenceEntry, Push, Seq, SessionId, UserId,
};

/// A publish or subscription that could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The backend cannot be reached or did not answer in time; nothing
    /// was published. The caller should retry later.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
}

impl BrokerError {
    /// The reply error code for this failure.
    pub fn code(&self) -> ErrorCode {
        ErrorCode::Unavailable
    }
}

/// The node's broker.
#[derive(Debug)]
pub enum Broker {
    /// Everything in this process.
    Local(LocalBroker),
    /// Through Redis.
    Redis(RedisBroker),
}

impl Broker {
    /// Publishes a message to a channel: gives it the channel's next
    /// sequence number and delivers it to every subscriber on every node.
    /// Returns the sequence number.
    pub async fn publish(
        &self,
        channel: &ChannelName,
        from: Option<UserId>,
        data: Data,
    ) -> Result<Seq, BrokerError> {
        match self {
            Broker::Local(b) => Ok(b.publish(channel, from, data)),
            Broker::Redis(b) => b.publish(channel, from, data).await,
        }
    }

    /// Delivers an ephemeral push (join, leave) to a channel's
    /// subscribers on every node, without a sequence number, skipping the
    /// local session `except`.
    pub async fn publish_event(
        &self,
        channel: &ChannelName,
        push: &Push,
        except: Option<SessionId>,
    ) -> Result<(), BrokerError> {
        match self {
            Broker::Local(b) => {
                b.publish_event(channel, push, except);
                Ok(())
            }
            Broker::Redis(b) => b.publish_event(channel, push, except).await,
        }
    }

    /// Closes every connection of `user`, on every node, with `code`.
    pub async fn disconnect_user(
        &self,
        user: &UserId,
        code: DisconnectCode,
    ) -> Result<(), BrokerError> {
        match self {
            Broker::Local(b) => {
                b.disconnect_user(user, code);
                Ok(())
            }
            Broker::Redis(b) => b.disconnect_user(user, code).await,
        }
    }

    /// Starts receiving a channel on this node (called for the first local
    /// subscriber); returns once messages published from now on will
    /// arrive.
    pub async fn subscribe(&self, channel: &ChannelName) {
        if let Broker::Redis(b) = self {
            b.reconcile(channel, true).await;
        }
    }

    /// Stops receiving a channel on this node (called after the last local
    /// subscriber left).
    pub async fn unsubscribe(&self, channel: &ChannelName) {
        if let Broker::Redis(b) = self {
            b.reconcile(channel, false).await;
        }
    }

    /// The latest sequence number of a channel (0 before its first message).
    pub async fn last_seq(&self, channel: &ChannelName) -> Result<Seq, BrokerError> {
        match self {
            Broker::Local(b) => Ok(b.last_seq(channel)),
            Broker::Redis(b) => b.last_seq(channel).await,
        }
    }

    /// Records that a local session joined a channel (for presence).
    pub async fn joined(&self, member: &PresenceMember) -> Result<(), BrokerError> {
        match self {
            Broker::Local(_) => Ok(()),
            Broker::Redis(b) => b.joined(member).await,
        }
    }

    /// Records that a local session left a channel (for presence).
    pub async fn left(&self, member: &PresenceMember) -> Result<(), BrokerError> {
        match self {
            Broker::Local(_) => Ok(()),
            Broker::Redis(b) => b.left(member).await,
        }
    }

    /// Who is subscribed to a channel, on every node: each user with its
    /// number of connections, sorted by user id.
    pub async fn presence(&self, channel: &ChannelName) -> Result<Vec<PresenceEntry>, BrokerError> {
        let users = match self {
            Broker::Local(b) => b.presence(channel),
            Broker::Redis(b) => b.presence(channel).await?,
        };
        Ok(count_connections(users))
    }

    /// Whether the broker can carry messages between nodes now (always
    /// for the local broker).
    pub fn is_ready(&self) -> bool {
        match self {
            Broker::Local(_) => true,
            Broker::Redis(b) => b.is_ready(),
        }
    }
}

/// One entry per user with the number of times it appears.
fn count_connections(mut users: Vec<UserId>) -> Vec<PresenceEntry> {
    users.sort();
    let mut entries: Vec<PresenceEntry> = Vec::new();
    for user in users {
        match entries.last_mut() {
            Some(last) if last.user == user => last.connections += 1,
            _ => entries.push(PresenceEntry {
                user,
                connections: 1,
            }),
        }
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_counts_connections_per_user() {
        let u = |s: &str| UserId::new(s).unwrap();
        let entries = count_connections(vec![u("bob"), u("alice"), u("bob")]);
        assert_eq!(
            entries,
            vec![
                PresenceEntry {
                    user: u("alice"),
                    connections: 1
                },
                PresenceEntry {
                    user: u("bob"),
                    connections: 2
                }
            ]
        );
    }
}
