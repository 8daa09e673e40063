//! [`Server`]: the accept loop and the HTTP layer under every connection.
//!
//! Each accepted socket is checked against the connection limits, then,
//! in its own task, shakes hands for TLS when `tls` is configured
//! ([`crate::tls`]) and is served by hyper (HTTP/1.1; TLS and headers
//! within `limits.handshake_timeout`) through the axum router; a WebSocket
//! upgrade hands the connection's [`Stream`] to a session task. The accept
//! loop never waits on a client. On shutdown the
//! node tells every session to reconnect elsewhere (close 4000) and waits
//! for them up to `drain_timeout`, still answering new connections one
//! request each: `/readyz` 503, upgrades 503 (1900), `/metrics`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tower_service::Service;

use crate::config::Config;
use crate::limiter::ConnInfo;
use crate::metrics::Rejection;
use crate::state::AppState;
use crate::stream::Stream;
use crate::tls::Tls;

/// Where hyper itself stops reading a request head (and answers an empty
/// 431): past [`crate::api::MAX_REQUEST_HEAD`], which the router refuses
/// with the error body, so that only a grossly oversized head goes
/// without one.
const MAX_HEAD_BUFFER: usize = 4 * crate::api::MAX_REQUEST_HEAD;
/// Connections the kernel may hold for us before `accept` (capped by
/// `net.core.somaxconn`). A connection storm overflows a small queue and
/// its clients wait a whole SYN retransmission (1 s) to get in.
const ACCEPT_BACKLOG: u32 = 4_096;

/// Binds `addr` with address reuse and a deep accept queue.
fn listen(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// First and longest wait when `accept` keeps failing (e.g. out of file
/// descriptors).
const MIN_ACCEPT_BACKOFF: Duration = Duration::from_millis(5);
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The node's state could not be built (keys, Redis).
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// The TLS certificate or key could not be loaded, or SIGHUP not
    /// listened for.
    #[error("tls: {0}")]
    Tls(String),
}

/// A bound, not yet running, gateway node.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    state: AppState,
    router: Router,
    /// The internal listener (`api.listen`) and what it serves.
    internal: Option<(TcpListener, Router)>,
    tls: Option<Arc<Tls>>,
    /// Reloads the certificate (SIGHUP, file change) while the node runs.
    _reload: Option<tokio_util::task::AbortOnDropHandle<()>>,
}

impl Server {
    /// Builds the node's state and binds its listener (port 0 picks a free
    /// port; see [`Server::local_addr`]).
    pub async fn bind(config: Config) -> Result<Self, ServerError> {
        let addr = config.listen;
        let internal_addr = config.api.listen;
        let state = AppState::new(config).await?;
        let bind = |addr| {
            listen(addr, ACCEPT_BACKLOG).map_err(|source| ServerError::Bind { addr, source })
        };
        let listener = bind(addr)?;
        let (router, internal_router) = crate::api::routers(state.clone());
        let internal = match (internal_addr, internal_router) {
            (Some(addr), Some(router)) => Some((bind(addr)?, router)),
            _ => None,
        };
        let tls = match state.config.tls.clone() {
            Some(config) => Some(Arc::new(
                Tls::load(config).map_err(|e| ServerError::Tls(e.to_string()))?,
            )),
            None => None,
        };
        let reload = match &tls {
            Some(tls) => {
                let watch = Arc::clone(tls)
                    .watch(state.metrics.clone())
                    .map_err(|e| ServerError::Tls(format!("cannot listen for SIGHUP: {e}")))?;
                Some(tokio_util::task::AbortOnDropHandle::new(tokio::spawn(
                    watch,
                )))
            }
            None => None,
        };
        Ok(Self {
            listener,
            state,
            router,
            internal,
            tls,
            _reload: reload,
        })
    }

    /// The internal address actually bound (`api.listen`), if any.
    pub fn internal_addr(&self) -> Option<SocketAddr> {
        self.internal
            .as_ref()
            .map(|(l, _)| l.local_addr().expect("bound listener has an address"))
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// The node's shared state (metrics, hub, config).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then drains: the listener stays
    /// open while the sessions close, so `/readyz` answers 503, upgrades
    /// are refused with 503 (1900) and `/metrics` can be scraped until the
    /// process exits (each such connection serves one request).
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Server {
            listener,
            state,
            router,
            internal,
            tls,
            _reload,
        } = self;
        let tls = tls.as_ref();
        let mut listeners = vec![(Accept::new(listener), router)];
        listeners.extend(internal.map(|(l, r)| (Accept::new(l), r)));
        accept_until(&mut listeners, &state, tls, Phase::Serving, shutdown).await;
        accept_until(&mut listeners, &state, tls, Phase::Draining, drain(&state)).await;
    }
}

/// Admits what any of `listeners` accepts, with its router, until `until`
/// completes.
async fn accept_until(
    listeners: &mut [(Accept, Router)],
    state: &AppState,
    tls: Option<&Arc<Tls>>,
    phase: Phase,
    until: impl Future<Output = ()>,
) {
    tokio::pin!(until);
    loop {
        let next = futures_util::future::select_all(
            listeners
                .iter_mut()
                .map(|(accept, router)| Box::pin(async move { (accept.next().await, &*router) })),
        );
        tokio::select! {
            () = &mut until => return,
            (((stream, peer), router), _, _) = next => admit(stream, peer, state, router, tls, phase),
        }
    }
}

