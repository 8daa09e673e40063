//! The binary end to end: a run writes JSON, `compare` reads it back;
//! non-loopback targets are refused before any traffic.

use std::process::Command;

use tokenim_loadtest::report::{RunReport, SCHEMA_VERSION, compare};

use crate::support::TestGateway;

const BIN: &str = env!("CARGO_BIN_EXE_tokenim-loadtest");

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("tokenim-loadtest-{}-{name}", std::process::id()))
}

async fn run(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || Command::new(BIN).args(args).output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_results_round_trip_through_compare() {
    let gateway = TestGateway::spawn().await;
    let (a, b) = (temp("a.json"), temp("b.json"));
    for (path, codec) in [(&a, "json"), (&b, "msgpack")] {
        let args = [
            "broadcast",
            "-s",
            "5",
            "-r",
            "100",
            "--duration",
            "500ms",
            "--no-progress",
            "--codec",
            codec,
            "--url",
            &gateway.url,
            "--json",
        ];
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        args.push(path.display().to_string());
        let out = run(args).await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("deliveries_per_s"), "{stdout}");
        assert!(stdout.contains("latency ms"), "{stdout}");
    }
    let ra = RunReport::read_json(&a).unwrap();
    let rb = RunReport::read_json(&b).unwrap();
    assert_eq!(ra.schema_version, SCHEMA_VERSION);
    assert_eq!(ra.scenario, "broadcast");
    assert_eq!(ra.get("lost"), 0.0);
    assert_eq!(rb.params["codec"], "msgpack");
    // What is written is what is read.
    let again = temp("again.json");
    ra.write_json(&again).unwrap();
    assert_eq!(RunReport::read_json(&again).unwrap(), ra);
    // Self-comparison: nothing changes.
    assert!(compare::rows(&ra, &ra).iter().all(|r| r.better.is_none()));

    let out = run(vec![
        "compare".into(),
        a.display().to_string(),
        b.display().to_string(),
    ])
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("! parameter codec"), "{text}");
    assert!(text.contains("latency.delivery.p99_ms"), "{text}");
    assert!(text.contains("deliveries_per_s"), "{text}");

    std::fs::write(&again, r#"{"schema_version": 99}"#).unwrap();
    let out = run(vec![
        "compare".into(),
        a.display().to_string(),
        again.display().to_string(),
    ])
    .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("schema_version 99"));
    for p in [a, b, again] {
        let _ = std::fs::remove_file(p);
    }
}

#[tokio::test]
async fn remote_targets_are_refused_without_allow_remote() {
    let out = run(vec![
        "connect".into(),
        "--url".into(),
        "ws://10.255.255.1:8080/ws".into(),
        "--no-progress".into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a loopback address"), "{err}");

    let out = run(vec![
        "idle".into(),
        "--source-ips".into(),
        "192.168.0.1".into(),
        "--no-progress".into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
}

/// Runs the binary against `gateway` with `args` and reads its JSON.
pub(crate) async fn run_json(gateway: &TestGateway, name: &str, args: &[&str]) -> RunReport {
    let path = temp(name);
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    for extra in ["--no-progress", "--url", &gateway.url, "--json"] {
        all.push(extra.to_owned());
    }
    all.push(path.display().to_string());
    let out = run(all).await;
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report = RunReport::read_json(&path).unwrap();
    let _ = std::fs::remove_file(path);
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ramp_rooms_and_direct_run_from_the_command_line() {
    let gateway = TestGateway::spawn().await;
    let ramp = run_json(
        &gateway,
        "ramp.json",
        &[
            "ramp",
            "-s",
            "3",
            "--start-rate",
            "50",
            "--factor",
            "2",
            "--step",
            "200ms",
            "--max-steps",
            "2",
        ],
    )
    .await;
    assert_eq!(ramp.steps.len(), 2, "{ramp:#?}");
    assert_eq!(ramp.get("knee_rate"), 100.0);
    let rooms = run_json(
        &gateway,
        "rooms.json",
        &[
            "rooms",
            "-n",
            "6",
            "--rooms",
            "2",
            "--rate-per-user",
            "10",
            "--active-fraction",
            "1",
            "--duration",
            "300ms",
        ],
    )
    .await;
    assert_eq!(rooms.get("lost"), 0.0);
    assert_eq!(rooms.get("delivered"), rooms.get("acked") * 3.0);
    let direct = run_json(
        &gateway,
        "direct.json",
        &[
            "direct",
            "-n",
            "4",
            "--rate-per-user",
            "10",
            "--duration",
            "300ms",
            "--codec",
            "msgpack",
        ],
    )
    .await;
    assert_eq!(direct.get("delivered"), direct.get("acked"));
}
