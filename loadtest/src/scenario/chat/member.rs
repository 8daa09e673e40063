//! One chat user on its own connection: for rooms, subscribe to its room;
//! then, once the measured phase starts, send on its Poisson schedule
//! (publish to its room, or `send` to a random other user) while reading
//! everything that arrives: message pushes are scanned for `seq` and the
//! send stamp like broadcast's, replies are matched to the sends waiting
//! for them. A direct-message user acknowledges (`ack`) the highest
//! sequence it received before it closes.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokenim_protocol::{ChannelName, Codec};
use tokio::sync::oneshot;

use super::sender::{Tx, send_due};
use super::{ChatParams, Shared};
use crate::report::Batch;
use crate::scenario::broadcast::seq::SeqTracker;
use crate::token::TokenSource;
use crate::wire::{self, Conn, Reply, scan};

/// Which chat scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Users in small channels, publishing to their room.
    Rooms,
    /// Users sending each other direct messages.
    Direct,
}

impl Kind {
    /// The scenario's name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Rooms => "rooms",
            Kind::Direct => "direct",
        }
    }
}

/// One user's part.
#[derive(Debug, Clone)]
pub struct MemberPlan {
    /// Connection index.
    pub index: usize,
    /// Whether this user sends.
    pub active: bool,
    /// Its room (rooms).
    pub room: usize,
    /// Its user id (direct).
    pub user: Option<String>,
    /// Mean sends per second.
    pub rate: f64,
    /// Largest payload filler.
    pub payload_max: usize,
    /// Users in the run (direct picks recipients among them).
    pub users: usize,
    /// Names the recipients (direct).
    pub tokens: TokenSource,
}

impl MemberPlan {
    /// The plan of user `index`.
    pub fn new(
        index: usize,
        active: bool,
        params: &ChatParams,
        tokens: &TokenSource,
    ) -> MemberPlan {
        MemberPlan {
            index,
            active,
            room: index % params.rooms.max(1),
            user: tokens.user(index),
            rate: params.rate_per_user,
            payload_max: params.payload_max,
            users: params.users,
            tokens: tokens.clone(),
        }
    }
}

/// What one user saw and did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// What arrived on its room or personal channel.
    pub seqs: SeqTracker,
    /// Sends written.
    pub sent: u64,
    /// Sends answered with a result.
    pub acked: u64,
    /// Error replies by code.
    pub errors: BTreeMap<u16, u64>,
    /// Messages stamped before this run (old direct messages delivered
    /// from history).
    pub stale: u64,
    /// Frames that were neither its messages nor replies.
    pub ignored: u64,
    /// Closed by the server: the code (`None` without one).
    pub closed: Option<Option<u16>>,
}

/// The receive side's state.
pub(super) struct Rx<'a> {
    pub(super) shared: &'a Shared,
    pub(super) codec: Codec,
    pub(super) channel: Vec<u8>,
    pub(super) out: Outcome,
    pub(super) batch: Batch,
    pub(super) now: Option<u64>,
    pub(super) not_before_us: u64,
    pub(super) new: u64,
    pub(super) room: usize,
    /// Sends waiting for their reply: id and when written.
    pub(super) pending: VecDeque<(u64, Instant)>,
}

