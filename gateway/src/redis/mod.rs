//! Redis plumbing shared by the broker ([`crate::broker`]'s `RedisBroker`)
//! and the store (`RedisKv` in [`crate::store::kv`]): connections, the
//! command timeout, and the name of every key.
//!
//! * [`connect`]: [`Commands`], the multiplexed command connection (single
//!   Redis or Cluster), and [`Subscriber`], the RESP3 pub/sub connection.
//! * [`keys`]: [`Keys`], every name tokenim uses in Redis.
//! * [`bounded`]: one call bounded by `redis.command_timeout`.

pub(crate) mod connect;
pub(crate) mod keys;

use std::future::Future;
use std::time::Duration;

pub(crate) use self::connect::{Commands, Inbound, Probe, ProbeRound, Subscriber};
pub(crate) use self::keys::Keys;

/// Why a bounded Redis call failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    /// Redis answered with an error, or the connection failed.
    #[error("{0}")]
    Redis(#[from] ::redis::RedisError),
    /// No answer within the command timeout.
    #[error("redis did not answer within {0:?}")]
    TimedOut(Duration),
}

/// Runs `call`, giving up after `timeout` (`redis.command_timeout`).
pub(crate) async fn bounded<T>(
    timeout: Duration,
    call: impl Future<Output = ::redis::RedisResult<T>>,
) -> Result<T, CallError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(CallError::TimedOut(timeout)),
    }
}
