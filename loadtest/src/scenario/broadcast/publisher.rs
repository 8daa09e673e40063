//! One publisher: sends `publish` commands on a fixed schedule and counts
//! the replies.
//!
//! Message `k` of publisher `p` is *meant* to go out at
//! `start + p/R + k·P/R` (total rate `R` over `P` publishers, interleaved).
//! Its payload carries that intended time, so a publisher that falls
//! behind (a slow socket, a busy generator) still charges the delay to the
//! latency it causes instead of hiding it: no coordinated omission. When
//! behind, every overdue message is written at once and flushed together.
//! How late each send actually was is recorded as `send_lag`. Publishers
//! run on a thread of their own (see `sending`), which lets them finish
//! each wait with a precise sleep instead of the runtime's millisecond
//! timer tick.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use tokenim_protocol::{ChannelName, Codec};
use tokio_util::sync::CancellationToken;

use super::subscriber::Clock;
use crate::report::Recorder;
use crate::wire::{self, Conn, Reply, Stamp, TargetKind, eio};

/// How long before a send is due the runtime's (millisecond) timer is
/// set to fire; a precise sleep covers the rest.
const TIMER_SLACK: Duration = Duration::from_millis(1);

/// One publisher's schedule.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Publisher index (goes into each message).
    pub index: u32,
    /// The channel.
    pub channel: ChannelName,
    /// The codec.
    pub codec: Codec,
    /// When message 0 is due.
    pub first: Instant,
    /// Time between this publisher's messages.
    pub interval: Duration,
    /// No message is due at or after this.
    pub end: Instant,
    /// Most messages this publisher sends.
    pub limit: u64,
    /// Filler put in each payload.
    pub pad: String,
    /// After the last send, how long to wait for outstanding replies.
    pub drain: Duration,
    /// The shared clock.
    pub clock: Clock,
    /// tokenim, or Socket.IO: then message `k` carries its own `seq`,
    /// `k × publishers + index + 1` (1, 2, 3, ... in intended send order
    /// over all publishers), since the server numbers nothing.
    pub kind: TargetKind,
    /// Publishers in the whole run (the stride of the `seq`s above).
    pub publishers: u64,
}

impl Plan {
    /// The `seq` message `k` of this publisher carries to a Socket.IO
    /// server.
    pub fn own_seq(&self, k: u64) -> u64 {
        k * self.publishers.max(1) + u64::from(self.index) + 1
    }
}

/// What a publisher did.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Publishes written.
    pub sent: u64,
    /// Publishes answered with a result.
    pub acked: u64,
    /// Error replies, by error code.
    pub errors: BTreeMap<u16, u64>,
    /// Highest `seq` in a reply.
    pub max_seq: u64,
    /// The connection ended early: close code (`None` without one).
    pub closed: Option<Option<u16>>,
}

impl Tally {
    /// Publishes with no reply at the end.
    pub fn unacked(&self) -> u64 {
        let errors: u64 = self.errors.values().sum();
        self.sent.saturating_sub(self.acked + errors)
    }
}

/// Runs one publisher to its plan's end (or `interrupt`), then waits up to
/// `plan.drain` for the remaining replies.
pub async fn run(
    mut conn: Conn,
    plan: Plan,
    ack: &Recorder,
    lag: &Recorder,
    interrupt: &CancellationToken,
) -> Tally {
    let mut acks = Acks {
        plan: &plan,
        pending: VecDeque::new(),
        tally: Tally::default(),
        ack,
        index: plan.index as usize,
    };
    let mut k = 0u64;
    let due = |k: u64| plan.first + plan.interval.mul_f64(k as f64);
    let mut stamp = Stamp {
        t: 0,
        p: plan.index,
        n: 0,
        pad: plan.pad.clone(),
    };
    let mut text = String::new();
    let mut sending = k < plan.limit && due(0) < plan.end;
    while sending {
        tokio::select! {
            biased;
            () = tokio::time::sleep_until(due(k).checked_sub(TIMER_SLACK).unwrap_or(plan.first).into()) => {
                // Tokio's timers fire on millisecond ticks; the rest of the
                // wait is a precise sleep. The thread runs only publishers,
                // so blocking it for less than a tick delays nothing else.
                let early = due(k).saturating_duration_since(Instant::now());
                if !early.is_zero() {
                    std::thread::sleep(early);
                }
                let now = Instant::now();
                while k < plan.limit && due(k) <= now && due(k) < plan.end {
                    stamp.t = plan.clock.at(due(k));
                    stamp.n = k;
                    let id = k + 1;
                    match plan.kind {
                        TargetKind::Tokenim => {
                            conn.queue(&wire::publish(plan.codec, id, &plan.channel, &stamp));
                        }
                        TargetKind::Socketio => {
                            let (room, seq) = (plan.channel.as_str(), plan.own_seq(k));
                            eio::publish(&mut text, id, room, seq, stamp.t, plan.index, &plan.pad);
                            conn.queue(text.as_bytes());
                        }
                    }
                    lag.record(acks.index, now.saturating_duration_since(due(k)).as_micros() as u64);
                    acks.pending.push_back((id, now));
                    acks.tally.sent += 1;
                    k += 1;
                }
                if conn.flush().await.is_err() {
                    acks.tally.closed = Some(None);
                    return acks.tally;
                }
                sending = k < plan.limit && due(k) < plan.end;
            }
            read = conn.read_some(|m| acks.reply(m)) => {
                if let Err(e) = read {
                    acks.tally.closed = Some(e.close_code());
                    return acks.tally;
                }
            }
            () = interrupt.cancelled() => sending = false,
        }
    }
    let drained = async {
        while !acks.pending.is_empty() {
            if let Err(e) = conn.read_some(|m| acks.reply(m)).await {
                acks.tally.closed = Some(e.close_code());
                return;
            }
        }
    };
    let _ = tokio::time::timeout(plan.drain, drained).await;
    if acks.tally.closed.is_none() {
        conn.close(Duration::from_secs(2)).await;
    }
    acks.tally
}

/// Matches replies to the publishes waiting for them.
struct Acks<'a> {
    plan: &'a Plan,
    /// Command ids sent and not yet answered, with their send time.
    pending: VecDeque<(u64, Instant)>,
    tally: Tally,
    ack: &'a Recorder,
    index: usize,
}

impl Acks<'_> {
    /// Handles one incoming message (replies; pushes are ignored).
    fn reply(&mut self, message: &[u8]) {
        let (id, reply) = match self.plan.kind {
            TargetKind::Tokenim => {
                let Some(reply) = wire::reply(self.plan.codec, message) else {
                    return;
                };
                reply
            }
            TargetKind::Socketio => {
                let Some(id) = eio::ack_id(message) else {
                    return;
                };
                // Publish `id` carried the publisher's message `id - 1`.
                (id, Reply::Ok(Some(self.plan.own_seq(id.saturating_sub(1)))))
            }
        };
        // Replies come in command order; anything older than `id` was lost.
        while self.pending.front().is_some_and(|(p, _)| *p < id) {
            self.pending.pop_front();
        }
        if self.pending.front().is_some_and(|(p, _)| *p == id) {
            if let Some((_, sent)) = self.pending.pop_front() {
                self.ack
                    .record(self.index, sent.elapsed().as_micros() as u64);
            }
        }
        match reply {
            Reply::Ok(seq) => {
                self.tally.acked += 1;
                self.tally.max_seq = self.tally.max_seq.max(seq.unwrap_or(0));
            }
            Reply::Error(code) => *self.tally.errors.entry(code).or_default() += 1,
        }
    }
}