impl Rx<'_> {
    fn message(&mut self, bytes: &[u8]) {
        let shared = self.shared;
        if let Some(m) = scan::message(self.codec, bytes) {
            if m.channel != self.channel.as_slice() {
                self.out.ignored += 1;
                return;
            }
            if let Some(t) = m.t {
                if t < self.not_before_us {
                    self.out.stale += 1;
                    return;
                }
                let now = *self.now.get_or_insert_with(|| shared.clock.now_us());
                self.batch
                    .record(&shared.delivery, now.saturating_sub(t), now);
            }
            let before = self.out.seqs.distinct;
            self.out.seqs.observe(m.seq);
            self.new += self.out.seqs.distinct - before;
            return;
        }
        let Some((id, reply)) = wire::reply(self.codec, bytes) else {
            self.out.ignored += 1;
            return;
        };
        while self.pending.front().is_some_and(|(p, _)| *p < id) {
            self.pending.pop_front();
        }
        if let Some((_, sent)) = self.pending.front().filter(|(p, _)| *p == id).copied() {
            self.pending.pop_front();
            shared.ack.record(0, sent.elapsed().as_micros() as u64);
        }
        shared.answered.fetch_add(1, Ordering::Relaxed);
        match reply {
            Reply::Ok(seq) => {
                self.out.acked += 1;
                match shared.kind {
                    super::Kind::Rooms => {
                        let room = &shared.room_last[self.room()];
                        room.fetch_max(seq.unwrap_or(0), Ordering::Relaxed);
                    }
                    super::Kind::Direct => {
                        shared.acked_direct.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Reply::Error(code) => *self.out.errors.entry(code).or_default() += 1,
        }
    }

    fn room(&self) -> usize {
        self.room
    }
}

/// Runs user `plan.index` until `stop` fires.
pub async fn run(
    mut conn: Conn,
    plan: MemberPlan,
    shared: Arc<Shared>,
    mut stop: oneshot::Receiver<()>,
) {
    let codec = conn.codec();
    let mut room_channel = None;
    let (channel, base) = match shared.kind {
        Kind::Rooms => {
            let name = format!("loadtest.{}.r{}", shared.run, plan.room);
            let Ok(channel) = ChannelName::new(&name) else {
                shared.subscribe_failed.fetch_add(1, Ordering::Relaxed);
                return;
            };
            let subscribed = async {
                conn.send(&wire::subscribe(codec, 1, &channel))
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
            shared.room_members[plan.room].fetch_add(1, Ordering::Relaxed);
            shared.room_bases[plan.room].fetch_add(base, Ordering::Relaxed);
            let bytes = channel.as_str().as_bytes().to_vec();
            room_channel = Some(channel);
            (bytes, base)
        }
        Kind::Direct => (
            format!("#{}", plan.user.as_deref().unwrap_or_default()).into_bytes(),
            0,
        ),
    };
    shared.ready.fetch_add(1, Ordering::Relaxed);
    let mut rx = Rx {
        shared: &shared,
        codec,
        channel,
        out: Outcome {
            seqs: SeqTracker::new(base),
            sent: 0,
            acked: 0,
            errors: BTreeMap::new(),
            stale: 0,
            ignored: 0,
            closed: None,
        },
        batch: shared.delivery.batch(plan.index),
        now: None,
        not_before_us: shared.clock.at(shared.clock.base()),
        new: 0,
        room: plan.room,
        pending: VecDeque::new(),
    };
    let mut start = shared.start.clone();
    let mut tx: Option<Tx> = None;
    loop {
        let due = tx.as_ref().filter(|_| plan.active).and_then(Tx::due);
        let sleep = async {
            match due {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        rx.now = None;
        tokio::select! {
            biased;
            _ = &mut stop => break,
            read = conn.read_some(|m| rx.message(m)) => {
                if let Err(e) = read {
                    rx.out.closed = Some(e.close_code());
                    break;
                }
            }
            () = sleep => {}
            changed = start.changed(), if tx.is_none() => {
                let window = *start.borrow();
                match (changed, window) {
                    (Ok(()), Some((from, to))) => tx = Some(Tx::new(&plan, from, to)),
                    (Err(_), _) => break,
                    _ => {}
                }
            }
        }
        shared
            .delivered
            .fetch_add(std::mem::take(&mut rx.new), Ordering::Relaxed);
        if let Some(t) = tx.as_mut().filter(|_| plan.active) {
            if t.due().is_some_and(|d| d <= Instant::now())
                && !send_due(&mut conn, t, &mut rx, &plan, room_channel.as_ref()).await
            {
                rx.out.closed = Some(None);
                break;
            }
        }
    }
    shared.delivered.fetch_add(rx.new, Ordering::Relaxed);
    rx.batch.flush(&shared.delivery);
    let closed = rx.out.closed;
    let last = rx.out.seqs.max();
    shared
        .outcomes
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(rx.out);
    if closed.is_none() {
        if shared.kind == Kind::Direct && last > 0 {
            // Confirm what arrived, as a client would, so the next run's
            // users are not sent this run's messages again.
            conn.queue(&wire::ack(codec, u64::from(u32::MAX), last));
        }
        conn.close(Duration::from_secs(2)).await;
    }
}
