//! Presence across nodes: one sorted set per channel whose members are
//! `node|session|user`, scored by the time they expire. Each node refreshes
//! its own members every third of `redis.presence_ttl`; readers ignore
//! expired members, so the users of a node that died disappear within the
//! TTL without anyone cleaning up after it.

use std::sync::Arc;

use tokenim_protocol::{ChannelName, SessionId, UserId};
use tokio_util::sync::CancellationToken;

use super::{BrokerError, Shared};
use crate::redis::Commands;

/// One local session in one channel.
#[derive(Debug, Clone)]
pub struct PresenceMember {
    /// The channel.
    pub channel: ChannelName,
    /// The session.
    pub session: SessionId,
    /// Its user.
    pub user: UserId,
}

fn member(shared: &Shared, session: SessionId, user: &UserId) -> String {
    format!("{}|{session}|{user}", shared.node_id)
}

fn expiry(shared: &Shared) -> u64 {
    crate::clock::unix_millis() + shared.config.presence_ttl.as_millis() as u64
}

/// The set itself expires a while after its last refresh.
fn key_ttl_ms(shared: &Shared) -> u64 {
    shared.config.presence_ttl.as_millis() as u64 * 2
}

async fn bounded<T>(
    shared: &Shared,
    call: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, BrokerError> {
    match tokio::time::timeout(shared.config.command_timeout, call).await {
        Ok(result) => result.map_err(BrokerError::from),
        Err(_) => Err(BrokerError::Unavailable(
            "redis did not answer in time".into(),
        )),
    }
}

pub(super) async fn add(
    shared: &Shared,
    commands: &Commands,
    m: &PresenceMember,
) -> Result<(), BrokerError> {
    let key = shared.keys.presence(&m.channel);
    let mut pipe = redis::pipe();
    pipe.zadd(&key, member(shared, m.session, &m.user), expiry(shared))
        .ignore();
    pipe.pexpire(&key, key_ttl_ms(shared) as i64).ignore();
    bounded(shared, commands.pipeline::<()>(&pipe)).await
}

pub(super) async fn remove(
    shared: &Shared,
    commands: &Commands,
    m: &PresenceMember,
) -> Result<(), BrokerError> {
    let cmd = redis::cmd("ZREM")
        .arg(shared.keys.presence(&m.channel))
        .arg(member(shared, m.session, &m.user))
        .to_owned();
    bounded(shared, commands.query::<i64>(&cmd)).await.map(drop)
}

/// Every unexpired member's user, one entry per connection.
pub(super) async fn list(
    shared: &Shared,
    commands: &Commands,
    channel: &ChannelName,
) -> Result<Vec<UserId>, BrokerError> {
    let cmd = redis::cmd("ZRANGEBYSCORE")
        .arg(shared.keys.presence(channel))
        .arg(crate::clock::unix_millis())
        .arg("+inf")
        .to_owned();
    let members: Vec<String> = bounded(shared, commands.query(&cmd)).await?;
    Ok(members
        .iter()
        .filter_map(|m| m.rsplit('|').next())
        .filter_map(|u| UserId::new(u).ok())
        .collect())
}

/// Refreshes this node's members of every channel it has listeners in,
/// and drops expired members, until `shutdown`.
pub(super) async fn heartbeat(
    shared: Arc<Shared>,
    commands: Commands,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(shared.config.presence_ttl / 3);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let score = expiry(&shared);
        for channel in shared.hub.channels() {
            if channel.is_personal() {
                continue;
            }
            let members = shared.hub.members(&channel);
            if members.is_empty() {
                continue;
            }
            let key = shared.keys.presence(&channel);
            let mut pipe = redis::pipe();
            for (session, user) in &members {
                pipe.zadd(&key, member(&shared, *session, user), score)
                    .ignore();
            }
            pipe.cmd("ZREMRANGEBYSCORE")
                .arg(&key)
                .arg("-inf")
                .arg(crate::clock::unix_millis())
                .ignore();
            pipe.pexpire(&key, key_ttl_ms(&shared) as i64).ignore();
            if let Err(e) = bounded(&shared, commands.pipeline::<()>(&pipe)).await {
                tracing::debug!(channel = %channel, error = %e, "presence heartbeat failed");
            }
        }
    }
}
