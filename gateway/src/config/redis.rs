//! [`RedisConfig`]: how a node reaches the Redis that joins it to the
//! other nodes (fan-out, sequence numbers, presence).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid, nonzero, positive};

/// Redis settings. Setting `url` (e.g. `TOKENIM_REDIS__URL=redis://127.0.0.1:6379`)
/// switches the node from the in-process broker to Redis pub/sub.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://host:port[/db]`, or `rediss://host:port[/db]` for TLS
    /// (see `tls_ca`). For a Redis Cluster, several seed nodes separated by
    /// commas (`redis://10.0.0.1:7000,redis://10.0.0.2:7000`).
    pub url: String,
    /// PEM file of the CA certificates that `rediss://` servers are
    /// checked against, for a Redis with a private CA. Unset (the
    /// default): the system's trusted roots. Only with `rediss://` URLs.
    pub tls_ca: Option<PathBuf>,
    /// The Redis is a Redis Cluster (7+): sharded pub/sub (`SPUBLISH` /
    /// `SSUBSCRIBE`), so fan-out scales with the cluster's shards.
    /// Default `false`.
    pub cluster: bool,
    /// Prefix of every key and channel tokenim uses. Default `tokenim`.
    pub prefix: String,
    /// Bound on one Redis command (publish, presence); a publish that takes
    /// longer fails with `unavailable`. Default `2s`.
    #[serde(with = "humantime_serde")]
    pub command_timeout: Duration,
    /// How often the subscriber connection is probed (PING). Default `1s`.
    #[serde(with = "humantime_serde")]
    pub probe_interval: Duration,
    /// A probe unanswered this long marks the node not ready and restarts
    /// the subscriber connection (a hung Redis or a silently dropping
    /// network gives no error otherwise). Default `3s`.
    #[serde(with = "humantime_serde")]
    pub probe_timeout: Duration,
    /// Longest wait between reconnection attempts (backoff doubles from
    /// 100 ms, with jitter). Default `5s`.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// How long presence entries live without a heartbeat: a killed node's
    /// users disappear from presence after this. Default `15s`.
    #[serde(with = "humantime_serde")]
    pub presence_ttl: Duration,
    /// Messages received from Redis waiting to be fanned out locally; when
    /// full, further ones are dropped and counted. Default 65,536.
    pub inbound_queue: usize,
    /// Publishes waiting for their round trip to Redis. A publisher waits
    /// up to `command_timeout` for room, then gets `unavailable`.
    /// Default 8,192.
    pub publish_queue: usize,
    /// Most publishes sent to Redis as one pipeline (one round trip).
    /// Default 256.
    pub publish_batch: usize,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".into(),
            tls_ca: None,
            cluster: false,
            prefix: "tokenim".into(),
            command_timeout: Duration::from_secs(2),
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_secs(3),
            max_backoff: Duration::from_secs(5),
            presence_ttl: Duration::from_secs(15),
            inbound_queue: 65_536,
            publish_queue: 8_192,
            publish_batch: 256,
        }
    }
}

impl RedisConfig {
    /// The seed URLs.
    pub fn urls(&self) -> Vec<&str> {
        self.url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect()
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let urls = self.urls();
        if urls.is_empty()
            || urls
                .iter()
                .any(|u| !(u.starts_with("redis://") || u.starts_with("rediss://")))
        {
            return Err(invalid(
                "redis.url",
                "one or more redis://host:port URLs, comma-separated",
            ));
        }
        if !self.cluster && urls.len() > 1 {
            return Err(invalid(
                "redis.url",
                "several URLs need redis.cluster = true",
            ));
        }
        if let Some(ca) = &self.tls_ca {
            if !urls.iter().any(|u| u.starts_with("rediss://")) {
                return Err(invalid(
                    "redis.tls_ca",
                    "set, but no redis.url is rediss:// (TLS)",
                ));
            }
            super::tls::read_certs("redis.tls_ca", ca)?;
        }
        if self.prefix.is_empty() || self.prefix.contains(['{', '}', ' ']) {
            return Err(invalid(
                "redis.prefix",
                "a non-empty name without braces or spaces",
            ));
        }
        nonzero(&[
            ("redis.command_timeout", self.command_timeout),
            ("redis.probe_interval", self.probe_interval),
            ("redis.probe_timeout", self.probe_timeout),
            ("redis.max_backoff", self.max_backoff),
            ("redis.presence_ttl", self.presence_ttl),
        ])?;
        positive(&[
            ("redis.inbound_queue", self.inbound_queue),
            ("redis.publish_queue", self.publish_queue),
            ("redis.publish_batch", self.publish_batch),
        ])
    }
}
