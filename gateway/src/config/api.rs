//! [`ApiConfig`]: the server API applications call (API keys, batches,
//! imports, idempotency).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid, nonzero};

/// Server API settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// A separate, internal address for the server API (`/v1`, the
    /// OpenAPI document included) and `/metrics`, e.g. `127.0.0.1:9090`
    /// or a private network's address. Set, the public `listen` address
    /// serves only `/ws`, `/healthz`, `/readyz` (and in development mode
    /// the demo page and `/dev/token`). Unset (the default): everything
    /// on `listen`.
    pub listen: Option<std::net::SocketAddr>,
    /// The bootstrap admin key, `<key id>:<secret>` (e.g. from
    /// `TOKENIM_API__ADMIN_KEY`): created with every scope if absent.
    /// When unset and the store holds no key, one is created at first
    /// start and its secret written once to `bootstrap_key_file`. The id
    /// is `ak_` and 16 hex digits; the secret at least 32 characters.
    pub admin_key: Option<String>,
    /// Where the key created at first start (no `admin_key`) is written,
    /// readable by the owner only (mode 0600). Default
    /// `<store.path>/bootstrap-admin-key`.
    pub bootstrap_key_file: Option<std::path::PathBuf>,
    /// Also print that key's secret on standard error (never standard
    /// output). Default off: logs and container output are no place for
    /// secrets. The flag `--print-bootstrap-key` sets it.
    pub print_bootstrap_key: bool,
    /// Most items (users, groups, members) in one request; a larger batch
    /// is refused whole with `too_many_items`. Default 1,000.
    pub max_batch_items: usize,
    /// Largest request body of the API (imports excepted). Default 8 MiB.
    pub max_body_bytes: usize,
    /// Largest import file. Default 4 GiB.
    pub max_import_bytes: u64,
    /// Import jobs one node runs at a time; more are refused with
    /// `too_many_jobs`. Default 2.
    pub max_jobs: usize,
    /// Largest metadata object of a user or group, as JSON. Default 4 KiB.
    pub max_metadata_bytes: usize,
    /// How long a response is kept for retries with the same
    /// `Idempotency-Key`. Default `24h`.
    #[serde(with = "humantime_serde")]
    pub idempotency_ttl: Duration,
    /// How long a rotated key's old secret keeps working, when the
    /// rotation does not say. Default `1h`.
    #[serde(with = "humantime_serde")]
    pub rotation_overlap: Duration,
    /// Longest lifetime of a token minted through the API. Default `30d`.
    #[serde(with = "humantime_serde")]
    pub max_token_ttl: Duration,
    /// How often a node checks whether roles, grants, memberships, bans or
    /// revocations changed on another node (a change made through this
    /// node applies at once). Default `1s`.
    #[serde(with = "humantime_serde")]
    pub access_refresh: Duration,
    /// Rate limits per key and per source address.
    pub rate_limits: super::RateLimits,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: None,
            admin_key: None,
            bootstrap_key_file: None,
            print_bootstrap_key: false,
            max_batch_items: 1_000,
            max_body_bytes: 8 << 20,
            max_import_bytes: 4 << 30,
            max_jobs: 2,
            max_metadata_bytes: 4 << 10,
            idempotency_ttl: Duration::from_secs(24 * 3600),
            rotation_overlap: Duration::from_secs(3600),
            max_token_ttl: Duration::from_secs(30 * 24 * 3600),
            access_refresh: Duration::from_secs(1),
            rate_limits: super::RateLimits::default(),
        }
    }
}

impl ApiConfig {
    /// The bootstrap key's id and secret, when configured.
    pub fn admin_key(&self) -> Option<(&str, &str)> {
        self.admin_key.as_deref().and_then(|k| k.split_once(':'))
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(key) = &self.admin_key {
            let ok = key.split_once(':').is_some_and(|(id, secret)| {
                tokenim_auth::ApiKeyId::parse(id).is_ok() && secret.len() >= 32
            });
            if !ok {
                return Err(invalid(
                    "api.admin_key",
                    "<key id>:<secret>: an id of ak_ and 16 hex digits, a secret of at least 32 characters",
                ));
            }
        }
        let positive = [
            ("api.max_batch_items", self.max_batch_items),
            ("api.max_body_bytes", self.max_body_bytes),
            ("api.max_jobs", self.max_jobs),
            ("api.max_metadata_bytes", self.max_metadata_bytes),
        ];
        if let Some((field, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(invalid(field, "must be greater than 0"));
        }
        if self.max_import_bytes == 0 {
            return Err(invalid("api.max_import_bytes", "must be greater than 0"));
        }
        self.rate_limits.validate()?;
        nonzero(&[
            ("api.idempotency_ttl", self.idempotency_ttl),
            ("api.max_token_ttl", self.max_token_ttl),
            ("api.access_refresh", self.access_refresh),
        ])
    }
}
