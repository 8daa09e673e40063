//! The subscriber task: owns the node's subscriber connection, keeps it
//! subscribed to exactly the channels that have local listeners, hands
//! every message to the hub in its turn ([`continuity`]), probes the
//! connection, and reconnects with backoff (resubscribing and catching up
//! everything) when it fails or goes silent.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use redis::{PushInfo, PushKind, Value};
use tokenim_protocol::{ChannelName, Envelope, EnvelopeBody, Seq};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::continuity::{self, Channels, Turn};
use super::{Shared, history};
use crate::redis::{Commands, Inbound, Probe, Subscriber};

/// First wait before reconnecting; doubles up to `redis.max_backoff`.
const MIN_BACKOFF: Duration = Duration::from_millis(100);

/// A request to the subscriber task.
#[derive(Debug)]
pub(super) struct Reconcile {
    /// Subscribe or unsubscribe so the connection matches the hub.
    pub(super) channel: ChannelName,
    /// Told `true` once the connection matches (after `SUBSCRIBE` returned).
    pub(super) done: Option<oneshot::Sender<bool>>,
}

/// Why a connection was given up.
#[derive(Debug)]
enum Lost {
    /// The node is shutting down.
    Shutdown,
    /// Redis failed, closed, or stopped answering.
    Broken(String),
}

/// Runs until `shutdown`.
pub(super) async fn run(
    shared: Arc<Shared>,
    commands: Commands,
    mut control: mpsc::Receiver<Reconcile>,
    shutdown: CancellationToken,
) {
    let mut backoff = MIN_BACKOFF;
    let mut first = true;
    // Kept across connections: where each channel stood when one was lost.
    let mut channels = Channels::default();
    loop {
        let (tx, mut inbound) = mpsc::channel(shared.config.inbound_queue);
        let pushes = Inbound {
            tx,
            dropped: shared.metrics.redis_inbound_dropped.clone(),
        };
        let opened = tokio::select! {
            () = shutdown.cancelled() => return,
            opened = Subscriber::open(&shared.config, pushes) => opened,
        };
        let lost = match opened {
            Ok(conn) => {
                let lost = serve(
                    Link {
                        shared: &shared,
                        commands: &commands,
                        conn,
                        channels: &mut channels,
                    },
                    &mut inbound,
                    &mut control,
                    &shutdown,
                    first,
                )
                .await;
                first = false;
                backoff = MIN_BACKOFF;
                lost
            }
            Err(e) => Lost::Broken(e.to_string()),
        };
        shared.set_ready(false);
        match lost {
            Lost::Shutdown => return,
            Lost::Broken(why) => {
                tracing::warn!(error = %why, retry_in_ms = backoff.as_millis() as u64, "redis subscriber connection lost");
            }
        }
        shared.metrics.redis_reconnects.inc();
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(jitter(backoff)) => {}
        }
        backoff = (backoff * 2).min(shared.config.max_backoff);
    }
}

/// One subscriber connection and what it listens to.
struct Link<'a> {
    shared: &'a Shared,
    commands: &'a Commands,
    conn: Subscriber,
    channels: &'a mut Channels,
}

/// Serves one connection until it is lost.
async fn serve(
    mut link: Link<'_>,
    inbound: &mut mpsc::Receiver<PushInfo>,
    control: &mut mpsc::Receiver<Reconcile>,
    shutdown: &CancellationToken,
    first: bool,
) -> Lost {
    let shared = link.shared;
    let wanted: HashSet<ChannelName> = shared.hub.channels().into_iter().collect();
    link.channels.retain(|c| wanted.contains(c));
    for channel in wanted {
        if let Err(e) = link.conn.subscribe(&shared.keys.channel(&channel)).await {
            return Lost::Broken(e.to_string());
        }
        if !first {
            shared.metrics.redis_resubscribes.inc();
        }
        link.channels.insert(channel);
    }
    // The command connection may still hold a socket to the Redis that
    // went away: make it reconnect before declaring the node ready.
    if let Err(why) = check_commands(shared, link.commands).await {
        return Lost::Broken(why);
    }
    shared.set_ready(true);
    tracing::info!(channels = link.channels.len(), "redis subscriber connected");
    // Messages published while the subscription was down are in the
    // history: deliver them (or tell the gap) before newer ones.
    if let Err(e) = continuity::catch_up_all(shared, link.commands, link.channels).await {
        return Lost::Broken(e.to_string());
    }
    let mut probe = tokio::time::interval(shared.config.probe_interval);
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return Lost::Shutdown,
            push = inbound.recv() => match push {
                None => return Lost::Broken("push queue closed".into()),
                Some(push) => {
                    if let Err(why) = link.on_push(push).await {
                        return Lost::Broken(why);
                    }
                }
            },
            request = control.recv() => match request {
                None => return Lost::Shutdown,
                Some(request) => {
                    if let Err(e) = link.reconcile(request).await {
                        return Lost::Broken(e);
                    }
                }
            },
            _ = probe.tick() => match link.conn.ping(shared.config.probe_timeout).await {
                Probe::Answered => {}
                Probe::TimedOut => {
                    shared.metrics.redis_probe_timeouts.inc();
                    return Lost::Broken("probe unanswered".into());
                }
                Probe::Failed(why) => return Lost::Broken(format!("probe failed: {why}")),
            }
        }
    }
}

