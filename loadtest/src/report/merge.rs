//! One report from several workers' ([`crate::worker`]).
//!
//! * Latencies: the workers' HDR buckets (`histograms`) are added up and
//!   summarised again, so percentiles are those of all samples (a
//!   worker without buckets contributes its summary's count only).
//! * Metrics: counts and rates add up; durations and `last_seq` take the
//!   largest; ratios and per-unit figures are recomputed. Broadcast loss
//!   is recomputed against the channel's last sequence over all workers
//!   (`last_seq`, `subscriber_base_sum`); chat loss from the summed
//!   expected and delivered counts. `subscribers_with_loss` stays a sum
//!   of the workers' own counts.
//! * Generator: CPU, threads and memory add up; `saturated` if any
//!   worker was. Each worker counted its siblings as "other processes";
//!   the merged `other_cores_used` takes them out again.
//! * Gateway: the same process seen by every worker: the first's memory,
//!   the largest CPU time.

use std::collections::BTreeMap;

use super::latency::from_buckets;
use super::{LatencySummary, RunReport};

/// Metrics that take the largest value rather than the sum.
const LARGEST: [&str; 5] = [
    "measured_s",
    "storm_s",
    "last_seq",
    "gateway_rss_growth_bytes",
    "steps",
];

/// Merges worker results (in worker order) into one report.
pub fn merge(parts: &[RunReport]) -> RunReport {
    let Some(first) = parts.first() else {
        return RunReport::new("empty");
    };
    let mut out = first.clone();
    out.param("workers", parts.len());
    out.metrics = BTreeMap::new();
    for part in parts {
        for (name, value) in &part.metrics {
            let slot = out.metrics.entry(name.clone()).or_insert(0.0);
            if LARGEST.contains(&name.as_str()) {
                *slot = slot.max(*value);
            } else {
                *slot += value;
            }
        }
    }
    recompute(&mut out);

    out.latency_us = BTreeMap::new();
    let names: Vec<&String> = parts.iter().flat_map(|p| p.latency_us.keys()).collect();
    for name in names {
        if out.latency_us.contains_key(name) {
            continue;
        }
        let lists: Vec<&[[u64; 2]]> = parts
            .iter()
            .filter_map(|p| p.histograms.get(name).map(Vec::as_slice))
            .collect();
        let summary = if lists.is_empty() {
            parts
                .iter()
                .filter_map(|p| p.latency_us.get(name))
                .max_by_key(|s| s.count)
                .copied()
                .unwrap_or_default()
        } else {
            LatencySummary::of(&from_buckets(lists))
        };
        out.latency_us.insert(name.clone(), summary);
    }
    out.histograms = BTreeMap::new();

    out.failures = sum_maps(parts.iter().map(|p| &p.failures));
    out.closes = sum_maps(parts.iter().map(|p| &p.closes));
    merge_usage(&mut out, parts);
    out.elapsed_s = parts.iter().map(|p| p.elapsed_s).fold(0.0, f64::max);
    out.interrupted = parts.iter().any(|p| p.interrupted);
    out.warnings = Vec::new();
    for w in parts.iter().flat_map(|p| &p.warnings) {
        if !w.starts_with("other processes") && !out.warnings.contains(w) {
            out.warnings.push(w.clone());
        }
    }
    if out.generator.other_cores_used > crate::sys::BUSY_MACHINE {
        out.warnings.push(format!(
            "other processes on this machine used {:.2} core(s) during the measured phase: latencies and rates are distorted by competition for the cores",
            out.generator.other_cores_used
        ));
    }
    out
}

