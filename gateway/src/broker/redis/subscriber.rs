//! The subscriber task: owns the node's subscriber connection, keeps it
//! subscribed to exactly the channels that have local listeners, hands
//! every message to the hub in its turn ([`continuity`]), probes the
//! connection, and reconnects with backoff (resubscribing and catching up
//! everything) when it fails or goes silent.
//!
//! On a Redis Cluster each master is probed on its own, and one shard's
//! failure is contained: the connection (which repairs and resubscribes a
//! shard's socket by itself) is kept for the healthy shards, a channel
//! whose subscribe failed is subscribed again, and once every master
//! answers again every channel is caught up. Only when no master answers
//! is the connection given up.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::{PushInfo, PushKind, Value};
use tokenim_protocol::envelope::Stamp;
use tokenim_protocol::{ChannelName, Envelope, EnvelopeBody, Seq};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::continuity::{self, Channels, Turn};
use super::{Shared, history};
use crate::redis::{Commands, Inbound, Probe, ProbeRound, Subscriber};

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
                        shards_down: HashSet::new(),
                        unsubscribed: HashSet::new(),
                        suspect: false,
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
    /// Cluster masters that did not answer the last probe.
    shards_down: HashSet<String>,
    /// Channels listened to whose `SSUBSCRIBE` failed (their shard was
    /// down): subscribed again when every shard answers.
    unsubscribed: HashSet<ChannelName>,
    /// A shard failed since the last catch-up: some channels may have
    /// missed messages.
    suspect: bool,
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
        if let Err(why) = link.listen(&channel).await {
            return Lost::Broken(why);
        }
        if !first {
            shared.metrics.redis_resubscribes.inc();
        }
    }
    // The command connection may still hold a socket to the Redis that
    // went away: make it reconnect before declaring the node ready. (A
    // cluster's command connection repairs each shard's socket itself.)
    if !link.conn.is_cluster()
        && let Err(why) = check_commands(shared, link.commands).await
    {
        return Lost::Broken(why);
    }
    shared.set_ready(true);
    shared.metrics.redis_shards_down.set(0);
    tracing::info!(channels = link.channels.len(), "redis subscriber connected");
    // Messages published while the subscription was down are in the
    // history: deliver them (or tell the gap) before newer ones.
    if let Err(why) = link.catch_up_all().await {
        return Lost::Broken(why);
    }
    let mut probe = tokio::time::interval(shared.config.probe_interval);
    probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut round: Option<BoxFuture<'static, ProbeRound>> = None;
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
            _ = probe.tick(), if round.is_none() => {
                round = Some(link.conn.probe(shared.config.probe_timeout));
            }
            found = async { round.as_mut().expect("a round runs").await }, if round.is_some() => {
                round = None;
                if let Err(why) = link.probed(found).await {
                    return Lost::Broken(why);
                }
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
            self.unsubscribed.remove(&channel);
            let key = shared.keys.channel(&channel);
            let result = self.conn.unsubscribe(&key).await.map_err(|e| e.to_string());
            self.contain(result)
        } else {
            Ok(())
        };
        if let Some(done) = request.done {
            let _ = done.send(result.is_ok() && !self.unsubscribed.contains(&channel));
        }
        result
    }

    /// Listens to `channel` and reads its position once `SUBSCRIBE` is
    /// confirmed.
    async fn subscribe(&mut self, channel: &ChannelName) -> Result<(), String> {
        self.listen(channel).await?;
        if self.unsubscribed.contains(channel) {
            return Ok(());
        }
        match history::position(self.shared, self.commands, channel).await {
            Ok((seq, epoch)) => self.channels.set(channel, seq, &epoch),
            Err(e) => self.contain(Err(e.to_string()))?,
        }
        Ok(())
    }

    /// Adds `channel` to what the connection listens to and subscribes
    /// it (on a cluster, a failed subscribe is retried later).
    async fn listen(&mut self, channel: &ChannelName) -> Result<(), String> {
        self.channels.insert(channel.clone());
        let key = self.shared.keys.channel(channel);
        if let Err(e) = self.conn.subscribe(&key).await {
            self.unsubscribed.insert(channel.clone());
            return self.contain(Err(e.to_string()));
        }
        self.unsubscribed.remove(channel);
        Ok(())
    }

    /// A failure of one channel's shard: on a single Redis it is the
    /// connection's; on a cluster it is kept to the shard, and everything
    /// is caught up once every shard answers again.
    fn contain(&mut self, result: Result<(), String>) -> Result<(), String> {
        match result {
            Err(why) if self.conn.is_cluster() => {
                tracing::warn!(error = %why, "redis shard call failed; caught up when every shard answers");
                self.suspect = true;
                Ok(())
            }
            other => other,
        }
    }

    /// [`continuity::catch_up_all`], contained to the shard on a cluster.
    async fn catch_up_all(&mut self) -> Result<(), String> {
        let result = continuity::catch_up_all(self.shared, self.commands, self.channels)
            .await
            .map_err(|e| e.to_string());
        self.contain(result)
    }

    /// Takes in a probe of every shard. A single Redis that does not answer loses the
    /// connection; on a cluster only when no master answers. Once every
    /// master answers after one failed, the channels whose subscribe
    /// failed are subscribed again and every channel is caught up.
    async fn probed(&mut self, mut round: ProbeRound) -> Result<(), String> {
        let shared = self.shared;
        self.conn.probed(&mut round);
        let probes = round.shards;
        let mut down = HashSet::new();
        let mut last = None;
        for (shard, probe) in &probes {
            let why = match probe {
                Probe::Answered => continue,
                Probe::TimedOut => {
                    shared.metrics.redis_probe_timeouts.inc();
                    "probe unanswered".to_owned()
                }
                Probe::Failed(why) => format!("probe failed: {why}"),
            };
            if !self.shards_down.contains(shard) {
                tracing::warn!(shard = %shard, error = %why, "redis shard not answering");
            }
            down.insert(shard.clone());
            last = Some(why);
        }
        if down.len() == probes.len() || (!self.conn.is_cluster() && !down.is_empty()) {
            return Err(last.unwrap_or_else(|| "no redis shard known".to_owned()));
        }
        for shard in self.shards_down.difference(&down) {
            tracing::info!(shard = %shard, "redis shard answers again");
        }
        self.suspect |= !down.is_empty();
        self.shards_down = down;
        shared
            .metrics
            .redis_shards_down
            .set(self.shards_down.len() as i64);
        if self.suspect && self.shards_down.is_empty() {
            self.recover().await?;
        }
        Ok(())
    }

    /// Every shard answers again: subscribes every channel again (the
    /// cluster connection's own resubscription after a shard's repair
    /// cannot be relied on; `SSUBSCRIBE` of a channel already subscribed
    /// changes nothing) and catches every channel up.
    async fn recover(&mut self) -> Result<(), String> {
        self.suspect = false;
        self.unsubscribed.clear();
        for channel in self.channels.names() {
            if self.shared.hub.subscriber_count(&channel) == 0 {
                self.channels.remove(&channel);
                continue;
            }
            self.shared.metrics.redis_resubscribes.inc();
            self.listen(&channel).await?;
        }
        self.catch_up_all().await
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
                match Envelope::decode_stamped(payload) {
                    Ok((
                        Stamp {
                            seq: Some(seq),
                            epoch,
                        },
                        envelope,
                    )) => {
                        self.in_turn(seq, epoch.as_deref(), envelope).await?;
                    }
                    Ok((Stamp { seq: None, .. }, envelope)) => shared.deliver(None, envelope),
                    Err(e) => tracing::warn!(error = %e, "undecodable message from redis"),
                }
                Ok(())
            }
            // A cluster repairs the shard's socket and resubscribes it by
            // itself; what the shard missed is caught up once it answers.
            PushKind::Disconnection if self.conn.is_cluster() => {
                self.suspect = true;
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
                    self.listen(&channel).await?;
                    let result = self.catch_up(&channel, None).await;
                    self.contain(result)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Delivers a sequenced message in its turn: a repeat is dropped, and
    /// what was missed before it (in its epoch, or a new epoch's start) is
    /// caught up first.
    async fn in_turn(
        &mut self,
        seq: Seq,
        epoch: Option<&str>,
        envelope: Envelope,
    ) -> Result<(), String> {
        let shared = self.shared;
        let channel = match &envelope.body {
            EnvelopeBody::Message { channel, .. } => channel.clone(),
            _ => {
                shared.deliver(Some(seq), envelope);
                return Ok(());
            }
        };
        match self.channels.turn(&channel, seq, epoch) {
            Turn::Next => {}
            Turn::Repeat => {
                shared.metrics.redis_duplicates.inc();
                return Ok(());
            }
            Turn::Gap => {
                let result = self.catch_up(&channel, Some(seq.saturating_sub(1))).await;
                if result.is_err() {
                    // Not delivered: the channel stays where it was, and
                    // the catch-up once every shard answers brings this
                    // message too, in its turn.
                    return self.contain(result);
                }
                if self.channels.turn(&channel, seq, epoch) != Turn::Next {
                    // From an epoch the channel has already left.
                    shared.metrics.redis_duplicates.inc();
                    return Ok(());
                }
            }
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
