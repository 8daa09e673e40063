//! `ramp`: a broadcast at a rising rate, step by step, until delivery
//! gets too slow or loses messages; the highest rate that passed is the
//! *knee*.
//!
//! Step `i` publishes at `start_rate × factor^i` for `step` (each step is
//! a complete [`broadcast`] run: fresh channel, fresh connections, its
//! own drain, so no step inherits another's backlog). A step passes when
//! delivery p99 is within `p99_limit`, nothing was lost, no subscriber
//! was closed, every publish was accepted and every subscriber connected.
//! A step in which the generator was saturated still counts (its p99 and
//! loss are real), but is marked `generator_saturated` and warned about:
//! past it the knee may be the generator's. The ramp stops at the first
//! failing step, at `max_rate`, after `max_steps`, or on Ctrl-C.
//!
//! Metrics: `steps`, `knee_rate` (0 if no step passed),
//! `knee_deliveries_per_s`, `knee_delivery_p99_ms`, `failed_rate` (the
//! first failing step's rate; 0 if none failed). Every step is in the
//! report's `steps` with its verdict and figures; the latency summaries
//! and the generator's usage are the knee step's (the first step's if
//! none passed).

use std::sync::Arc;
use std::time::Duration;

use super::broadcast::{self, BroadcastError, BroadcastParams};
use crate::progress::Control;
use crate::report::{RunReport, StepReport};
use crate::runner::Setup;

/// Parameters of a ramp.
#[derive(Debug, Clone)]
pub struct RampParams {
    /// Everything but the rate and duration of each step.
    pub broadcast: BroadcastParams,
    /// Rate of the first step, messages per second.
    pub start_rate: f64,
    /// Each step's rate is the previous one's times this (> 1).
    pub factor: f64,
    /// How long each step publishes.
    pub step: Duration,
    /// No step above this rate.
    pub max_rate: f64,
    /// At most this many steps.
    pub max_steps: usize,
    /// A step fails when delivery p99 exceeds this.
    pub p99_limit: Duration,
}

impl RampParams {
    /// A ramp from 100 msg/s by ×1.5 per 5-second step, p99 limit 50 ms.
    pub fn new(subscribers: usize, publishers: usize) -> RampParams {
        RampParams {
            broadcast: BroadcastParams::new(subscribers, publishers, 100.0, Duration::from_secs(5)),
            start_rate: 100.0,
            factor: 1.5,
            step: Duration::from_secs(5),
            max_rate: 1_000_000.0,
            max_steps: 30,
            p99_limit: Duration::from_millis(50),
        }
    }
}

