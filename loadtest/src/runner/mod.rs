//! Opening many connections: [`Setup`] (where to, from which source
//! addresses, with which codec and tokens), [`storm`] (open N at a rate
//! with bounded concurrency, then hand each to a long-lived task), the
//! shared [`ConnStats`], and [`Stopper`], one signal that ends every held
//! connection.
//!
//! # Scaling on one machine
//!
//! * **Ephemeral ports.** A source address has about 28,000 ephemeral
//!   ports towards one gateway address. Connection `i` binds source
//!   address `i % len(--source-ips)` before connecting, so 20 loopback
//!   addresses (`127.0.0.1-127.0.0.20`) give room for far more sockets
//!   than one process may open. The same spread keeps each address under
//!   the gateway's per-IP cap (`limits.max_connections_per_ip`, default
//!   1,000; HTTP 429 beyond it).
//! * **Open files.** Every socket is a file. [`crate::sys::raise_nofile`]
//!   lifts the soft `RLIMIT_NOFILE` to the hard limit at start; a connect
//!   that still fails with `EMFILE` is reported once, loudly, and counted
//!   as `emfile`.
//! * **Targets.** Connection `i` goes to URL `i % len(--url)`, so a list of
//!   nodes shares the load evenly.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokenim_protocol::Codec;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::sys::FileLimit;
use crate::token::TokenSource;
use crate::wire::{self, AuthMode, Conn, DialError, DialSpec, Target, TargetError, TargetKind};

mod stats;

pub use stats::{ConnStats, Stopper};

/// Most source addresses a `--source-ips` list may expand to.
pub const MAX_SOURCE_IPS: usize = 65_536;

/// Everything needed to open connection number `i`.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Gateways, used round robin.
    pub targets: Vec<Target>,
    /// Source addresses, used round robin; empty lets the kernel choose.
    pub sources: Vec<IpAddr>,
    /// Codec of every connection.
    pub codec: Codec,
    /// How tokens are presented.
    pub auth: AuthMode,
    /// Where tokens come from.
    pub tokens: TokenSource,
    /// Most handshakes in flight at once.
    pub concurrency: usize,
    /// Bound on TCP connect + upgrade + authentication.
    pub connect_timeout: Duration,
    /// Read buffer per connection, bytes (allocated up front).
    pub read_buffer: usize,
    /// The open-file limit in force, when known.
    pub file_limit: Option<FileLimit>,
    /// tokenim (the default) or Socket.IO.
    pub kind: TargetKind,
    /// A CA (PEM) trusted for `wss://` targets besides the webpki roots.
    pub tls_ca: Option<std::sync::Arc<str>>,
}

impl Setup {
    /// Defaults for one loopback gateway: JSON, header auth, the
    /// development key, no source-address spread.
    pub fn local(url: &str) -> Result<Setup, TargetError> {
        Ok(Setup {
            targets: vec![Target::parse(url, false)?],
            sources: Vec::new(),
            codec: Codec::Json,
            auth: AuthMode::Header,
            tokens: TokenSource::dev("lt", 3600).expect("the development key signs"),
            concurrency: 256,
            connect_timeout: Duration::from_secs(10),
            read_buffer: 8 * 1024,
            file_limit: None,
            kind: TargetKind::Tokenim,
            tls_ca: None,
        })
    }

    /// Opens connection `index`: its target, source address and token,
    /// within [`Setup::connect_timeout`].
    pub async fn dial(&self, index: usize) -> Result<Conn, DialError> {
        let token = match self.kind {
            TargetKind::Tokenim => self
                .tokens
                .token(index)
                .map_err(|e| DialError::Token(e.to_string()))?,
            // Socket.IO takes no token: none is minted.
            TargetKind::Socketio => String::new(),
        };
        let spec = DialSpec {
            target: &self.targets[index % self.targets.len()],
            source: (!self.sources.is_empty()).then(|| self.sources[index % self.sources.len()]),
            codec: self.codec,
            auth: self.auth,
            token: &token,
            read_buffer: self.read_buffer,
            kind: self.kind,
            tls_ca: self.tls_ca.as_deref(),
        };
        tokio::time::timeout(self.connect_timeout, wire::dial(spec))
            .await
            .map_err(|_| DialError::Timeout)?
    }
}

/// Parses `--source-ips`: comma-separated addresses and inclusive IPv4
/// ranges, e.g. `127.0.0.1-127.0.0.20,127.0.1.1`. Unless `allow_remote`,
/// every address must be loopback.
pub fn parse_sources(text: &str, allow_remote: bool) -> Result<Vec<IpAddr>, String> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let parse = |s: &str| {
                    s.trim()
                        .parse::<Ipv4Addr>()
                        .map_err(|e| format!("{s:?} in range {part:?}: {e}"))
                };
                let (a, b) = (u32::from(parse(a)?), u32::from(parse(b)?));
                if b < a {
                    return Err(format!("range {part:?} runs backwards"));
                }
                if (b - a) as usize >= MAX_SOURCE_IPS {
                    return Err(format!("range {part:?} is larger than {MAX_SOURCE_IPS}"));
                }
                out.extend((a..=b).map(|n| IpAddr::V4(Ipv4Addr::from(n))));
            }
            None => out.push(
                part.parse::<IpAddr>()
                    .map_err(|e| format!("{part:?}: {e}"))?,
            ),
        }
        if out.len() > MAX_SOURCE_IPS {
            return Err(format!("more than {MAX_SOURCE_IPS} source addresses"));
        }
    }
    if !allow_remote {
        if let Some(ip) = out.iter().find(|ip| !ip.is_loopback()) {
            return Err(format!(
                "{ip} is not a loopback address (use --allow-remote to send from it)"
            ));
        }
    }
    Ok(out)
}

