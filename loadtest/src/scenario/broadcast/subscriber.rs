//! One subscriber: subscribe, then read until told to stop, decoding each
//! frame's lean view, tracking sequence numbers and recording
//! publish-to-delivery latency into a [`Batch`].
//!
//! This is the receive path the generator's capacity depends on: one task
//! per connection, no allocation per message beyond what tungstenite does,
//! a lock once per [`crate::report::latency::BATCH`] samples, and one
//! relaxed atomic store per message (the highest sequence seen, which the
//! drain phase watches).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokenim_protocol::{ChannelName, Codec};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::seq::SeqTracker;
use crate::report::Recorder;
use crate::wire::{self, PushKind, Reply, Ws};

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

/// Runs subscriber `index` on `ws` until `stop` fires (or `drop` does, for
/// the subscribers chosen to be dropped mid-run, when `drop_signal` fires).
pub async fn run(
    index: usize,
    mut ws: Ws,
    shared: Arc<Shared>,
    mut stop: oneshot::Receiver<()>,
    drop_signal: Option<CancellationToken>,
) {
    let codec = shared.codec;
    let subscribed = async {
        ws.send(wire::subscribe(codec, 1, &shared.channel)).await?;
        wire::next_reply(&mut ws, codec, 1).await
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

    let mut seqs = SeqTracker::new(base);
    let mut batch = shared.delivery.batch(index);
    let mut ignored = 0u64;
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
        tokio::select! {
            biased;
            message = ws.next() => {
                let Some(Ok(message)) = message else {
                    closed = Some(None);
                    break;
                };
                let bytes = match &message {
                    Message::Text(t) => t.as_bytes(),
                    Message::Binary(b) => b,
                    Message::Close(frame) => {
                        closed = Some(frame.as_ref().map(|f| u16::from(f.code)));
                        break;
                    }
                    _ => continue,
                };
                match wire::decode(codec, bytes) {
                    Some(frame) if frame.push == Some(PushKind::Message) => {
                        if let Some(seq) = frame.seq {
                            seqs.observe(seq);
                            slot.store(seqs.max(), Ordering::Relaxed);
                        }
                        if let Some(stamp) = frame.data {
                            let now = shared.clock.now_us();
                            batch.record(&shared.delivery, now.saturating_sub(stamp.t), now);
                        }
                    }
                    _ => ignored += 1,
                }
            }
            _ = &mut stop => break,
            () = &mut dropping => {
                dropped = true;
                break;
            }
        }
    }
    batch.flush(&shared.delivery);
    slot.store(IDLE, Ordering::Relaxed);
    shared.ignored.fetch_add(ignored, Ordering::Relaxed);
    shared.push(Outcome {
        index,
        seqs,
        closed,
        dropped,
    });
    if closed.is_none() {
        wire::close(ws, Duration::from_secs(2)).await;
    }
}
