//! The human-readable summary of a [`RunReport`]: parameters, figures,
//! latency percentiles in milliseconds, failures, closes, and the
//! generator's and gateway's resource use, with warnings last.

use std::fmt::Write as _;

use super::RunReport;

/// Formats a number: integers with thousands separators, others with
/// two decimals (three below 10).
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return group(&format!("{}", v as i64));
    }
    let text = if v.abs() < 10.0 {
        format!("{v:.3}")
    } else {
        format!("{v:.2}")
    };
    match text.split_once('.') {
        Some((int, frac)) => format!("{}.{frac}", group(int)),
        None => text,
    }
}

fn group(int: &str) -> String {
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

/// Bytes as KiB/MiB/GiB.
pub fn bytes(v: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB"];
    let mut v = v;
    let mut unit = 0;
    while v.abs() >= 1024.0 && unit < units.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", units[unit])
    }
}

/// Milliseconds from microseconds, three decimals.
fn ms(us: f64) -> String {
    format!("{:.3}", us / 1000.0)
}

/// The summary as text, ready to print.
pub fn render(report: &RunReport) -> String {
    let mut out = String::new();
    let r = report;
    let _ = writeln!(
        out,
        "\ntokenim-loadtest {}: {:.1} s{}",
        r.scenario,
        r.elapsed_s,
        if r.interrupted {
            " (interrupted by Ctrl-C)"
        } else {
            ""
        }
    );
    let params: Vec<String> = r
        .params
        .iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect();
    let _ = writeln!(out, "  {}", params.join("  "));

    if !r.metrics.is_empty() {
        let width = r.metrics.keys().map(String::len).max().unwrap_or(0);
        let _ = writeln!(out);
        for (name, value) in &r.metrics {
            let shown = if name.ends_with("_bytes") {
                format!("{} ({})", number(*value), bytes(*value))
            } else {
                number(*value)
            };
            let _ = writeln!(out, "  {name:<width$}  {shown:>14}");
        }
    }

    if r.latency_us.values().any(|s| s.count > 0) {
        let _ = writeln!(
            out,
            "\n  {:<12} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "latency ms", "count", "min", "p50", "p90", "p99", "p99.9", "max"
        );
        for (name, s) in &r.latency_us {
            let _ = writeln!(
                out,
                "  {:<12} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                name,
                number(s.count as f64),
                ms(s.min as f64),
                ms(s.p50 as f64),
                ms(s.p90 as f64),
                ms(s.p99 as f64),
                ms(s.p999 as f64),
                ms(s.max as f64),
            );
        }
    }

    if !r.steps.is_empty() {
        let _ = writeln!(
            out,
            "\n  {:>4} {:>12} {:>14} {:>9} {:>9} {:>9} {:>9} {:>9}  verdict",
            "step", "rate/s", "deliveries/s", "lost", "p50 ms", "p99 ms", "max ms", "gen cores"
        );
        for (i, s) in r.steps.iter().enumerate() {
            let m = |k: &str| s.metrics.get(k).copied().unwrap_or(0.0);
            let _ = writeln!(
                out,
                "  {:>4} {:>12} {:>14} {:>9} {:>9} {:>9} {:>9} {:>9.2}  {}",
                i + 1,
                number(s.rate),
                number(m("deliveries_per_s").round()),
                number(m("lost")),
                ms(s.delivery.p50 as f64),
                ms(s.delivery.p99 as f64),
                ms(s.delivery.max as f64),
                m("generator_cores_used"),
                if m("generator_saturated") > 0.0 {
                    format!("{} (generator saturated)", s.verdict)
                } else {
                    s.verdict.clone()
                },
            );
        }
    }

    for (title, map) in [
        ("failed connects", &r.failures),
        ("server closes", &r.closes),
    ] {
        if !map.is_empty() {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k} × {}", number(*v as f64)))
                .collect();
            let _ = writeln!(out, "\n  {title}: {}", items.join(", "));
        }
    }

    let g = &r.generator;
    let _ = writeln!(
        out,
        "\n  generator: {} thread(s) on {} core(s); CPU {:.2} core(s) (user {:.2} s, system {:.2} s){}; peak RSS {}; open files {}/{}; other processes {:.2} core(s)",
        g.threads,
        g.cores,
        g.cpu_cores_used,
        g.cpu_user_s,
        g.cpu_system_s,
        if g.saturated { " SATURATED" } else { "" },
        bytes(g.peak_rss_bytes as f64),
        g.nofile_soft,
        g.nofile_hard,
        g.other_cores_used,
    );
    if let Some(gw) = &r.gateway {
        let grown = gw.rss_after_bytes as f64 - gw.rss_before_bytes as f64;
        let sign = if grown >= 0.0 { "+" } else { "" };
        let _ = writeln!(
            out,
            "  gateway pid {}: RSS {} before, {} with connections ({sign}{}), {} at end; CPU {:.2} s in the measured phase",
            gw.pid,
            bytes(gw.rss_before_bytes as f64),
            bytes(gw.rss_after_bytes as f64),
            bytes(grown),
            bytes(gw.rss_end_bytes as f64),
            gw.cpu_s,
        );
    }
    for w in &r.warnings {
        let _ = writeln!(out, "  ! {w}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(number(1234567.0), "1,234,567");
        assert_eq!(number(-1000.0), "-1,000");
        assert_eq!(number(12.345), "12.35");
        assert_eq!(number(12345.678), "12,345.68");
        assert_eq!(number(0.5), "0.500");
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(3.0 * 1024.0 * 1024.0), "3.0 MiB");
    }

    #[test]
    fn render_shows_every_section() {
        let mut r = RunReport::new("connect");
        r.param("connections", 10);
        r.metric("connected", 10.0);
        r.failures.insert("http_429".into(), 2);
        r.warnings.push("careful".into());
        let text = render(&r);
        for needle in [
            "connect",
            "connections=10",
            "connected",
            "http_429 × 2",
            "! careful",
        ] {
            assert!(text.contains(needle), "{needle} missing in {text}");
        }
    }
}
