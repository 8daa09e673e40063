//! The broadcast's waits and its live line: every subscriber settled,
//! every live subscriber drained to the last sequence, and the progress
//! line of the measured phase.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::BroadcastParams;
use super::subscriber::{IDLE, Shared};
use crate::progress::Control;
use crate::report::Recorder;
use crate::runner::ConnStats;

/// Waits until every subscriber either subscribed or failed, or the
/// setup deadline / Ctrl-C.
pub(super) async fn wait_subscribed(
    shared: &Shared,
    stats: &ConnStats,
    total: usize,
    deadline: Instant,
    control: &Control,
) {
    loop {
        let settled = shared.ready.load(Ordering::Relaxed)
            + shared.subscribe_failed.load(Ordering::Relaxed)
            + stats.failed.load(Ordering::Relaxed);
        if settled >= total as u64 || Instant::now() >= deadline || control.interrupt.is_cancelled()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The live line during the measured phase: deliveries per second and
/// the interval's p99.
pub(super) fn live_ticker(
    control: &Control,
    shared: &Arc<Shared>,
    ack: &Arc<Recorder>,
    params: &BroadcastParams,
) -> crate::progress::Ticker {
    let (shared, ack) = (Arc::clone(shared), Arc::clone(ack));
    let mut last = (0u64, Duration::ZERO);
    let expected = params.rate * shared.ready.load(Ordering::Relaxed) as f64;
    control.progress.ticker(move |elapsed| {
        let delivered = shared.delivery.count();
        let dt = (elapsed - last.1).as_secs_f64().max(1e-3);
        let rate = (delivered - last.0) as f64 / dt;
        last = (delivered, elapsed);
        let p99 = shared.delivery.take_interval().value_at_quantile(0.99) as f64 / 1000.0;
        format!(
            "broadcast: published {}  deliveries {:.0}/s (expected {:.0}/s)  p99 {p99:.2} ms",
            ack.count(),
            rate,
            expected
        )
    })
}

/// Waits until every live subscriber has seen `last_seq`, at most `drain`.
pub(super) async fn wait_drained(
    shared: &Shared,
    last_seq: u64,
    drain: Duration,
    control: &Control,
) {
    let deadline = Instant::now() + drain;
    while Instant::now() < deadline && !control.interrupt.is_cancelled() {
        let behind = shared
            .max_seen
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .any(|s| s != IDLE && s < last_seq);
        if !behind {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
