//! Ramp: every step's counts agree with what was sent; the knee is the
//! last step within the limits; a step over the limit ends the ramp.

use std::time::{Duration, Instant};

use tokenim_loadtest::progress::Control;
use tokenim_loadtest::scenario::ramp::{self, RampParams};

use crate::support::TestGateway;

fn params(steps: usize, limit: Duration) -> RampParams {
    let mut p = RampParams::new(5, 1);
    p.start_rate = 100.0;
    p.factor = 2.0;
    p.step = Duration::from_millis(300);
    p.max_steps = steps;
    p.p99_limit = limit;
    p.broadcast.drain = Duration::from_secs(1);
    p.broadcast.threads = 2;
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_rise_by_the_factor_and_each_counts_exactly() {
    let gateway = TestGateway::spawn().await;
    let began = Instant::now();
    let report = ramp::run(
        gateway.shared(|_| {}),
        &params(3, Duration::from_secs(10)),
        &Control::quiet(),
    )
    .await
    .unwrap();
    assert!(began.elapsed() < Duration::from_secs(3), "bounded run");
    let rates: Vec<f64> = report.steps.iter().map(|s| s.rate).collect();
    assert_eq!(rates, [100.0, 200.0, 400.0], "{report:#?}");
    for step in &report.steps {
        assert!(step.passed, "{step:?}");
        let published = step.metrics["published"];
        assert!(published >= step.rate * 0.3 * 0.9, "{step:?}");
        assert_eq!(step.metrics["delivered"], published * 5.0, "{step:?}");
        assert_eq!(step.metrics["lost"], 0.0);
        assert_eq!(step.delivery.count as f64, published * 5.0);
    }
    assert_eq!(report.get("knee_rate"), 400.0);
    assert_eq!(report.get("failed_rate"), 0.0);
    assert_eq!(report.get("steps"), 3.0);
    assert!(report.get("knee_deliveries_per_s") > 0.0);
    assert_eq!(
        report.latency_us["delivery"].count as f64,
        report.steps[2].metrics["delivered"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_over_the_limit_ends_the_ramp_without_a_knee() {
    let gateway = TestGateway::spawn().await;
    let report = ramp::run(
        gateway.shared(|_| {}),
        &params(5, Duration::from_micros(1)),
        &Control::quiet(),
    )
    .await
    .unwrap();
    assert_eq!(report.steps.len(), 1, "{report:#?}");
    assert_eq!(report.steps[0].verdict, "p99");
    assert_eq!(report.get("knee_rate"), 0.0);
    assert_eq!(report.get("failed_rate"), 100.0);
    assert!(report.warnings.iter().any(|w| w.contains("no step passed")));
}
