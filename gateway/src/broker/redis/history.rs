//! Positions, history and acknowledgements in Redis, and the scripts the
//! broker loads. What a publish writes (sequence, stream entry,
//! idempotency record) is in [`super::publish`], so history and live
//! delivery always agree on a message's place. The epoch of a channel is created once and lost with
//! everything else if Redis loses its data, which is how clients learn
//! that old positions mean nothing any more.

use tokenim_protocol::{
    ChannelName, Envelope, EnvelopeBody, Publication, Seq, StreamPosition, UserId,
};

use super::{BrokerError, Commands, RedisBroker, Shared, fresh_epoch};
use crate::broker::Page;

/// KEYS: seq, epoch. ARGV: a fresh epoch. Returns {seq, epoch}.
pub(super) const POSITION: &str = r"
redis.call('SET', KEYS[2], ARGV[1], 'NX')
return {tonumber(redis.call('GET', KEYS[1]) or '0'), redis.call('GET', KEYS[2])}
";

/// KEYS: ack key. ARGV: epoch, seq, TTL (ms). Keeps the highest position of
/// the current epoch; returns it as "epoch|seq".
pub(super) const ACK: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur then
  local e, s = string.match(cur, '^(.*)|(%d+)$')
  if e == ARGV[1] and tonumber(s) >= tonumber(ARGV[2]) then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    return cur
  end
end
local v = ARGV[1] .. '|' .. ARGV[2]
redis.call('SET', KEYS[1], v, 'PX', ARGV[3])
return v
";

fn parse_position(text: &str) -> Option<StreamPosition> {
    let (epoch, seq) = text.rsplit_once('|')?;
    Some(StreamPosition {
        epoch: epoch.to_owned(),
        seq: seq.parse().ok()?,
    })
}

/// The latest sequence (0 before the first message) and the epoch of a
/// channel, creating the epoch if Redis holds none.
pub(super) async fn position(
    shared: &Shared,
    commands: &Commands,
    channel: &ChannelName,
) -> Result<(Seq, String), BrokerError> {
    let keys = &shared.keys;
    let mut invocation = shared.scripts.position.prepare_invoke();
    invocation
        .key(keys.seq(channel))
        .key(keys.epoch(channel))
        .arg(fresh_epoch(&shared.node_id));
    shared
        .bounded(commands.script::<(Seq, String)>(&invocation))
        .await
}

/// Up to `limit` kept messages after `since` (oldest first), or the last
/// `limit`, with the channel's position.
pub(super) async fn read(
    shared: &Shared,
    commands: &Commands,
    channel: &ChannelName,
    since: Option<Seq>,
    limit: usize,
) -> Result<Page, BrokerError> {
    let (seq, epoch) = position(shared, commands, channel).await?;
    let key = shared.keys.history(channel);
    let cmd = match since {
        Some(since) => redis::cmd("XRANGE")
            .arg(&key)
            .arg(format!("{}-1", since.saturating_add(1)))
            .arg("+")
            .arg("COUNT")
            .arg(limit + 1)
            .to_owned(),
        None => redis::cmd("XREVRANGE")
            .arg(&key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(limit)
            .to_owned(),
    };
    let entries: Vec<(String, Vec<Vec<u8>>)> = shared.bounded(commands.query(&cmd)).await?;
    let oldest = crate::clock::unix_millis().saturating_sub(shared.history.ttl.as_millis() as u64);
    let mut publications: Vec<Publication> = entries
        .iter()
        .filter_map(|(_, fields)| fields.get(1))
        .filter_map(|bytes| publication(bytes))
        .filter(|p| p.time >= oldest)
        .collect();
    if since.is_none() {
        publications.reverse();
    }
    let more = publications.len() > limit;
    publications.truncate(limit);
    Ok(Page {
        seq,
        epoch,
        publications,
        more,
    })
}

/// A stream entry's message, if it is one.
fn publication(bytes: &[u8]) -> Option<Publication> {
    match Envelope::decode(bytes) {
        Ok((
            Some(seq),
            Envelope {
                body:
                    EnvelopeBody::Message {
                        channel,
                        from,
                        data,
                        time,
                    },
                ..
            },
        )) => Some(Publication {
            channel,
            seq,
            from,
            data,
            time,
        }),
        _ => None,
    }
}

impl RedisBroker {
    pub(in crate::broker) async fn position(
        &self,
        channel: &ChannelName,
    ) -> Result<(Seq, String), BrokerError> {
        position(&self.shared, &self.commands, channel).await
    }

    pub(in crate::broker) async fn history(
        &self,
        channel: &ChannelName,
        since: Option<Seq>,
        limit: usize,
    ) -> Result<Page, BrokerError> {
        read(&self.shared, &self.commands, channel, since, limit).await
    }

    pub(in crate::broker) async fn acked(
        &self,
        user: &UserId,
    ) -> Result<Option<StreamPosition>, BrokerError> {
        let cmd = redis::cmd("GET")
            .arg(self.shared.keys.ack(&user.personal_channel()))
            .to_owned();
        let value: Option<String> = self.bounded(self.commands.query(&cmd)).await?;
        Ok(value.as_deref().and_then(parse_position))
    }

    pub(in crate::broker) async fn ack(
        &self,
        user: &UserId,
        position: StreamPosition,
    ) -> Result<StreamPosition, BrokerError> {
        let mut invocation = self.shared.scripts.ack.prepare_invoke();
        let ttl = self
            .shared
            .history
            .ttl
            .max(self.shared.history.idempotency_window)
            .as_millis() as u64
            * 2;
        invocation
            .key(self.shared.keys.ack(&user.personal_channel()))
            .arg(&position.epoch)
            .arg(position.seq)
            .arg(ttl);
        let text: String = self.bounded(self.commands.script(&invocation)).await?;
        Ok(parse_position(&text).unwrap_or(position))
    }
}
