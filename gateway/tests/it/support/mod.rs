//! `TestGateway::spawn`: a real gateway on a free loopback port, plus
//! helpers to mint tokens, connect clients and read metrics.

#![allow(dead_code)]

pub(crate) mod balancer;
pub(crate) mod http;
pub(crate) mod postgres;
pub(crate) mod redis;
pub(crate) mod tls;

use std::net::SocketAddr;
use std::time::Duration;

use tokenim_auth::{MintRequest, TokenSigner};
use tokenim_client::{Auth, Client, ConnectOptions};
use tokenim_gateway::config::dev_key;
use tokenim_gateway::state::AppState;
use tokenim_gateway::{Config, Server};
use tokenim_protocol::{Codec, Push, UserId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a test waits for something that should happen promptly.
pub(crate) const WAIT: Duration = Duration::from_secs(5);

/// The bootstrap admin key of every test gateway (all scopes).
pub(crate) const ADMIN_KEY_ID: &str = "ak_00000000000000a1";
/// Its secret.
pub(crate) const ADMIN_SECRET: &str = "test-admin-secret-0123456789abcdef";

/// Where a test node keeps its store: a directory for the embedded
/// store and, when the environment says `TEST_STORE=postgres`, a
/// database of its own on the test PostgreSQL, used by nodes that do not
/// choose another store.
#[derive(Debug)]
pub(crate) struct TestData {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) db: Option<postgres::TestDatabase>,
}

impl TestData {
    pub(crate) async fn new() -> std::sync::Arc<Self> {
        let db = match std::env::var("TEST_STORE").as_deref() {
            Ok("postgres") => Some(postgres::TestDatabase::create().await),
            Ok("embedded") | Err(_) => None,
            Ok(other) => panic!("TEST_STORE={other}: embedded or postgres"),
        };
        std::sync::Arc::new(Self {
            dir: tempfile::tempdir().unwrap(),
            db,
        })
    }

    pub(crate) fn path(&self) -> &std::path::Path {
        self.dir.path()
    }
}

/// A running gateway, shut down on `stop` (or aborted on drop).
pub(crate) struct TestGateway {
    pub(crate) addr: SocketAddr,
    /// The internal listener's address (`api.listen`), if configured.
    pub(crate) internal: Option<SocketAddr>,
    pub(crate) state: AppState,
    /// The node's store (removed when the last holder drops).
    pub(crate) data: std::sync::Arc<TestData>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestGateway {
    /// A gateway with test defaults: port 0, missing Origin allowed.
    pub(crate) async fn spawn() -> Self {
        Self::with(|_| {}).await
    }

    /// A gateway with test defaults changed by `tweak`.
    /// A gateway joined to others through Redis at `url`.
    pub(crate) async fn with_redis(
        url: &str,
        cluster: bool,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        let url = url.to_owned();
        Self::with(move |c| {
            c.redis = Some(tokenim_gateway::config::RedisConfig {
                url,
                cluster,
                probe_interval: Duration::from_millis(200),
                probe_timeout: Duration::from_millis(600),
                command_timeout: Duration::from_millis(800),
                max_backoff: Duration::from_millis(500),
                presence_ttl: Duration::from_secs(2),
                ..Default::default()
            });
            // The test servers keep nothing on disk, by design (the fault
            // tests restart them empty).
            c.store.allow_volatile_redis = true;
            tweak(c);
        })
        .await
    }

    /// Two ready nodes joined through the Redis at `url`.
    pub(crate) async fn pair(url: &str, cluster: bool) -> (Self, Self) {
        let a = Self::with_redis(url, cluster, |_| {}).await;
        let b = Self::with_redis(url, cluster, |_| {}).await;
        a.wait_ready(200).await;
        b.wait_ready(200).await;
        (a, b)
    }

    /// Waits until `/readyz` answers `status`.
    pub(crate) async fn wait_ready(&self, status: u16) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            // A node that is still starting refuses connections: not ready yet.
            if TcpStream::connect(self.addr).await.is_ok()
                && self.get("/readyz", &[]).await.0 == status
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "/readyz never answered {status}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) async fn with(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::in_dir(TestData::new().await, tweak).await
    }

