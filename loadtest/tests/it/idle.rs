//! Idle connections: pings answered, memory read from /proc.

use std::time::Duration;

use tokenim_loadtest::progress::Control;
use tokenim_loadtest::scenario::idle::{self, IdleParams};

use crate::support::TestGateway;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_answer_pings_and_memory_is_reported() {
    let gateway = TestGateway::with(|c| {
        c.limits.ping_interval = Duration::from_millis(200);
        c.limits.idle_timeout = Duration::from_millis(700);
    })
    .await;
    let params = IdleParams {
        connections: 30,
        rate: 0.0,
        duration: Duration::from_millis(2000),
        settle: Duration::from_millis(200),
        // The gateway runs in this process.
        gateway_pid: Some(std::process::id()),
        threads: 2,
    };
    let report = idle::run(gateway.shared(|_| {}), &params, &Control::quiet()).await;
    assert_eq!(report.get("connected"), 30.0, "{:?}", report.failures);
    // Idle timeout 0.7 s < hold 2 s: only answered pings keep them open.
    assert_eq!(report.get("held"), 30.0, "closes: {:?}", report.closes);
    assert!(report.closes.is_empty(), "{:?}", report.closes);
    assert!(report.get("pings_received") >= 30.0 * 3.0);
    let gw = report.gateway.as_ref().expect("gateway usage with a pid");
    assert!(gw.rss_before_bytes > 0 && gw.rss_after_bytes > 0 && gw.rss_end_bytes > 0);
    assert!(
        report
            .metrics
            .contains_key("gateway_rss_per_connection_bytes")
    );
    assert!(report.generator.peak_rss_bytes > 0);
}
