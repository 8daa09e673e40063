//! How a message is published through Redis: one script, so one round
//! trip and atomic. It checks the `msg_id`, takes the next sequence, keeps
//! the message in the channel's stream (bounded length, expiring when
//! idle), and publishes it with the sequence and the channel's epoch in
//! front (so a node can tell a channel that started over from a repeat). The node's
//! publishes queue on its pipeline ([`super::publisher`]).

use std::time::Instant;

use tokenim_protocol::{ChannelName, Data, Envelope, EnvelopeBody, UserId};
use tokio::sync::oneshot;

use super::publisher::Request;
use super::{BrokerError, RedisBroker, fresh_epoch};
use crate::broker::PendingPublish;

/// KEYS: seq, epoch, history, msg_id key (or a same-slot placeholder).
/// ARGV: pub/sub channel, envelope, PUBLISH|SPUBLISH, history size, history
/// TTL (ms), a fresh epoch, msg_id window (ms; "0": no msg_id).
pub(super) const PUBLISH: &str = r"
if ARGV[7] ~= '0' then
  local prev = redis.call('GET', KEYS[4])
  if prev then return {tonumber(prev), 1} end
end
local seq = redis.call('INCR', KEYS[1])
redis.call('SET', KEYS[2], ARGV[6], 'NX')
local epoch = redis.call('GET', KEYS[2])
if tonumber(ARGV[4]) > 0 then
  redis.call('XADD', KEYS[3], 'MAXLEN', ARGV[4], seq .. '-1', 'm', cmsgpack.pack(seq) .. ARGV[2])
  redis.call('PEXPIRE', KEYS[3], ARGV[5])
end
redis.call(ARGV[3], ARGV[1], cmsgpack.pack(seq, epoch) .. ARGV[2])
if ARGV[7] ~= '0' then redis.call('SET', KEYS[4], seq, 'PX', ARGV[7]) end
return {seq, 0}
";

impl RedisBroker {
    /// Queues a publish on the node's publish pipeline ([`super::publisher`]):
    /// once this returns, the message's place relative to this node's later
    /// publishes is fixed.
    pub(in crate::broker) async fn queue_publish(
        &self,
        channel: &ChannelName,
        from: Option<UserId>,
        data: Data,
        msg_id: Option<&str>,
    ) -> PendingPublish {
        let shared = &self.shared;
        let envelope = Envelope {
            origin: shared.node_id.clone(),
            body: EnvelopeBody::Message {
                channel: channel.clone(),
                from,
                data,
                time: crate::clock::unix_millis(),
            },
        };
        let bytes = match envelope.encode() {
            Ok(bytes) => bytes,
            Err(e) => return PendingPublish::failed(BrokerError::Unavailable(e.to_string())),
        };
        let keys = &shared.keys;
        let (id_key, window) = match msg_id {
            Some(id) => (
                keys.msg_id(channel, id),
                shared.history.idempotency_window.as_millis().to_string(),
            ),
            None => (keys.msg_id(channel, ""), "0".to_owned()),
        };
        let seq_key = keys.seq(channel);
        let script = redis::cmd("EVALSHA")
            .arg(shared.scripts.publish.get_hash())
            .arg(4)
            .arg(&seq_key)
            .arg(keys.epoch(channel))
            .arg(keys.history(channel))
            .arg(id_key)
            .arg(keys.channel(channel))
            .arg(bytes)
            .arg(if shared.config.cluster {
                "SPUBLISH"
            } else {
                "PUBLISH"
            })
            .arg(shared.history.size)
            .arg(shared.history.ttl.as_millis() as u64)
            .arg(fresh_epoch(&shared.node_id))
            .arg(window)
            .to_owned();
        let (done, outcome) = oneshot::channel();
        let request = Request {
            key: seq_key,
            script,
            queued: Instant::now(),
            done,
        };
        match tokio::time::timeout(shared.config.command_timeout, self.publisher.send(request))
            .await
        {
            Ok(Ok(())) => PendingPublish::queued(outcome),
            _ => {
                shared.metrics.redis_publish_failures.inc();
                PendingPublish::failed(BrokerError::Unavailable(
                    "publish queue full: redis does not keep up".into(),
                ))
            }
        }
    }
}
