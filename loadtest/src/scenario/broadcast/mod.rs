//! `broadcast`: `subscribers` connections on one channel, `publishers`
//! connections publishing to it at a total `rate` for `duration`; how many
//! deliveries per second arrive, whether any are lost, duplicated or out
//! of order, and how long each took from its intended send time.
//!
//! Phases, each bounded:
//!
//! 1. **setup** (`setup_timeout`): open the subscribers at
//!    `subscribe_rate` and subscribe each; open the publishers.
//! 2. **measured** (`duration`, cut short by Ctrl-C or the `messages`
//!    cap): publishers send on schedule (see [`publisher`]).
//! 3. **drain** (`drain`): wait for outstanding replies, and until every
//!    live subscriber has seen the channel's last sequence.
//! 4. **teardown**: close everything, add up.
//!
//! Loss is judged against the gateway's own sequence numbers: the channel
//! is fresh (`loadtest.<pid>.<ms>` unless `--channel` is given), its
//! sequence has no gaps, and each subscriber is owed every sequence above
//! the one its `subscribe` reply named, up to the last one published (see
//! [`seq`]).
//!
//! Metrics: `subscribers` (subscribed), `subscribe_failed`, `publishers`,
//! `published` (sent), `acked`, `publish_errors`, `rate_limited`,
//! `unacked`, `publish_per_s`, `measured_s`, `expected_deliveries`,
//! `delivered`, `deliveries_per_s`, `lost`, `loss_ratio`,
//! `subscribers_with_loss`, `duplicates`, `out_of_order`,
//! `dropped_subscribers`, `closed_subscribers`, `ignored_frames`,
//! `gateway_cpu_us_per_delivery` (with `--gateway-pid`). Latency:
//! `delivery`, `publish_ack`, `send_lag`, `connect`.

mod figures;
mod phases;
pub mod publisher;
mod sending;
pub mod seq;
pub mod subscriber;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokenim_protocol::ChannelName;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::phases::{live_ticker, wait_drained, wait_subscribed};
use self::subscriber::{IDLE, Shared};
use super::{Meter, connection_figures, teardown};
use crate::progress::Control;
use crate::report::{GatewayUsage, Recorder, RunReport};
use crate::runner::{ConnStats, Setup, Stopper, Storm, storm};
use crate::sys;

/// Parameters of a broadcast run.
#[derive(Debug, Clone)]
pub struct BroadcastParams {
    /// Subscriber connections.
    pub subscribers: usize,
    /// Publisher connections.
    pub publishers: usize,
    /// Total messages per second over all publishers.
    pub rate: f64,
    /// How long publishers publish.
    pub duration: Duration,
    /// Most messages published in all (`None`: `rate × duration`).
    pub messages: Option<u64>,
    /// Bytes of filler added to each payload (the stamp itself is ~50).
    pub payload_padding: usize,
    /// The channel (default: a fresh `loadtest.<pid>.<ms>`).
    pub channel: Option<String>,
    /// New subscriber connections per second during setup (0: as fast as
    /// the concurrency allows).
    pub subscribe_rate: f64,
    /// Bound on the setup phase.
    pub setup_timeout: Duration,
    /// Bound on the drain phase.
    pub drain: Duration,
    /// Close this many subscribers on purpose mid-run (a self-check:
    /// their missed messages must show up as loss).
    pub drop_subscribers: usize,
    /// When, after publishing starts, the chosen subscribers close.
    pub drop_after: Duration,
    /// Gateway process to read memory and CPU from.
    pub gateway_pid: Option<u32>,
    /// Tokio worker threads (for the saturation check).
    pub threads: usize,
    /// Also decode every delivered message in full and compare it with
    /// the fast scan (costs several times the CPU; for tests and
    /// `--verify`).
    pub verify: bool,
}

impl BroadcastParams {
    /// Defaults: 100 subscribers, 1 publisher, 100 msg/s for 10 s.
    pub fn new(subscribers: usize, publishers: usize, rate: f64, duration: Duration) -> Self {
        BroadcastParams {
            subscribers,
            publishers,
            rate,
            duration,
            messages: None,
            payload_padding: 0,
            channel: None,
            subscribe_rate: 0.0,
            setup_timeout: Duration::from_secs(60),
            drain: Duration::from_secs(2),
            drop_subscribers: 0,
            drop_after: Duration::ZERO,
            gateway_pid: None,
            threads: sys::available_cores(),
            verify: false,
        }
    }
}

/// Why a broadcast could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum BroadcastError {
    /// The channel name is not valid.
    #[error("channel {0:?} is not a valid channel name")]
    Channel(String),
    /// `rate` must be positive and publishers at least 1.
    #[error("{0}")]
    Params(String),
}

