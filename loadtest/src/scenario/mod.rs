//! The scenarios, one module each, and what they share: holding a
//! connection open ([`hold`]), measuring the generator's and the
//! gateway's resource use over the measured phase ([`Meter`]), and the
//! bounded teardown.
//!
//! Every scenario is an `async fn run(setup, params, control) ->
//! RunReport` that ends by itself: its measured phase lasts at most
//! `params.duration`, setup and drain have their own bounds, and Ctrl-C
//! ([`Control::interrupt`]) cuts the measured phase short and still
//! reports.
//!
//! * [`connect`]: connection storm.
//! * [`idle`]: many idle connections and the gateway's memory per
//!   connection.
//! * [`broadcast`]: subscribers on one channel, publishers at a fixed rate;
//!   delivery rate, loss, order and latency.
//! * [`ramp`]: broadcast at a rising rate until p99 or loss crosses a
//!   threshold; the knee.
//! * [`chat`]: `rooms` (many small channels, members chatting) and
//!   `direct` (users messaging each other).

pub mod broadcast;
pub mod chat;
pub mod connect;
pub mod idle;
pub mod ramp;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;

use crate::progress::Control;
use crate::report::{GatewayUsage, RunReport};
use crate::runner::{ConnStats, Setup, Stopper};
use crate::sys::{self, CpuTime, SATURATED};
use crate::wire::Conn;

/// How long teardown waits for connections to finish their close
/// handshake before it gives up on them.
pub const TEARDOWN: Duration = Duration::from_secs(5);

/// Holds a connection open until `stop` fires, reading (so the
/// gateway's pings are answered) and counting pings. A close by the
/// server is counted in `stats` by code.
pub async fn hold(
    mut conn: Conn,
    mut stop: oneshot::Receiver<()>,
    stats: Arc<ConnStats>,
    pings: Arc<AtomicU64>,
) {
    let mut counted = 0;
    loop {
        let read = tokio::select! {
            biased;
            _ = &mut stop => {
                conn.close(Duration::from_secs(2)).await;
                return;
            }
            read = conn.read_some(|_| {}) => read,
        };
        pings.fetch_add(conn.pings() - counted, Ordering::Relaxed);
        counted = conn.pings();
        if let Err(e) = read {
            stats.closed(e.close_code());
            return;
        }
    }
}

/// Fires `stopper` and waits (at most [`TEARDOWN`]) for the tasks to end.
pub async fn teardown(stopper: &Stopper, tasks: &TaskTracker) {
    stopper.stop();
    tasks.close();
    let _ = tokio::time::timeout(TEARDOWN, tasks.wait()).await;
}

/// Waits until `until`, or until Ctrl-C; returns whether interrupted.
pub async fn sleep_or_interrupt(until: Instant, control: &Control) -> bool {
    tokio::select! {
        () = tokio::time::sleep_until(until.into()) => false,
        () = control.interrupt.cancelled() => true,
    }
}

/// The generator's (and optionally the gateway's) CPU and memory over a
/// measured phase.
#[derive(Debug, Clone)]
pub struct Meter {
    start: Instant,
    cpu: CpuTime,
    gateway_pid: Option<u32>,
    gateway_cpu: Option<CpuTime>,
    gateway_rss: Option<u64>,
    machine: Option<Duration>,
}

impl Meter {
    /// Starts measuring now.
    pub fn start(gateway_pid: Option<u32>) -> Meter {
        Meter {
            start: Instant::now(),
            cpu: CpuTime::now(),
            gateway_pid,
            gateway_cpu: gateway_pid.and_then(CpuTime::of_pid),
            gateway_rss: gateway_pid.and_then(sys::rss_bytes),
            machine: sys::machine_busy(),
        }
    }

