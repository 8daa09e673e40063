//! [`HistoryConfig`]: how much of each channel is kept, so that clients
//! that lost their connection can recover what they missed.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid, nonzero};

/// Channel history settings (every channel, personal channels included:
/// their history is where direct messages wait for offline users).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    /// Messages kept per channel; 0 turns history (and recovery) off.
    /// Default 100.
    pub size: usize,
    /// How long a message is kept. Default `10m`.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// Messages returned by one `history` command when the client asks
    /// for no `limit`; also the most it may ask for. Default 100.
    pub page: usize,
    /// How long a publish's `msg_id` is remembered, so a retry is not
    /// published twice. Default `2m`.
    #[serde(with = "humantime_serde")]
    pub idempotency_window: Duration,
    /// `msg_id`s remembered per channel on a single node (the in-process
    /// broker); the oldest are forgotten first. Default 10,000.
    pub idempotency_keys: usize,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            size: 100,
            ttl: Duration::from_secs(600),
            page: 100,
            idempotency_window: Duration::from_secs(120),
            idempotency_keys: 10_000,
        }
    }
}

impl HistoryConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        nonzero(&[
            ("history.ttl", self.ttl),
            ("history.idempotency_window", self.idempotency_window),
        ])?;
        if self.page == 0 {
            return Err(invalid("history.page", "must be greater than 0"));
        }
        if self.idempotency_keys == 0 {
            return Err(invalid(
                "history.idempotency_keys",
                "must be greater than 0",
            ));
        }
        Ok(())
    }
}
