//! [`AuditConfig`] (`[audit]`): how much of the audit log is kept, and how
//! failed authentications are folded into it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid, nonzero};

/// Retention of the audit log. A background task on every node deletes
/// the oldest records beyond either bound, a bounded batch at a time.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Most records kept. Default 1,000,000.
    pub max_records: u64,
    /// Oldest record kept. Default `90days`.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    /// How often retention runs. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub retention_every: Duration,
    /// Most (source address, reason) pairs of failed authentications
    /// folded at once; failures from further sources are folded into one
    /// record for all of them (source `*`). Default 10,000.
    pub max_failure_sources: usize,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            max_records: 1_000_000,
            max_age: Duration::from_secs(90 * 24 * 3600),
            retention_every: Duration::from_secs(10),
            max_failure_sources: 10_000,
        }
    }
}

impl AuditConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_records == 0 {
            return Err(invalid("audit.max_records", "must be greater than 0"));
        }
        if self.max_failure_sources == 0 {
            return Err(invalid(
                "audit.max_failure_sources",
                "must be greater than 0",
            ));
        }
        nonzero(&[
            ("audit.max_age", self.max_age),
            ("audit.retention_every", self.retention_every),
        ])
    }
}
