//! One subscriber: subscribe, then read until told to stop, scanning each
//! message for its `seq` and send stamp, tracking sequence numbers and
//! recording publish-to-delivery latency into a [`Batch`].
//!
//! This is the receive path the generator's capacity depends on: one task
//! per connection, one `read` per batch of frames into the connection's
//! buffer ([`Conn::read_some`]), a byte scan per message
//! ([`crate::wire::scan`]) with no allocation, one clock reading and one
//! relaxed atomic store per batch (the highest sequence seen, which the
//! drain phase watches), and a lock once per
//! [`crate::report::latency::BATCH`] samples. With [`Shared::verify`]
//! every message is also decoded in full and compared with the scan.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokenim_protocol::{ChannelName, Codec};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::seq::SeqTracker;
use crate::report::{Batch, Recorder};
use crate::wire::{self, Conn, Reply, TargetKind, eio, scan};

/// A slot value meaning "not owed anything now" (not subscribed yet, or
/// gone): the drain phase does not wait for it.
pub const IDLE: u64 = u64::MAX;

/// Wall-clock microseconds from a monotonic clock: one Unix reading at
/// start plus `Instant` time since, so a clock step mid-run cannot bend a
/// latency.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: Instant,
    base_unix_us: u64,
}

impl Clock {
    /// Reads the wall clock once.
    pub fn new() -> Clock {
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        Clock {
            base: Instant::now(),
            base_unix_us: unix,
        }
    }

    /// Unix microseconds at `t`.
    #[inline]
    pub fn at(&self, t: Instant) -> u64 {
        self.base_unix_us + t.saturating_duration_since(self.base).as_micros() as u64
    }

    /// When the clock was read.
    pub fn base(&self) -> Instant {
        self.base
    }

    /// Unix microseconds now.
    #[inline]
    pub fn now_us(&self) -> u64 {
        self.at(Instant::now())
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// What every subscriber shares with the scenario.
#[derive(Debug)]
pub struct Shared {
    /// The channel.
    pub channel: ChannelName,
    /// The codec.
    pub codec: Codec,
    /// Publish-to-delivery latency (µs from the intended send time).
    pub delivery: Recorder,
    /// Per subscriber, the highest sequence seen, or [`IDLE`].
    pub max_seen: Box<[AtomicU64]>,
    /// Subscribers whose `subscribe` succeeded.
    pub ready: AtomicU64,
    /// Subscribers whose `subscribe` failed (or timed out).
    pub subscribe_failed: AtomicU64,
    /// Frames that were neither our messages nor replies (join, leave,
    /// foreign payloads).
    pub ignored: AtomicU64,
    /// Each finished subscriber's account.
    pub results: Mutex<Vec<Outcome>>,
    /// The shared clock.
    pub clock: Clock,
    /// Bound on the `subscribe` round trip.
    pub subscribe_timeout: Duration,
    /// Also decode every message in full and compare it with the scan
    /// (slow: for tests and `--verify`).
    pub verify: bool,
    /// Messages checked by `verify`.
    pub verified: AtomicU64,
    /// Messages where the scan and the full decode disagreed.
    pub mismatches: AtomicU64,
    /// tokenim, or Socket.IO (subscribe by event, `seq` and stamp read
    /// from the publisher's payload).
    pub kind: TargetKind,
    /// Publishers: on Socket.IO each numbers its own messages, and only
    /// its own order is owed.
    pub publishers: usize,
}

impl Shared {
    /// Shared state for `subscribers` subscribers.
    pub fn new(
        channel: ChannelName,
        codec: Codec,
        subscribers: usize,
        subscribe_timeout: Duration,
    ) -> Shared {
        Shared {
            channel,
            codec,
            delivery: Recorder::new(16),
            max_seen: (0..subscribers).map(|_| AtomicU64::new(IDLE)).collect(),
            ready: AtomicU64::new(0),
            subscribe_failed: AtomicU64::new(0),
            ignored: AtomicU64::new(0),
            results: Mutex::new(Vec::new()),
            clock: Clock::new(),
            subscribe_timeout,
            verify: false,
            verified: AtomicU64::new(0),
            mismatches: AtomicU64::new(0),
            kind: TargetKind::Tokenim,
            publishers: 1,
        }
    }

    fn push(&self, outcome: Outcome) {
        self.results
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(outcome);
    }
}

/// How a subscriber's run ended, and what it received.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Its index.
    pub index: usize,
    /// What arrived.
    pub seqs: SeqTracker,
    /// Closed by the server (or the network) before the end: the close
    /// code, `None` without a close frame.
    pub closed: Option<Option<u16>>,
    /// Closed on purpose by `--drop-subscribers`.
    pub dropped: bool,
}

/// What a subscriber keeps while it reads.
struct Reading<'a> {
    shared: &'a Shared,
    seqs: SeqTracker,
    batch: Batch,
    /// The clock reading for the current batch of frames.
    now: Option<u64>,
    ignored: u64,
    verified: u64,
    mismatches: u64,
}

