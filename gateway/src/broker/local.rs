//! [`LocalBroker`]: fan-out inside one process, the default when no Redis is
//! configured. Publishing goes straight into the [`Hub`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use dashmap::DashMap;
use tokenim_protocol::{
    ChannelName, Data, DisconnectCode, Publication, Push, Seq, SessionId, StreamPosition, UserId,
};

use super::log::ChannelLog;
use super::{Page, Published};
use crate::config::HistoryConfig;
use crate::hub::Hub;
use crate::metrics::Metrics;

/// Publishes between two sweeps for logs idle past the history TTL.
const SWEEP_EVERY: u64 = 4_096;

/// In-process broker: a [`ChannelLog`] per channel, delivery to the hub.
///
/// Each channel's log sits behind its own mutex, held while the message is
/// queued to subscribers, so concurrent publishers to one channel are
/// delivered in sequence order. Logs idle for longer than the history
/// keeps messages are dropped; the channel then starts a new epoch.
#[derive(Debug)]
pub struct LocalBroker {
    hub: Arc<Hub>,
    logs: DashMap<ChannelName, Arc<Mutex<ChannelLog>>>,
    acks: DashMap<UserId, StreamPosition>,
    config: HistoryConfig,
    metrics: Metrics,
    node_id: String,
    publishes: AtomicU64,
}

impl LocalBroker {
    /// A broker delivering into `hub`.
    pub fn new(hub: Arc<Hub>, metrics: Metrics, config: HistoryConfig, node_id: String) -> Self {
        Self {
            hub,
            logs: DashMap::new(),
            acks: DashMap::new(),
            config,
            metrics,
            node_id,
            publishes: AtomicU64::new(0),
        }
    }

    fn log(&self, channel: &ChannelName) -> Arc<Mutex<ChannelLog>> {
        let epoch = || format!("{}-{:x}", self.node_id, crate::clock::unix_millis());
        Arc::clone(
            &self
                .logs
                .entry(channel.clone())
                .or_insert_with(|| Arc::new(Mutex::new(ChannelLog::new(epoch())))),
        )
    }

    pub(super) fn publish(
        &self,
        channel: &ChannelName,
        from: Option<UserId>,
        data: Data,
        msg_id: Option<&str>,
    ) -> Published {
        let log = self.log(channel);
        let mut log = log.lock().expect("log lock");
        if let Some(seq) = msg_id.and_then(|id| log.duplicate(id, &self.config)) {
            return Published {
                seq,
                duplicate: true,
            };
        }
        let seq = log.next_seq();
        let publication = Publication {
            channel: channel.clone(),
            seq,
            from,
            data,
            time: crate::clock::unix_millis(),
        };
        let push = Push::Message(publication);
        self.hub.deliver(channel, &push, None);
        let Push::Message(publication) = push else {
            unreachable!("built as a message above")
        };
        log.append(publication, msg_id, &self.config);
        drop(log);
        self.metrics.publications.inc();
        if self.publishes.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep();
        }
        Published {
            seq,
            duplicate: false,
        }
    }

    /// Drops logs idle past the history TTL.
    fn sweep(&self) {
        let now = Instant::now();
        self.logs
            .retain(|_, log| !log.lock().expect("log lock").is_stale(&self.config, now));
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

    pub(super) fn position(&self, channel: &ChannelName) -> (Seq, String) {
        let log = self.log(channel);
        let log = log.lock().expect("log lock");
        (log.seq(), log.epoch().to_owned())
    }

    pub(super) fn history(&self, channel: &ChannelName, since: Option<Seq>, limit: usize) -> Page {
        let log = self.log(channel);
        let mut log = log.lock().expect("log lock");
        let page = log.page(since, limit, &self.config);
        Page {
            seq: log.seq(),
            epoch: log.epoch().to_owned(),
            publications: page.publications,
            more: page.more,
        }
    }

    pub(super) fn acked(&self, user: &UserId) -> Option<StreamPosition> {
        self.acks.get(user).map(|p| p.clone())
    }

    pub(super) fn ack(&self, user: &UserId, position: StreamPosition) -> StreamPosition {
        let mut entry = self
            .acks
            .entry(user.clone())
            .or_insert_with(|| position.clone());
        if entry.epoch != position.epoch || entry.seq < position.seq {
            *entry = position;
        }
        entry.clone()
    }
}
