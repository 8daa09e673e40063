//! Connections to Redis: one multiplexed connection for commands (shared
//! by every publisher on the node) and one dedicated RESP3 connection for
//! subscriptions, whose messages arrive as pushes in a bounded queue. On a
//! Redis Cluster both are cluster connections (the subscriber one holds a
//! connection per shard it listens on).

use std::time::Duration;

use prometheus::IntCounter;
use redis::aio::{
    AsyncPushSender, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection, SendError,
};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, FromRedisValue, ProtocolVersion, PushInfo, RedisResult};
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
            let client = ClusterClientBuilder::new(config.urls())
                .connection_timeout(config.command_timeout)
                .response_timeout(config.command_timeout)
                .build()?;
            Ok(Commands::Cluster(client.get_async_connection().await?))
        } else {
            let client = redis::Client::open(config.urls()[0])?;
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

/// The subscriber connection.
pub(crate) enum Subscriber {
    /// `SUBSCRIBE` on a single Redis.
    Single(MultiplexedConnection),
    /// `SSUBSCRIBE` on a Redis Cluster.
    Cluster(ClusterConnection),
}

impl Subscriber {
    /// Connects with RESP3, delivering pushes into `inbound`.
    pub(crate) async fn open(config: &RedisConfig, inbound: Inbound) -> RedisResult<Self> {
        if config.cluster {
            let client = ClusterClientBuilder::new(config.urls())
                .use_protocol(ProtocolVersion::RESP3)
                .connection_timeout(config.command_timeout)
                .response_timeout(config.probe_timeout)
                .push_sender(inbound)
                .build()?;
            Ok(Subscriber::Cluster(client.get_async_connection().await?))
        } else {
            let url = config.urls()[0];
            let sep = if url.contains('?') { '&' } else { '?' };
            let client = redis::Client::open(format!("{url}{sep}protocol=resp3"))?;
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

    pub(crate) async fn subscribe(&mut self, channel: &str) -> RedisResult<()> {
        match self {
            Subscriber::Single(c) => c.subscribe(channel).await,
            Subscriber::Cluster(c) => c.ssubscribe(channel).await,
        }
    }

    pub(crate) async fn unsubscribe(&mut self, channel: &str) -> RedisResult<()> {
        match self {
            Subscriber::Single(c) => c.unsubscribe(channel).await,
            Subscriber::Cluster(c) => c.sunsubscribe(channel).await,
        }
    }

    /// A round trip on the subscriber connection itself.
    pub(crate) async fn ping(&mut self, timeout: Duration) -> Probe {
        let ping = redis::cmd("PING");
        let round_trip = async {
            match self {
                Subscriber::Single(c) => ping.query_async::<()>(c).await,
                Subscriber::Cluster(c) => ping.query_async::<()>(c).await,
            }
        };
        match tokio::time::timeout(timeout, round_trip).await {
            Ok(Ok(())) => Probe::Answered,
            Ok(Err(e)) if e.is_timeout() => Probe::TimedOut,
            Ok(Err(e)) => Probe::Failed(e.to_string()),
            Err(_) => Probe::TimedOut,
        }
    }
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
