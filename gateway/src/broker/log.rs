//! [`ChannelLog`]: one channel's sequence counter, epoch and bounded
//! history, kept in memory by the in-process broker.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use tokenim_protocol::{Publication, Seq};

use crate::config::HistoryConfig;

/// A channel's state on a single node.
#[derive(Debug)]
pub(super) struct ChannelLog {
    seq: Seq,
    epoch: String,
    /// Oldest first, each with the instant it was appended.
    entries: VecDeque<(Instant, Publication)>,
    /// `msg_id` → sequence, and the order the ids arrived in (for expiry).
    ids: HashMap<String, Seq>,
    id_order: VecDeque<(Instant, String)>,
    last_append: Instant,
}

/// A page of history.
#[derive(Debug, Default)]
pub(super) struct LogPage {
    pub(super) publications: Vec<Publication>,
    pub(super) more: bool,
}

impl ChannelLog {
    pub(super) fn new(epoch: String) -> Self {
        Self {
            seq: 0,
            epoch,
            entries: VecDeque::new(),
            ids: HashMap::new(),
            id_order: VecDeque::new(),
            last_append: Instant::now(),
        }
    }

    pub(super) fn seq(&self) -> Seq {
        self.seq
    }

    pub(super) fn epoch(&self) -> &str {
        &self.epoch
    }

    /// The sequence an earlier publish with this `msg_id` got, if it is
    /// still remembered.
    pub(super) fn duplicate(&mut self, msg_id: &str, config: &HistoryConfig) -> Option<Seq> {
        self.forget_ids(config.idempotency_window, Instant::now());
        self.ids.get(msg_id).copied()
    }

    /// Takes the next sequence number.
    pub(super) fn next_seq(&mut self) -> Seq {
        self.seq += 1;
        self.seq
    }

    /// Keeps a published message (and its `msg_id`).
    pub(super) fn append(
        &mut self,
        publication: Publication,
        msg_id: Option<&str>,
        config: &HistoryConfig,
    ) {
        let now = Instant::now();
        self.last_append = now;
        if let Some(id) = msg_id {
            self.ids.insert(id.to_owned(), publication.seq);
            self.id_order.push_back((now, id.to_owned()));
            while self.id_order.len() > config.idempotency_keys {
                if let Some((_, old)) = self.id_order.pop_front() {
                    self.ids.remove(&old);
                }
            }
        }
        if config.size > 0 {
            self.entries.push_back((now, publication));
        }
        self.trim(config, now);
    }

    /// Up to `limit` kept messages above `since` (or the last `limit`).
    pub(super) fn page(
        &mut self,
        since: Option<Seq>,
        limit: usize,
        config: &HistoryConfig,
    ) -> LogPage {
        self.trim(config, Instant::now());
        let kept: Vec<&Publication> = match since {
            Some(since) => self
                .entries
                .iter()
                .map(|(_, p)| p)
                .filter(|p| p.seq > since)
                .collect(),
            None => {
                let skip = self.entries.len().saturating_sub(limit);
                self.entries.iter().skip(skip).map(|(_, p)| p).collect()
            }
        };
        LogPage {
            more: kept.len() > limit,
            publications: kept.into_iter().take(limit).cloned().collect(),
        }
    }

    /// Whether nothing happened here for longer than the history keeps
    /// messages: the log can be dropped (a new one gets a new epoch).
    pub(super) fn is_stale(&self, config: &HistoryConfig, now: Instant) -> bool {
        now.duration_since(self.last_append) > config.ttl.max(config.idempotency_window)
    }

    fn trim(&mut self, config: &HistoryConfig, now: Instant) {
        while self.entries.len() > config.size {
            self.entries.pop_front();
        }
        while self
            .entries
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > config.ttl)
        {
            self.entries.pop_front();
        }
    }

    fn forget_ids(&mut self, window: Duration, now: Instant) {
        while let Some((at, _)) = self.id_order.front() {
            if now.duration_since(*at) <= window {
                break;
            }
            if let Some((_, id)) = self.id_order.pop_front() {
                self.ids.remove(&id);
            }
        }
    }
}