/// The listener, with a backoff when `accept` keeps failing (e.g. out of
/// file descriptors).
struct Accept {
    listener: TcpListener,
    backoff: Duration,
}

impl Accept {
    fn new(listener: TcpListener) -> Self {
        Self {
            listener,
            backoff: MIN_ACCEPT_BACKOFF,
        }
    }

    /// The next connection (cancel-safe).
    async fn next(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            match self.listener.accept().await {
                Ok(pair) => {
                    self.backoff = MIN_ACCEPT_BACKOFF;
                    return pair;
                }
                Err(e) => {
                    tracing::warn!(error = %e, backoff_ms = self.backoff.as_millis() as u64, "accept failed");
                    tokio::time::sleep(self.backoff).await;
                    self.backoff = (self.backoff * 2).min(MAX_ACCEPT_BACKOFF);
                }
            }
        }
    }
}

/// Whether the node serves, or drains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Connections are kept alive and drained on shutdown.
    Serving,
    /// One request per connection (the answer says `connection: close`),
    /// not waited for by the drain.
    Draining,
}

/// Checks a new connection against the limits and serves it (or refuses:
/// with a short HTTP answer in plaintext, by closing on a TLS listener,
/// whose client would not read plaintext).
fn admit(
    stream: TcpStream,
    peer: SocketAddr,
    state: &AppState,
    router: &Router,
    tls: Option<&Arc<Tls>>,
    phase: Phase,
) {
    state.metrics.connections_accepted.inc();
    // A proxy's connections count per client once its headers are read.
    let ip = (!state.proxies.trusts(peer.ip())).then_some(peer.ip());
    match state.limiter.acquire(ip) {
        Ok(permit) => {
            let _ = stream.set_nodelay(true);
            let info = ConnInfo {
                peer,
                permit: Arc::new(permit),
            };
            let (tls, task_state, router) = (tls.cloned(), state.clone(), router.clone());
            let serve = async move {
                let timeout = task_state.config.limits.handshake_timeout;
                let deadline = tokio::time::Instant::now() + timeout;
                let (tls, metrics) = (tls.as_deref(), &task_state.metrics);
                if let Some(stream) = crate::tls::handshake(stream, tls, timeout, metrics).await {
                    serve_connection(stream, deadline, info, task_state, router, phase).await;
                }
            };
            match phase {
                Phase::Serving => drop(state.tracker.spawn(serve)),
                Phase::Draining => drop(tokio::spawn(serve)),
            }
        }
        Err(why) => {
            state.metrics.rejected(why);
            if tls.is_none() {
                tokio::spawn(refuse(stream, why));
            }
        }
    }
}

/// Serves HTTP on one connection until it closes or upgrades; the request
/// head must arrive before `deadline`.
async fn serve_connection(
    stream: Stream,
    deadline: tokio::time::Instant,
    info: ConnInfo,
    state: AppState,
    router: Router,
    phase: Phase,
) {
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(info.clone());
        router.clone().call(req)
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(
            deadline
                .saturating_duration_since(tokio::time::Instant::now())
                .max(Duration::from_millis(1)),
        )
        .max_buf_size(MAX_HEAD_BUFFER)
        .keep_alive(phase == Phase::Serving)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    let result = match phase {
        Phase::Serving => tokio::select! {
            result = conn.as_mut() => result,
            () = state.shutdown.cancelled() => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        },
        Phase::Draining => conn.await,
    };
    if let Err(e) = result {
        if e.is_timeout() {
            state.metrics.rejected(Rejection::HandshakeTimeout);
        }
        tracing::debug!(error = %e, "http connection ended with an error");
    }
}

/// Answers a connection over a limit with a short HTTP error and closes it.
async fn refuse(mut stream: TcpStream, why: Rejection) {
    let (status, message) = match why {
        Rejection::PerIpLimit => (
            "429 Too Many Requests",
            "too many connections from this address",
        ),
        _ => (
            "503 Service Unavailable",
            "this node is at its connection limit; try another",
        ),
    };
    let code = tokenim_protocol::ErrorCode::RateLimited;
    let body = format!(
        r#"{{"code":{},"name":"{}","message":"{message}"}}"#,
        code.code(),
        code.name()
    );
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        stream.write_all(response.as_bytes()),
    )
    .await;
}

/// Stops every session (close 4000, reconnect) and waits for them.
async fn drain(state: &AppState) {
    tracing::info!(
        connections = state.limiter.open(),
        "draining: asking every client to reconnect"
    );
    state.shutdown.cancel();
    state.tracker.close();
    if tokio::time::timeout(state.config.drain_timeout, state.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            left = state.limiter.open(),
            "drain deadline passed; exiting with connections open"
        );
    } else {
        tracing::info!("drained");
    }
}

/// Completes on SIGTERM or Ctrl-C (SIGINT): the signal to drain.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
