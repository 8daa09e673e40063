//! `--workers`: child processes share the connections, start together,
//! and their merged counts agree with what was sent.

use std::time::{Duration, Instant};

use crate::cli::run_json;
use crate::support::TestGateway;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_broadcast_workers_merge_into_exact_counts() {
    let gateway = TestGateway::spawn().await;
    let began = Instant::now();
    let report = run_json(
        &gateway,
        "workers-broadcast.json",
        &[
            "broadcast",
            "-s",
            "6",
            "-p",
            "2",
            "-r",
            "100",
            "--duration",
            "500ms",
            "--workers",
            "2",
            "--source-ips",
            "127.0.0.1-127.0.0.4",
        ],
    )
    .await;
    assert!(began.elapsed() < Duration::from_secs(5), "bounded run");
    assert_eq!(report.params["workers"], 2);
    assert_eq!(report.get("subscribers"), 6.0, "{report:#?}");
    assert_eq!(report.get("publishers"), 2.0);
    let published = report.get("published");
    assert!(published >= 45.0, "{report:#?}");
    assert_eq!(report.get("acked"), published);
    assert_eq!(report.get("expected_deliveries"), published * 6.0);
    assert_eq!(report.get("delivered"), published * 6.0);
    assert_eq!(report.get("lost"), 0.0);
    assert_eq!(report.latency_us["delivery"].count as f64, published * 6.0);
    assert_eq!(report.latency_us["connect"].count, 8);
    assert!(report.histograms.is_empty());
    assert!(report.generator.threads >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_and_direct_workers_merge_into_exact_counts() {
    let gateway = TestGateway::spawn().await;
    let rooms = run_json(
        &gateway,
        "workers-rooms.json",
        &[
            "rooms",
            "-n",
            "8",
            "--rooms",
            "2",
            "--rate-per-user",
            "10",
            "--active-fraction",
            "1",
            "--duration",
            "400ms",
            "--workers",
            "2",
        ],
    )
    .await;
    assert_eq!(rooms.get("users_ready"), 8.0, "{rooms:#?}");
    assert_eq!(rooms.get("lost"), 0.0);
    assert_eq!(rooms.get("delivered"), rooms.get("acked") * 4.0);
    let direct = run_json(
        &gateway,
        "workers-direct.json",
        &[
            "direct",
            "-n",
            "6",
            "--rate-per-user",
            "10",
            "--duration",
            "400ms",
            "--workers",
            "2",
            "--drain",
            "500ms",
        ],
    )
    .await;
    assert!(direct.get("acked") > 0.0, "{direct:#?}");
    assert_eq!(direct.get("delivered"), direct.get("acked"));
    assert_eq!(direct.get("lost"), 0.0);
}
