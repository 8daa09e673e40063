//! [`Tls`]: the listener's TLS acceptor, with the certificate in service
//! swapped atomically when the files are loaded again: on SIGHUP, and when
//! `tls.cert` or `tls.key` changes (modification time or size, looked at
//! every `tls.reload_interval`). A pair that does not load is logged and
//! counted (`tokenim_tls_reloads_total{result="error"}`) and the previous
//! certificate stays in service; connections already open are never
//! touched.
//!
//! [`Tls::accept`] is called by [`crate::server`] inside each
//! connection's task, never in the accept loop.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use crate::config::{ConfigError, TlsConfig};
use crate::metrics::Metrics;
use crate::stream::{self, Stream};

/// What identifies a version of one file: modification time and size.
type Stamp = Option<(SystemTime, u64)>;

/// The listener's TLS: configuration files and the certificate in service.
#[derive(Debug)]
pub struct Tls {
    config: TlsConfig,
    current: ArcSwap<ServerConfig>,
    /// The files as last loaded (successfully or not), so a bad pair is
    /// reported once, not at every look.
    seen: Mutex<[Stamp; 2]>,
}

impl Tls {
    /// Loads `config`'s certificate and key.
    pub fn load(config: TlsConfig) -> Result<Self, ConfigError> {
        let seen = stamps(&config);
        let current = ArcSwap::new(config.load()?);
        Ok(Self {
            config,
            current,
            seen: Mutex::new(seen),
        })
    }

    /// Runs the TLS handshake on `tcp` with the certificate in service.
    pub async fn accept(&self, tcp: TcpStream) -> io::Result<Stream> {
        let acceptor = TlsAcceptor::from(self.current.load_full());
        acceptor.accept(tcp).await.map(stream::tls)
    }

    /// Loads the files again and puts them in service; on error the
    /// previous certificate stays.
    pub fn reload(&self) -> Result<(), ConfigError> {
        *self.seen.lock().expect("not poisoned") = stamps(&self.config);
        self.current.store(self.config.load()?);
        Ok(())
    }

    /// Whether either file differs from when it was last loaded.
    fn changed(&self) -> bool {
        *self.seen.lock().expect("not poisoned") != stamps(&self.config)
    }

    /// The task that reloads on SIGHUP and on a file change, forever
    /// (the caller aborts it). The signal handler is installed now, so a
    /// SIGHUP sent once this returns is never the default (terminate).
    pub(crate) fn watch(
        self: Arc<Self>,
        metrics: Metrics,
    ) -> io::Result<impl Future<Output = ()> + Send + 'static> {
        let mut hangup = Hangup::new()?;
        let mut tick = tokio::time::interval(self.config.reload_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ok(async move {
            loop {
                let why = tokio::select! {
                    () = hangup.recv() => "SIGHUP",
                    _ = tick.tick() => {
                        if !self.changed() {
                            continue;
                        }
                        "file change"
                    }
                };
                let result = self.reload();
                metrics.tls_reload(result.is_ok());
                match result {
                    Ok(()) => {
                        tracing::info!(trigger = why, cert = %self.config.cert.display(), "TLS certificate reloaded")
                    }
                    Err(e) => {
                        tracing::error!(trigger = why, error = %e, "TLS certificate not reloaded; the previous one stays in service")
                    }
                }
            }
        })
    }
}

/// Stamps of the certificate and key files (`None` for a file that cannot
/// be read now).
fn stamps(config: &TlsConfig) -> [Stamp; 2] {
    let stamp = |path: &Path| {
        let meta = std::fs::metadata(path).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    };
    [stamp(&config.cert), stamp(&config.key)]
}

/// Runs the TLS handshake of a connection to a TLS listener within
/// `timeout`, counting a failure; plaintext listeners (`tls` `None`) pass
/// the TCP stream through.
pub(crate) async fn handshake(
    tcp: TcpStream,
    tls: Option<&Tls>,
    timeout: Duration,
    metrics: &Metrics,
) -> Option<Stream> {
    let Some(tls) = tls else {
        return Some(stream::plain(tcp));
    };
    match tokio::time::timeout(timeout, tls.accept(tcp)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => {
            metrics.tls_handshake_failure(false);
            tracing::debug!(error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            metrics.tls_handshake_failure(true);
            None
        }
    }
}

/// SIGHUP, where there is such a thing.
struct Hangup {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Hangup {
    fn new() -> io::Result<Self> {
        Ok(Self {
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?,
        })
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        if self.signal.recv().await.is_some() {
            return;
        }
        std::future::pending().await
    }
}
