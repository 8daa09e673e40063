//! [`AppState`]: what every task of a node shares.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokenim_auth::{TokenSigner, TokenVerifier};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broker::{Broker, LocalBroker};
use crate::config::Config;
use crate::hub::Hub;
use crate::limiter::ConnLimiter;
use crate::metrics::Metrics;

/// Cheap-to-clone handle on the node's shared state.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

/// The node's shared state.
#[derive(Debug)]
pub struct Shared {
    /// The configuration the node runs with.
    pub config: Config,
    /// Verifies user tokens.
    pub verifier: TokenVerifier,
    /// Mints tokens in development mode (`/dev/token`); `None` otherwise.
    pub signer: Option<TokenSigner>,
    /// Local channels and subscribers.
    pub hub: Arc<Hub>,
    /// Fan-out between nodes.
    pub broker: Broker,
    /// Prometheus collectors.
    pub metrics: Metrics,
    /// Cancelled when the node starts draining.
    pub shutdown: CancellationToken,
    /// Every connection task, so draining can wait for them.
    pub tracker: TaskTracker,
    /// Connection limits.
    pub limiter: Arc<ConnLimiter>,
    /// tungstenite settings derived from `limits`.
    pub ws_config: WebSocketConfig,
    next_session: AtomicU64,
}

impl AppState {
    /// Builds the state for a validated configuration.
    pub fn new(config: Config) -> Result<Self, tokenim_auth::KeyError> {
        let auth = config.effective_auth();
        let verifier = TokenVerifier::new(&auth)?;
        let signer = if config.dev_mode {
            auth.keys.iter().find_map(|k| TokenSigner::new(k).ok())
        } else {
            None
        };
        let metrics = Metrics::new();
        let hub = Arc::new(Hub::new(metrics.clone()));
        let broker = Broker::Local(LocalBroker::new(Arc::clone(&hub), metrics.clone()));
        let l = &config.limits;
        let limiter =
            ConnLimiter::new(l.max_connections, l.max_connections_per_ip, metrics.clone());
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(l.read_buffer_size)
            .write_buffer_size(l.write_buffer_size)
            .max_write_buffer_size(l.max_write_buffer_size)
            .max_message_size(Some(l.max_message_size))
            .max_frame_size(Some(l.max_frame_size));
        Ok(Self(Arc::new(Shared {
            config,
            verifier,
            signer,
            hub,
            broker,
            metrics,
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            limiter,
            ws_config,
            next_session: AtomicU64::new(1),
        })))
    }

    /// A fresh session id.
    pub fn next_session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether the node is draining (not ready for new clients).
    pub fn is_draining(&self) -> bool {
        self.shutdown.is_cancelled()
    }
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}
