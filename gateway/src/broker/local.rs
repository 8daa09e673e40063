//! [`LocalBroker`]: fan-out inside one process, the default when no Redis is
//! configured. Publishing goes straight into the [`Hub`].

use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use tokenim_protocol::{
    ChannelName, Data, DisconnectCode, Publication, Push, Seq, SessionId, UserId,
};

use crate::hub::Hub;
use crate::metrics::Metrics;

/// In-process broker: sequence numbers per channel, delivery to the hub.
///
/// Each channel's counter sits behind its own mutex, held while the
/// message is queued to subscribers, so concurrent publishers to one
/// channel are delivered in sequence order. The counter map grows with the
/// number of distinct channels ever published to; history and its bounds
/// arrive with the store.
#[derive(Debug)]
pub struct LocalBroker {
    hub: Arc<Hub>,
    seqs: DashMap<ChannelName, Arc<Mutex<Seq>>>,
    metrics: Metrics,
}

impl LocalBroker {
    /// A broker delivering into `hub`.
    pub fn new(hub: Arc<Hub>, metrics: Metrics) -> Self {
        Self {
            hub,
            seqs: DashMap::new(),
            metrics,
        }
    }

    pub(super) fn publish(&self, channel: &ChannelName, from: Option<UserId>, data: Data) -> Seq {
        let counter = Arc::clone(&self.seqs.entry(channel.clone()).or_default());
        let mut seq = counter.lock().expect("seq lock");
        *seq += 1;
        let push = Push::Message(Publication {
            channel: channel.clone(),
            seq: *seq,
            from,
            data,
            time: crate::unix_millis(),
        });
        self.hub.deliver(channel, &push, None);
        self.metrics.publications.inc();
        *seq
    }

    pub(super) fn publish_event(
        &self,
        channel: &ChannelName,
        push: &Push,
        except: Option<SessionId>,
    ) {
        self.hub.deliver_event(channel, push, except);
    }

    pub(super) fn disconnect_user(&self, user: &UserId, code: DisconnectCode) {
        self.hub.close_user(user, code);
    }

    pub(super) fn presence(&self, channel: &ChannelName) -> Vec<UserId> {
        self.hub
            .members(channel)
            .into_iter()
            .map(|(_, user)| user)
            .collect()
    }

    pub(super) fn last_seq(&self, channel: &ChannelName) -> Seq {
        self.seqs
            .get(channel)
            .map_or(0, |c| *c.lock().expect("seq lock"))
    }
}
