//! [`RateLimits`] (`[api.rate_limits]`): how fast the server API may be
//! called, per API key and per source address, and how many failed
//! authentications a source address may make.

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid};

/// Rate limits of `/v1`. Each is a token bucket: `*_burst` requests at
/// once, refilled at the rate per second. Over a limit the answer is
/// `429 rate_limited` with `Retry-After`; every `/v1` answer carries
/// `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` for the
/// key's bucket (or the address's, before a key is known).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimits {
    /// Requests per second per API key. Default 100.
    pub per_key: f64,
    /// Burst per API key. Default 200.
    pub per_key_burst: f64,
    /// Requests per second per source address, whatever the key. Default
    /// 200.
    pub per_ip: f64,
    /// Burst per source address. Default 400.
    pub per_ip_burst: f64,
    /// Failed authentications per second per source address; once its
    /// bucket is empty, the address's requests are refused (429) without
    /// looking at their credentials. Default 0.2 (12 a minute).
    pub auth_failures_per_ip: f64,
    /// Burst of failed authentications per source address. Default 20.
    pub auth_failure_burst: f64,
    /// Most keys and addresses tracked per table; a new one beyond it
    /// is refused until buckets refill. Default 100,000.
    pub max_tracked: usize,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            per_key: 100.0,
            per_key_burst: 200.0,
            per_ip: 200.0,
            per_ip_burst: 400.0,
            auth_failures_per_ip: 0.2,
            auth_failure_burst: 20.0,
            max_tracked: 100_000,
        }
    }
}

impl RateLimits {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let rates = [
            ("api.rate_limits.per_key", self.per_key),
            ("api.rate_limits.per_key_burst", self.per_key_burst),
            ("api.rate_limits.per_ip", self.per_ip),
            ("api.rate_limits.per_ip_burst", self.per_ip_burst),
            (
                "api.rate_limits.auth_failures_per_ip",
                self.auth_failures_per_ip,
            ),
            (
                "api.rate_limits.auth_failure_burst",
                self.auth_failure_burst,
            ),
        ];
        if let Some((field, _)) = rates.iter().find(|(_, v)| !(*v > 0.0 && v.is_finite())) {
            return Err(invalid(field, "must be a positive number"));
        }
        if let Some((field, _)) = rates[..]
            .chunks(2)
            .find(|pair| pair[1].1 < 1.0)
            .map(|p| p[1])
        {
            return Err(invalid(field, "must be at least 1"));
        }
        if self.max_tracked == 0 {
            return Err(invalid(
                "api.rate_limits.max_tracked",
                "must be greater than 0",
            ));
        }
        Ok(())
    }
}
