//! What `rooms` and `direct` share: many users, each on its own
//! connection, each sending at a per-user rate and receiving what others
//! send; delivery latency from the intended send time, loss from the
//! gateway's sequence numbers.
//!
//! Every user's sends follow a Poisson schedule (exponential gaps with
//! mean `1 / rate_per_user`), fixed in advance from a per-user seed: a
//! user that falls behind sends its overdue messages at once, still
//! stamped with their intended times (no coordinated omission). Payload
//! sizes are drawn so that most messages are short and a few long (a
//! filler of `payload_max^u` bytes for uniform `u`). Only
//! `active_fraction` of the users send; all of them receive.
//!
//! Phases: setup (open and, for rooms, subscribe everyone, within
//! `setup_timeout`), measured (`duration`), drain (until everything
//! acknowledged has arrived, at most `drain`), teardown. See `figures`
//! for the metrics.

mod figures;
pub mod member;
mod sender;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::task::TaskTracker;

use self::member::{Kind, MemberPlan};
use super::{Meter, connection_figures, teardown};
use crate::progress::Control;
use crate::report::{Recorder, RunReport};
use crate::runner::{ConnStats, Setup, Stopper, Storm, storm};
use crate::scenario::broadcast::subscriber::Clock;
use crate::sys;

/// Parameters of a chat run.
#[derive(Debug, Clone)]
pub struct ChatParams {
    /// Users (connections).
    pub users: usize,
    /// Rooms the users are spread over (`rooms` scenario); 0 for
    /// `direct`.
    pub rooms: usize,
    /// Messages per second each active user sends (on average).
    pub rate_per_user: f64,
    /// Share of users who send (all receive).
    pub active_fraction: f64,
    /// How long users send.
    pub duration: Duration,
    /// Largest filler added to a payload, bytes.
    pub payload_max: usize,
    /// Bound on the setup phase.
    pub setup_timeout: Duration,
    /// Bound on the drain phase.
    pub drain: Duration,
    /// Gateway process to read CPU and memory from.
    pub gateway_pid: Option<u32>,
    /// Tokio worker threads (for the saturation check).
    pub threads: usize,
    /// Names the run's rooms (default: `<pid>.<ms>`); the workers of one
    /// run share it.
    pub run_id: Option<String>,
}

impl ChatParams {
    /// `users` users sending `rate_per_user` msg/s for `duration`; every
    /// user active, fillers up to 200 bytes.
    pub fn new(users: usize, rate_per_user: f64, duration: Duration) -> ChatParams {
        ChatParams {
            users,
            rooms: 0,
            rate_per_user,
            active_fraction: 1.0,
            duration,
            payload_max: 200,
            setup_timeout: Duration::from_secs(60),
            drain: Duration::from_secs(2),
            gateway_pid: None,
            threads: sys::available_cores(),
            run_id: None,
        }
    }
}

/// Why a chat run could not start.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// Bad parameters.
    #[error("{0}")]
    Params(String),
}

/// What every member shares with the scenario.
#[derive(Debug)]
pub struct Shared {
    /// `rooms` or `direct`.
    pub kind: Kind,
    /// The run's name, part of every room name.
    pub run: String,
    /// Delivery latency, µs from the intended send time.
    pub delivery: Recorder,
    /// Send to reply, µs.
    pub ack: Recorder,
    /// How late sends went out, µs.
    pub lag: Recorder,
    /// Per room, the highest sequence a reply named.
    pub room_last: Box<[AtomicU64]>,
    /// Per room, members subscribed, and the sum of their bases.
    pub room_members: Box<[AtomicU64]>,
    /// Per room, sum of subscribed members' base sequences.
    pub room_bases: Box<[AtomicU64]>,
    /// Direct messages acknowledged, in all.
    pub acked_direct: AtomicU64,
    /// Distinct messages received, in all (watched by the drain).
    pub delivered: AtomicU64,
    /// Sends written, in all (watched by the drain).
    pub sent: AtomicU64,
    /// Sends answered (result or error), in all.
    pub answered: AtomicU64,
    /// Members ready (subscribed, for rooms).
    pub ready: AtomicU64,
    /// Members whose subscribe failed.
    pub subscribe_failed: AtomicU64,
    /// When sending starts (set once setup is done).
    pub start: watch::Receiver<Option<(Instant, Instant)>>,
    /// Each finished member's account.
    pub outcomes: std::sync::Mutex<Vec<member::Outcome>>,
    /// The shared clock.
    pub clock: Clock,
    /// Bound on the subscribe round trip.
    pub subscribe_timeout: Duration,
}

impl Shared {
    /// Deliveries owed so far: every room member is owed each sequence
    /// above its base up to the room's last; each acknowledged direct
    /// message is owed once.
    pub fn expected(&self) -> u64 {
        let rooms: u64 = (0..self.room_last.len())
            .map(|r| {
                let last = self.room_last[r].load(Ordering::Relaxed);
                let members = self.room_members[r].load(Ordering::Relaxed);
                (last * members).saturating_sub(self.room_bases[r].load(Ordering::Relaxed))
            })
            .sum();
        rooms + self.acked_direct.load(Ordering::Relaxed)
    }
}

