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
mod log;
pub mod redis;

pub use self::local::LocalBroker;
pub use self::redis::{PresenceMember, RedisBroker};

use tokenim_protocol::{
    ChannelName, Data, DisconnectCode, ErrorCode, PresenceEntry, Publication, Push, Seq, SessionId,
    StreamPosition, UserId,
};

/// What a publish did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// The message's sequence (the earlier one's, for a duplicate).
    pub seq: Seq,
    /// The `msg_id` was seen before: nothing new was published.
    pub duplicate: bool,
}

/// A publish on its way: its place among the node's publishes is fixed,
/// and awaiting it gives what the publish did. Awaiting it is only
/// waiting: the work goes on without it, so a session can hold several.
#[derive(Debug)]
pub struct PendingPublish(Pending);

#[derive(Debug)]
enum Pending {
    /// Already decided (the in-process broker, or a refusal).
    Done(Option<Result<Published, BrokerError>>),
    /// Queued for Redis.
    Queued(tokio::sync::oneshot::Receiver<Result<Published, BrokerError>>),
}

impl PendingPublish {
    fn done(result: Result<Published, BrokerError>) -> Self {
        Self(Pending::Done(Some(result)))
    }

    pub(crate) fn failed(e: BrokerError) -> Self {
        Self::done(Err(e))
    }

    pub(crate) fn queued(
        outcome: tokio::sync::oneshot::Receiver<Result<Published, BrokerError>>,
    ) -> Self {
        Self(Pending::Queued(outcome))
    }
}

impl Future for PendingPublish {
    type Output = Result<Published, BrokerError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match &mut self.0 {
            Pending::Done(result) => {
                std::task::Poll::Ready(result.take().expect("PendingPublish polled after done"))
            }
            Pending::Queued(outcome) => std::pin::Pin::new(outcome).poll(cx).map(|r| {
                r.unwrap_or_else(|_| {
                    Err(BrokerError::Unconfirmed(
                        "the node stopped before redis answered".into(),
                    ))
                })
            }),
        }
    }
}

/// A page of a channel's history.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// The channel's latest sequence.
    pub seq: Seq,
    /// The channel's epoch.
    pub epoch: String,
    /// Kept messages, oldest first.
    pub publications: Vec<Publication>,
    /// More messages follow the last one.
    pub more: bool,
}

/// What a resuming subscriber gets.
#[derive(Debug, Clone)]
pub struct Recovery {
    /// The channel's latest sequence and epoch, and the recovered messages.
    pub page: Page,
    /// Everything after the client's position is in `page.publications`.
    pub recovered: bool,
    /// Why not, when not.
    pub gap: Option<ErrorCode>,
}

/// A publish or subscription that could not be carried out.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BrokerError {
    /// The backend cannot be reached or did not answer in time; nothing
    /// was published. The caller should retry later.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    /// A publish was handed to Redis but no answer came in time (or the
    /// connection broke before it did): it may have been published.
    /// Retrying with the same `msg_id` tells.
    #[error("publish outcome unknown: {0}")]
    Unconfirmed(String),
}

impl BrokerError {
    /// The reply error code for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            BrokerError::Unavailable(_) => ErrorCode::Unavailable,
            BrokerError::Unconfirmed(_) => ErrorCode::OutcomeUnknown,
        }
    }
}

/// The node's broker.
// One per node, built once and shared: the size of a variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Broker {
    /// Everything in this process.
    Local(LocalBroker),
    /// Through Redis.
    Redis(RedisBroker),
}

impl Broker {
    /// Publishes a message to a channel: gives it the channel's next
    /// sequence number, keeps it in the channel's history and delivers it
    /// to every subscriber on every node. A `msg_id` seen in the
    /// idempotency window publishes nothing and returns the first
    /// sequence.
    pub async fn publish(
        &self,
        channel: &ChannelName,
        from: Option<UserId>,
        data: Data,
        msg_id: Option<&str>,
    ) -> Result<Published, BrokerError> {
        self.queue_publish(channel, from, data, msg_id).await.await
    }

    /// [`Broker::publish`] in two steps: returns once the message's place
    /// among this node's publishes is fixed (publishes queued one after
    /// the other keep that order in their channel), with what to await for
    /// the outcome. The caller may queue more in the meantime.
    pub async fn queue_publish(
        &self,
        channel: &ChannelName,
        from: Option<UserId>,
        data: Data,
        msg_id: Option<&str>,
    ) -> PendingPublish {
        match self {
            Broker::Local(b) => PendingPublish::done(Ok(b.publish(channel, from, data, msg_id))),
            Broker::Redis(b) => b.queue_publish(channel, from, data, msg_id).await,
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

    /// The latest sequence number (0 before the first message) and the
    /// epoch of a channel.
    pub async fn position(&self, channel: &ChannelName) -> Result<(Seq, String), BrokerError> {
        match self {
            Broker::Local(b) => Ok(b.position(channel)),
            Broker::Redis(b) => b.position(channel).await,
        }
    }

    /// Up to `limit` kept messages after `since`, or the last `limit`.
    pub async fn history(
        &self,
        channel: &ChannelName,
        since: Option<Seq>,
        limit: usize,
    ) -> Result<Page, BrokerError> {
        match self {
            Broker::Local(b) => Ok(b.history(channel, since, limit)),
            Broker::Redis(b) => b.history(channel, since, limit).await,
        }
    }

    /// Everything after `since` that is still kept (at most `limit`), and
    /// whether that is everything that was published after it.
    pub async fn recover(
        &self,
        channel: &ChannelName,
        since: &StreamPosition,
        limit: usize,
    ) -> Result<Recovery, BrokerError> {
        let mut page = self.history(channel, Some(since.seq), limit).await?;
        // A client that saw nothing (seq 0) can be served from any epoch.
        let same_epoch = page.epoch == since.epoch || since.seq == 0;
        // A position beyond the channel's latest was never reached in this
        // epoch: the client's numbering is void, as after an epoch change
        // (taken for recovered, it would drop every message up to it).
        let ahead = since.seq > page.seq;
        let gap = if !same_epoch || ahead {
            page.publications.clear();
            page.more = false;
            Some(ErrorCode::EpochChanged)
        } else if page.more
            || (since.seq < page.seq
                && page
                    .publications
                    .first()
                    .is_none_or(|p| p.seq != since.seq + 1))
        {
            // Messages after the position are gone, or more than one reply holds.
            Some(ErrorCode::HistoryGap)
        } else {
            None
        };
        Ok(Recovery {
            page,
            recovered: gap.is_none(),
            gap,
        })
    }

    /// The last position of `user`'s personal channel the user confirmed.
    pub async fn acked(&self, user: &UserId) -> Result<Option<StreamPosition>, BrokerError> {
        match self {
            Broker::Local(b) => Ok(b.acked(user)),
            Broker::Redis(b) => b.acked(user).await,
        }
    }

    /// Records that `user` received its personal channel up to `position`
    /// (a lower position in the same epoch changes nothing). Returns the
    /// position now recorded.
    pub async fn ack(
        &self,
        user: &UserId,
        position: StreamPosition,
    ) -> Result<StreamPosition, BrokerError> {
        match self {
            Broker::Local(b) => Ok(b.ack(user, position)),
            Broker::Redis(b) => b.ack(user, position).await,
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
