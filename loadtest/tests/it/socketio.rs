//! `--target socketio`: the same scenarios against the real Socket.IO 4
//! server of `bench/socketio` (started here with `node` on a free port;
//! skipped, saying so, only when `node` is not installed).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokenim_loadtest::progress::Control;
use tokenim_loadtest::runner::Setup;
use tokenim_loadtest::scenario::broadcast::{self, BroadcastParams};
use tokenim_loadtest::scenario::idle::{self, IdleParams};
use tokenim_loadtest::wire::TargetKind;

/// A running `node bench/socketio/server.js`; killed on drop.
struct SocketIo {
    child: Child,
    port: u16,
}

impl Drop for SocketIo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bench_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/socketio")
}

/// Starts the server, installing its packages first if they are missing;
/// `None` when `node` is absent.
fn start() -> Option<SocketIo> {
    if Command::new("node").arg("--version").output().is_err() {
        eprintln!(
            "SKIPPED: `node` is not installed, so the Socket.IO comparison server cannot run"
        );
        return None;
    }
    let dir = bench_dir();
    if !dir.join("node_modules/socket.io").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .status()
            .expect("npm runs (node is installed)");
        assert!(status.success(), "npm ci --prefix bench/socketio failed");
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut child = Command::new("node")
        .arg(dir.join("server.js"))
        .args(["127.0.0.1", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("the server prints a line");
    assert!(line.contains("listening"), "server said {line:?}");
    Some(SocketIo { child, port })
}

fn setup(server: &SocketIo) -> Arc<Setup> {
    // No path: the generator adds /socket.io/?EIO=4&transport=websocket.
    let mut setup = Setup::local(&format!("ws://127.0.0.1:{}", server.port)).unwrap();
    setup.kind = TargetKind::Socketio;
    setup.connect_timeout = Duration::from_secs(5);
    Arc::new(setup)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_to_socketio_counts_exactly() {
    let Some(server) = start() else { return };
    let mut p = BroadcastParams::new(20, 2, 200.0, Duration::from_millis(1000));
    p.threads = 2;
    p.verify = true;
    p.payload_padding = 16;
    let report = broadcast::run(setup(&server), &p, &Control::quiet())
        .await
        .unwrap();
    let published = report.get("published");
    assert!((195.0..=200.0).contains(&published), "{report:#?}");
    assert_eq!(report.get("acked"), published, "{report:#?}");
    assert_eq!(report.get("subscribers"), 20.0);
    assert_eq!(report.get("last_seq"), published);
    assert_eq!(report.get("expected_deliveries"), published * 20.0);
    assert_eq!(report.get("delivered"), published * 20.0);
    assert_eq!(report.get("lost"), 0.0);
    assert_eq!(report.get("duplicates"), 0.0);
    assert_eq!(report.get("out_of_order"), 0.0);
    assert_eq!(report.get("verify_mismatches"), 0.0);
    assert_eq!(report.latency_us["delivery"].count as f64, published * 20.0);
    assert_eq!(report.params["target"], "socketio");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_socketio_subscriber_shows_up_as_loss() {
    let Some(server) = start() else { return };
    let mut p = BroadcastParams::new(10, 1, 200.0, Duration::from_millis(1500));
    p.threads = 2;
    p.drop_subscribers = 1;
    p.drop_after = Duration::from_millis(500);
    let report = broadcast::run(setup(&server), &p, &Control::quiet())
        .await
        .unwrap();
    let published = report.get("published");
    assert_eq!(report.get("dropped_subscribers"), 1.0);
    assert_eq!(report.get("subscribers_with_loss"), 1.0, "{report:#?}");
    let lost = report.get("lost");
    assert!(
        lost > 50.0 && lost < published,
        "lost {lost} of {published}"
    );
    assert_eq!(report.get("delivered") + lost, published * 10.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_socketio_connections_are_held_and_measured() {
    let Some(server) = start() else { return };
    let params = IdleParams {
        connections: 50,
        rate: 0.0,
        duration: Duration::from_millis(1500),
        settle: Duration::from_millis(200),
        gateway_pid: Some(server.child.id()),
        threads: 2,
    };
    let report = idle::run(setup(&server), &params, &Control::quiet()).await;
    assert_eq!(report.get("connected"), 50.0, "{:?}", report.failures);
    assert_eq!(report.get("held"), 50.0, "closes: {:?}", report.closes);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(report.gateway.as_ref().unwrap().rss_after_bytes > 0);
    assert!(
        report
            .metrics
            .contains_key("gateway_rss_per_connection_bytes")
    );
}