/// Runs a broadcast.
pub async fn run(
    setup: Arc<Setup>,
    params: &BroadcastParams,
    control: &Control,
) -> Result<RunReport, BroadcastError> {
    if !(params.rate > 0.0 && params.rate.is_finite()) || params.publishers == 0 {
        return Err(BroadcastError::Params(
            "broadcast needs --rate > 0 and at least one publisher".into(),
        ));
    }
    let name = params.channel.clone().unwrap_or_else(|| {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        format!("loadtest.{}.{ms}", std::process::id())
    });
    let channel = ChannelName::new(&name).map_err(|_| BroadcastError::Channel(name.clone()))?;
    let mut report = RunReport::new("broadcast");
    record_params(&mut report, params, &name);
    super::common_params(&mut report, &setup);

    let started = Instant::now();
    let gateway_before = params.gateway_pid.and_then(sys::rss_bytes);
    let stats = Arc::new(ConnStats::new(control.progress.clone()));
    let mut shared = Shared::new(
        channel.clone(),
        setup.codec,
        params.subscribers,
        setup.connect_timeout,
    );
    shared.verify = params.verify;
    shared.kind = setup.kind;
    shared.publishers = params.publishers;
    let shared = Arc::new(shared);
    let tasks = TaskTracker::new();
    let stopper = Stopper::new();
    let drop_signal = CancellationToken::new();

    // 1. Setup: subscribers, then publishers.
    let setup_deadline = started + params.setup_timeout;
    let setup_ticker = {
        let (stats, shared) = (Arc::clone(&stats), Arc::clone(&shared));
        let total = params.subscribers;
        control.progress.ticker(move |_| {
            format!(
                "broadcast setup: subscribed {}/{total}  failed {}",
                shared.ready.load(Ordering::Relaxed),
                stats.failed.load(Ordering::Relaxed)
                    + shared.subscribe_failed.load(Ordering::Relaxed),
            )
        })
    };
    let plan = Storm::of(params.subscribers, params.subscribe_rate, setup_deadline);
    let on_open = {
        let (shared, stopper, drop_signal) =
            (Arc::clone(&shared), stopper.clone(), drop_signal.clone());
        let dropped = params.drop_subscribers;
        move |index, conn| {
            let drop_signal = (index < dropped).then(|| drop_signal.clone());
            subscriber::run(
                index,
                conn,
                Arc::clone(&shared),
                stopper.receiver(),
                drop_signal,
            )
        }
    };
    storm(&setup, plan, &stats, &tasks, &control.interrupt, on_open).await;
    wait_subscribed(&shared, &stats, plan.count, setup_deadline, control).await;
    let ack = Arc::new(Recorder::new(4));
    let lag = Arc::new(Recorder::new(4));
    let sending = sending::spawn(sending::Job {
        setup: Arc::clone(&setup),
        params: params.clone(),
        stats: Arc::clone(&stats),
        channel: channel.clone(),
        clock: shared.clock,
        ack: Arc::clone(&ack),
        lag: Arc::clone(&lag),
        interrupt: control.interrupt.clone(),
    });
    let _ = sending.ready.await;
    let bound = setup_deadline.saturating_duration_since(Instant::now()) + params.drain;
    let start = crate::worker::gate(bound)
        .await
        .unwrap_or_else(|| Instant::now() + Duration::from_millis(20));
    let _ = sending.start.send(start);
    drop(setup_ticker);
    let gateway_after = params.gateway_pid.and_then(sys::rss_bytes);

    // 2. Measured phase: the publishers run on their own thread.
    let meter = Meter::start(params.gateway_pid);
    if params.drop_subscribers > 0 {
        let (token, at) = (drop_signal.clone(), start + params.drop_after);
        tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            token.cancel();
        });
    }
    let live_ticker = live_ticker(control, &shared, &ack, params);
    let tallies = sending.done.await.unwrap_or_default();
    if tallies.is_empty() {
        // A worker without publishers still measures the whole phase.
        super::sleep_or_interrupt(start + params.duration, control).await;
    }
    let measured = start
        .elapsed()
        .min(params.duration.max(Duration::from_millis(1)));

    // 3. Drain: every live subscriber reaches the last sequence.
    let last_seq = tallies
        .iter()
        .map(|t| t.max_seq)
        .chain(
            shared
                .max_seen
                .iter()
                .map(|s| s.load(Ordering::Relaxed))
                .filter(|&s| s != IDLE),
        )
        .max()
        .unwrap_or(0);
    if crate::worker::role().is_some() {
        // Other workers' publishers set the last sequence: wait it all.
        super::sleep_or_interrupt(Instant::now() + params.drain, control).await;
    } else {
        wait_drained(&shared, last_seq, params.drain, control).await;
    }
    drop(live_ticker);
    meter.finish(&mut report, &setup, params.threads);
    teardown(&stopper, &tasks).await;

    // 4. Add up.
    connection_figures(&mut report, &stats);
    figures::publishers(&mut report, &tallies, measured);
    figures::subscribers(&mut report, &shared, last_seq, measured);
    report.latency("delivery", &shared.delivery.merged());
    report.latency("publish_ack", &ack.merged());
    report.latency("send_lag", &lag.merged());
    if let (Some(before), Some(after)) = (gateway_before, gateway_after) {
        let gateway = report.gateway.get_or_insert_with(GatewayUsage::default);
        gateway.rss_before_bytes = before;
        gateway.rss_after_bytes = after;
    }
    if let Some(gateway) = &report.gateway {
        let delivered = report.get("delivered");
        if delivered > 0.0 {
            let per = gateway.cpu_s * 1e6 / delivered;
            report.metric("gateway_cpu_us_per_delivery", per);
        }
    }
    report.interrupted = control.interrupt.is_cancelled();
    report.elapsed_s = started.elapsed().as_secs_f64();
    control.progress.finish();
    Ok(report)
}

fn record_params(report: &mut RunReport, params: &BroadcastParams, channel: &str) {
    report.param("subscribers", params.subscribers);
    report.param("publishers", params.publishers);
    report.param("rate", params.rate);
    report.param("duration_s", params.duration.as_secs_f64());
    report.param("messages", params.messages);
    report.param("payload_padding", params.payload_padding);
    report.param("channel", channel);
    if params.drop_subscribers > 0 {
        report.param("drop_subscribers", params.drop_subscribers);
        report.param("drop_after_s", params.drop_after.as_secs_f64());
    }
}
