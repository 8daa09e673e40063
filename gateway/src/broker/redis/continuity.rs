//! Continuity of every channel the node listens to: no live subscriber
//! misses a message silently.
//!
//! The subscriber task remembers, per channel, the epoch and `seq` of the
//! last message it handed to the hub ([`Channels`]). A message that comes
//! in turn (`seq` one above) is delivered; one at or below is a repeat and
//! dropped. Anything else means the node missed messages: a jump in `seq`
//! (the inbound queue overflowed, Redis lost a message on the way), a
//! message in another epoch (Redis lost the channel and it started over),
//! or, after the subscriber connection was re-established, a channel that
//! moved on while it was down. Then [`catch_up`] reads what was missed from the
//! channel's history and delivers it, in order, before anything newer.
//! What the history no longer holds, and a new epoch (Redis lost the
//! channel's data), are told to the channel's local sessions with a `gap`
//! push, so a client knows where the channel goes on instead of dropping
//! messages it takes for repeats.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use futures_util::future::join_all;
use tokenim_protocol::{ChannelName, ErrorCode, Gap, Publication, Push, Seq};

use super::history;
use super::{BrokerError, Commands, Shared};

/// Channels whose positions are read from Redis at once after a reconnect.
const POSITION_BATCH: usize = 256;

/// The last message delivered in a channel: its epoch (as a hash, since
/// epochs are only compared) and `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    epoch: u64,
    seq: Seq,
}

fn epoch_hash(epoch: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    epoch.hash(&mut hasher);
    hasher.finish()
}

/// Where a message from Redis falls in its channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Turn {
    /// The next one (or the channel's position is not known yet).
    Next,
    /// At or below the last delivered: already delivered.
    Repeat,
    /// Above the next, or in another epoch: messages in between were
    /// missed (or the channel started over).
    Gap,
}

/// The channels the subscriber connection listens to, each with the last
/// message delivered (`None` until its position is known).
#[derive(Debug, Default)]
pub(super) struct Channels(HashMap<ChannelName, Option<Cursor>>);

impl Channels {
    pub(super) fn contains(&self, channel: &ChannelName) -> bool {
        self.0.contains_key(channel)
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// Listens to `channel`, its position unknown until [`Channels::set`].
    pub(super) fn insert(&mut self, channel: ChannelName) {
        self.0.entry(channel).or_insert(None);
    }

    pub(super) fn remove(&mut self, channel: &ChannelName) -> bool {
        self.0.remove(channel).is_some()
    }

    /// Keeps only the channels `keep` wants.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&ChannelName) -> bool) {
        self.0.retain(|channel, _| keep(channel));
    }

    /// The channels, by name.
    pub(super) fn names(&self) -> Vec<ChannelName> {
        self.0.keys().cloned().collect()
    }

    /// Records the last message delivered in `channel`.
    pub(super) fn set(&mut self, channel: &ChannelName, seq: Seq, epoch: &str) {
        if let Some(cursor) = self.0.get_mut(channel) {
            *cursor = Some(Cursor {
                epoch: epoch_hash(epoch),
                seq,
            });
        }
    }

    /// Where a message with `seq` (in `epoch`, when the message says)
    /// falls in `channel`.
    pub(super) fn turn(&self, channel: &ChannelName, seq: Seq, epoch: Option<&str>) -> Turn {
        match self.0.get(channel) {
            Some(Some(cursor)) if epoch.is_some_and(|e| epoch_hash(e) != cursor.epoch) => Turn::Gap,
            Some(Some(cursor)) if seq <= cursor.seq => Turn::Repeat,
            Some(Some(cursor)) if seq > cursor.seq + 1 => Turn::Gap,
            _ => Turn::Next,
        }
    }

    /// Moves `channel` to `seq` in its epoch (a message was delivered).
    pub(super) fn advance(&mut self, channel: &ChannelName, seq: Seq) {
        if let Some(Some(cursor)) = self.0.get_mut(channel) {
            cursor.seq = seq;
        }
    }

    fn cursor(&self, channel: &ChannelName) -> Option<Cursor> {
        self.0.get(channel).copied().flatten()
    }
}

