//! [`StoreConfig`]: where a node keeps users, groups, keys, policy and the
//! audit log.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid};

/// Which backend holds the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreBackend {
    /// PostgreSQL when `store.url` is set, else Redis when `redis.url`
    /// is set (every node must see the same state), else the embedded
    /// file. The default.
    Auto,
    /// A redb file under `store.path`: one node, durable on local disk.
    Embedded,
    /// The PostgreSQL database of `store.url`: the cluster's system of
    /// record.
    Postgres,
    /// The Redis of `redis.url`, which must persist its data (see
    /// `store.allow_volatile_redis`).
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
    /// The PostgreSQL database: `postgres://user:password@host:5432/db`;
    /// TLS by the URL's `sslmode` (`require`, `verify-ca`,
    /// `verify-full`) and `sslrootcert`. Unset by default.
    pub url: Option<String>,
    /// PostgreSQL connections per node at most. Default 16.
    pub pool_size: u32,
    /// Bound on one PostgreSQL operation: connecting, waiting for a
    /// connection, a statement (the server cancels it too). Default 5 s.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Start on a Redis store that keeps nothing on disk (`appendonly no`
    /// and no `save` points): a restart of that Redis loses every user,
    /// key, ban and audit record. Default false: such a Redis is refused.
    pub allow_volatile_redis: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            backend: StoreBackend::Auto,
            path: PathBuf::from("tokenim-data"),
            cache_bytes: 64 << 20,
            url: None,
            pool_size: 16,
            timeout: Duration::from_secs(5),
            allow_volatile_redis: false,
        }
    }
}

impl StoreConfig {
    /// The backend in use (never `Auto`), given whether Redis is
    /// configured.
    pub fn backend(&self, redis: bool) -> StoreBackend {
        match self.backend {
            StoreBackend::Auto if self.url.is_some() => StoreBackend::Postgres,
            StoreBackend::Auto if redis => StoreBackend::Redis,
            StoreBackend::Auto => StoreBackend::Embedded,
            chosen => chosen,
        }
    }

    pub(super) fn validate(&self, redis: bool) -> Result<(), ConfigError> {
        if self.backend == StoreBackend::Redis && !redis {
            return Err(invalid("store.backend", "redis needs redis.url to be set"));
        }
        let backend = self.backend(redis);
        if backend == StoreBackend::Postgres {
            let url = self.url.as_deref().unwrap_or_default();
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(invalid(
                    "store.url",
                    "postgres needs a postgres://user:password@host:port/database URL",
                ));
            }
            if self.pool_size == 0 || self.pool_size > 1_000 {
                return Err(invalid("store.pool_size", "between 1 and 1000"));
            }
            if self.timeout.is_zero() {
                return Err(invalid("store.timeout", "must be more than zero"));
            }
        } else if self.url.is_some() {
            return Err(invalid(
                "store.url",
                "set, but store.backend is not postgres",
            ));
        }
        if backend == StoreBackend::Embedded && self.path.as_os_str().is_empty() {
            return Err(invalid("store.path", "a directory is required"));
        }
        if self.cache_bytes < 1 << 20 {
            return Err(invalid("store.cache_bytes", "at least 1 MiB (1048576)"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(config: &StoreConfig, redis: bool) -> Option<&'static str> {
        match config.validate(redis) {
            Ok(()) => None,
            Err(ConfigError::Invalid { field, .. }) => Some(field),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn the_backend_follows_what_is_configured() {
        let mut store = StoreConfig::default();
        assert_eq!(store.backend(false), StoreBackend::Embedded);
        assert_eq!(store.backend(true), StoreBackend::Redis);
        store.url = Some("postgres://db/tokenim".into());
        assert_eq!(store.backend(true), StoreBackend::Postgres);
        store.backend = StoreBackend::Embedded;
        assert_eq!(store.backend(true), StoreBackend::Embedded);
    }

    #[test]
    fn postgres_settings_are_checked() {
        let postgres = StoreConfig {
            url: Some("postgres://tokenim@db:5432/tokenim".into()),
            ..StoreConfig::default()
        };
        assert_eq!(field_of(&postgres, false), None);
        let cases = [
            (
                StoreConfig {
                    url: Some("mysql://db/tokenim".into()),
                    ..postgres.clone()
                },
                "store.url",
            ),
            (
                StoreConfig {
                    backend: StoreBackend::Postgres,
                    url: None,
                    ..postgres.clone()
                },
                "store.url",
            ),
            (
                StoreConfig {
                    backend: StoreBackend::Embedded,
                    ..postgres.clone()
                },
                "store.url",
            ),
            (
                StoreConfig {
                    pool_size: 0,
                    ..postgres.clone()
                },
                "store.pool_size",
            ),
            (
                StoreConfig {
                    timeout: Duration::ZERO,
                    ..postgres
                },
                "store.timeout",
            ),
        ];
        for (config, field) in cases {
            assert_eq!(field_of(&config, false), Some(field), "{config:?}");
        }
    }
}
