//! TLS: the listener with a test certificate (wss://, https://, what a
//! client that does not trust it or speaks plaintext gets), the
//! certificate reloaded by file change and by SIGHUP without touching open
//! sessions, a Redis reached over TLS (`rediss://` with `redis.tls_ca`),
//! and certificate errors refusing start with the field's name.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokenim_client::{Auth, Client, ConnectOptions};
use tokenim_gateway::config::TlsConfig;
use tokenim_protocol::{ChannelName, Codec, Data, Push};

use crate::support::redis::RedisServer;
use crate::support::tls::{CertFiles, TestCa, connect};
use crate::support::{TestGateway, WAIT, http_get_on, next_push};

const OK: &str = r#"tokenim_tls_reloads_total{result="ok"}"#;
const ERROR: &str = r#"tokenim_tls_reloads_total{result="error"}"#;

fn room() -> ChannelName {
    ChannelName::new("rooms.tls").unwrap()
}

/// A gateway serving `files` over TLS, checking them every `interval`.
async fn tls_gateway(files: &CertFiles, interval: Duration) -> TestGateway {
    let tls = TlsConfig {
        reload_interval: interval,
        ..TlsConfig::new(&files.cert, &files.key)
    };
    TestGateway::with(|c| c.tls = Some(tls)).await
}

/// Options for `wss://127.0.0.1:<port>/ws` as `user`, trusting `ca` when
/// given (besides the webpki roots).
fn wss(gateway: &TestGateway, user: &str, ca: Option<&TestCa>) -> ConnectOptions {
    let url = format!("wss://{}/ws", gateway.addr);
    let options = ConnectOptions::new(url, Codec::Json, Auth::Frame(gateway.token(user)))
        .request_timeout(WAIT);
    match ca {
        Some(ca) => options.tls_ca_pem(ca.pem()),
        None => options,
    }
}

/// A TLS gateway serving a certificate of the `old` CA, checking its
/// files every given interval, with a session subscribed to `room()`;
/// `new` is the CA to replace it with.
struct Reload {
    _dir: tempfile::TempDir,
    old: TestCa,
    new: TestCa,
    files: CertFiles,
    gateway: TestGateway,
    session: Client,
}

impl Reload {
    async fn start(interval: Duration) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (TestCa::new("old CA"), TestCa::new("new CA"));
        let files = old.issue(dir.path(), "node");
        let gateway = tls_gateway(&files, interval).await;
        let session = Client::connect(wss(&gateway, "alice", Some(&old)))
            .await
            .unwrap();
        session.subscribe(&room()).await.unwrap();
        Self {
            _dir: dir,
            old,
            new,
            files,
            gateway,
            session,
        }
    }
}

