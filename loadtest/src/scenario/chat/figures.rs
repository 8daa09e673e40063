//! Adding up a chat run.
//!
//! Metrics: `users`, `users_ready` (connected and, for rooms,
//! subscribed), `subscribe_failed`, `rooms`, `active_users`, `sent`,
//! `acked`, `send_errors`, `rate_limited`, `unacked`, `messages_per_s`
//! (acknowledged sends per second), `expected_deliveries`, `delivered`,
//! `deliveries_per_s`, `lost`, `loss_ratio`, `unexpected` (deliveries no
//! acknowledged send accounts for), `duplicates`, `out_of_order`,
//! `stale` (direct messages stamped before the run, delivered from
//! history), `ignored_frames`, `closed_users`, `measured_s`. Latency:
//! `delivery` (intended send time to receipt), `ack` (send to reply),
//! `send_lag`, `connect`.
//!
//! Expected deliveries: in a room every subscribed member (the sender
//! too) is owed each sequence above its subscribe reply's up to the last
//! one a reply named; a direct message acknowledged by the gateway is
//! owed once to its recipient.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokenim_protocol::ErrorCode;

use super::{ChatParams, Shared};
use crate::report::RunReport;

/// Records the inputs.
pub(super) fn params(report: &mut RunReport, params: &ChatParams) {
    report.param("users", params.users);
    report.param("rooms", params.rooms);
    report.param("rate_per_user", params.rate_per_user);
    report.param("active_fraction", params.active_fraction);
    report.param("duration_s", params.duration.as_secs_f64());
    report.param("payload_max", params.payload_max);
}

/// Adds up every member's outcome.
pub(super) fn add_up(report: &mut RunReport, shared: &Shared, measured: Duration) {
    let outcomes = shared
        .outcomes
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let sum = |f: &dyn Fn(&super::member::Outcome) -> u64| outcomes.iter().map(f).sum::<u64>();
    let sent = sum(&|o| o.sent);
    let acked = sum(&|o| o.acked);
    let errors = sum(&|o| o.errors.values().sum());
    let rate_limited = sum(&|o| {
        o.errors
            .get(&ErrorCode::RateLimited.code())
            .copied()
            .unwrap_or(0)
    });
    let delivered = sum(&|o| o.seqs.distinct);
    let expected = shared.expected();
    let lost = expected.saturating_sub(delivered);
    let closed = outcomes.iter().filter(|o| o.closed.is_some()).count();
    for o in &outcomes {
        if let Some(code) = o.closed {
            let key = code.map_or_else(|| "none".to_owned(), |c| c.to_string());
            *report.closes.entry(key).or_default() += 1;
        }
    }
    let seconds = measured.as_secs_f64();
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
    report.metric("users_ready", get(&shared.ready));
    report.metric("subscribe_failed", get(&shared.subscribe_failed));
    report.metric(
        "active_users",
        outcomes.iter().filter(|o| o.sent > 0).count() as f64,
    );
    report.metric("sent", sent as f64);
    report.metric("acked", acked as f64);
    report.metric("send_errors", errors as f64);
    report.metric("rate_limited", rate_limited as f64);
    report.metric("unacked", sent.saturating_sub(acked + errors) as f64);
    report.metric("messages_per_s", acked as f64 / seconds);
    report.metric("expected_deliveries", expected as f64);
    report.metric("delivered", delivered as f64);
    report.metric("deliveries_per_s", delivered as f64 / seconds);
    report.metric("lost", lost as f64);
    report.metric(
        "loss_ratio",
        if expected > 0 {
            lost as f64 / expected as f64
        } else {
            0.0
        },
    );
    report.metric("unexpected", delivered.saturating_sub(expected) as f64);
    report.metric("duplicates", sum(&|o| o.seqs.duplicates) as f64);
    report.metric("out_of_order", sum(&|o| o.seqs.out_of_order) as f64);
    report.metric("stale", sum(&|o| o.stale) as f64);
    report.metric("ignored_frames", sum(&|o| o.ignored) as f64);
    report.metric("closed_users", closed as f64);
    report.metric("measured_s", seconds);
    for (name, recorder) in [
        ("delivery", &shared.delivery),
        ("ack", &shared.ack),
        ("send_lag", &shared.lag),
    ] {
        report.latency(name, &recorder.merged());
    }
    if rate_limited > 0 {
        report.warnings.push(format!(
            "{rate_limited} sends were refused with {}: raise TOKENIM_LIMITS__PUBLISH_RATE / TOKENIM_LIMITS__PUBLISH_BURST on the gateway",
            ErrorCode::RateLimited
        ));
    }
    if errors > rate_limited {
        report.warnings.push(format!(
            "{} sends were refused with other errors (permissions?)",
            errors - rate_limited
        ));
    }
    if closed > 0 {
        report.warnings.push(format!(
            "{closed} user(s) were closed by the server during the run (see server closes)"
        ));
    }
}
