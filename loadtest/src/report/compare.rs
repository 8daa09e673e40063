//! `compare`: two [`RunReport`]s side by side, every figure they share with
//! its change, and whether the change is better or worse.
//!
//! Rows are the flat `metrics`, each latency statistic
//! (`latency.<name>.<stat>`, in ms), the generator's CPU and the gateway's
//! memory. Which direction is better is known from the name: latencies,
//! losses, failures, closes, CPU and memory are better lower; rates and
//! delivered counts better higher; anything else is shown without a verdict.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::RunReport;
use super::table::number;

/// One line of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The figure's name.
    pub name: String,
    /// Value in the first report, if it has it.
    pub a: Option<f64>,
    /// Value in the second report, if it has it.
    pub b: Option<f64>,
    /// `b - a` relative to `a`, in percent (when both exist and `a != 0`).
    pub change_pct: Option<f64>,
    /// `Some(true)` if B is better, `Some(false)` if worse, `None` if equal
    /// or direction unknown.
    pub better: Option<bool>,
}

/// Whether a larger value of this figure is better (`Some(true)`), worse
/// (`Some(false)`) or neither.
pub fn higher_is_better(name: &str) -> Option<bool> {
    const LOWER: [&str; 16] = [
        "latency.",
        "loss",
        "lost",
        "duplicate",
        "out_of_order",
        "failed",
        "failure",
        "closed",
        "error",
        "rate_limited",
        "unacked",
        "cpu",
        "rss",
        "_bytes",
        "per_connection",
        "dropped",
    ];
    const HIGHER: [&str; 6] = [
        "_per_s",
        "connected",
        "delivered",
        "deliveries",
        "acked",
        "held",
    ];
    if LOWER.iter().any(|k| name.contains(k)) {
        Some(false)
    } else if HIGHER.iter().any(|k| name.contains(k)) {
        Some(true)
    } else {
        None
    }
}

/// Every comparable figure of a report, by name.
pub fn figures(report: &RunReport) -> BTreeMap<String, f64> {
    let mut out: BTreeMap<String, f64> = report.metrics.clone();
    for (name, summary) in &report.latency_us {
        for (stat, value) in summary.stats() {
            let value = if stat == "count" {
                value
            } else {
                value / 1000.0
            };
            out.insert(format!("latency.{name}.{stat}_ms"), value);
        }
    }
    out.insert(
        "generator.cpu_cores_used".into(),
        report.generator.cpu_cores_used,
    );
    out.insert(
        "generator.peak_rss_bytes".into(),
        report.generator.peak_rss_bytes as f64,
    );
    if let Some(gw) = &report.gateway {
        out.insert("gateway.cpu_s".into(), gw.cpu_s);
        out.insert("gateway.rss_end_bytes".into(), gw.rss_end_bytes as f64);
    }
    out
}

/// The rows comparing `a` with `b`.
pub fn rows(a: &RunReport, b: &RunReport) -> Vec<Row> {
    let fa = figures(a);
    let fb = figures(b);
    let mut names: Vec<&String> = fa.keys().chain(fb.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let (va, vb) = (fa.get(name).copied(), fb.get(name).copied());
            let change_pct = match (va, vb) {
                (Some(x), Some(y)) if x != 0.0 => Some((y - x) / x.abs() * 100.0),
                _ => None,
            };
            let better = match (va, vb, higher_is_better(name)) {
                (Some(x), Some(y), Some(up)) if x != y => Some((y > x) == up),
                _ => None,
            };
            Row {
                name: name.clone(),
                a: va,
                b: vb,
                change_pct,
                better,
            }
        })
        .collect()
}

/// The comparison as text: notes on differing scenarios or parameters,
/// then the table.
pub fn render(a: &RunReport, b: &RunReport, a_name: &str, b_name: &str) -> String {
    let mut out = String::new();
    if a.scenario != b.scenario {
        let _ = writeln!(
            out,
            "! different scenarios: A is {}, B is {}",
            a.scenario, b.scenario
        );
    }
    for (key, va) in &a.params {
        match b.params.get(key) {
            Some(vb) if vb == va => {}
            Some(vb) => {
                let _ = writeln!(out, "! parameter {key}: A {va}, B {vb}");
            }
            None => {
                let _ = writeln!(out, "! parameter {key}: A {va}, B has none");
            }
        }
    }
    let _ = writeln!(
        out,
        "A: {a_name} ({} run)\nB: {b_name} ({} run)\n",
        a.scenario, b.scenario
    );
    let rows = rows(a, b);
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(6).max(6);
    let _ = writeln!(
        out,
        "{:<width$}  {:>14}  {:>14}  {:>9}",
        "figure", "A", "B", "change"
    );
    let cell = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), number);
    for r in &rows {
        let change = match (r.change_pct, r.a, r.b) {
            (Some(p), _, _) => format!("{p:+.1}%"),
            (None, Some(x), Some(y)) if x == y => "=".to_owned(),
            (None, Some(_), Some(_)) => "new".to_owned(),
            _ => String::new(),
        };
        let verdict = match r.better {
            Some(true) => "  better",
            Some(false) => "  worse",
            None => "",
        };
        let _ = writeln!(
            out,
            "{:<width$}  {:>14}  {:>14}  {:>9}{verdict}",
            r.name,
            cell(r.a),
            cell(r.b),
            change
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::LatencySummary;

    fn report(rate: f64, p99: u64, loss: f64) -> RunReport {
        let mut r = RunReport::new("broadcast");
        r.param("rate", rate);
        r.metric("deliveries_per_s", rate * 10.0);
        r.metric("loss", loss);
        r.latency_us.insert(
            "delivery".into(),
            LatencySummary {
                count: 10,
                p99,
                ..LatencySummary::default()
            },
        );
        r
    }

    #[test]
    fn directions_follow_names() {
        assert_eq!(higher_is_better("deliveries_per_s"), Some(true));
        assert_eq!(higher_is_better("latency.delivery.p99_ms"), Some(false));
        assert_eq!(
            higher_is_better("gateway_rss_per_connection_bytes"),
            Some(false)
        );
        assert_eq!(higher_is_better("subscribers"), None);
    }

    #[test]
    fn rows_mark_better_and_worse() {
        let a = report(100.0, 2000, 0.0);
        let b = report(200.0, 1000, 5.0);
        let rows = rows(&a, &b);
        let row = |n: &str| rows.iter().find(|r| r.name == n).unwrap().clone();
        assert_eq!(row("deliveries_per_s").better, Some(true));
        assert_eq!(row("deliveries_per_s").change_pct, Some(100.0));
        assert_eq!(row("latency.delivery.p99_ms").better, Some(true));
        assert_eq!(row("latency.delivery.p99_ms").b, Some(1.0));
        assert_eq!(row("loss").better, Some(false));
        let text = render(&a, &b, "a.json", "b.json");
        assert!(
            text.contains("! parameter rate: A 100.0, B 200.0"),
            "{text}"
        );
        assert!(text.contains("worse"), "{text}");
    }
}
