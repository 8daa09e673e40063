//! Wall-clock time in the units records and frames carry (milliseconds
//! and seconds since the Unix epoch), and [`every`], the loop of the
//! node's periodic tasks.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

/// Runs `round` at once and then every `period` (a late round delays the
/// next rather than bunching them) until `shutdown` is cancelled.
pub async fn every<F: Future<Output = ()>>(
    period: Duration,
    shutdown: &CancellationToken,
    mut round: impl FnMut() -> F,
) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => round().await,
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Seconds since the Unix epoch.
pub fn unix_secs() -> u64 {
    unix_millis() / 1000
}
