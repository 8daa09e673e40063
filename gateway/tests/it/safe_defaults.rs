//! Safe by default: a configuration that looks like production is
//! production. The `tokenim` binary itself, started as an operator would,
//! and channels closed to users without claims, roles or grants.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokenim_auth::{Grant, MintRequest, Permission, Subject};
use tokenim_client::{Auth, Client, Error};
use tokenim_gateway::config::dev_key;
use tokenim_protocol::{ChannelName, Codec, Data, ErrorCode, UserId};

use crate::support::{TestGateway, http_get};

/// A `tokenim serve` process with `config` as its file; killed on drop.
struct Binary {
    addr: SocketAddr,
    child: Child,
    dir: tempfile::TempDir,
}

impl Binary {
    /// Starts it and waits until it listens.
    async fn start(config: &str) -> Self {
        Self::start_with(config, &[]).await
    }

    /// Starts it with extra flags; its standard output and error go to
    /// files in its directory ([`Binary::output`]).
    async fn start_with(config: &str, flags: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let file = dir.path().join("tokenim.toml");
        let store = dir.path().join("data");
        std::fs::write(
            &file,
            format!(
                "listen = \"{addr}\"\n{config}\n[store]\npath = \"{}\"\n",
                store.display()
            ),
        )
        .unwrap();
        let out = std::fs::File::create(dir.path().join("stdout")).unwrap();
        let err = std::fs::File::create(dir.path().join("stderr")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_tokenim"))
            .arg("--config")
            .arg(&file)
            .args(flags)
            .arg("serve")
            .env("TOKENIM_LOG__FORMAT", "json")
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap();
        let mut binary = Self { addr, child, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            assert!(
                binary.child.try_wait().unwrap().is_none(),
                "tokenim exited before listening"
            );
            assert!(Instant::now() < deadline, "tokenim did not listen");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        binary
    }
}

impl Binary {
    /// Everything it wrote to standard output and standard error so far.
    fn output(&self) -> (String, String) {
        let read = |name| std::fs::read_to_string(self.dir.path().join(name)).unwrap();
        (read("stdout"), read("stderr"))
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A production-looking configuration: a real key, an audience and an
/// issuer, and no `dev_mode` line.
const PRODUCTION: &str = r#"
[auth]
audience = "chat"
issuer = "https://backend.example"
[[auth.keys]]
kid = "prod-2026"
alg = "HS256"
secret = "a-production-secret-of-at-least-32-bytes!"
"#;

#[tokio::test]
async fn a_production_config_without_dev_mode_serves_no_dev_token_and_no_demo() {
    let node = Binary::start(PRODUCTION).await;
    let (status, body) = http_get(node.addr, "/dev/token?user=alice", &[]).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("not in development mode"), "{body}");
    let (status, body) = http_get(node.addr, "/", &[]).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("\"code\":1009"), "{body}");
    assert_eq!(http_get(node.addr, "/healthz", &[]).await.0, 200);

    // With nothing configured at all, the first README command's node is
    // in development mode: the demo works.
    let dev = Binary::start("").await;
    let (status, page) = http_get(dev.addr, "/", &[]).await;
    assert_eq!(status, 200);
    assert!(page.contains("<html"), "{page}");
    assert_eq!(
        http_get(dev.addr, "/dev/token?user=alice", &[]).await.0,
        200
    );
}

#[test]
fn development_mode_on_a_public_address_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tokenim"))
            .args(["--listen", "0.0.0.0:0"])
            .args(extra)
            .arg("serve")
            .env("TOKENIM_STORE__PATH", dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap()
    };
    // Nothing configured (dev mode by default) and asked for outright.
    for extra in [&[][..], &["--dev-mode", "true"]] {
        let out = run(extra);
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("dev_mode") && stderr.contains("0.0.0.0"),
            "{stderr}"
        );
    }
}