    /// A gateway whose embedded store is in `data` (to restart a node on
    /// the same store).
    pub(crate) async fn in_dir(
        data: std::sync::Arc<TestData>,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..Config::default()
        };
        config.store.path = data.path().to_owned();
        config.api.admin_key = Some(format!("{ADMIN_KEY_ID}:{ADMIN_SECRET}"));
        config.origins.allow_missing = true;
        config.limits.publish_rate = 10_000.0;
        config.limits.publish_burst = 10_000.0;
        tweak(&mut config);
        if let Some(db) = &data.db
            && config.redis.is_none()
            && config.store.backend == tokenim_gateway::config::StoreBackend::Auto
        {
            config.store.url = Some(db.url());
        }
        config.validate().expect("test config is valid");
        let server = Server::bind(config).await.expect("gateway binds");
        let addr = server.local_addr();
        let internal = server.internal_addr();
        let state = server.state().clone();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            internal,
            state,
            data,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// A handle on a gateway running elsewhere (e.g. a child process) at
    /// `addr`, for connecting clients; metrics and state come from `like`.
    pub(crate) fn attach(addr: SocketAddr, like: &TestGateway) -> Self {
        Self {
            addr,
            internal: None,
            state: like.state.clone(),
            data: std::sync::Arc::clone(&like.data),
            stop: None,
            task: None,
        }
    }

    pub(crate) fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// A token for `user` from the development key, valid for an hour.
    pub(crate) fn token(&self, user: &str) -> String {
        self.token_with(&MintRequest::new(
            UserId::new(user).unwrap(),
            tokenim_gateway::unix_secs(),
            3600,
        ))
    }

    pub(crate) fn token_with(&self, request: &MintRequest) -> String {
        TokenSigner::new(&dev_key()).unwrap().sign(request).unwrap()
    }

    pub(crate) fn options(&self, codec: Codec, auth: Auth) -> ConnectOptions {
        ConnectOptions::new(self.ws_url(), codec, auth).request_timeout(WAIT)
    }

    /// A client authenticated as `user` with a `connect` frame.
    pub(crate) async fn client(&self, user: &str, codec: Codec) -> Client {
        Client::connect(self.options(codec, Auth::Frame(self.token(user))))
            .await
            .expect("client connects")
    }

    /// The value of one sample in `/metrics`, e.g.
    /// `tokenim_disconnects_total{reason="slow_consumer"}`; 0 if absent.
    pub(crate) fn metric(&self, sample: &str) -> f64 {
        self.state
            .metrics
            .render()
            .lines()
            .find_map(|l| {
                l.strip_prefix(sample)
                    .and_then(|rest| rest.trim().parse().ok())
            })
            .unwrap_or(0.0)
    }

    /// Waits until `sample` reaches at least `value`.
    pub(crate) async fn wait_metric(&self, sample: &str, value: f64) {
        self.wait_metric_within(sample, value, WAIT).await;
    }

    /// [`TestGateway::wait_metric`], giving up after `within`.
    pub(crate) async fn wait_metric_within(&self, sample: &str, value: f64, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while self.metric(sample) < value {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{sample} stayed at {} (< {value})",
                self.metric(sample)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A plain HTTP/1.1 GET; returns status and body.
    pub(crate) async fn get(
        &self,
        path_and_query: &str,
        headers: &[(&str, &str)],
    ) -> (u16, String) {
        http_get(self.addr, path_and_query, headers).await
    }

    /// Triggers drain and waits for the server task to finish.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .expect("drain finishes")
                .unwrap();
        }
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A plain HTTP/1.1 GET over a fresh connection.
pub(crate) async fn http_get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let stream = TcpStream::connect(addr).await.unwrap();
    http_get_on(stream, addr, path, headers).await
}

/// An HTTP/1.1 GET on `stream` (plaintext or TLS), `Host: addr`.
pub(crate) async fn http_get_on(
    mut stream: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let mut request = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .expect("response in time")
            .unwrap();
        response.extend_from_slice(&chunk[..n]);
        // A 101 keeps the socket open: its head is the whole answer.
        if n == 0
            || (response.starts_with(b"HTTP/1.1 101")
                && response.windows(4).any(|w| w == b"\r\n\r\n"))
        {
            break;
        }
    }
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The next push, within [`WAIT`].
pub(crate) async fn next_push(client: &mut Client) -> Push {
    tokio::time::timeout(WAIT, client.next_push())
        .await
        .expect("push in time")
        .expect("connection open")
}

/// Asserts nothing is pushed for a short while.
pub(crate) async fn assert_quiet(client: &mut Client) {
    if let Ok(Some(push)) =
        tokio::time::timeout(Duration::from_millis(200), client.next_push()).await
    {
        panic!("unexpected push {push:?}");
    }
}

/// Waits for the server to close the client; returns the close code.
pub(crate) async fn close_code(client: &mut Client) -> Option<u16> {
    tokio::time::timeout(WAIT, client.closed())
        .await
        .expect("closed in time")
        .map(|c| c.code)
}
