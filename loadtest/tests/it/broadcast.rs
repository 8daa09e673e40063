//! Broadcast: counts agree with what was sent; loss shows when a
//! subscriber goes away; refused publishes are not counted as loss.

use std::time::{Duration, Instant};

use tokenim_loadtest::progress::Control;
use tokenim_loadtest::report::RunReport;
use tokenim_loadtest::scenario::broadcast::{self, BroadcastParams};
use tokenim_protocol::Codec;

use crate::support::TestGateway;

fn params(subscribers: usize, publishers: usize, rate: f64, ms: u64) -> BroadcastParams {
    let mut p = BroadcastParams::new(subscribers, publishers, rate, Duration::from_millis(ms));
    p.drain = Duration::from_secs(2);
    p.threads = 2;
    p
}

fn assert_exact(report: &RunReport, subscribers: f64) {
    let published = report.get("published");
    assert!(published > 0.0, "{report:#?}");
    assert_eq!(report.get("acked"), published, "every publish acknowledged");
    assert_eq!(report.get("publish_errors"), 0.0);
    assert_eq!(report.get("subscribers"), subscribers);
    assert_eq!(report.get("expected_deliveries"), published * subscribers);
    assert_eq!(report.get("delivered"), published * subscribers);
    assert_eq!(report.get("lost"), 0.0);
    assert_eq!(report.get("subscribers_with_loss"), 0.0);
    assert_eq!(report.get("duplicates"), 0.0);
    assert_eq!(report.get("out_of_order"), 0.0);
    let delivery = report.latency_us["delivery"];
    assert_eq!(delivery.count as f64, published * subscribers);
    assert!(delivery.p50 <= delivery.p99 && delivery.p99 <= delivery.max);
    assert_eq!(report.latency_us["publish_ack"].count as f64, published);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_loss_reports_exact_counts_in_both_codecs() {
    let gateway = TestGateway::spawn().await;
    for codec in Codec::ALL {
        let setup = gateway.shared(|s| s.codec = codec);
        let began = Instant::now();
        // Every delivery is also decoded in full and checked against the
        // fast scan.
        let mut p = params(20, 2, 200.0, 1000);
        p.verify = true;
        let report = broadcast::run(setup, &p, &Control::quiet()).await.unwrap();
        assert!(began.elapsed() < Duration::from_secs(4), "bounded run");
        assert_exact(&report, 20.0);
        assert_eq!(report.get("verify_mismatches"), 0.0);
        assert!(report.get("verified") >= report.get("delivered"));
        // 200 msg/s for 1 s, split over two interleaved publishers.
        assert!(
            (195.0..=200.0).contains(&report.get("published")),
            "{report:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_message_cap_bounds_the_run() {
    let gateway = TestGateway::spawn().await;
    let mut p = params(5, 3, 1000.0, 10_000);
    p.messages = Some(50);
    p.payload_padding = 300;
    let began = Instant::now();
    let report = broadcast::run(gateway.shared(|_| {}), &p, &Control::quiet())
        .await
        .unwrap();
    assert!(began.elapsed() < Duration::from_secs(3));
    assert_eq!(report.get("published"), 50.0);
    assert_exact(&report, 5.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_subscriber_shows_up_as_its_loss() {
    let gateway = TestGateway::spawn().await;
    let mut p = params(10, 1, 200.0, 1500);
    p.drop_subscribers = 1;
    p.drop_after = Duration::from_millis(500);
    let report = broadcast::run(gateway.shared(|_| {}), &p, &Control::quiet())
        .await
        .unwrap();
    let published = report.get("published");
    assert_eq!(report.get("acked"), published);
    assert_eq!(report.get("dropped_subscribers"), 1.0);
    assert_eq!(report.get("subscribers_with_loss"), 1.0, "{report:#?}");
    let lost = report.get("lost");
    // Dropped a third of the way in: about two thirds of its messages.
    assert!(
        lost > published * 0.5 && lost < published * 0.8,
        "lost {lost} of {published}"
    );
    assert_eq!(
        report.get("delivered") + lost,
        report.get("expected_deliveries")
    );
    assert_eq!(report.get("expected_deliveries"), published * 10.0);
    assert_eq!(report.get("duplicates"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_publishes_are_counted_but_not_as_loss() {
    let gateway = TestGateway::with(|c| {
        c.limits.publish_rate = 20.0;
        c.limits.publish_burst = 5.0;
    })
    .await;
    let report = broadcast::run(
        gateway.shared(|_| {}),
        &params(4, 1, 100.0, 1000),
        &Control::quiet(),
    )
    .await
    .unwrap();
    let (published, acked) = (report.get("published"), report.get("acked"));
    assert!(report.get("rate_limited") > 0.0, "{report:#?}");
    assert_eq!(acked + report.get("rate_limited"), published);
    assert_eq!(report.get("lost"), 0.0);
    assert_eq!(report.get("delivered"), acked * 4.0);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("TOKENIM_LIMITS__PUBLISH_RATE"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_start_is_charged_to_latency_not_hidden() {
    // A publisher scheduled far faster than one connection can keep up
    // with sends in bursts; the send lag it builds up must show in the
    // delivery latency (measured from the intended send time).
    let gateway = TestGateway::spawn().await;
    let mut p = params(2, 1, 200_000.0, 300);
    p.messages = Some(20_000);
    let report = broadcast::run(gateway.shared(|_| {}), &p, &Control::quiet())
        .await
        .unwrap();
    let lag = report.latency_us["send_lag"];
    let delivery = report.latency_us["delivery"];
    assert!(lag.count > 0);
    assert!(
        delivery.max >= lag.max,
        "delivery max {} < send lag max {}",
        delivery.max,
        lag.max
    );
    assert_eq!(report.get("lost"), 0.0);
}