/// How to open a batch of connections.
#[derive(Debug, Clone, Copy)]
pub struct Storm {
    /// Connection indexes `first, first + stride, ...` (they pick target,
    /// source address and user).
    pub first: usize,
    /// Step between indexes (1, or the worker count).
    pub stride: usize,
    /// How many.
    pub count: usize,
    /// New connections per second; 0 means as fast as the concurrency
    /// bound allows.
    pub rate: f64,
    /// No attempt starts after this.
    pub deadline: Instant,
}

impl Storm {
    /// Connections `0..total` at `rate` per second, or this worker's
    /// share of them (every `N`th, at `rate / N`) when it is one of `N`
    /// [`crate::worker`]s.
    pub fn of(total: usize, rate: f64, deadline: Instant) -> Storm {
        let role = crate::worker::role().unwrap_or(crate::worker::Role { index: 0, count: 1 });
        Storm {
            first: role.index,
            stride: role.count,
            count: role.share(total),
            rate: rate / role.count as f64,
            deadline,
        }
    }
}

/// Opens `plan.count` connections at `plan.rate`, at most
/// [`Setup::concurrency`] handshakes at a time. Each opened connection is
/// passed to `on_open(index, conn)` on its own task, tracked by `tasks`.
/// Returns when every attempt has finished (connected or failed), the
/// deadline passed, or `interrupt` fired.
pub async fn storm<F, Fut>(
    setup: &Arc<Setup>,
    plan: Storm,
    stats: &Arc<ConnStats>,
    tasks: &TaskTracker,
    interrupt: &CancellationToken,
    on_open: F,
) where
    F: Fn(usize, Conn) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let concurrency = setup.concurrency.max(1);
    let permits = Arc::new(Semaphore::new(concurrency));
    let on_open = Arc::new(on_open);
    let start = tokio::time::Instant::now();
    for n in 0..plan.count {
        if plan.rate > 0.0 {
            let at = start + Duration::from_secs_f64(n as f64 / plan.rate);
            tokio::select! {
                () = tokio::time::sleep_until(at) => {}
                () = interrupt.cancelled() => break,
            }
        }
        if Instant::now() >= plan.deadline || interrupt.is_cancelled() {
            break;
        }
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => permit.expect("never closed"),
            () = interrupt.cancelled() => break,
        };
        let index = plan.first + n * plan.stride.max(1);
        let (setup, stats, on_open) = (Arc::clone(setup), Arc::clone(stats), Arc::clone(&on_open));
        tasks.spawn(async move {
            stats.attempted.fetch_add(1, Ordering::Relaxed);
            let began = Instant::now();
            let dialled = setup.dial(index).await;
            drop(permit);
            match dialled {
                Ok(conn) => {
                    stats
                        .connect_us
                        .record(index, began.elapsed().as_micros() as u64);
                    stats.connected.fetch_add(1, Ordering::Relaxed);
                    stats.open.fetch_add(1, Ordering::Relaxed);
                    on_open(index, conn).await;
                    stats.open.fetch_sub(1, Ordering::Relaxed);
                }
                Err(e) => stats.failed(&e, setup.file_limit),
            }
        });
    }
    // Every attempt has finished once all permits are back.
    let all = u32::try_from(concurrency).unwrap_or(u32::MAX);
    let remaining = plan.deadline.saturating_duration_since(Instant::now()) + setup.connect_timeout;
    tokio::select! {
        _ = permits.acquire_many(all) => {}
        () = tokio::time::sleep(remaining) => {}
        () = interrupt.cancelled() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_ranges_expand_and_stay_on_loopback() {
        let ips = parse_sources("127.0.0.1-127.0.0.3, 127.0.1.9", false).unwrap();
        let shown: Vec<String> = ips.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.1.9"]);
        assert_eq!(
            parse_sources("127.0.0.255-127.0.1.0", false).unwrap().len(),
            2
        );
        assert!(parse_sources("127.0.0.5-127.0.0.1", false).is_err());
        assert!(parse_sources("192.168.1.2", false).is_err());
        assert!(parse_sources("192.168.1.2", true).is_ok());
        assert!(parse_sources("127.0.0.1-nope", false).is_err());
        assert!(parse_sources("127.0.0.0-127.1.0.0", false).is_err());
    }

    #[tokio::test]
    async fn stopper_reaches_early_and_late_receivers() {
        let stopper = Stopper::new();
        let early = stopper.receiver();
        stopper.stop();
        let late = stopper.receiver();
        assert!(early.await.is_err());
        assert!(late.await.is_err());
    }
}
