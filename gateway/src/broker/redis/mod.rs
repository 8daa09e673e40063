//! [`RedisBroker`]: fan-out between gateway nodes through Redis pub/sub.
//!
//! * Publishing is one script: it increments the channel's sequence
//!   counter and publishes the envelope with that sequence in front,
//!   atomically, so every node sees one order per channel. The node's
//!   publishes go through one queue and reach Redis as pipelines, one
//!   round trip per batch ([`publish`], [`publisher`]). Nobody
//!   delivers at publish time: every node, the publisher's included,
//!   delivers what comes back from its subscription, so local and remote
//!   subscribers see the same order and nothing twice.
//! * Each node subscribes to a channel once, however many local listeners
//!   it has, and unsubscribes when the last leaves ([`subscriber`]).
//! * On a Redis Cluster, `SPUBLISH`/`SSUBSCRIBE` (sharded pub/sub) spread
//!   channels over the shards; every name of a channel shares a hash tag
//!   ([`crate::redis::keys`]).
//! * Presence lives in a sorted set per channel, refreshed by a heartbeat,
//!   so a dead node's users expire ([`presence`]).
//!
//! * No live subscriber misses a message silently: the node tracks each
//!   channel's last delivered `seq` and, after a jump or a reconnect,
//!   delivers what it missed from the history or sends a `gap` push
//!   ([`continuity`]).
//!
//! While Redis is unreachable the node keeps its clients connected, reports
//! not ready, and publishers get `unavailable` (`outcome_unknown` for a
//! publish Redis got but did not answer); it reconnects with backoff,
//! resubscribes every channel that still has local listeners, and catches
//! each up.

mod continuity;
mod history;
mod presence;
mod publish;
mod publisher;
mod subscriber;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokenim_protocol::envelope::encode_seq;
use tokenim_protocol::{
    ChannelName, DisconnectCode, Envelope, EnvelopeBody, Publication, Push, Seq, SessionId, UserId,
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use self::subscriber::Reconcile;
use super::BrokerError;
use crate::config::{HistoryConfig, RedisConfig};
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::redis::{CallError, Commands, Keys};

pub use self::presence::PresenceMember;

/// Requests waiting for the subscriber task.
const CONTROL_QUEUE: usize = 4_096;

/// What the broker's tasks share.
#[derive(Debug)]
pub(super) struct Shared {
    config: RedisConfig,
    history: HistoryConfig,
    scripts: Scripts,
    keys: Keys,
    hub: Arc<Hub>,
    metrics: Metrics,
    node_id: String,
    ready: AtomicBool,
}

impl Shared {
    /// Bounds a Redis call by `redis.command_timeout`.
    async fn bounded<T>(
        &self,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, BrokerError> {
        crate::redis::bounded(self.config.command_timeout, call)
            .await
            .map_err(|e| match e {
                CallError::Redis(e) => BrokerError::from(e),
                CallError::TimedOut(_) => BrokerError::Unavailable(e.to_string()),
            })
    }

    fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
        self.metrics.redis_ready.set(i64::from(ready));
    }

    /// Delivers what arrived from Redis to local sessions (messages as
    /// they come: the subscriber task checks their turn first).
    fn deliver(&self, seq: Option<Seq>, envelope: Envelope) {
        let own = envelope.origin == self.node_id;
        match envelope.body {
            EnvelopeBody::Message {
                channel,
                from,
                data,
                time,
            } => {
                let Some(seq) = seq else {
                    return tracing::warn!(channel = %channel, "message from redis without a sequence");
                };
                let push = Push::Message(Publication {
                    channel: channel.clone(),
                    seq,
                    from,
                    data,
                    time,
                });
                self.hub.deliver(&channel, &push, None);
            }
            EnvelopeBody::Event {
                channel,
                push,
                except,
            } => {
                self.hub
                    .deliver_event(&channel, &push, except.filter(|_| own));
            }
            EnvelopeBody::DisconnectUser { user, code } => {
                let code = DisconnectCode::from_code(code).unwrap_or(DisconnectCode::Internal);
                self.hub.close_user(&user, code);
            }
        }
    }
}

/// The loaded scripts (EVALSHA, loaded on first use).
#[derive(Debug)]
pub(super) struct Scripts {
    pub(super) publish: redis::Script,
    position: redis::Script,
    ack: redis::Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Self {
            publish: redis::Script::new(publish::PUBLISH),
            position: redis::Script::new(history::POSITION),
            ack: redis::Script::new(history::ACK),
        }
    }
}

/// A new epoch for a channel Redis holds nothing of.
pub(super) fn fresh_epoch(node: &str) -> String {
    format!("{node}-{:x}", crate::clock::unix_millis())
}

/// The Redis broker of one node.
#[derive(Debug)]
pub struct RedisBroker {
    shared: Arc<Shared>,
    commands: Commands,
    control: mpsc::Sender<Reconcile>,
    publisher: mpsc::Sender<publisher::Request>,
}

