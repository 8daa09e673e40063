//! Connections to Redis: one multiplexed connection for commands (shared
//! by every publisher on the node) and one dedicated RESP3 connection for
//! subscriptions, whose messages arrive as pushes in a bounded queue. On a
//! Redis Cluster both are cluster connections (the subscriber one holds a
//! connection per shard it listens on). `rediss://` URLs speak TLS,
//! checked against `redis.tls_ca` when it is set ([`client`],
//! [`cluster_client`]).

use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, join_all};
use prometheus::IntCounter;
use redis::aio::{
    AsyncPushSender, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection, SendError,
};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{
    AsyncConnectionConfig, FromRedisValue, ProtocolVersion, PushInfo, RedisResult, TlsCertificates,
    Value,
};
use tokio::sync::mpsc;

use crate::config::RedisConfig;

/// The command connection (also used by the Redis store).
#[derive(Clone)]
pub(crate) enum Commands {
    /// A single Redis (reconnects by itself, lazily).
    Single(ConnectionManager),
    /// A Redis Cluster (routes by key, follows slot moves).
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for Commands {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Commands::Single(_) => "Commands::Single",
            Commands::Cluster(_) => "Commands::Cluster",
        })
    }
}

impl Commands {
    /// Opens the command connection. A single Redis connects lazily, so a
    /// node starts (not ready) while Redis is down.
    pub(crate) async fn open(config: &RedisConfig) -> RedisResult<Self> {
        if config.cluster {
            let client = cluster_client(config)?
                .connection_timeout(config.command_timeout)
                .response_timeout(config.command_timeout)
                .build()?;
            Ok(Commands::Cluster(client.get_async_connection().await?))
        } else {
            let client = client(config, config.urls()[0])?;
            let manager = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(config.command_timeout))
                .set_response_timeout(Some(config.command_timeout))
                .set_max_delay(config.max_backoff);
            Ok(Commands::Single(ConnectionManager::new_lazy_with_config(
                client, manager,
            )?))
        }
    }

    /// Runs one command.
    pub(crate) async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> RedisResult<T> {
        match self {
            Commands::Single(c) => cmd.query_async(&mut c.clone()).await,
            Commands::Cluster(c) => cmd.query_async(&mut c.clone()).await,
        }
    }

    /// Runs a pipeline (all of whose keys share one slot on a cluster).
    pub(crate) async fn pipeline<T: FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> RedisResult<T> {
        match self {
            Commands::Single(c) => pipe.query_async(&mut c.clone()).await,
            Commands::Cluster(c) => pipe.query_async(&mut c.clone()).await,
        }
    }

    /// Runs a script (EVALSHA, loading it on first use).
    pub(crate) async fn script<T: FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> RedisResult<T> {
        match self {
            Commands::Single(c) => invocation.invoke_async(&mut c.clone()).await,
            Commands::Cluster(c) => invocation.invoke_async(&mut c.clone()).await,
        }
    }
}

/// A client of the single Redis at `url`, trusting `redis.tls_ca` (read
/// at every connect, so a renewed CA file is picked up) when set.
fn client(config: &RedisConfig, url: &str) -> RedisResult<redis::Client> {
    match tls_ca(config)? {
        Some(certs) => redis::Client::build_with_tls(url, certs),
        None => redis::Client::open(url),
    }
}

/// A builder of cluster clients for the seed URLs, trusting
/// `redis.tls_ca` when set.
fn cluster_client(config: &RedisConfig) -> RedisResult<ClusterClientBuilder> {
    let builder = ClusterClientBuilder::new(config.urls());
    Ok(match tls_ca(config)? {
        Some(certs) => builder.certs(certs),
        None => builder,
    })
}

/// `redis.tls_ca` as the redis crate takes it; `None` when unset (the
/// system's roots).
fn tls_ca(config: &RedisConfig) -> RedisResult<Option<TlsCertificates>> {
    let Some(path) = &config.tls_ca else {
        return Ok(None);
    };
    Ok(Some(TlsCertificates {
        client_tls: None,
        root_cert: Some(std::fs::read(path)?),
    }))
}

/// The subscriber connection.
pub(crate) enum Subscriber {
    /// `SUBSCRIBE` on a single Redis.
    Single(MultiplexedConnection),
    /// `SSUBSCRIBE` on a Redis Cluster: the connection holds one socket per
    /// shard and repairs (and resubscribes) a shard's socket by itself;
    /// `masters` is the last topology read, for probing each shard.
    Cluster {
        conn: ClusterConnection,
        masters: Vec<(String, u16)>,
    },
}