/// Runs a ramp.
pub async fn run(
    setup: Arc<Setup>,
    params: &RampParams,
    control: &Control,
) -> Result<RunReport, BroadcastError> {
    if !(params.factor > 1.0 && params.start_rate > 0.0 && params.max_steps > 0) {
        return Err(BroadcastError::Params(
            "ramp needs --factor > 1, --start-rate > 0 and --max-steps ≥ 1".into(),
        ));
    }
    let started = std::time::Instant::now();
    let mut report = RunReport::new("ramp");
    record_params(&mut report, params);
    super::common_params(&mut report, &setup);
    let limit_us = params.p99_limit.as_micros() as u64;
    let mut rate = params.start_rate;
    let mut knee: Option<(f64, RunReport)> = None;
    let mut first: Option<RunReport> = None;
    let mut failed_rate = 0.0;
    while report.steps.len() < params.max_steps && rate <= params.max_rate {
        let step_params = BroadcastParams {
            rate,
            duration: params.step,
            channel: None,
            ..params.broadcast.clone()
        };
        let step = broadcast::run(Arc::clone(&setup), &step_params, control).await?;
        let verdict = verdict(&step, params.broadcast.subscribers, limit_us);
        control.progress.note(&format!(
            "ramp step {}: {} msg/s, {:.0} deliveries/s, p99 {:.2} ms, lost {}: {verdict}",
            report.steps.len() + 1,
            rate,
            step.get("deliveries_per_s"),
            step.latency_us
                .get("delivery")
                .map_or(0.0, |d| d.p99 as f64 / 1000.0),
            step.get("lost"),
        ));
        report.steps.push(summary(&step, rate, verdict));
        for w in &step.warnings {
            if !report.warnings.contains(w) {
                report.warnings.push(w.clone());
            }
        }
        let passed = verdict == "ok";
        if first.is_none() {
            first = Some(step.clone());
        }
        if passed {
            knee = Some((rate, step));
        } else {
            failed_rate = rate;
            break;
        }
        rate *= params.factor;
    }

    report.metric("steps", report.steps.len() as f64);
    report.metric("failed_rate", failed_rate);
    let saturated = report
        .steps
        .iter()
        .filter(|s| s.passed && s.metrics.get("generator_saturated") == Some(&1.0))
        .count();
    if saturated > 0 {
        report.warnings.push(format!(
            "the generator was saturated in {saturated} passing step(s): the knee may be the generator's limit rather than the gateway's (run it on more cores or as several --workers)"
        ));
    }
    let shown = match &knee {
        Some((knee_rate, k)) => {
            report.metric("knee_rate", *knee_rate);
            report.metric("knee_deliveries_per_s", k.get("deliveries_per_s"));
            let p99 = k.latency_us.get("delivery").map_or(0, |d| d.p99);
            report.metric("knee_delivery_p99_ms", p99 as f64 / 1000.0);
            Some(k)
        }
        None => {
            report.metric("knee_rate", 0.0);
            report.warnings.push(format!(
                "no step passed: even {} msg/s exceeded the limits (p99 ≤ {} ms, no loss)",
                params.start_rate,
                params.p99_limit.as_secs_f64() * 1000.0
            ));
            first.as_ref()
        }
    };
    if let Some(step) = shown {
        report.latency_us = step.latency_us.clone();
        report.generator = step.generator.clone();
        report.gateway = step.gateway.clone();
        report.failures = step.failures.clone();
        report.closes = step.closes.clone();
    }
    report.interrupted = control.interrupt.is_cancelled();
    report.elapsed_s = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Why a step failed, or `ok`.
fn verdict(step: &RunReport, subscribers: usize, limit_us: u64) -> &'static str {
    let p99 = step.latency_us.get("delivery").map_or(0, |d| d.p99);
    if step.interrupted {
        "interrupted"
    } else if step.get("subscribers") < subscribers as f64 {
        "setup"
    } else if step.get("lost") > 0.0 || step.get("unacked") > 0.0 {
        "loss"
    } else if step.get("closed_subscribers") > 0.0 || !step.closes.is_empty() {
        "closed"
    } else if step.get("publish_errors") > 0.0 {
        "publish_errors"
    } else if p99 > limit_us {
        "p99"
    } else {
        "ok"
    }
}

/// A step's line in the report.
fn summary(step: &RunReport, rate: f64, verdict: &str) -> StepReport {
    let mut metrics = std::collections::BTreeMap::new();
    for key in [
        "published",
        "delivered",
        "deliveries_per_s",
        "lost",
        "duplicates",
        "out_of_order",
        "publish_errors",
        "closed_subscribers",
        "gateway_cpu_us_per_delivery",
    ] {
        if let Some(v) = step.metrics.get(key) {
            metrics.insert(key.to_owned(), *v);
        }
    }
    metrics.insert("generator_cores_used".into(), step.generator.cpu_cores_used);
    if let Some(gw) = &step.gateway {
        metrics.insert("gateway_cpu_s".into(), gw.cpu_s);
    }
    StepReport {
        rate,
        passed: verdict == "ok",
        verdict: verdict.to_owned(),
        metrics,
        delivery: step.latency_us.get("delivery").copied().unwrap_or_default(),
    }
}

fn record_params(report: &mut RunReport, params: &RampParams) {
    let b = &params.broadcast;
    report.param("subscribers", b.subscribers);
    report.param("publishers", b.publishers);
    report.param("payload_padding", b.payload_padding);
    report.param("start_rate", params.start_rate);
    report.param("factor", params.factor);
    report.param("step_s", params.step.as_secs_f64());
    report.param("max_rate", params.max_rate);
    report.param("max_steps", params.max_steps);
    report.param("p99_limit_ms", params.p99_limit.as_secs_f64() * 1000.0);
}
