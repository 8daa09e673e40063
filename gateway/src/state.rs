//! [`AppState`]: what every task of a node shares.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokenim_auth::{TokenSigner, TokenVerifier};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::Access;
use crate::broker::{Broker, LocalBroker, RedisBroker};
use crate::config::{Config, StoreBackend};
use crate::guard::Guard;
use crate::hub::Hub;
use crate::limiter::ConnLimiter;
use crate::metrics::Metrics;
use crate::proxy::TrustedProxies;
use crate::store::kv::{EmbeddedKv, Kv, PostgresKv, RedisKv};
use crate::store::{Store, StoreError};
use crate::wire::Framing;

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
    /// Mints tokens for the server API (`POST /v1/tokens`): the first
    /// configured key that can sign; `None` if none can (public keys only).
    pub minter: Option<TokenSigner>,
    /// Local channels and subscribers.
    pub hub: Arc<Hub>,
    /// Fan-out between nodes.
    pub broker: Broker,
    /// Users, groups, keys, policy, audit log, jobs.
    pub store: Store,
    /// The node's copy of the access rules.
    pub access: Arc<Access>,
    /// Rate limits of the server API; failed authentications' audit.
    pub guard: Guard,
    /// Whose forwarding headers are believed.
    pub proxies: TrustedProxies,
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
    /// What every connection frames within (limits, counters).
    pub framing: Arc<Framing>,
    /// Import jobs this node may still start (`api.max_jobs`).
    pub job_slots: Arc<tokio::sync::Semaphore>,
    /// This node's id (logs, envelopes, presence).
    pub node_id: String,
    session_tag: u64,
    next_session: AtomicU64,
}

/// Session ids are `tag << 32 | counter`: a random 21-bit tag per node
/// keeps them apart across nodes and under 2^53 (exact in JavaScript).
const SESSION_TAG_MASK: u32 = (1 << 21) - 1;

/// Why a node's state could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A configured key is unusable.
    #[error("auth keys: {0}")]
    Keys(#[from] tokenim_auth::KeyError),
    /// Redis could not be set up.
    #[error("redis: {0}")]
    Broker(#[from] crate::broker::BrokerError),
    /// The store could not be opened (the embedded file is in use by
    /// another process, or unreadable).
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// `trusted_proxies` holds an entry that is no address.
    #[error("trusted_proxies: {0}")]
    Proxies(#[from] crate::proxy::BadProxy),
}

/// A weak random number (time and process id): enough to tell nodes apart.
fn random_u32() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mixed = (nanos as u64) ^ (u64::from(std::process::id()) << 40);
    (mixed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as u32
}

/// `<hostname>-<random hex>`.
fn default_node_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| {
            h.trim()
                .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "")
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".into());
    format!("{host}-{:06x}", random_u32() & 0xff_ffff)
}

impl AppState {
    /// Builds the state for a validated configuration.
    pub async fn new(config: Config) -> Result<Self, StateError> {
        let auth = config.effective_auth();
        let verifier = TokenVerifier::new(&auth)?;
        let signer = if config.dev_mode() {
            auth.keys.iter().find_map(|k| TokenSigner::new(k).ok())
        } else {
            None
        };
        let minter = auth.keys.iter().find_map(|k| TokenSigner::new(k).ok());
        let metrics = Metrics::new();
        let hub = Arc::new(Hub::new(
            metrics.clone(),
            config.limits.max_join_leave_subscribers,
        ));
        let shutdown = CancellationToken::new();
        let node_id = config.node_id.clone().unwrap_or_else(default_node_id);
        let broker = match &config.redis {
            None => Broker::Local(LocalBroker::new(
                Arc::clone(&hub),
                metrics.clone(),
                config.history.clone(),
                node_id.clone(),
            )),
            Some(redis) => Broker::Redis(
                RedisBroker::start(
                    redis.clone(),
                    config.history.clone(),
                    node_id.clone(),
                    Arc::clone(&hub),
                    metrics.clone(),
                    shutdown.clone(),
                )
                .await?,
            ),
        };
        let kv = open_store(&config).await?;
        let store = Store::new(kv).with_user_role(config.user_role());
        if let Err(e) =
            crate::bootstrap::ensure_admin_key(&store, &config.api, &config.store.path).await
        {
            tracing::warn!(error = %e, "bootstrap admin key not checked (store unreachable)");
        }
        let access = Arc::new(Access::load(store.clone()).await);
        let guard = Guard::new(&config, store.clone(), metrics.clone());
        let proxies = TrustedProxies::parse(&config.trusted_proxies)?;
        tokio::spawn(Arc::clone(&guard.failures).run(shutdown.clone()));
        let deleted = metrics.audit_records_deleted.clone();
        tokio::spawn(store.clone().run_audit_retention(
            config.audit.max_records,
            config.audit.max_age,
            config.audit.retention_every,
            shutdown.clone(),
            move |n| deleted.inc_by(n as u64),
        ));
        tokio::spawn(Arc::clone(&access).poll(config.api.access_refresh, shutdown.clone()));
        let job_slots = Arc::new(tokio::sync::Semaphore::new(config.api.max_jobs));
        let l = &config.limits;
        let limiter =
            ConnLimiter::new(l.max_connections, l.max_connections_per_ip, metrics.clone());
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(l.read_buffer_size)
            .write_buffer_size(l.write_buffer_size)
            .max_write_buffer_size(l.max_write_buffer_size)
            .max_message_size(Some(l.max_message_size))
            .max_frame_size(Some(l.max_frame_size));
        let framing = Arc::new(Framing::new(l, metrics.clone()));
        Ok(Self(Arc::new(Shared {
            config,
            verifier,
            signer,
            minter,
            hub,
            broker,
            store,
            access,
            guard,
            proxies,
            metrics,
            shutdown,
            job_slots,
            node_id,
            session_tag: u64::from(random_u32() & SESSION_TAG_MASK) << 32,
            tracker: TaskTracker::new(),
            limiter,
            ws_config,
            framing,
            next_session: AtomicU64::new(1),
        })))
    }

    /// A fresh session id.
    pub fn next_session_id(&self) -> u64 {
        self.session_tag | (self.next_session.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff)
    }

    /// Whether the node accepts new clients: not draining, and its broker
    /// can carry messages between nodes.
    pub fn is_ready(&self) -> bool {
        !self.is_draining() && self.broker.is_ready()
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

/// The store backend `config` names, opened: PostgreSQL migrated to this
/// build's schema, Redis checked to persist (unless allowed not to).
pub async fn open_store(config: &Config) -> Result<Kv, StoreError> {
    let store = &config.store;
    Ok(
        match (store.backend(config.redis.is_some()), &config.redis) {
            (StoreBackend::Postgres, _) => Kv::Postgres(PostgresKv::open(store).await?),
            (StoreBackend::Redis, Some(redis)) => {
                let kv = RedisKv::open(redis).await?;
                if !store.allow_volatile_redis {
                    kv.check_persistence().await?;
                }
                Kv::Redis(kv)
            }
            _ => Kv::Embedded(EmbeddedKv::open(&store.path, store.cache_bytes)?),
        },
    )
}
