//! [`Hub`]: this node's channels and the local sessions subscribed to each.
//!
//! The hub never writes to sockets. [`Hub::deliver`] encodes a push at most
//! once per codec and queues the same bytes on every subscriber's bounded
//! outbound queue; a full queue marks that session as a slow consumer
//! without affecting the others. The broker decides *what* reaches this
//! node; the hub decides *which local sessions* get it.
//!
//! * [`SessionHandle`]: what the hub holds for each local session.
//! * [`outbound`]: [`Outbound`], the bounded queue fan-out writes into and
//!   the session's writer drains.
//! * `subscribers`: the local sessions of one channel.

mod handle;
pub mod outbound;
mod subscribers;

use std::sync::Arc;

use dashmap::DashMap;
use tokenim_protocol::{ChannelName, DisconnectCode, Push, SessionId, UserId};

pub use self::handle::SessionHandle;
pub use self::outbound::{Outbound, PushError};
use self::subscribers::Subscribers;
use crate::metrics::Metrics;
use crate::wire::EncodeOnce;

/// Channel → local subscribers.
#[derive(Debug)]
pub struct Hub {
    channels: DashMap<ChannelName, Subscribers>,
    metrics: Metrics,
    max_join_leave: usize,
}

impl Hub {
    /// An empty hub that pushes joins and leaves only in channels with at
    /// most `max_join_leave` local subscribers.
    pub fn new(metrics: Metrics, max_join_leave: usize) -> Self {
        Self {
            channels: DashMap::new(),
            metrics,
            max_join_leave,
        }
    }

    /// Adds a session to a channel. Returns `true` if it is the channel's
    /// first local subscriber (so the broker must start listening).
    pub fn subscribe(&self, channel: &ChannelName, session: &Arc<SessionHandle>) -> bool {
        let mut entry = self.channels.entry(channel.clone()).or_default();
        let first = entry.is_empty();
        if entry.insert(session) {
            self.metrics.subscriptions.inc();
        }
        if first {
            self.metrics.channels.inc();
        }
        first
    }

    /// Removes a session from a channel. Returns `true` if it was the last
    /// local subscriber (so the broker may stop listening).
    pub fn unsubscribe(&self, channel: &ChannelName, session: SessionId) -> bool {
        let removed = self.channels.remove_if_mut(channel, |_, subs| {
            if subs.remove(session) {
                self.metrics.subscriptions.dec();
            }
            subs.is_empty()
        });
        if removed.is_some() {
            self.metrics.channels.dec();
        }
        removed.is_some()
    }

    /// Local subscribers of a channel.
    pub fn subscriber_count(&self, channel: &ChannelName) -> usize {
        self.channels.get(channel).map_or(0, |s| s.len())
    }

    /// Every channel with local subscribers (personal channels included).
    pub fn channels(&self) -> Vec<ChannelName> {
        self.channels.iter().map(|e| e.key().clone()).collect()
    }

    /// The local subscribers of a channel: session and user.
    pub fn members(&self, channel: &ChannelName) -> Vec<(SessionId, UserId)> {
        self.channels
            .get(channel)
            .map(|subs| subs.iter().map(|s| (s.id, s.user.clone())).collect())
            .unwrap_or_default()
    }

    /// Asks every local session of `user` to close with `code`.
    pub fn close_user(&self, user: &UserId, code: DisconnectCode) {
        if let Some(subs) = self.channels.get(&user.personal_channel()) {
            for session in subs.iter() {
                session.outbound.close(code);
            }
        }
    }

    /// Queues a join or leave like [`Hub::deliver`], unless the channel is
    /// larger than the join/leave limit here.
    pub fn deliver_event(
        &self,
        channel: &ChannelName,
        push: &Push,
        except: Option<SessionId>,
    ) -> usize {
        if self.subscriber_count(channel) > self.max_join_leave {
            return 0;
        }
        self.deliver(channel, push, except)
    }

    /// Queues `push` on every local subscriber of `channel` except
    /// `except`. Returns how many sessions it was queued on.
    pub fn deliver(&self, channel: &ChannelName, push: &Push, except: Option<SessionId>) -> usize {
        let Some(subs) = self.channels.get(channel) else {
            return 0;
        };
        let mut frames = EncodeOnce::new(push);
        let mut delivered = 0;
        for session in subs.iter() {
            if Some(session.id) == except {
                continue;
            }
            match frames.get(session.codec) {
                Ok(frame) => {
                    if session.outbound.push(frame).is_ok() {
                        delivered += 1;
                    }
                }
                Err(e) => {
                    tracing::error!(channel = %channel, error = %e, "push could not be encoded");
                    return delivered;
                }
            }
        }
        self.metrics.deliveries.inc_by(delivered as u64);
        delivered
    }
}