/// A PING through the command connection, retried briefly (a stale
/// connection fails once, then reconnects).
async fn check_commands(shared: &Shared, commands: &Commands) -> Result<(), String> {
    let ping = redis::cmd("PING");
    let mut last = String::new();
    for _ in 0..5 {
        match tokio::time::timeout(shared.config.command_timeout, commands.query::<()>(&ping)).await
        {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = "command connection did not answer".into(),
        }
        tokio::time::sleep(MIN_BACKOFF).await;
    }
    Err(last)
}

impl Link<'_> {
    /// Makes the connection's subscription to one channel match the hub.
    /// A new subscription's position is read once `SUBSCRIBE` is
    /// confirmed, before the requester is told: whatever comes later is
    /// delivered, or caught up.
    async fn reconcile(&mut self, request: Reconcile) -> Result<(), String> {
        let shared = self.shared;
        let channel = request.channel;
        let wanted = shared.hub.subscriber_count(&channel) > 0;
        let result = if wanted && !self.channels.contains(&channel) {
            self.subscribe(&channel).await
        } else if !wanted && self.channels.remove(&channel) {
            // Removed first: an unsubscribe confirmation for a channel still
            // listened to would look like Redis dropping it.
            let key = shared.keys.channel(&channel);
            self.conn.unsubscribe(&key).await.map_err(|e| e.to_string())
        } else {
            Ok(())
        };
        if let Some(done) = request.done {
            let _ = done.send(result.is_ok());
        }
        result
    }

    async fn subscribe(&mut self, channel: &ChannelName) -> Result<(), String> {
        let shared = self.shared;
        let key = shared.keys.channel(channel);
        self.conn.subscribe(&key).await.map_err(|e| e.to_string())?;
        self.channels.insert(channel.clone());
        let (seq, epoch) = history::position(shared, self.commands, channel)
            .await
            .map_err(|e| e.to_string())?;
        self.channels.set(channel, seq, &epoch);
        Ok(())
    }

    /// Handles one push: a message to deliver in its turn, or news about
    /// the connection.
    async fn on_push(&mut self, push: PushInfo) -> Result<(), String> {
        let shared = self.shared;
        match push.kind {
            PushKind::Message | PushKind::SMessage => {
                shared.metrics.redis_messages_received.inc();
                let Some(Value::BulkString(payload)) = push.data.get(1) else {
                    return Ok(());
                };
                match Envelope::decode(payload) {
                    Ok((Some(seq), envelope)) => self.in_turn(seq, envelope).await?,
                    Ok((None, envelope)) => shared.deliver(None, envelope),
                    Err(e) => tracing::warn!(error = %e, "undecodable message from redis"),
                }
                Ok(())
            }
            PushKind::Disconnection => Err("connection closed".into()),
            PushKind::SUnsubscribe | PushKind::Unsubscribe => {
                // Redis dropped a channel we still want (e.g. its slot moved
                // to another shard): subscribe again, on the new owner, and
                // catch up what the move lost.
                let channel = match push.data.first() {
                    Some(Value::BulkString(name)) => shared.keys.parse_channel(name),
                    _ => None,
                };
                if let Some(channel) = channel.filter(|c| self.channels.contains(c)) {
                    shared.metrics.redis_resubscribes.inc();
                    let key = shared.keys.channel(&channel);
                    self.conn.subscribe(&key).await.map_err(|e| e.to_string())?;
                    self.catch_up(&channel, None).await?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Delivers a sequenced message in its turn: a repeat is dropped, and
    /// what was missed before it is caught up first.
    async fn in_turn(&mut self, seq: Seq, envelope: Envelope) -> Result<(), String> {
        let shared = self.shared;
        let channel = match &envelope.body {
            EnvelopeBody::Message { channel, .. } => channel.clone(),
            _ => {
                shared.deliver(Some(seq), envelope);
                return Ok(());
            }
        };
        match self.channels.turn(&channel, seq) {
            Turn::Next => {}
            Turn::Repeat => {
                shared.metrics.redis_duplicates.inc();
                return Ok(());
            }
            Turn::Gap => self.catch_up(&channel, Some(seq - 1)).await?,
        }
        self.channels.advance(&channel, seq);
        shared.deliver(Some(seq), envelope);
        Ok(())
    }

    /// [`continuity::catch_up`] up to `until` (the channel's latest when
    /// `None`), reading the channel's position first.
    async fn catch_up(&mut self, channel: &ChannelName, until: Option<Seq>) -> Result<(), String> {
        let shared = self.shared;
        let (latest, epoch) = history::position(shared, self.commands, channel)
            .await
            .map_err(|e| e.to_string())?;
        let until = until.unwrap_or(latest);
        continuity::catch_up(
            shared,
            self.commands,
            self.channels,
            channel,
            until,
            (latest, &epoch),
        )
        .await
        .map_err(|e| e.to_string())
    }
}

/// `d` ± 25 %, so nodes that lost Redis together do not return in lockstep.
fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    let factor = 0.75 + f64::from(nanos % 1000) / 2000.0;
    d.mul_f64(factor)
}
