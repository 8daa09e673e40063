//! PostgreSQL for tests: a fresh database per test on the machine's
//! server (`TEST_POSTGRES`, default `postgres://postgres@127.0.0.1:5432`,
//! trust auth), dropped afterwards.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{Connection, Executor, PgConnection};

/// The server the tests use.
pub(crate) fn server_url() -> String {
    std::env::var("TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A database of its own, dropped (with its connections) on drop.
#[derive(Debug)]
pub(crate) struct TestDatabase {
    name: String,
}

impl TestDatabase {
    /// Creates an empty UTF-8 database with a name no other test uses.
    pub(crate) async fn create() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "tokenim_test_{}_{}_{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = admin().await;
        admin
            .execute(
                format!(r#"CREATE DATABASE "{name}" ENCODING 'UTF8' TEMPLATE template0"#).as_str(),
            )
            .await
            .expect("create the test database");
        Self { name }
    }

    /// Its URL.
    pub(crate) fn url(&self) -> String {
        format!("{}/{}", server_url(), self.name)
    }
}

async fn admin() -> PgConnection {
    PgConnection::connect(&format!("{}/postgres", server_url()))
        .await
        .expect("PostgreSQL at TEST_POSTGRES (default 127.0.0.1:5432, user postgres, trust)")
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = std::mem::take(&mut self.name);
        // Drop runs inside the test's runtime: a thread of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut admin = admin().await;
                admin
                    .execute(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str())
                    .await
            })
        });
        if let Ok(Err(e)) = dropped.join() {
            eprintln!("test database not dropped: {e}");
        }
    }
}

/// A PostgreSQL server of the test's own (for freezing and killing it):
/// `initdb` in a temporary directory, `postgres` on a free loopback port,
/// trust auth, no fsync (tests, not
/// durability). Run as the `postgres` user when the tests run as root
/// (PostgreSQL refuses root). Killed when dropped.
pub(crate) struct PgServer {
    pub(crate) port: u16,
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

/// `pg_config --bindir`, or Debian's versioned directory.
fn pg_bin(name: &str) -> std::path::PathBuf {
    if let Ok(out) = std::process::Command::new("pg_config")
        .arg("--bindir")
        .output()
        && out.status.success()
    {
        let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let path = std::path::Path::new(&dir).join(name);
        if path.exists() {
            return path;
        }
    }
    let mut found: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's server binaries are installed")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin").join(name)))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found
        .pop()
        .expect("PostgreSQL's server binaries are installed")
}

/// The `postgres` user's uid and gid, when running as root.
fn as_postgres() -> Option<(u32, u32)> {
    if nix::unistd::geteuid().is_root() {
        let user = nix::unistd::User::from_name("postgres")
            .ok()
            .flatten()
            .expect("a postgres user exists to run the test server");
        Some((user.uid.as_raw(), user.gid.as_raw()))
    } else {
        None
    }
}

fn command(bin: &str) -> std::process::Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(pg_bin(bin));
    if let Some((uid, gid)) = as_postgres() {
        cmd.uid(uid).gid(gid);
    }
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    cmd
}

impl PgServer {
    pub(crate) fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        if let Some((uid, gid)) = as_postgres() {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let status = command("initdb")
            .arg("-D")
            .arg(dir.path().join("data"))
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
            .status()
            .expect("initdb runs");
        assert!(status.success(), "initdb failed");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = Self {
            port,
            dir,
            child: None,
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        let child = command("postgres")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(self.dir.path())
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .spawn()
            .expect("postgres starts");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let url = format!("postgres://postgres@127.0.0.1:{}/postgres", self.port);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                while PgConnection::connect(&url).await.is_err() {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "postgres never accepted connections"
                    );
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            });
        })
        .join()
        .unwrap();
    }

    /// A database URL on this server.
    pub(crate) fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// The postmaster and its children (each backend is in a session of
    /// its own, so a process-group signal would miss them).
    fn processes(&self) -> Vec<u32> {
        let Some(child) = &self.child else {
            return Vec::new();
        };
        let postmaster = child.id();
        let mut pids = vec![postmaster];
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            // pid (comm) state ppid ...: comm may hold spaces, not ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(postmaster) {
                pids.push(pid);
            }
        }
        pids
    }

    /// Sends `signal` (`STOP`, `CONT`, `KILL`) to every process of the
    /// server (postmaster and backends).
    pub(crate) fn signal(&self, signal: &str) {
        let pids: Vec<String> = self.processes().iter().map(u32::to_string).collect();
        assert!(!pids.is_empty(), "not running");
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .args(&pids)
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Kills every process of the server, as a crash would.
    pub(crate) fn kill(&mut self) {
        let pids = self.processes();
        if let Some(mut child) = self.child.take() {
            for signal in ["-CONT", "-KILL"] {
                let _ = std::process::Command::new("kill")
                    .arg(signal)
                    .args(pids.iter().map(u32::to_string))
                    .stderr(std::process::Stdio::null())
                    .status();
            }
            let _ = child.wait();
            // Until every backend is gone (they hold the shared memory a
            // new postmaster checks).
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while std::time::Instant::now() < deadline
                && pids[1..]
                    .iter()
                    .any(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }

    /// Starts it again on the same data (crash recovery runs).
    pub(crate) fn restart(&mut self) {
        self.kill();
        self.launch();
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.kill();
    }
}