/// Figures that are not sums of the workers' figures.
fn recompute(out: &mut RunReport) {
    let get = |out: &RunReport, k: &str| out.metrics.get(k).copied();
    if let (Some(last), Some(subscribers), Some(bases)) = (
        get(out, "last_seq"),
        get(out, "subscribers"),
        get(out, "subscriber_base_sum"),
    ) {
        let expected = (last * subscribers - bases).max(0.0);
        out.metric("expected_deliveries", expected);
    }
    let expected = out.get("expected_deliveries");
    let delivered = out.get("delivered");
    if out.metrics.contains_key("lost") {
        out.metric("lost", (expected - delivered).max(0.0));
        let ratio = if expected > 0.0 {
            out.get("lost") / expected
        } else {
            0.0
        };
        out.metric("loss_ratio", ratio);
    }
    if out.metrics.contains_key("unexpected") {
        out.metric("unexpected", (delivered - expected).max(0.0));
    }
    let held = out.get("held");
    if held > 0.0 {
        for (per, total) in [(
            "gateway_rss_per_connection_bytes",
            "gateway_rss_growth_bytes",
        )] {
            if out.metrics.contains_key(per) {
                let value = (out.get(total) / held).round();
                out.metric(per, value);
            }
        }
    }
}

fn merge_usage(out: &mut RunReport, parts: &[RunReport]) {
    let g = &mut out.generator;
    *g = Default::default();
    g.nofile_soft = parts[0].generator.nofile_soft;
    g.nofile_hard = parts[0].generator.nofile_hard;
    for p in parts {
        let pg = &p.generator;
        g.threads += pg.threads;
        g.cores = g.cores.max(pg.cores);
        g.cpu_user_s += pg.cpu_user_s;
        g.cpu_system_s += pg.cpu_system_s;
        g.cpu_cores_used += pg.cpu_cores_used;
        g.saturated |= pg.saturated;
        g.peak_rss_bytes += pg.peak_rss_bytes;
    }
    // Worker i's "other processes" include its siblings.
    let total = g.cpu_cores_used;
    let others: Vec<f64> = parts
        .iter()
        .map(|p| (p.generator.other_cores_used - (total - p.generator.cpu_cores_used)).max(0.0))
        .collect();
    g.other_cores_used = others.iter().sum::<f64>() / others.len().max(1) as f64;
    if let Some(gw) = &mut out.gateway {
        gw.cpu_s = parts
            .iter()
            .filter_map(|p| p.gateway.as_ref().map(|g| g.cpu_s))
            .fold(0.0, f64::max);
        let delivered = out.metrics.get("delivered").copied().unwrap_or(0.0);
        if delivered > 0.0 && out.metrics.contains_key("gateway_cpu_us_per_delivery") {
            out.metrics.insert(
                "gateway_cpu_us_per_delivery".into(),
                gw.cpu_s * 1e6 / delivered,
            );
        }
    }
}

fn sum_maps<'a>(maps: impl Iterator<Item = &'a BTreeMap<String, u64>>) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for map in maps {
        for (k, v) in map {
            *out.entry(k.clone()).or_default() += v;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::latency::buckets;

    fn part(subscribers: f64, delivered: f64, last: f64, bases: f64, values: &[u64]) -> RunReport {
        let mut r = RunReport::new("broadcast");
        r.metric("subscribers", subscribers);
        r.metric("delivered", delivered);
        r.metric("last_seq", last);
        r.metric("subscriber_base_sum", bases);
        r.metric("lost", 0.0);
        r.metric("deliveries_per_s", delivered);
        r.metric("measured_s", 1.0);
        let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        values.iter().for_each(|v| h.record(*v).unwrap());
        r.latency_us
            .insert("delivery".into(), LatencySummary::of(&h));
        r.histograms.insert("delivery".into(), buckets(&h));
        r
    }

    #[test]
    fn loss_is_recomputed_against_the_last_sequence_of_all_workers() {
        // Worker 0 saw up to 10, worker 1 up to 12: worker 0's two
        // subscribers each missed 11 and 12.
        let a = part(2.0, 20.0, 10.0, 0.0, &[100, 200]);
        let b = part(1.0, 12.0, 12.0, 0.0, &[300, 400, 500]);
        let m = merge(&[a, b]);
        assert_eq!(m.get("expected_deliveries"), 36.0);
        assert_eq!(m.get("delivered"), 32.0);
        assert_eq!(m.get("lost"), 4.0);
        assert_eq!(m.get("measured_s"), 1.0);
        assert_eq!(m.get("deliveries_per_s"), 32.0);
        let d = m.latency_us["delivery"];
        assert_eq!((d.count, d.min, d.max), (5, 100, 500));
        assert_eq!(m.params["workers"], 2);
        assert!(m.histograms.is_empty());
    }
}
