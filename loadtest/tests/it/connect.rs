//! The connection storm: successes, failures by reason, auth modes.

use std::time::{Duration, Instant};

use tokenim_loadtest::progress::Control;
use tokenim_loadtest::runner::parse_sources;
use tokenim_loadtest::scenario::connect::{self, ConnectParams};
use tokenim_loadtest::token::TokenSource;
use tokenim_loadtest::wire::AuthMode;
use tokenim_protocol::Codec;

use crate::support::TestGateway;

fn params(connections: usize, duration_ms: u64) -> ConnectParams {
    ConnectParams {
        connections,
        rate: 500.0,
        duration: Duration::from_millis(duration_ms),
        gateway_pid: None,
        threads: 2,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_reports_every_connection_and_holds_them() {
    let gateway = TestGateway::spawn().await;
    let setup = gateway.shared(|s| {
        s.sources = parse_sources("127.0.0.1-127.0.0.3", false).unwrap();
    });
    let began = Instant::now();
    let report = connect::run(setup, &params(40, 1000), &Control::quiet()).await;
    assert!(began.elapsed() < Duration::from_secs(4), "bounded run");
    assert_eq!(report.get("attempted"), 40.0, "{report:#?}");
    assert_eq!(report.get("connected"), 40.0, "{:?}", report.failures);
    assert_eq!(report.get("failed"), 0.0);
    assert_eq!(report.get("held"), 40.0);
    assert_eq!(report.get("closed_during_hold"), 0.0);
    let connect = report.latency_us["connect"];
    assert_eq!(connect.count, 40);
    assert!(connect.p50 > 0 && connect.p50 <= connect.p99 && connect.p99 <= connect.max);
    assert!(report.failures.is_empty() && report.closes.is_empty());
    assert!(report.generator.cpu_user_s + report.generator.cpu_system_s > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_ip_cap_shows_as_http_429_and_source_addresses_avoid_it() {
    let capped = |c: &mut tokenim_gateway::Config| c.limits.max_connections_per_ip = 10;

    let gateway = TestGateway::with(capped).await;
    let one_source = gateway.shared(|s| s.sources = parse_sources("127.0.0.1", false).unwrap());
    let report = connect::run(one_source, &params(20, 600), &Control::quiet()).await;
    assert_eq!(report.get("connected"), 10.0, "{:?}", report.failures);
    assert_eq!(report.failures.get("http_429"), Some(&10));
    assert!(
        report.warnings.iter().any(|w| w.contains("per-IP")),
        "{:?}",
        report.warnings
    );

    let gateway = TestGateway::with(capped).await;
    let two_sources = gateway.shared(|s| {
        s.sources = parse_sources("127.0.0.1-127.0.0.2", false).unwrap();
    });
    let report = connect::run(two_sources, &params(20, 600), &Control::quiet()).await;
    assert_eq!(report.get("connected"), 20.0, "{:?}", report.failures);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_and_query_auth_work_in_both_codecs() {
    let gateway = TestGateway::spawn().await;
    for (auth, codec) in [
        (AuthMode::Frame, Codec::MsgPack),
        (AuthMode::Query, Codec::Json),
        (AuthMode::Header, Codec::MsgPack),
    ] {
        let setup = gateway.shared(|s| {
            s.auth = auth;
            s.codec = codec;
        });
        let report = connect::run(setup, &params(8, 300), &Control::quiet()).await;
        assert_eq!(
            report.get("connected"),
            8.0,
            "{auth:?} {codec:?}: {:?}",
            report.failures
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_tokens_are_counted_by_reason() {
    let gateway = TestGateway::spawn().await;
    let wrong = TokenSource::hs256(&"w".repeat(40), Some("dev"), "lt", 60).unwrap();
    let setup = gateway.shared(|s| s.tokens = wrong.clone());
    let report = connect::run(setup, &params(5, 300), &Control::quiet()).await;
    assert_eq!(report.get("connected"), 0.0);
    assert_eq!(
        report.failures.get("http_401"),
        Some(&5),
        "{:?}",
        report.failures
    );

    let setup = gateway.shared(|s| {
        s.tokens = wrong;
        s.auth = AuthMode::Frame;
    });
    let report = connect::run(setup, &params(3, 300), &Control::quiet()).await;
    assert_eq!(
        report.failures.get("connect_error_1102"),
        Some(&3),
        "{:?}",
        report.failures
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_ends_the_hold_early_and_still_reports() {
    let gateway = TestGateway::spawn().await;
    let control = Control::quiet();
    let interrupt = control.interrupt.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        interrupt.cancel();
    });
    let began = Instant::now();
    let report = connect::run(gateway.shared(|_| {}), &params(10, 30_000), &control).await;
    assert!(began.elapsed() < Duration::from_secs(5));
    assert!(report.interrupted);
    assert_eq!(report.get("connected"), 10.0);
}
