//! The node's publish pipeline. Every sequenced publish of the node is
//! queued, in order, to one task; whatever has gathered while the previous
//! round trip was out goes to Redis as one pipeline (at most
//! `redis.publish_batch` scripts). A busy publisher, say one connection
//! sending a thousand messages a second, then costs one round trip per
//! batch instead of one per message, and the session that publishes does
//! not wait for Redis before reading its next command.
//!
//! Order: a single Redis runs a pipeline's scripts in the pipeline's order,
//! so messages keep the order they were queued in. On a Redis Cluster a
//! batch is split by channel (every key of a channel shares one slot) and
//! the channels' pipelines run at once, each in order.
//!
//! Truth: a publish answered `unavailable` was not sent (the node knew
//! Redis was down, the queue was full, or it waited too long in it); one
//! sent whose answer did not come is `outcome_unknown`, never
//! `unavailable`.
//!
//! Bounds: the queue holds `redis.publish_queue` requests (a publisher
//! waits up to `redis.command_timeout` for room, then gets `unavailable`),
//! and a request that waited longer than `redis.command_timeout` in the
//! queue fails without being sent, so no publish is answered later than
//! about twice that timeout even when Redis hangs.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use futures_util::future::join_all;
use indexmap::IndexMap;
use redis::{ErrorKind, RedisResult, ServerErrorKind};
use tokenim_protocol::Seq;
use tokio::sync::{mpsc, oneshot};

use super::{Commands, Shared};
use crate::broker::{BrokerError, Published};
use crate::redis::CallError;

/// One publish waiting for its round trip.
#[derive(Debug)]
pub(super) struct Request {
    /// The channel's sequence key: a cluster batch is split by it.
    pub(super) key: String,
    /// The publish script's `EVALSHA`.
    pub(super) script: redis::Cmd,
    /// When it was queued (publish latency counts from here).
    pub(super) queued: Instant,
    /// Where the outcome goes.
    pub(super) done: oneshot::Sender<Result<Published, BrokerError>>,
}

/// What one script call answered: the sequence, and 1 for a duplicate.
type Outcome = RedisResult<(Seq, u8)>;

/// Sends queued publishes until every sender is gone.
pub(super) async fn run(
    shared: Arc<Shared>,
    commands: Commands,
    source: &'static str,
    mut requests: mpsc::Receiver<Request>,
) {
    let max = shared.config.publish_batch;
    let mut batch = Vec::with_capacity(max);
    while requests.recv_many(&mut batch, max).await > 0 {
        if !shared.config.cluster && !shared.ready.load(Ordering::Acquire) {
            // The subscriber has seen the one Redis go (or not come back
            // yet): refuse before sending, so the answer is certainly true.
            // (On a cluster one shard's failure must not stop the others'
            // publishes: each is tried.)
            for request in batch.drain(..) {
                let down = BrokerError::Unavailable("redis is not reachable".into());
                answer(&shared, request, Err(down));
            }
            continue;
        }
        let (fresh, stale): (Vec<_>, Vec<_>) = batch
            .drain(..)
            .partition(|r| r.queued.elapsed() < shared.config.command_timeout);
        for request in stale {
            let late = BrokerError::Unavailable("publish queue: redis did not keep up".into());
            answer(&shared, request, Err(late));
        }
        if fresh.is_empty() {
            continue;
        }
        shared
            .metrics
            .redis_publish_batch
            .observe(fresh.len() as f64);
        if shared.config.cluster {
            let mut groups: IndexMap<String, Vec<Request>> = IndexMap::new();
            for request in fresh {
                groups.entry(request.key.clone()).or_default().push(request);
            }
            join_all(
                groups
                    .into_values()
                    .map(|group| send(&shared, &commands, source, group)),
            )
            .await;
        } else {
            send(&shared, &commands, source, fresh).await;
        }
    }
}

/// Sends one group as a pipeline and answers each request. Scripts Redis
/// does not hold yet (a restarted Redis) are loaded and those calls sent
/// again, in order.
async fn send(shared: &Shared, commands: &Commands, source: &str, group: Vec<Request>) {
    let mut outcomes = pipeline(shared, commands, &group).await;
    let missing: Vec<usize> = (0..group.len())
        .filter(|&i| is_noscript(&outcomes[i]))
        .collect();
    if !missing.is_empty() {
        let load = redis::cmd("SCRIPT").arg("LOAD").arg(source).to_owned();
        let again = match shared.bounded(commands.query::<String>(&load)).await {
            Ok(_) => {
                let retry: Vec<&Request> = missing.iter().map(|&i| &group[i]).collect();
                pipeline(shared, commands, &retry).await
            }
            Err(e) => vec![Err(e); missing.len()],
        };
        for (i, outcome) in missing.into_iter().zip(again) {
            outcomes[i] = outcome;
        }
    }
    for (request, outcome) in group.into_iter().zip(outcomes) {
        let result = outcome
            .and_then(|script| script.map_err(BrokerError::from))
            .map(|(seq, dup)| Published {
                seq,
                duplicate: dup == 1,
            });
        answer(shared, request, result);
    }
}

/// Runs the scripts of `requests` as one pipeline; one outcome per request,
/// in order (a failed round trip fails them all).
async fn pipeline<R: std::borrow::Borrow<Request>>(
    shared: &Shared,
    commands: &Commands,
    requests: &[R],
) -> Vec<Result<Outcome, BrokerError>> {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for request in requests {
        pipe.add_command(request.borrow().script.clone());
    }
    let call = commands.pipeline::<Vec<Outcome>>(&pipe);
    match crate::redis::bounded(shared.config.command_timeout, call).await {
        Ok(outcomes) if outcomes.len() == requests.len() => outcomes.into_iter().map(Ok).collect(),
        Ok(_) => {
            let short = BrokerError::Unconfirmed("redis answered a pipeline short".into());
            vec![Err(short); requests.len()]
        }
        Err(e) => vec![Err(sent_and_failed(e)); requests.len()],
    }
}

/// What a failed pipeline means for its publishes. Only a failure that
/// shows Redis never got the scripts (the connection was refused, or
/// Redis answered with an error) is "not published"; a timeout or a
/// connection that broke after the write leaves the outcome unknown, since
/// Redis may have run them (a frozen Redis runs what it holds when it
/// resumes).
fn sent_and_failed(e: CallError) -> BrokerError {
    match e {
        CallError::Redis(e) if e.is_connection_refusal() || !e.is_io_error() => {
            BrokerError::from(e)
        }
        e => BrokerError::Unconfirmed(e.to_string()),
    }
}

fn is_noscript(outcome: &Result<Outcome, BrokerError>) -> bool {
    matches!(outcome, Ok(Err(e)) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript))
}

/// Counts the outcome and hands it to the publisher.
fn answer(shared: &Shared, request: Request, result: Result<Published, BrokerError>) {
    match &result {
        Ok(Published {
            duplicate: false, ..
        }) => {
            shared
                .metrics
                .redis_publish_seconds
                .observe(request.queued.elapsed().as_secs_f64());
            shared.metrics.publications.inc();
        }
        Ok(_) => {}
        Err(_) => shared.metrics.redis_publish_failures.inc(),
    }
    // The publisher may have gone (its connection closed): nothing to tell.
    let _ = request.done.send(result);
}
