//! Several generator processes as one run: `--workers N` starts N copies
//! of this binary, each with a share of the connections and of the
//! source addresses, starts their measured phases together, and merges
//! their JSON results into one report ([`crate::report::merge`]).
//!
//! * A worker is the same command line plus `--worker I/N` (hidden), its
//!   own `--json` file and `--no-progress`. Connection `k` belongs to
//!   worker `k mod N` (for `rooms`, whole rooms do: `--rooms` must be a
//!   multiple of N), so user ids stay distinct across workers.
//! * Start barrier: a worker that has finished its setup prints `READY`
//!   on stdout and waits for `GO <unix µs>` on stdin ([`gate`]); the
//!   parent sends it once every worker is ready, so the measured phases
//!   line up. `connect` and `idle` need no barrier.
//! * Workers export each latency's HDR buckets in their JSON
//!   (`histograms`), so the parent's percentiles are exact, and the raw
//!   sums loss needs (`last_seq`, `subscriber_base_sum` for broadcast).

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// This process's place among the workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Role {
    /// Which worker, from 0.
    pub index: usize,
    /// How many.
    pub count: usize,
}

impl Role {
    /// Parses `I/N`.
    pub fn parse(text: &str) -> Result<Role, String> {
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| format!("--worker {text:?}: expected I/N"))?;
        let parse = |s: &str| {
            s.trim()
                .parse::<usize>()
                .map_err(|e| format!("--worker {text:?}: {e}"))
        };
        let (index, count) = (parse(i)?, parse(n)?);
        if count == 0 || index >= count {
            return Err(format!("--worker {text:?}: need 0 ≤ I < N"));
        }
        Ok(Role { index, count })
    }

    /// Whether connection `k` is this worker's.
    pub fn owns(&self, k: usize) -> bool {
        k % self.count == self.index
    }

    /// How many of `0..total` are this worker's.
    pub fn share(&self, total: usize) -> usize {
        total / self.count + usize::from(self.index < total % self.count)
    }
}

static ROLE: OnceLock<Role> = OnceLock::new();

/// Declares this process a worker (once, from the command line).
pub fn set_role(role: Role) {
    let _ = ROLE.set(role);
}

/// This process's role, if it is a worker.
pub fn role() -> Option<Role> {
    ROLE.get().copied()
}

/// In a worker: reports `READY` and waits (at most `bound`) for the
/// parent's `GO <unix µs>`; returns that moment. `None` outside a worker.
pub async fn gate(bound: Duration) -> Option<Instant> {
    role()?;
    println!("READY");
    let _ = std::io::stdout().flush();
    let line = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map(|_| line)
    });
    let unix_us = match tokio::time::timeout(bound, line).await {
        Ok(Ok(Ok(line))) => line.trim().strip_prefix("GO ")?.parse::<u64>().ok(),
        _ => None,
    };
    let now_us = unix_now_us();
    Some(match unix_us {
        Some(at) if at > now_us => Instant::now() + Duration::from_micros(at - now_us),
        _ => Instant::now(),
    })
}

fn unix_now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// `argv` without `--name VALUE` / `--name=VALUE`.
pub fn strip(argv: &[String], name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip = false;
    for arg in argv {
        if skip {
            skip = false;
        } else if arg == name {
            skip = true;
        } else if !arg.starts_with(&format!("{name}=")) {
            out.push(arg.clone());
        }
    }
    out
}

/// One worker process as the parent sees it.
#[derive(Debug)]
pub struct Worker {
    /// The process.
    pub child: Child,
    /// Where it writes its result.
    pub json: PathBuf,
}

/// Starts `count` workers: `args` (the subcommand and its flags, without
/// `--workers`, `--json`, `--source-ips`) plus each one's role, JSON file,
/// and share of `sources`.
pub fn spawn(args: &[String], count: usize, sources: &[String]) -> std::io::Result<Vec<Worker>> {
    let exe = std::env::current_exe()?;
    let mut workers = Vec::new();
    for index in 0..count {
        let json = std::env::temp_dir().join(format!(
            "tokenim-loadtest-{}-worker-{index}.json",
            std::process::id()
        ));
        let mut command = Command::new(&exe);
        command
            .args(args)
            .args([
                "--worker",
                &format!("{index}/{count}"),
                "--no-progress",
                "--json",
            ])
            .arg(&json)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mine: Vec<&str> = if sources.len() >= count {
            sources
                .iter()
                .skip(index)
                .step_by(count)
                .map(String::as_str)
                .collect()
        } else {
            sources.iter().map(String::as_str).collect()
        };
        if !mine.is_empty() {
            command.args(["--source-ips", &mine.join(",")]);
        }
        workers.push(Worker {
            child: command.spawn()?,
            json,
        });
    }
    Ok(workers)
}

/// Waits (at most `bound`) until every worker printed `READY` or ended,
/// then tells them all to start 100 ms from now.
pub fn start_together(workers: &mut [Worker], bound: Duration) {
    let (tx, rx) = std::sync::mpsc::channel();
    for w in workers.iter_mut() {
        let Some(stdout) = w.child.stdout.take() else {
            let _ = tx.send(());
            continue;
        };
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut told = false;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.trim() == "READY" && !told {
                    told = true;
                    let _ = tx.send(());
                }
            }
            if !told {
                let _ = tx.send(());
            }
        });
    }
    let deadline = Instant::now() + bound;
    for _ in 0..workers.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if rx.recv_timeout(left).is_err() {
            break;
        }
    }
    let go = format!("GO {}\n", unix_now_us() + 100_000);
    for w in workers.iter_mut() {
        if let Some(stdin) = w.child.stdin.as_mut() {
            let _ = stdin.write_all(go.as_bytes());
            let _ = stdin.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_share_connections_evenly() {
        let r = Role::parse("1/3").unwrap();
        assert_eq!((r.index, r.count), (1, 3));
        assert!(r.owns(4) && !r.owns(3));
        let total: usize = (0..3).map(|i| Role { index: i, count: 3 }.share(10)).sum();
        assert_eq!(total, 10);
        assert_eq!(Role { index: 0, count: 3 }.share(10), 4);
        assert!(Role::parse("3/3").is_err());
        assert!(Role::parse("x").is_err());
    }

    #[test]
    fn strip_removes_a_flag_in_both_forms() {
        let argv: Vec<String> = ["a", "--json", "f", "b", "--json=g", "--workers", "2"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(strip(&strip(&argv, "--json"), "--workers"), ["a", "b"]);
    }
}
