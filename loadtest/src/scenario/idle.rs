//! `idle`: holds many connections that do nothing but answer the
//! gateway's pings, and measures what each one costs the gateway.
//!
//! With `--gateway-pid`, the gateway's RSS (`VmRSS` in
//! `/proc/<pid>/status`) is read before the first connection, once every
//! connection is open and `settle` has passed, and at the end. The cost
//! of a connection is the growth divided by the connections held at that
//! moment. The generator's own RSS per connection is reported too. Measure
//! against a freshly started gateway: one that already held connections
//! keeps their freed memory in its allocator and reuses it, so its RSS
//! hardly grows and the figure comes out far too low.
//!
//! Metrics: those of [`super::connect`], plus `gateway_rss_per_connection_bytes`,
//! `gateway_rss_growth_bytes`, `generator_rss_per_connection_bytes`, and
//! `closed_during_hold` (connections the server closed: with pings
//! answered there should be none; `4002` in `closes` would mean they were
//! not).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio_util::task::TaskTracker;

use super::{Meter, connection_figures, hold, sleep_or_interrupt, teardown};
use crate::progress::Control;
use crate::report::{GatewayUsage, RunReport};
use crate::runner::{ConnStats, Setup, Stopper, Storm, storm};
use crate::sys;

/// Parameters of an idle hold.
#[derive(Debug, Clone)]
pub struct IdleParams {
    /// Connections to open and hold.
    pub connections: usize,
    /// New connections per second while opening (0: as fast as allowed).
    pub rate: f64,
    /// The whole run ends this long after it started.
    pub duration: Duration,
    /// Wait this long after the last connection opened before reading the
    /// gateway's memory (allocator and kernel settle).
    pub settle: Duration,
    /// Gateway process to read memory and CPU from.
    pub gateway_pid: Option<u32>,
    /// Tokio worker threads (for the saturation check).
    pub threads: usize,
}

/// Runs an idle hold.
pub async fn run(setup: Arc<Setup>, params: &IdleParams, control: &Control) -> RunReport {
    let mut report = RunReport::new("idle");
    report.param("connections", params.connections);
    report.param("rate", params.rate);
    report.param("duration_s", params.duration.as_secs_f64());
    report.param("settle_s", params.settle.as_secs_f64());
    super::common_params(&mut report, &setup);
    if params.gateway_pid.is_none() {
        report
            .warnings
            .push("no --gateway-pid: the gateway's memory per connection was not measured".into());
    }

    let started = Instant::now();
    let deadline = started + params.duration;
    let own_before = sys::own_rss_bytes().unwrap_or(0);
    let meter = Meter::start(params.gateway_pid);
    let gateway_before = params.gateway_pid.and_then(sys::rss_bytes);
    let stats = Arc::new(ConnStats::new(control.progress.clone()));
    let tasks = TaskTracker::new();
    let stopper = Stopper::new();
    let pings = Arc::new(AtomicU64::new(0));
    let _ticker = {
        let (stats, pings) = (Arc::clone(&stats), Arc::clone(&pings));
        let (total, pid) = (params.connections, params.gateway_pid);
        control.progress.ticker(move |_| {
            let rss = pid.and_then(sys::rss_bytes).map_or_else(String::new, |b| {
                format!("  gateway RSS {}", crate::report::table::bytes(b as f64))
            });
            format!(
                "idle: open {}/{total}  failed {}  pings {}{rss}",
                stats.open.load(Ordering::Relaxed),
                stats.failed.load(Ordering::Relaxed),
                pings.load(Ordering::Relaxed),
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
    let settled = (Instant::now() + params.settle).min(deadline);
    let mut interrupted = sleep_or_interrupt(settled, control).await;
    let held_settled = stats.open.load(Ordering::Relaxed) as f64;
    let own_after = sys::own_rss_bytes().unwrap_or(0);
    let gateway_after = params.gateway_pid.and_then(sys::rss_bytes);
    if !interrupted {
        interrupted = sleep_or_interrupt(deadline, control).await;
    }
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
    let per = |grown: f64| {
        if held_settled > 0.0 {
            grown / held_settled
        } else {
            0.0
        }
    };
    let own_grown = own_after as f64 - own_before as f64;
    report.metric("generator_rss_per_connection_bytes", per(own_grown).round());
    if let (Some(before), Some(after)) = (gateway_before, gateway_after) {
        let grown = after as f64 - before as f64;
        report.metric("gateway_rss_growth_bytes", grown);
        report.metric("gateway_rss_per_connection_bytes", per(grown).round());
        let gateway = report.gateway.get_or_insert_with(GatewayUsage::default);
        gateway.rss_before_bytes = before;
        gateway.rss_after_bytes = after;
    }
    report.interrupted = interrupted || control.interrupt.is_cancelled();
    report.elapsed_s = started.elapsed().as_secs_f64();
    control.progress.finish();
    report
}