impl Subscriber {
    /// Connects with RESP3, delivering pushes into `inbound`.
    pub(crate) async fn open(config: &RedisConfig, inbound: Inbound) -> RedisResult<Self> {
        if config.cluster {
            let client = cluster_client(config)?
                .use_protocol(ProtocolVersion::RESP3)
                .connection_timeout(config.command_timeout)
                .response_timeout(config.probe_timeout)
                .push_sender(inbound)
                .build()?;
            let mut conn = client.get_async_connection().await?;
            let masters = masters(&mut conn).await?;
            Ok(Subscriber::Cluster { conn, masters })
        } else {
            let url = config.urls()[0];
            let sep = if url.contains('?') { '&' } else { '?' };
            let client = client(config, &format!("{url}{sep}protocol=resp3"))?;
            let options = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(config.command_timeout))
                .set_response_timeout(Some(config.probe_timeout))
                .set_push_sender(inbound);
            Ok(Subscriber::Single(
                client
                    .get_multiplexed_async_connection_with_config(&options)
                    .await?,
            ))
        }
    }

    /// Whether this is a cluster connection (a shard can fail alone).
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Subscriber::Cluster { .. })
    }

    pub(crate) async fn subscribe(&mut self, channel: &str) -> RedisResult<()> {
        match self {
            Subscriber::Single(c) => c.subscribe(channel).await,
            Subscriber::Cluster { conn, .. } => conn.ssubscribe(channel).await,
        }
    }

    pub(crate) async fn unsubscribe(&mut self, channel: &str) -> RedisResult<()> {
        match self {
            Subscriber::Single(c) => c.unsubscribe(channel).await,
            Subscriber::Cluster { conn, .. } => conn.sunsubscribe(channel).await,
        }
    }

    /// A round trip to every shard on the subscriber connection itself,
    /// concurrently, each bounded by `timeout`: one answer for a single
    /// Redis, one per master of a cluster (whose topology is read again on
    /// the way). The round does not hold the connection, so pushes go on
    /// being handled while a shard hangs; [`Subscriber::probed`] takes in
    /// what it found.
    pub(crate) fn probe(&self, timeout: Duration) -> BoxFuture<'static, ProbeRound> {
        match self {
            Subscriber::Single(c) => {
                let mut c = c.clone();
                async move {
                    let call = async { redis::cmd("PING").query_async::<()>(&mut c).await };
                    ProbeRound {
                        shards: vec![("redis".to_owned(), ping(timeout, call).await)],
                        masters: None,
                    }
                }
                .boxed()
            }
            Subscriber::Cluster {
                conn,
                masters: known,
            } => {
                let pings = known.iter().map(|(host, port)| {
                    let mut conn = conn.clone();
                    let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                        host: host.clone(),
                        port: *port,
                    });
                    let shard = format!("{host}:{port}");
                    async move {
                        let call = async {
                            conn.route_command(redis::cmd("PING"), route)
                                .await
                                .map(drop)
                        };
                        (shard, ping(timeout, call).await)
                    }
                });
                let pings = join_all(pings);
                let mut conn = conn.clone();
                async move {
                    let topology = tokio::time::timeout(timeout, masters(&mut conn));
                    let (shards, topology) = futures_util::join!(pings, topology);
                    ProbeRound {
                        shards,
                        masters: topology.ok().and_then(Result::ok),
                    }
                }
                .boxed()
            }
        }
    }

    /// Takes in a probe round: the cluster's masters as read then.
    pub(crate) fn probed(&mut self, round: &mut ProbeRound) {
        if let (Subscriber::Cluster { masters, .. }, Some(now)) = (self, round.masters.take()) {
            *masters = now;
        }
    }
}

/// What one probe round found: each shard's answer.
pub(crate) struct ProbeRound {
    pub(crate) shards: Vec<(String, Probe)>,
    masters: Option<Vec<(String, u16)>>,
}

/// One probe round trip, bounded.
async fn ping(timeout: Duration, call: impl Future<Output = RedisResult<()>>) -> Probe {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(())) => Probe::Answered,
        Ok(Err(e)) if e.is_timeout() => Probe::TimedOut,
        Ok(Err(e)) => Probe::Failed(e.to_string()),
        Err(_) => Probe::TimedOut,
    }
}

/// The masters of a cluster, from `CLUSTER SLOTS` on any master: each
/// entry is `[start, end, [host, port, id, ...], replicas...]`.
async fn masters(conn: &mut ClusterConnection) -> RedisResult<Vec<(String, u16)>> {
    let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::RandomPrimary);
    let slots = conn
        .route_command(redis::cmd("CLUSTER").arg("SLOTS").to_owned(), route)
        .await?;
    let ranges: Vec<Vec<Value>> = redis::from_redis_value(slots)?;
    let mut masters: Vec<(String, u16)> = Vec::new();
    for range in ranges {
        let Some(master) = range.into_iter().nth(2) else {
            continue;
        };
        let node: Vec<Value> = redis::from_redis_value(master)?;
        let mut fields = node.into_iter();
        let (Some(host), Some(port)) = (fields.next(), fields.next()) else {
            continue;
        };
        let master = (
            redis::from_redis_value(host)?,
            redis::from_redis_value(port)?,
        );
        if !masters.contains(&master) {
            masters.push(master);
        }
    }
    Ok(masters)
}

/// What a probe of the subscriber connection found.
#[derive(Debug)]
pub(crate) enum Probe {
    /// Redis answered in time.
    Answered,
    /// No answer within the probe timeout: Redis hangs, or the network.
    TimedOut,
    /// The connection failed.
    Failed(String),
}

/// Hands pushes from the subscriber connection to the subscriber task
/// through a bounded queue; when it is full a push is dropped and counted
/// rather than blocking the connection.
pub(crate) struct Inbound {
    pub(crate) tx: mpsc::Sender<PushInfo>,
    pub(crate) dropped: IntCounter,
}

impl AsyncPushSender for Inbound {
    fn send(&self, info: PushInfo) -> Result<(), SendError> {
        match self.tx.try_send(info) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.dropped.inc();
                Ok(())
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SendError),
        }
    }
}
