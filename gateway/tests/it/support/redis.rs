//! Real `redis-server` processes for tests: each on free loopback ports,
//! in its own temporary directory, killed when dropped (even when the test
//! fails). Never the shared Redis on 6379.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port that is free now, and whose cluster bus port (+10000) is too.
fn free_port() -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// One `redis-server` process.
pub(crate) struct RedisServer {
    pub(crate) port: u16,
    dir: PathBuf,
    cluster: bool,
    /// TLS only (`--port 0`): its certificate, key and CA files.
    tls: Option<(super::tls::CertFiles, PathBuf)>,
    child: Option<Child>,
}

impl RedisServer {
    /// A standalone server without persistence.
    pub(crate) fn start() -> Self {
        Self::spawn(false, None)
    }

    /// A standalone server speaking only TLS (`rediss://`), with the
    /// certificate `files` signed by the CA in `ca`, not asking clients
    /// for certificates.
    pub(crate) fn start_tls(files: super::tls::CertFiles, ca: PathBuf) -> Self {
        Self::spawn(false, Some((files, ca)))
    }

    fn spawn(cluster: bool, tls: Option<(super::tls::CertFiles, PathBuf)>) -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("tokenim-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = Self {
            port,
            dir,
            cluster,
            tls,
            child: None,
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        let mut cmd = Command::new("redis-server");
        match &self.tls {
            None => cmd.args(["--port", &self.port.to_string()]),
            Some((files, ca)) => cmd
                .args(["--port", "0", "--tls-port", &self.port.to_string()])
                .arg("--tls-cert-file")
                .arg(&files.cert)
                .arg("--tls-key-file")
                .arg(&files.key)
                .arg("--tls-ca-cert-file")
                .arg(ca)
                .args(["--tls-auth-clients", "no"]),
        };
        cmd.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.cluster {
            // Full coverage off: the other shards keep serving while one
            // master is down (what README's scaling section advises).
            cmd.args([
                "--cluster-enabled",
                "yes",
                "--cluster-node-timeout",
                "2000",
                "--cluster-require-full-coverage",
                "no",
            ]);
        }
        self.child = Some(cmd.spawn().expect("redis-server is installed"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.cli(&["PING"]).trim() != "PONG" {
            assert!(
                Instant::now() < deadline,
                "redis-server on {} did not start",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Runs `redis-cli` against this server and returns its output.
    pub(crate) fn cli(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()]);
        if let Some((_, ca)) = &self.tls {
            cmd.arg("--tls").arg("--cacert").arg(ca);
        }
        let out = cmd
            .args(args)
            .stderr(Stdio::null())
            .output()
            .expect("redis-cli is installed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Kills the server (SIGKILL), as a crash would.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts it again on the same port (empty: no persistence).
    pub(crate) fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// Holds every command that may write (scripts included) until
    /// [`RedisServer::unpause`], while reads, PINGs and pub/sub go on: a
    /// Redis that received a publish and has not answered it yet.
    pub(crate) fn pause_writes(&self) {
        assert_eq!(
            self.cli(&["CLIENT", "PAUSE", "60000", "WRITE"]).trim(),
            "OK"
        );
    }

    /// Ends [`RedisServer::pause_writes`]: the held commands run.
    pub(crate) fn unpause(&self) {
        assert_eq!(self.cli(&["CLIENT", "UNPAUSE"]).trim(), "OK");
    }

    /// Sends a signal (`STOP`, `CONT`) to the process.
    pub(crate) fn signal(&self, name: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
        }
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis Cluster of three masters, no replicas.
pub(crate) struct RedisCluster {
    pub(crate) nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub(crate) fn start() -> Self {
        let nodes: Vec<_> = (0..3).map(|_| RedisServer::spawn(true, None)).collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cluster create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while !nodes
            .iter()
            .all(|n| n.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"))
        {
            assert!(Instant::now() < deadline, "cluster did not become ok");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { nodes }
    }

    /// Seed URLs, comma-separated (the form of `redis.url`).
    pub(crate) fn url(&self) -> String {
        self.nodes
            .iter()
            .map(RedisServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The slot of `key`.
    pub(crate) fn slot_of(&self, key: &str) -> u16 {
        self.nodes[0]
            .cli(&["CLUSTER", "KEYSLOT", key])
            .trim()
            .parse()
            .unwrap()
    }

    /// The master serving `slot` (its index in `nodes`) and its node id,
    /// from `CLUSTER NODES`.
    pub(crate) fn owner_of(&self, slot: u16) -> (usize, String) {
        let nodes = self.nodes[0].cli(&["CLUSTER", "NODES"]);
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let port: u16 = fields[1].split(['@', ':']).nth(1).unwrap().parse().unwrap();
            for range in &fields[8..] {
                let (lo, hi) = range.split_once('-').unwrap_or((range, range));
                if let (Ok(lo), Ok(hi)) = (lo.parse::<u16>(), hi.parse::<u16>())
                    && (lo..=hi).contains(&slot)
                {
                    let index = self.nodes.iter().position(|n| n.port == port).unwrap();
                    return (index, fields[0].to_owned());
                }
            }
        }
        panic!("no owner for slot {slot}");
    }

    /// `PUBSUB SHARDNUMSUB` of a shard channel, summed over the masters.
    pub(crate) fn shard_subscribers(&self, channel: &str) -> u64 {
        self.nodes
            .iter()
            .map(|n| numsub(&n.cli(&["PUBSUB", "SHARDNUMSUB", channel])))
            .sum()
    }
}

/// Parses the count out of `redis-cli PUBSUB NUMSUB <channel>` output.
pub(crate) fn numsub(output: &str) -> u64 {
    output
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0)
}

/// A gateway node as its own `tokenim` process joined through the Redis
/// at `url`, so it can be killed outright (SIGKILL); killed when dropped.
pub(crate) struct NodeProcess {
    pub(crate) addr: std::net::SocketAddr,
    child: Child,
    /// Its store directory (where a bootstrap key would be written).
    _dir: tempfile::TempDir,
}

impl NodeProcess {
    pub(crate) fn start(url: &str) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_tokenim"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("TOKENIM_STORE__PATH", dir.path())
            .env("TOKENIM_REDIS__URL", url)
            .env("TOKENIM_STORE__ALLOW_VOLATILE_REDIS", "true")
            .env("TOKENIM_REDIS__PRESENCE_TTL", "2s")
            .env("TOKENIM_REDIS__PROBE_INTERVAL", "200ms")
            .env("TOKENIM_REDIS__PROBE_TIMEOUT", "600ms")
            .env("TOKENIM_REDIS__COMMAND_TIMEOUT", "800ms")
            .env("TOKENIM_ORIGINS__ALLOW_MISSING", "true")
            .env("TOKENIM_LIMITS__PUBLISH_RATE", "10000")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self {
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
            child,
            _dir: dir,
        }
    }

    /// SIGTERM, as an orchestrator stopping the node would: it drains.
    pub(crate) fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGKILL, as a crash or an OOM kill would.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