/// After (re)subscribing every channel: reads each channel's position
/// (in batches, concurrently) and catches up those that moved on since the
/// last message delivered. A channel whose position was not known yet
/// starts from where it is now.
pub(super) async fn catch_up_all(
    shared: &Shared,
    commands: &Commands,
    channels: &mut Channels,
) -> Result<(), BrokerError> {
    let names = channels.names();
    for batch in names.chunks(POSITION_BATCH) {
        let positions = join_all(
            batch
                .iter()
                .map(|channel| history::position(shared, commands, channel)),
        )
        .await;
        for (channel, position) in batch.iter().zip(positions) {
            let (latest, epoch) = position?;
            catch_up(
                shared,
                commands,
                channels,
                channel,
                latest,
                (latest, &epoch),
            )
            .await?;
        }
    }
    Ok(())
}

/// Delivers what `channel` missed up to `until` (the `seq` before a
/// message that came out of turn, or the channel's latest), given the
/// channel's `position` in Redis now: the kept messages from the history,
/// in order, and a `gap` push for each stretch the history no longer holds
/// or for a new epoch. Afterwards the channel stands at `until`.
pub(super) async fn catch_up(
    shared: &Shared,
    commands: &Commands,
    channels: &mut Channels,
    channel: &ChannelName,
    until: Seq,
    position: (Seq, &str),
) -> Result<(), BrokerError> {
    let (latest, epoch) = position;
    let Some(cursor) = channels.cursor(channel) else {
        // Nothing was delivered here yet: start from where it is.
        channels.set(channel, latest, epoch);
        return Ok(());
    };
    let new_epoch = cursor.epoch != epoch_hash(epoch);
    let from = if new_epoch { 0 } else { cursor.seq };
    if !new_epoch && until <= from {
        return Ok(());
    }
    shared.metrics.redis_missed.inc();
    let kept = read_kept(shared, commands, channel, from, until, epoch).await?;
    let mut gap = Telling {
        shared,
        channel,
        epoch,
        code: new_epoch.then_some(ErrorCode::EpochChanged),
    };
    let mut last = from;
    for publication in kept {
        if publication.seq > last + 1 {
            gap.tell(publication.seq - 1);
        }
        gap.flush(last);
        last = publication.seq;
        shared.metrics.redis_refilled.inc();
        shared
            .hub
            .deliver(channel, &Push::Message(publication), None);
    }
    if until > last {
        gap.tell(until);
    }
    gap.flush(until);
    channels.set(channel, until, epoch);
    Ok(())
}

/// The kept messages of `channel` after `from` up to `until`, oldest first,
/// read page by page (at most the history's length in all).
async fn read_kept(
    shared: &Shared,
    commands: &Commands,
    channel: &ChannelName,
    from: Seq,
    until: Seq,
    epoch: &str,
) -> Result<Vec<Publication>, BrokerError> {
    let page_size = shared.history.page.max(1);
    let mut kept: Vec<Publication> = Vec::new();
    let mut since = from;
    while since < until && kept.len() < shared.history.size {
        let page = history::read(shared, commands, channel, Some(since), page_size).await?;
        if page.epoch != epoch {
            // The epoch changed again meanwhile: start over on a fresh
            // connection rather than guess.
            return Err(BrokerError::Unavailable(format!(
                "the epoch of {channel} changed during a catch-up"
            )));
        }
        let before = kept.len();
        kept.extend(page.publications.into_iter().filter(|p| p.seq <= until));
        match kept.last() {
            Some(p) if kept.len() > before && page.more => since = p.seq,
            _ => break,
        }
    }
    Ok(kept)
}

/// The `gap` pushes of one catch-up: a stretch of lost messages, or a new
/// epoch, told once before the message that follows it.
struct Telling<'a> {
    shared: &'a Shared,
    channel: &'a ChannelName,
    epoch: &'a str,
    /// A new epoch not told yet (`EpochChanged`), or a stretch to tell.
    code: Option<ErrorCode>,
}

impl Telling<'_> {
    /// Messages up to `seq` are lost.
    fn tell(&mut self, seq: Seq) {
        self.send(seq, self.code.unwrap_or(ErrorCode::HistoryGap));
        self.code = None;
    }

    /// A new epoch no lost stretch has told yet is told at `seq`.
    fn flush(&mut self, seq: Seq) {
        if let Some(code) = self.code.take() {
            self.send(seq, code);
        }
    }

    fn send(&self, seq: Seq, code: ErrorCode) {
        let push = Push::Gap(Gap {
            channel: self.channel.clone(),
            epoch: self.epoch.to_owned(),
            seq,
            code,
        });
        let told = self.shared.hub.deliver(self.channel, &push, None);
        self.shared.metrics.redis_gaps_told.inc_by(told as u64);
    }
}
