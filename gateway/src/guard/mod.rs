//! [`Guard`]: what stands before the server API's handlers: rate limits
//! per API key and per source address, the limit on failed
//! authentications per source address, and the [`FailureLog`] that folds
//! failed authentications into the audit log.

pub mod failures;

use std::net::IpAddr;
use std::time::Instant;

use tokenim_auth::ApiKeyId;

pub use self::failures::{Failure, FailureLog, VIA_API, VIA_WEBSOCKET};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::rate::{KeyedRates, Verdict};
use crate::store::Store;

/// See the module doc.
#[derive(Debug)]
pub struct Guard {
    per_key: KeyedRates<ApiKeyId>,
    per_ip: KeyedRates<IpAddr>,
    auth_failures: KeyedRates<IpAddr>,
    /// Failed authentications, folded into the audit log.
    pub failures: std::sync::Arc<FailureLog>,
    metrics: Metrics,
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `api.rate_limits.per_key`.
    Key,
    /// `api.rate_limits.per_ip`.
    Ip,
    /// `api.rate_limits.auth_failures_per_ip`.
    AuthFailures,
}

impl Limit {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Limit::Key => "key",
            Limit::Ip => "ip",
            Limit::AuthFailures => "auth_failures",
        }
    }
}

impl Guard {
    /// The guard `config` describes, auditing into `store`.
    pub fn new(config: &Config, store: Store, metrics: Metrics) -> Self {
        let r = &config.api.rate_limits;
        Self {
            per_key: KeyedRates::new(r.per_key, r.per_key_burst, r.max_tracked),
            per_ip: KeyedRates::new(r.per_ip, r.per_ip_burst, r.max_tracked),
            auth_failures: KeyedRates::new(
                r.auth_failures_per_ip,
                r.auth_failure_burst,
                r.max_tracked,
            ),
            failures: std::sync::Arc::new(FailureLog::new(
                store,
                metrics.clone(),
                config.audit.max_failure_sources,
            )),
            metrics,
        }
    }

    /// One request from `ip`, whatever its key.
    pub fn request_from(&self, ip: IpAddr) -> Verdict {
        self.count(Limit::Ip, self.per_ip.take(&ip, Instant::now()))
    }

    /// One request by `key`.
    pub fn request_by(&self, key: &ApiKeyId) -> Verdict {
        self.count(Limit::Key, self.per_key.take(key, Instant::now()))
    }

    /// Whether `ip` may still try credentials (it has failed less than its
    /// limit); takes nothing.
    pub fn may_authenticate(&self, ip: IpAddr) -> Verdict {
        self.count(
            Limit::AuthFailures,
            self.auth_failures.peek(&ip, Instant::now()),
        )
    }

    /// Counts a failed authentication from `ip` against its limit.
    pub fn failed_from(&self, ip: IpAddr) {
        self.auth_failures.take(&ip, Instant::now());
    }

    fn count(&self, limit: Limit, verdict: Verdict) -> Verdict {
        if !verdict.allowed {
            self.metrics
                .api_rate_limited
                .with_label_values(&[limit.label()])
                .inc();
        }
        verdict
    }
}