    /// Wall time since [`Meter::start`].
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Writes the generator's usage since the start (and the gateway's
    /// CPU and end RSS, if a pid was given) into `report`; warns when the
    /// generator was saturated.
    pub fn finish(&self, report: &mut RunReport, setup: &Setup, threads: usize) {
        let wall = self.start.elapsed().as_secs_f64().max(1e-9);
        let used = CpuTime::now().since(&self.cpu);
        let cores = sys::available_cores();
        let cores_used = used.total().as_secs_f64() / wall;
        let ceiling = threads.min(cores).max(1) as f64;
        let saturated = cores_used > SATURATED * ceiling;
        let limit = setup.file_limit;
        let gateway_cpu = self.gateway_pid.and_then(CpuTime::of_pid);
        let gateway_used = match (self.gateway_cpu, gateway_cpu) {
            (Some(before), Some(after)) => after.since(&before).total(),
            _ => Duration::ZERO,
        };
        let other_cores = match (self.machine, sys::machine_busy()) {
            (Some(before), Some(after)) => {
                let busy = after.saturating_sub(before).as_secs_f64();
                (busy - used.total().as_secs_f64() - gateway_used.as_secs_f64()).max(0.0) / wall
            }
            _ => 0.0,
        };
        report.generator = crate::report::GeneratorUsage {
            threads,
            cores,
            cpu_user_s: used.user.as_secs_f64(),
            cpu_system_s: used.system.as_secs_f64(),
            cpu_cores_used: cores_used,
            saturated,
            other_cores_used: other_cores,
            peak_rss_bytes: sys::own_peak_rss_bytes().unwrap_or(0),
            nofile_soft: limit.map_or(0, |l| l.soft),
            nofile_hard: limit.map_or(0, |l| l.hard),
        };
        if saturated {
            report.warnings.push(format!(
                "the generator used {:.0}% of its {} core(s) in the measured phase: it may be the bottleneck; its figures are a lower bound of what the gateway can do (run it on more cores, or several processes)",
                cores_used / ceiling * 100.0,
                ceiling
            ));
        }
        if other_cores > sys::BUSY_MACHINE {
            report.warnings.push(format!(
                "other processes on this machine used {other_cores:.2} core(s) during the measured phase{}: latencies and rates are distorted by competition for the cores; rerun on a quiet machine",
                if self.gateway_pid.is_none() {
                    " (the gateway's own CPU is included without --gateway-pid)"
                } else {
                    ""
                }
            ));
        }
        if let Some(pid) = self.gateway_pid {
            let gateway = report.gateway.get_or_insert_with(GatewayUsage::default);
            gateway.pid = pid;
            if gateway.rss_before_bytes == 0 {
                gateway.rss_before_bytes = self.gateway_rss.unwrap_or(0);
            }
            gateway.rss_end_bytes = sys::rss_bytes(pid).unwrap_or(0);
            if gateway.rss_after_bytes == 0 {
                gateway.rss_after_bytes = gateway.rss_end_bytes;
            }
            gateway.cpu_s = gateway_used.as_secs_f64();
            if gateway.rss_end_bytes == 0 {
                report.warnings.push(format!(
                    "could not read /proc/{pid}/status: is --gateway-pid right, and is the gateway on this machine?"
                ));
            }
        }
    }
}

/// Puts the connection counters, the connect-time summary, failures and
/// closes into `report`, with a warning for each well-known limit hit.
pub fn connection_figures(report: &mut RunReport, stats: &ConnStats) {
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
    report.metric("attempted", get(&stats.attempted));
    report.metric("connected", get(&stats.connected));
    report.metric("failed", get(&stats.failed));
    report.latency("connect", &stats.connect_us.merged());
    report.failures = stats.failures();
    report.closes = stats.closes();
    let failures = &report.failures;
    if failures.contains_key("http_429") {
        report.warnings.push(
            "HTTP 429: the gateway's per-IP connection cap (limits.max_connections_per_ip, default 1,000) was hit; spread over more --source-ips or raise TOKENIM_LIMITS__MAX_CONNECTIONS_PER_IP".into(),
        );
    }
    if failures.contains_key("http_503") {
        report.warnings.push(
            "HTTP 503: the gateway is at limits.max_connections (TOKENIM_LIMITS__MAX_CONNECTIONS) or draining".into(),
        );
    }
    if failures.contains_key("http_403") {
        report.warnings.push(
            "HTTP 403: the gateway refused the Origin header; the generator sends http://<host:port of --url>, which the gateway accepts unless --url names it differently from the Host it sees".into(),
        );
    }
    if stats.ran_out_of_files() {
        report.warnings.push(
            "EMFILE: the generator ran out of file descriptors (see nofile in the generator line); raise the hard limit or use several generator processes".into(),
        );
    }
    if failures.contains_key("eaddrnotavail") {
        report.warnings.push(
            "EADDRNOTAVAIL: ephemeral ports ran out for a source address; add --source-ips (e.g. 127.0.0.1-127.0.0.20)".into(),
        );
    }
}

/// Records the connection settings every scenario shares.
pub fn common_params(report: &mut RunReport, setup: &Setup) {
    let urls: Vec<&str> = setup.targets.iter().map(|t| t.url.as_str()).collect();
    report.param("urls", urls);
    report.param("target", setup.kind.name());
    report.param("codec", setup.codec.name());
    report.param("auth", setup.auth);
    report.param("source_ips", setup.sources.len());
    report.param("concurrency", setup.concurrency);
}