#[test]
fn tokenim_config_prints_no_configured_secret() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokenim.toml");
    let secrets = [
        "signing-secret-that-must-never-be-printed-0123",
        "admin-secret-that-must-never-be-printed-0123",
        "redis-password-never-printed",
    ];
    std::fs::write(
        &file,
        format!(
            "[[auth.keys]]\nkid = \"k1\"\nalg = \"HS256\"\nsecret = \"{}\"\n[api]\nadmin_key = \"ak_0123456789abcdef:{}\"\n[redis]\nurl = \"redis://app:{}@127.0.0.1:1\"\n",
            secrets[0], secrets[1], secrets[2]
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tokenim"))
        .arg("--config")
        .arg(&file)
        .arg("config")
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    for secret in secrets {
        assert!(!printed.contains(secret), "{secret} printed:\n{printed}");
        let fingerprint = tokenim_gateway::config::redact::fingerprint(secret);
        assert!(printed.contains(&fingerprint), "{printed}");
    }
    assert!(printed.contains("kid = \"k1\""), "{printed}");
}

#[test]
fn a_misspelled_setting_variable_stops_the_start_with_its_name() {
    let out = Command::new(env!("CARGO_BIN_EXE_tokenim"))
        .arg("config")
        .env("TOKENIM_LIMTS__MAX_CONNECTIONS", "5")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("TOKENIM_LIMTS__MAX_CONNECTIONS"),
        "{stderr}"
    );
    // Kubernetes' service links are not settings and are left alone.
    let out = Command::new(env!("CARGO_BIN_EXE_tokenim"))
        .arg("config")
        .env("TOKENIM_SERVICE_PORT", "8080")
        .env("TOKENIM_PORT_8080_TCP_ADDR", "10.0.0.1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn the_bootstrap_secret_goes_to_a_private_file_not_to_the_output() {
    let node = Binary::start(PRODUCTION).await;
    let file = node.dir.path().join("data").join("bootstrap-admin-key");
    let key = wait_for_file(&file).await;
    let line = key.lines().last().unwrap();
    let (id, secret) = line.split_once(':').unwrap();
    assert!(id.starts_with("ak_") && secret.len() >= 32, "{key}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The key works, and neither output holds its secret; the log names
    // the file.
    let auth = crate::support::http::basic(id, secret);
    let (status, body) = http_get(node.addr, "/v1/keys", &[("authorization", &auth)]).await;
    assert_eq!(status, 200, "{body}");
    let (stdout, stderr) = node.output();
    assert!(!stdout.contains(secret) && !stderr.contains(secret));
    assert!(stdout.contains("bootstrap-admin-key"), "{stdout}");

    // Asked for explicitly: on standard error, never standard output.
    let node = Binary::start_with(PRODUCTION, &["--print-bootstrap-key"]).await;
    let file = node.dir.path().join("data").join("bootstrap-admin-key");
    let key = wait_for_file(&file).await;
    let secret = key
        .lines()
        .last()
        .unwrap()
        .split_once(':')
        .unwrap()
        .1
        .to_owned();
    let (stdout, stderr) = node.output();
    assert!(!stdout.contains(&secret), "{stdout}");
    assert!(stderr.contains(&secret), "{stderr}");
}

/// The contents of `file` once it exists (the node writes it at start).
async fn wait_for_file(file: &std::path::Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(file) {
            if text.ends_with('\n') {
                return text;
            }
        }
        assert!(Instant::now() < deadline, "{} not written", file.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn channel(s: &str) -> ChannelName {
    ChannelName::new(s).unwrap()
}

fn hi() -> Data {
    Data::from_value(&"hi").unwrap()
}

#[track_caller]
fn denied<T: std::fmt::Debug>(result: Result<T, Error>) {
    match result {
        Err(Error::Server(body)) => assert_eq!(body.code, ErrorCode::PermissionDenied, "{body:?}"),
        other => panic!("expected 1104 permission_denied, got {other:?}"),
    }
}

/// A production gateway (real keys, dev mode unset), tweaked further.
async fn production(tweak: impl FnOnce(&mut tokenim_gateway::Config)) -> TestGateway {
    TestGateway::with(|c| {
        c.auth.keys.push(dev_key());
        tweak(c);
    })
    .await
}

/// A client for `user` whose token carries these claims.
async fn client_with(
    gw: &TestGateway,
    user: &str,
    channels: Option<&[&str]>,
    publish: Option<&[&str]>,
) -> Client {
    let owned = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
    let token = gw.token_with(&MintRequest {
        subscribe: channels.map(owned),
        publish: publish.map(owned),
        ..MintRequest::new(
            UserId::new(user).unwrap(),
            tokenim_gateway::unix_secs(),
            3600,
        )
    });
    Client::connect(gw.options(Codec::Json, Auth::Frame(token)))
        .await
        .unwrap()
}

#[tokio::test]
async fn production_denies_channels_unless_a_claim_a_role_or_a_grant_allows() {
    let gw = production(|_| {}).await;
    assert!(!gw.state.config.dev_mode());

    // No claims, no roles, no grants: nothing outside the own inbox.
    let bob = client_with(&gw, "bob", None, None).await;
    denied(bob.subscribe(&channel("admin.alerts")).await);
    denied(bob.publish(&channel("announcements"), hi()).await);
    denied(bob.presence(&channel("rooms.lobby")).await);
    denied(bob.history(&channel("rooms.lobby"), None, None).await);
    denied(bob.send(&UserId::new("alice").unwrap(), hi()).await);
    let inbox = UserId::new("bob").unwrap().personal_channel();
    bob.history(&inbox, None, None).await.unwrap();

    // The token's claims grant what they name, and only that.
    let alice = client_with(&gw, "alice", Some(&["rooms.*"]), Some(&["rooms.lobby"])).await;
    alice.subscribe(&channel("rooms.lobby")).await.unwrap();
    alice.presence(&channel("rooms.lobby")).await.unwrap();
    alice
        .history(&channel("rooms.lobby"), None, None)
        .await
        .unwrap();
    alice.publish(&channel("rooms.lobby"), hi()).await.unwrap();
    denied(alice.publish(&channel("rooms.other"), hi()).await);
    denied(alice.subscribe(&channel("admin.alerts")).await);
    // A claim never makes a user a member of a group.
    let member = client_with(&gw, "carol", Some(&["groups.*"]), Some(&["groups.*"])).await;
    denied(member.subscribe(&channel("groups.staff")).await);
    denied(member.publish(&channel("groups.staff"), hi()).await);

    // A grant opens a channel to a user whose token has no claims.
    let news = tokenim_auth::ChannelPattern::new("news").unwrap();
    gw.state
        .store
        .update_policy(|p| {
            p.grant(Grant {
                subject: Subject::User(UserId::new("bob").unwrap()),
                permission: Permission::Subscribe,
                channels: Some(news.clone()),
            })
        })
        .await
        .unwrap();
    gw.state.access.refresh().await.unwrap();
    bob.subscribe(&channel("news")).await.unwrap();
    denied(bob.subscribe(&channel("news.other")).await);
}

#[tokio::test]
async fn the_default_user_role_is_configurable_in_production() {
    let gw = production(|c| {
        c.user_role = Some([Permission::Subscribe, Permission::Send].into());
    })
    .await;
    let bob = client_with(&gw, "bob", None, None).await;
    bob.subscribe(&channel("rooms.lobby")).await.unwrap();
    bob.send(&UserId::new("alice").unwrap(), hi())
        .await
        .unwrap();
    denied(bob.publish(&channel("rooms.lobby"), hi()).await);
    denied(bob.presence(&channel("rooms.lobby")).await);
}

#[tokio::test]
async fn credentials_given_the_wrong_way_round_leave_no_secret_in_the_audit_log() {
    use crate::support::http::Api;
    use crate::support::{ADMIN_KEY_ID, ADMIN_SECRET};
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    api.with_key(ADMIN_SECRET, ADMIN_KEY_ID)
        .get("/v1/keys")
        .await
        .expect_error(401, ErrorCode::UnknownApiKey);
    let log = api.get("/v1/audit?action=auth.failed").await.expect(200);
    let text = log.to_string();
    assert!(text.contains("(malformed key id)"), "{text}");
    // Not even a part of it.
    for part in ADMIN_SECRET.as_bytes().chunks(8) {
        let part = std::str::from_utf8(part).unwrap();
        assert!(!text.contains(part), "{part} in {text}");
    }
}

#[tokio::test]
async fn the_internal_listener_takes_the_api_and_metrics_off_the_public_one() {
    use crate::support::http::Api;
    let gw = TestGateway::with(|c| c.api.listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let internal = gw.internal.expect("an internal listener");
    assert_ne!(internal, gw.addr);
    let public = Api::new(&gw);
    let private = public.at(internal);
    for path in ["/v1/keys", "/v1/openapi.json", "/metrics"] {
        let r = public.get(path).await;
        assert_eq!(r.status, 404, "public {path}: {}", r.text());
        assert_eq!(r.json()["code"], 1009, "{}", r.text());
        assert_eq!(private.get(path).await.status, 200, "internal {path}");
    }
    for path in ["/healthz", "/readyz"] {
        assert_eq!(public.get(path).await.status, 200, "public {path}");
        assert_eq!(private.get(path).await.status, 200, "internal {path}");
    }
    // Sessions only on the public listener.
    let client = gw.client("alice", Codec::Json).await;
    client.ping().await.unwrap();
    let (status, _) = http_get(internal, "/ws", &[]).await;
    assert_eq!(status, 404);
    assert_eq!(private.get("/").await.status, 404);
}

/// Opens a WebSocket upgrade from the local address `source` with an
/// `X-Forwarded-For` header; returns the status and the open socket.
async fn upgrade_from(
    gw: &TestGateway,
    source: &str,
    forwarded_for: &str,
) -> (u16, tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(source.parse().unwrap(), 0))
        .unwrap();
    let mut stream = socket.connect(gw.addr).await.unwrap();
    let request = format!(
        "GET /ws HTTP/1.1\r\nhost: {}\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nx-forwarded-for: {forwarded_for}\r\n\r\n",
        gw.addr
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(crate::support::WAIT, stream.read(&mut byte))
            .await
            .expect("an answer in time")
            .unwrap();
        if n == 0 {
            break;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, stream)
}

#[tokio::test]
async fn forwarded_addresses_are_believed_only_from_a_trusted_proxy() {
    use crate::support::http::Api;
    let gw = TestGateway::with(|c| {
        c.trusted_proxies = vec!["127.0.0.8".into()];
        c.limits.max_connections_per_ip = 1;
        c.api.rate_limits.per_ip = 0.01;
        c.api.rate_limits.per_ip_burst = 2.0;
    })
    .await;

    // Connection caps count the client behind the proxy.
    let (status, _a) = upgrade_from(&gw, "127.0.0.8", "203.0.113.1").await;
    assert_eq!(status, 101);
    let (status, _b) = upgrade_from(&gw, "127.0.0.8", "203.0.113.2").await;
    assert_eq!(status, 101, "another client behind the same proxy");
    let (status, _) = upgrade_from(&gw, "127.0.0.8", "203.0.113.1").await;
    assert_eq!(status, 429, "the same client twice");
    // From an untrusted address the header changes nothing.
    let (status, _c) = upgrade_from(&gw, "127.0.0.9", "203.0.113.3").await;
    assert_eq!(status, 101);
    let (status, _) = upgrade_from(&gw, "127.0.0.9", "203.0.113.4").await;
    assert_eq!(status, 429, "one address, whatever it claims");

    // Rate limits and the audit source use the client's address.
    let proxy = |client: &str| {
        let api = Api::new(&gw).from("127.0.0.8").with_authorization(None);
        let client = client.to_owned();
        async move {
            api.send_with("GET", "/v1/keys", &[("x-forwarded-for", &client)], b"")
                .await
                .status
        }
    };
    assert_eq!(proxy("198.51.100.1").await, 401);
    assert_eq!(proxy("198.51.100.1").await, 401);
    assert_eq!(proxy("198.51.100.1").await, 429);
    assert_eq!(proxy("198.51.100.2").await, 401, "another client");
    let spoof = Api::new(&gw).from("127.0.0.10").with_authorization(None);
    let r = spoof
        .send_with(
            "GET",
            "/v1/keys",
            &[("x-forwarded-for", "198.51.100.3")],
            b"",
        )
        .await;
    assert_eq!(r.status, 401);
    let log = Api::new(&gw)
        .get("/v1/audit?action=auth.failed")
        .await
        .expect(200);
    let sources: std::collections::BTreeSet<&str> = log["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["source"].as_str().unwrap())
        .collect();
    assert_eq!(
        sources,
        ["127.0.0.10", "198.51.100.1", "198.51.100.2"].into(),
        "{log}"
    );
}