/// Runs a chat scenario: `rooms` when `params.rooms > 0`, else `direct`.
pub async fn run(
    setup: Arc<Setup>,
    params: &ChatParams,
    control: &Control,
) -> Result<RunReport, ChatError> {
    let kind = if params.rooms > 0 {
        Kind::Rooms
    } else {
        Kind::Direct
    };
    validate(&setup, params, kind)?;
    let started = Instant::now();
    let run = params.run_id.clone().unwrap_or_else(|| {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        format!("{}.{ms}", std::process::id())
    });
    let mut report = RunReport::new(kind.name());
    figures::params(&mut report, params);
    super::common_params(&mut report, &setup);
    let (start_tx, start_rx) = watch::channel(None);
    let rooms = params.rooms;
    let atomics = |n: usize| (0..n).map(|_| AtomicU64::new(0)).collect::<Box<[_]>>();
    let shared = Arc::new(Shared {
        kind,
        run,
        delivery: Recorder::new(16),
        ack: Recorder::new(8),
        lag: Recorder::new(8),
        room_last: atomics(rooms),
        room_members: atomics(rooms),
        room_bases: atomics(rooms),
        acked_direct: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        sent: AtomicU64::new(0),
        answered: AtomicU64::new(0),
        ready: AtomicU64::new(0),
        subscribe_failed: AtomicU64::new(0),
        start: start_rx,
        outcomes: std::sync::Mutex::new(Vec::new()),
        clock: Clock::new(),
        subscribe_timeout: setup.connect_timeout,
    });
    let stats = Arc::new(ConnStats::new(control.progress.clone()));
    let tasks = TaskTracker::new();
    let stopper = Stopper::new();

    // 1. Setup.
    let deadline = started + params.setup_timeout;
    let active =
        ((params.users as f64 * params.active_fraction).round() as usize).min(params.users);
    let on_open = {
        let (shared, stopper, setup) = (Arc::clone(&shared), stopper.clone(), Arc::clone(&setup));
        let params = params.clone();
        move |index, conn| {
            let plan = MemberPlan::new(index, index < active, &params, &setup.tokens);
            member::run(conn, plan, Arc::clone(&shared), stopper.receiver())
        }
    };
    let plan = Storm::of(params.users, 0.0, deadline);
    storm(&setup, plan, &stats, &tasks, &control.interrupt, on_open).await;
    while Instant::now() < deadline && !control.interrupt.is_cancelled() {
        let settled = shared.ready.load(Ordering::Relaxed)
            + shared.subscribe_failed.load(Ordering::Relaxed)
            + stats.failed.load(Ordering::Relaxed);
        if settled >= plan.count as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // 2. Measured phase (all workers together).
    let bound = deadline.saturating_duration_since(Instant::now()) + params.drain;
    let start = crate::worker::gate(bound)
        .await
        .unwrap_or_else(|| Instant::now() + Duration::from_millis(20));
    let meter = Meter::start(params.gateway_pid);
    let end = start + params.duration;
    let _ = start_tx.send(Some((start, end)));
    let ticker = {
        let shared = Arc::clone(&shared);
        control.progress.ticker(move |_| {
            format!(
                "{}: users {}  delivered {}  p99 {:.2} ms",
                shared.kind.name(),
                shared.ready.load(Ordering::Relaxed),
                shared.delivered.load(Ordering::Relaxed),
                shared.delivery.take_interval().value_at_quantile(0.99) as f64 / 1000.0
            )
        })
    };
    let interrupted = super::sleep_or_interrupt(end, control).await;
    let measured = start
        .elapsed()
        .min(params.duration)
        .max(Duration::from_millis(1));

    // 3. Drain: until every send is answered and what was acknowledged
    // has arrived (a worker
    // cannot tell, as other workers' users send to its own: it waits
    // the whole drain).
    let drain_until = Instant::now() + params.drain;
    let worker = crate::worker::role().is_some();
    while Instant::now() < drain_until && !control.interrupt.is_cancelled() {
        let answered =
            shared.answered.load(Ordering::Relaxed) >= shared.sent.load(Ordering::Relaxed);
        if !worker && answered && shared.delivered.load(Ordering::Relaxed) >= shared.expected() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(ticker);
    meter.finish(&mut report, &setup, params.threads);
    teardown(&stopper, &tasks).await;

    // 4. Add up.
    connection_figures(&mut report, &stats);
    figures::add_up(&mut report, &shared, measured);
    report.interrupted = interrupted || control.interrupt.is_cancelled();
    report.elapsed_s = started.elapsed().as_secs_f64();
    control.progress.finish();
    Ok(report)
}

fn validate(setup: &Setup, params: &ChatParams, kind: Kind) -> Result<(), ChatError> {
    let bad = |m: &str| Err(ChatError::Params(m.into()));
    if params.users < 2 {
        return bad("at least 2 users");
    }
    if !(params.rate_per_user > 0.0 && params.rate_per_user.is_finite()) {
        return bad("the per-user rate must be positive");
    }
    if !(0.0..=1.0).contains(&params.active_fraction) {
        return bad("the active fraction must be between 0 and 1");
    }
    if kind == Kind::Rooms && params.rooms > params.users {
        return bad("more rooms than users");
    }
    if let Some(role) = crate::worker::role().filter(|_| kind == Kind::Rooms) {
        if params.rooms % role.count != 0 {
            return bad(
                "with --workers, --rooms must be a multiple of the worker count (each worker hosts whole rooms)",
            );
        }
    }
    if kind == Kind::Direct && setup.tokens.user(0).is_none() {
        return bad(
            "direct needs minted tokens (it must know each connection's user id), not --token-file",
        );
    }
    let last = setup.tokens.user(params.users.saturating_sub(1));
    if kind == Kind::Direct && last.is_some_and(|u| tokenim_protocol::UserId::new(&u).is_err()) {
        return bad("the minted user ids are not valid user ids: choose another prefix");
    }
    Ok(())
}