/// Publishes on `room()` from `client` and reads it back: the session works.
async fn round_trip(client: &mut Client, n: u64) {
    let data = Data::from_value(&serde_json::json!({ "n": n })).unwrap();
    let seq = client.publish(&room(), data).await.unwrap();
    match next_push(client).await {
        Push::Message(m) => assert_eq!(m.seq, seq),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn wss_clients_that_trust_the_ca_chat_and_others_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("tokenim test CA");
    let gateway = tls_gateway(&ca.issue(dir.path(), "node"), Duration::from_secs(60)).await;

    for codec in [Codec::Json, Codec::MsgPack] {
        let mut options = wss(&gateway, "alice", Some(&ca));
        options.codec = codec;
        let mut alice = Client::connect(options).await.expect("wss connects");
        let bob = Client::connect(wss(&gateway, "bob", Some(&ca)))
            .await
            .unwrap();
        alice.subscribe(&room()).await.unwrap();
        let data = Data::from_value(&serde_json::json!({ "text": "hi" })).unwrap();
        let seq = bob.publish(&room(), data).await.unwrap();
        match next_push(&mut alice).await {
            Push::Message(m) => {
                assert_eq!(m.seq, seq);
                assert_eq!(m.from.as_ref().map(|u| u.as_str()), Some("bob"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    // Plaintext WebSocket to the TLS port: no HTTP answer, a failed handshake.
    let plain =
        ConnectOptions::new(gateway.ws_url(), Codec::Json, Auth::None).request_timeout(WAIT);
    assert!(Client::connect(plain).await.is_err());
    let failures = r#"tokenim_tls_handshake_failures_total{reason="error"}"#;
    gateway.wait_metric(failures, 1.0).await;

    // A client that does not trust the test CA refuses the certificate.
    let e = Client::connect(wss(&gateway, "carol", None))
        .await
        .expect_err("untrusted certificate refused");
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");
    gateway.wait_metric(failures, 2.0).await;

    let tls = connect(gateway.addr, &ca.pem()).await.expect("https");
    let (status, body) = http_get_on(tls, gateway.addr, "/healthz", &[]).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
}

#[tokio::test]
async fn a_replaced_certificate_is_served_to_new_connections_while_sessions_go_on() {
    let mut r = Reload::start(Duration::from_millis(100)).await;
    round_trip(&mut r.session, 1).await;

    r.new.issue_to(&r.files);
    r.gateway.wait_metric(OK, 1.0).await;
    Client::connect(wss(&r.gateway, "bob", Some(&r.new)))
        .await
        .expect("the new certificate is served");
    assert!(
        connect(r.gateway.addr, &r.old.pem()).await.is_err(),
        "the old certificate is no longer served"
    );
    round_trip(&mut r.session, 2).await;
}

#[tokio::test]
async fn sighup_reloads_and_a_bad_pair_keeps_the_certificate_in_service() {
    // Files are looked at hourly: only the signal reloads.
    let mut r = Reload::start(Duration::from_secs(3600)).await;
    let hangup = || {
        let pid = std::process::id().to_string();
        assert!(
            Command::new("kill")
                .args(["-HUP", &pid])
                .status()
                .unwrap()
                .success()
        );
    };

    std::fs::write(&r.files.key, "not a key").unwrap();
    hangup();
    r.gateway.wait_metric(ERROR, 1.0).await;
    assert_eq!(r.gateway.metric(OK), 0.0);
    connect(r.gateway.addr, &r.old.pem())
        .await
        .expect("the previous certificate stays in service");

    r.new.issue_to(&r.files);
    hangup();
    r.gateway.wait_metric(OK, 1.0).await;
    connect(r.gateway.addr, &r.new.pem())
        .await
        .expect("the new certificate is served");
    round_trip(&mut r.session, 1).await;
}

#[tokio::test]
async fn nodes_joined_through_a_tls_redis_exchange_messages() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("redis CA");
    let ca_file = ca.write_pem(dir.path(), "ca.pem");
    let redis = RedisServer::start_tls(ca.issue(dir.path(), "redis"), ca_file.clone());
    assert_eq!(redis.cli(&["PING"]).trim(), "PONG");
    let url = redis.url();
    let node = || {
        let ca_file = ca_file.clone();
        TestGateway::with_redis(&url, false, move |c| {
            c.redis.as_mut().unwrap().tls_ca = Some(ca_file);
        })
    };
    let (a, b) = (node().await, node().await);
    a.wait_ready(200).await;
    b.wait_ready(200).await;
    let mut alice = a.client("alice", Codec::Json).await;
    alice.subscribe(&room()).await.unwrap();
    let bob = b.client("bob", Codec::MsgPack).await;
    let data = Data::from_value(&serde_json::json!({ "text": "over tls" })).unwrap();
    let seq = bob.publish(&room(), data).await.unwrap();
    match next_push(&mut alice).await {
        Push::Message(m) => assert_eq!(
            (m.seq, m.from.as_ref().map(|u| u.as_str())),
            (seq, Some("bob"))
        ),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_tls_redis_without_its_ca_is_a_certificate_error_and_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("redis CA");
    let ca_file = ca.write_pem(dir.path(), "ca.pem");
    let redis = RedisServer::start_tls(ca.issue(dir.path(), "redis"), ca_file);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tokenim"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("serve")
        .env("TOKENIM_REDIS__URL", redis.url())
        .env("TOKENIM_STORE__ALLOW_VOLATILE_REDIS", "true")
        .env("TOKENIM_STORE__PATH", dir.path().join("data"))
        .env("TOKENIM_LOG__FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    // The log goes to standard output.
    let log = child.stdout.take().unwrap();
    let found = std::thread::spawn(move || {
        BufReader::new(log)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.contains("redis subscriber connection lost"))
    });
    let deadline = Instant::now() + WAIT;
    while !found.is_finished() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    // It listens once the store's first call has given up.
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline + WAIT, "tokenim did not listen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body) = crate::support::http_get(addr, "/readyz", &[]).await;
    let _ = child.kill();
    let _ = child.wait();
    let line = found
        .join()
        .unwrap()
        .expect("the connection error is logged");
    assert!(line.contains("invalid peer certificate"), "{line}");
    assert_eq!((status, body.as_str()), (503, "broker unavailable"));
}

#[test]
fn certificate_errors_refuse_start_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("CA");
    let good = ca.issue(dir.path(), "a");
    let other = ca.issue(dir.path(), "b");
    let missing = dir.path().join("missing.pem");
    let run = |cert: &std::path::Path, key: &std::path::Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_tokenim"))
            .args(["--listen", "127.0.0.1:0", "serve"])
            .env("TOKENIM_STORE__PATH", dir.path().join("data"))
            .env("TOKENIM_TLS__CERT", cert)
            .env("TOKENIM_TLS__KEY", key)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = run(&missing, &good.key);
    assert!(e.contains("`tls.cert`") && e.contains("missing.pem"), "{e}");
    let e = run(&good.cert, &other.key);
    assert!(
        e.contains("`tls.key`") && e.contains("does not go with"),
        "{e}"
    );
}

#[tokio::test]
async fn the_lean_transport_of_the_load_generator_speaks_wss() {
    use tokenim_client::lean;
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("lean CA");
    let gateway = tls_gateway(&ca.issue(dir.path(), "node"), Duration::from_secs(60)).await;
    let options = wss(&gateway, "lean", Some(&ca));
    let mut conn = lean::upgrade(&options, 4096)
        .await
        .expect("lean wss upgrade");
    // A command through TLS and its reply back, then a pushed message.
    let subscribe = tokenim_protocol::Command::Subscribe {
        channel: room(),
        since: None,
    };
    conn.send(&lean::encode(Codec::Json, 2, subscribe))
        .await
        .unwrap();
    let reply = tokio::time::timeout(WAIT, lean::next_reply(&mut conn, 2))
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(reply.outcome, tokenim_protocol::Outcome::Result(_)),
        "{reply:?}"
    );
    let bob = Client::connect(wss(&gateway, "bob", Some(&ca)))
        .await
        .unwrap();
    let data = Data::from_value(&serde_json::json!({ "text": "over tls" })).unwrap();
    let seq = bob.publish(&room(), data).await.unwrap();
    let mut seen = None;
    while seen.is_none() {
        tokio::time::timeout(
            WAIT,
            conn.read_some(|m| {
                if let Some(m) = lean::scan::message(Codec::Json, m) {
                    seen = Some(m.seq);
                }
            }),
        )
        .await
        .unwrap()
        .unwrap();
    }
    assert_eq!(seen, Some(seq));
    // Without the CA the handshake fails at its TLS stage.
    let e = lean::upgrade(&wss(&gateway, "x", None), 4096)
        .await
        .unwrap_err();
    assert!(
        matches!(e, lean::UpgradeError::Io { stage: "tls", .. }),
        "{e}"
    );
}