impl Reading<'_> {
    /// One message: its `seq` and, for a stamp, its latency.
    #[inline]
    fn message(&mut self, bytes: &[u8]) {
        let shared = self.shared;
        let socketio = shared.kind == TargetKind::Socketio;
        if shared.verify {
            self.verified += 1;
            let agrees = if socketio {
                eio::agrees(bytes)
            } else {
                scan::agrees(shared.codec, bytes)
            };
            self.mismatches += u64::from(!agrees);
        }
        let scanned = if socketio {
            eio::message(bytes)
        } else {
            scan::message(shared.codec, bytes)
        };
        match scanned {
            Some(m) if m.channel == shared.channel.as_str().as_bytes() => {
                self.seqs.observe(m.seq);
                if let Some(t) = m.t {
                    let now = *self.now.get_or_insert_with(|| shared.clock.now_us());
                    self.batch
                        .record(&shared.delivery, now.saturating_sub(t), now);
                }
            }
            _ => self.ignored += 1,
        }
    }
}

/// Runs subscriber `index` on `conn` until `stop` fires (or `drop` does,
/// for the subscribers chosen to be dropped mid-run, when `drop_signal`
/// fires).
pub async fn run(
    index: usize,
    mut conn: Conn,
    shared: Arc<Shared>,
    mut stop: oneshot::Receiver<()>,
    drop_signal: Option<CancellationToken>,
) {
    let codec = shared.codec;
    let kind = shared.kind;
    let subscribed = async {
        if kind == TargetKind::Socketio {
            // No sequence numbers: every subscriber is owed every message
            // the publisher numbers from 1 (all subscribe before it starts).
            conn.send(&eio::subscribe(1, shared.channel.as_str()))
                .await
                .map_err(|_| wire::DialError::CLOSED)?;
            return Ok(match eio::next_ack(&mut conn, 1).await? {
                true => Reply::Ok(Some(0)),
                false => Reply::Error(0),
            });
        }
        conn.send(&wire::subscribe(codec, 1, &shared.channel))
            .await
            .map_err(|_| wire::DialError::CLOSED)?;
        wire::next_reply(&mut conn, 1).await
    };
    let Ok(Ok(Reply::Ok(Some(base)))) =
        tokio::time::timeout(shared.subscribe_timeout, subscribed).await
    else {
        shared.subscribe_failed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let slot = &shared.max_seen[index];
    slot.store(base, Ordering::Relaxed);
    shared.ready.fetch_add(1, Ordering::Relaxed);

    let mut reading = Reading {
        shared: &shared,
        seqs: match kind {
            TargetKind::Tokenim => SeqTracker::new(base),
            TargetKind::Socketio => SeqTracker::with_lanes(base, shared.publishers),
        },
        batch: shared.delivery.batch(index),
        now: None,
        ignored: 0,
        verified: 0,
        mismatches: 0,
    };
    let mut closed = None;
    let mut dropped = false;
    let dropping = async {
        match drop_signal {
            Some(token) => token.cancelled_owned().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(dropping);
    loop {
        reading.now = None;
        let read = tokio::select! {
            biased;
            read = conn.read_some(|m| reading.message(m)) => read,
            _ = &mut stop => break,
            () = &mut dropping => {
                dropped = true;
                break;
            }
        };
        slot.store(reading.seqs.max(), Ordering::Relaxed);
        if let Err(e) = read {
            closed = Some(e.close_code());
            break;
        }
    }
    let Reading {
        seqs,
        mut batch,
        ignored,
        verified,
        mismatches,
        ..
    } = reading;
    batch.flush(&shared.delivery);
    slot.store(IDLE, Ordering::Relaxed);
    shared.ignored.fetch_add(ignored, Ordering::Relaxed);
    shared.verified.fetch_add(verified, Ordering::Relaxed);
    shared.mismatches.fetch_add(mismatches, Ordering::Relaxed);
    shared.push(Outcome {
        index,
        seqs,
        closed,
        dropped,
    });
    if closed.is_none() {
        conn.close(Duration::from_secs(2)).await;
    }
}
