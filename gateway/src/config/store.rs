//! [`StoreConfig`]: where a node keeps users, groups, keys, policy and the
//! audit log.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid};

/// Which backend holds the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreBackend {
    /// Redis when `redis.url` is set (every node must see the same
    /// state), the embedded file otherwise. The default.
    Auto,
    /// A redb file under `store.path`: one node, durable on local disk.
    Embedded,
    /// The Redis of `redis.url`.
    Redis,
}

/// Store settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Default `auto`.
    pub backend: StoreBackend,
    /// Directory of the embedded store (created if missing; one node
    /// process at a time). Default `tokenim-data`, relative to the
    /// working directory.
    pub path: PathBuf,
    /// Memory the embedded store may use to cache its file's pages (most
    /// of the node's memory during a big import). Default 64 MiB.
    pub cache_bytes: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            backend: StoreBackend::Auto,
            path: PathBuf::from("tokenim-data"),
            cache_bytes: 64 << 20,
        }
    }
}

impl StoreConfig {
    /// Whether the embedded backend is in use, given whether Redis is
    /// configured.
    pub fn is_embedded(&self, redis: bool) -> bool {
        match self.backend {
            StoreBackend::Auto => !redis,
            StoreBackend::Embedded => true,
            StoreBackend::Redis => false,
        }
    }

    pub(super) fn validate(&self, redis: bool) -> Result<(), ConfigError> {
        if self.backend == StoreBackend::Redis && !redis {
            return Err(invalid("store.backend", "redis needs redis.url to be set"));
        }
        if self.is_embedded(redis) && self.path.as_os_str().is_empty() {
            return Err(invalid("store.path", "a directory is required"));
        }
        if self.cache_bytes < 1 << 20 {
            return Err(invalid("store.cache_bytes", "at least 1 MiB (1048576)"));
        }
        Ok(())
    }
}
