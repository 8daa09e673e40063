//! The subscriber task: owns the node's subscriber connection, keeps it
//! subscribed to exactly the channels that have local listeners, hands
//! every message to the hub, probes the connection, and reconnects with
//! backoff (resubscribing everything) when it fails or goes silent.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use redis::{PushInfo, PushKind, Value};
use tokenim_protocol::{ChannelName, Envelope};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::Shared;
use crate::redis::{Commands, Inbound, Subscriber};

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
                    &shared,
                    &commands,
                    conn,
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

/// Serves one connection until it is lost.
async fn serve(
    shared: &Shared,
    commands: &Commands,
    mut conn: Subscriber,
    inbound: &mut mpsc::Receiver<PushInfo>,
    control: &mut mpsc::Receiver<Reconcile>,
    shutdown: &CancellationToken,
    first: bool,
) -> Lost {
    let mut subscribed = HashSet::new();
    for channel in shared.hub.channels() {
        if let Err(e) = conn.subscribe(&shared.keys.channel(&channel)).await {
            return Lost::Broken(e.to_string());
        }
        if !first {
            shared.metrics.redis_resubscribes.inc();
        }
        subscribed.insert(channel);
    }
    // The command connection may still hold a socket to the Redis that
    // went away: make it reconnect before declaring the node ready.
    if let Err(why) = check_commands(shared, commands).await {
        return Lost::Broken(why);
    }
    shared.set_ready(true);
    tracing::info!(channels = subscribed.len(), "redis subscriber connected");
    let mut probe = tokio::time::interval(shared.config.probe_interval);
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return Lost::Shutdown,
            push = inbound.recv() => match push {
                None => return Lost::Broken("push queue closed".into()),
                Some(push) => {
                    if let Err(why) = on_push(shared, &mut conn, &subscribed, push).await {
                        return Lost::Broken(why);
                    }
                }
            },
            request = control.recv() => match request {
                None => return Lost::Shutdown,
                Some(request) => {
                    if let Err(e) = reconcile(shared, &mut conn, &mut subscribed, request).await {
                        return Lost::Broken(e.to_string());
                    }
                }
            },
            _ = probe.tick() => {
                if !conn.ping(shared.config.probe_timeout).await {
                    return Lost::Broken("probe unanswered".into());
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

/// Makes the connection's subscription to one channel match the hub.
async fn reconcile(
    shared: &Shared,
    conn: &mut Subscriber,
    subscribed: &mut HashSet<ChannelName>,
    request: Reconcile,
) -> redis::RedisResult<()> {
    let channel = request.channel;
    let wanted = shared.hub.subscriber_count(&channel) > 0;
    let result = if wanted && !subscribed.contains(&channel) {
        let result = conn.subscribe(&shared.keys.channel(&channel)).await;
        if result.is_ok() {
            subscribed.insert(channel);
        }
        result
    } else if !wanted && subscribed.remove(&channel) {
        // Removed first: an unsubscribe confirmation for a channel still in
        // the set would look like Redis dropping it.
        conn.unsubscribe(&shared.keys.channel(&channel)).await
    } else {
        Ok(())
    };
    if let Some(done) = request.done {
        let _ = done.send(result.is_ok());
    }
    result
}

/// Handles one push: a message to deliver, or news about the connection.
async fn on_push(
    shared: &Shared,
    conn: &mut Subscriber,
    subscribed: &HashSet<ChannelName>,
    push: PushInfo,
) -> Result<(), String> {
    match push.kind {
        PushKind::Message | PushKind::SMessage => {
            shared.metrics.redis_messages_received.inc();
            let Some(Value::BulkString(payload)) = push.data.get(1) else {
                return Ok(());
            };
            match Envelope::decode(payload) {
                Ok((seq, envelope)) => shared.deliver(seq, envelope),
                Err(e) => tracing::warn!(error = %e, "undecodable message from redis"),
            }
            Ok(())
        }
        PushKind::Disconnection => Err("connection closed".into()),
        PushKind::SUnsubscribe | PushKind::Unsubscribe => {
            // Redis dropped a channel we still want (e.g. its slot moved to
            // another shard): subscribe again, on the new owner.
            let channel = match push.data.first() {
                Some(Value::BulkString(name)) => shared.keys.parse_channel(name),
                _ => None,
            };
            if let Some(channel) = channel.filter(|c| subscribed.contains(c)) {
                shared.metrics.redis_resubscribes.inc();
                conn.subscribe(&shared.keys.channel(&channel))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        _ => Ok(()),
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