impl RedisBroker {
    /// Connects (a single Redis lazily: the node starts not ready while
    /// Redis is down) and starts the subscriber and presence tasks, which
    /// stop on `shutdown`.
    pub async fn start(
        config: RedisConfig,
        history: HistoryConfig,
        node_id: String,
        hub: Arc<Hub>,
        metrics: Metrics,
        shutdown: CancellationToken,
    ) -> Result<Self, BrokerError> {
        let commands = Commands::open(&config).await.map_err(BrokerError::from)?;
        let shared = Arc::new(Shared {
            keys: Keys::new(&config.prefix),
            config,
            history,
            scripts: Scripts::new(),
            hub,
            metrics,
            node_id,
            ready: AtomicBool::new(false),
        });
        shared.metrics.redis_ready.set(0);
        let (control, requests) = mpsc::channel(CONTROL_QUEUE);
        tokio::spawn(subscriber::run(
            Arc::clone(&shared),
            commands.clone(),
            requests,
            shutdown.clone(),
        ));
        tokio::spawn(presence::heartbeat(
            Arc::clone(&shared),
            commands.clone(),
            shutdown,
        ));
        let (publisher, publishes) = mpsc::channel(shared.config.publish_queue);
        tokio::spawn(publisher::run(
            Arc::clone(&shared),
            commands.clone(),
            publish::PUBLISH,
            publishes,
        ));
        Ok(Self {
            shared,
            commands,
            control,
            publisher,
        })
    }

    /// Whether the subscriber connection is up and answering probes.
    pub fn is_ready(&self) -> bool {
        self.shared.ready.load(Ordering::Acquire)
    }

    /// Bounds a Redis call by `redis.command_timeout`.
    async fn bounded<T>(
        &self,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, BrokerError> {
        self.shared.bounded(call).await
    }

    /// Publishes an envelope without a sequence (events, disconnects).
    async fn publish_unsequenced(
        &self,
        channel: &ChannelName,
        body: EnvelopeBody,
    ) -> Result<(), BrokerError> {
        let envelope = Envelope {
            origin: self.shared.node_id.clone(),
            body,
        };
        let mut bytes = encode_seq(None);
        bytes.extend(
            envelope
                .encode()
                .map_err(|e| BrokerError::Unavailable(e.to_string()))?,
        );
        let publish = if self.shared.config.cluster {
            "SPUBLISH"
        } else {
            "PUBLISH"
        };
        let cmd = redis::cmd(publish)
            .arg(self.shared.keys.channel(channel))
            .arg(bytes)
            .to_owned();
        let result = self.bounded(self.commands.query::<i64>(&cmd)).await;
        if result.is_err() {
            self.shared.metrics.redis_publish_failures.inc();
        }
        result.map(drop)
    }

    pub(super) async fn publish_event(
        &self,
        channel: &ChannelName,
        push: &Push,
        except: Option<SessionId>,
    ) -> Result<(), BrokerError> {
        let body = EnvelopeBody::Event {
            channel: channel.clone(),
            push: push.clone(),
            except,
        };
        self.publish_unsequenced(channel, body).await
    }

    /// Closes every connection of `user` on every node.
    pub(super) async fn disconnect_user(
        &self,
        user: &UserId,
        code: DisconnectCode,
    ) -> Result<(), BrokerError> {
        let body = EnvelopeBody::DisconnectUser {
            user: user.clone(),
            code: code.code(),
        };
        self.publish_unsequenced(&user.personal_channel(), body)
            .await
    }

    /// Brings the subscriber connection in line with the hub for
    /// `channel`, waiting (up to `redis.command_timeout`) for `SUBSCRIBE`
    /// to be confirmed. While Redis is down it returns at once: the
    /// channel is subscribed on reconnection.
    pub(super) async fn reconcile(&self, channel: &ChannelName, wait: bool) {
        let (done, confirmed) = oneshot::channel();
        let request = Reconcile {
            channel: channel.clone(),
            done: wait.then_some(done),
        };
        if self.control.try_send(request).is_err() {
            tracing::warn!(channel = %channel, "subscriber task busy or stopped; the channel is reconciled on reconnection");
            return;
        }
        if wait && self.is_ready() {
            let _ = tokio::time::timeout(self.shared.config.command_timeout, confirmed).await;
        }
    }

    pub(super) async fn joined(&self, member: &PresenceMember) -> Result<(), BrokerError> {
        presence::add(&self.shared, &self.commands, member).await
    }

    pub(super) async fn left(&self, member: &PresenceMember) -> Result<(), BrokerError> {
        presence::remove(&self.shared, &self.commands, member).await
    }

    pub(super) async fn presence(&self, channel: &ChannelName) -> Result<Vec<UserId>, BrokerError> {
        presence::list(&self.shared, &self.commands, channel).await
    }
}

impl From<redis::RedisError> for BrokerError {
    fn from(e: redis::RedisError) -> Self {
        BrokerError::Unavailable(e.to_string())
    }
}
