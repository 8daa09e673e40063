//! `connect`: a connection storm. Opens `connections` connections at
//! `rate` per second (at most `--concurrency` handshakes at once),
//! authenticates each, and holds them until `duration` has passed since
//! the first attempt.
//!
//! Metrics: `attempted`, `connected`, `failed`, `held` (open at the end),
//! `closed_during_hold`, `storm_s` (first attempt to last attempt done),
//! `connects_per_s` (connected / `storm_s`), `pings_received`. Latency:
//! `connect` (TCP connect + upgrade + authentication, from the moment the
//! attempt got its concurrency slot).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio_util::task::TaskTracker;

use super::{Meter, connection_figures, hold, sleep_or_interrupt, teardown};
use crate::progress::Control;
use crate::report::RunReport;
use crate::runner::{ConnStats, Setup, Stopper, Storm, storm};

/// Parameters of a connection storm.
#[derive(Debug, Clone)]
pub struct ConnectParams {
    /// Connections to open.
    pub connections: usize,
    /// New connections per second (0: as fast as the concurrency allows).
    pub rate: f64,
    /// The whole run (storm and hold) ends this long after it started.
    pub duration: Duration,
    /// Gateway process to read CPU time from, when local.
    pub gateway_pid: Option<u32>,
    /// Tokio worker threads (for the saturation check).
    pub threads: usize,
}

/// Runs a connection storm.
pub async fn run(setup: Arc<Setup>, params: &ConnectParams, control: &Control) -> RunReport {
    let mut report = RunReport::new("connect");
    report.param("connections", params.connections);
    report.param("rate", params.rate);
    report.param("duration_s", params.duration.as_secs_f64());
    super::common_params(&mut report, &setup);

    let started = Instant::now();
    let deadline = started + params.duration;
    let meter = Meter::start(params.gateway_pid);
    let stats = Arc::new(ConnStats::new(control.progress.clone()));
    let tasks = TaskTracker::new();
    let stopper = Stopper::new();
    let pings = Arc::new(AtomicU64::new(0));
    let _ticker = {
        let stats = Arc::clone(&stats);
        let total = params.connections;
        control.progress.ticker(move |_| {
            let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
            format!(
                "connect: open {}/{total}  failed {}  connect p99 {:.1} ms",
                get(&stats.open),
                get(&stats.failed),
                stats.connect_us.merged().value_at_quantile(0.99) as f64 / 1000.0
            )
        })
    };

    let plan = Storm::of(params.connections, params.rate, deadline);
    let on_open = {
        let (stopper, stats, pings) = (stopper.clone(), Arc::clone(&stats), Arc::clone(&pings));
        move |_, ws| {
            hold(
                ws,
                stopper.receiver(),
                Arc::clone(&stats),
                Arc::clone(&pings),
            )
        }
    };
    storm(&setup, plan, &stats, &tasks, &control.interrupt, on_open).await;
    let storm_s = started.elapsed().as_secs_f64();
    let interrupted = sleep_or_interrupt(deadline, control).await;
    let held = stats.open.load(Ordering::Relaxed);
    meter.finish(&mut report, &setup, params.threads);
    teardown(&stopper, &tasks).await;

    connection_figures(&mut report, &stats);
    let connected = report.get("connected");
    report.metric("held", held as f64);
    report.metric("closed_during_hold", connected - held as f64);
    report.metric("storm_s", storm_s);
    report.metric("connects_per_s", connected / storm_s.max(1e-9));
    report.metric("pings_received", pings.load(Ordering::Relaxed) as f64);
    report.interrupted = interrupted || control.interrupt.is_cancelled();
    report.elapsed_s = started.elapsed().as_secs_f64();
    control.progress.finish();
    report
}
