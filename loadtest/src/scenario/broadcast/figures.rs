//! Adding up a broadcast: the publishers' tallies and the subscribers'
//! outcomes become the report's metrics, closes and warnings.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokenim_protocol::ErrorCode;

use super::publisher::Tally;
use super::subscriber::Shared;
use crate::report::RunReport;

/// Adds up the publishers' tallies.
pub(super) fn publishers(report: &mut RunReport, tallies: &[Tally], measured: Duration) {
    let sum = |f: fn(&Tally) -> u64| tallies.iter().map(f).sum::<u64>() as f64;
    let errors = sum(|t| t.errors.values().sum());
    let rate_limited = sum(|t| {
        t.errors
            .get(&ErrorCode::RateLimited.code())
            .copied()
            .unwrap_or(0)
    });
    report.metric("publishers", tallies.len() as f64);
    report.metric("published", sum(|t| t.sent));
    report.metric("acked", sum(|t| t.acked));
    report.metric("publish_errors", errors);
    report.metric("rate_limited", rate_limited);
    report.metric("unacked", sum(Tally::unacked));
    report.metric("publish_per_s", sum(|t| t.acked) / measured.as_secs_f64());
    report.metric("measured_s", measured.as_secs_f64());
    if rate_limited > 0.0 {
        report.warnings.push(format!(
            "{rate_limited} publishes were refused with {}: the gateway allows limits.publish_rate per connection (default 50/s, burst 100). Raise TOKENIM_LIMITS__PUBLISH_RATE and TOKENIM_LIMITS__PUBLISH_BURST on the gateway, or use more --publishers",
            ErrorCode::RateLimited
        ));
    }
    for t in tallies {
        if let Some(code) = t.closed {
            report.warnings.push(format!(
                "a publisher's connection closed early (code {})",
                code.map_or_else(|| "none".to_owned(), |c| c.to_string())
            ));
        }
    }
}

/// Adds up the subscribers' outcomes against the channel's last sequence.
pub(super) fn subscribers(
    report: &mut RunReport,
    shared: &Shared,
    last_seq: u64,
    measured: Duration,
) {
    let outcomes = shared
        .results
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let mut expected = 0u64;
    let mut base_sum = 0u64;
    let (mut delivered, mut lost, mut with_loss) = (0u64, 0u64, 0u64);
    let (mut duplicates, mut late, mut dropped, mut closed) = (0u64, 0u64, 0u64, 0u64);
    for o in &outcomes {
        expected += last_seq.saturating_sub(o.seqs.base());
        base_sum += o.seqs.base();
        delivered += o.seqs.distinct;
        let l = o.seqs.lost(last_seq);
        lost += l;
        with_loss += u64::from(l > 0);
        duplicates += o.seqs.duplicates;
        late += o.seqs.out_of_order;
        dropped += u64::from(o.dropped);
        if let Some(code) = o.closed {
            closed += 1;
            let key = code.map_or_else(|| "none".to_owned(), |c| c.to_string());
            *report.closes.entry(key).or_default() += 1;
        }
    }
    report.metric("subscribers", shared.ready.load(Ordering::Relaxed) as f64);
    report.metric(
        "subscribe_failed",
        shared.subscribe_failed.load(Ordering::Relaxed) as f64,
    );
    report.metric("expected_deliveries", expected as f64);
    // With these two, results of several workers add up exactly.
    report.metric("last_seq", last_seq as f64);
    report.metric("subscriber_base_sum", base_sum as f64);
    report.metric("delivered", delivered as f64);
    report.metric(
        "deliveries_per_s",
        delivered as f64 / measured.as_secs_f64(),
    );
    report.metric("lost", lost as f64);
    report.metric(
        "loss_ratio",
        if expected > 0 {
            lost as f64 / expected as f64
        } else {
            0.0
        },
    );
    report.metric("subscribers_with_loss", with_loss as f64);
    report.metric("duplicates", duplicates as f64);
    report.metric("out_of_order", late as f64);
    report.metric("dropped_subscribers", dropped as f64);
    report.metric("closed_subscribers", closed as f64);
    report.metric(
        "ignored_frames",
        shared.ignored.load(Ordering::Relaxed) as f64,
    );
    if shared.verify {
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
        report.metric("verified", get(&shared.verified));
        report.metric("verify_mismatches", get(&shared.mismatches));
        if shared.mismatches.load(Ordering::Relaxed) > 0 {
            report.warnings.push(
                "the fast scan and the full decode disagreed on some messages (verify_mismatches): the generator's figures are suspect; please report it".into(),
            );
        }
    }
    if closed > 0 {
        report.warnings.push(format!(
            "{closed} subscriber(s) were closed by the server during the run (see server closes; 4001 = slow consumer)"
        ));
    }
}
