//! The publishers' own thread: a single-threaded runtime that dials the
//! publisher connections and runs them on schedule, apart from the
//! thousands of subscriber tasks.
//!
//! On a loaded generator a timer that fires on the shared runtime waits
//! behind every subscriber task that became ready first, so sends go out
//! late (`send_lag`) and the latency measured from the intended send time
//! grows with the generator's own load. A thread of its own is woken by
//! the kernel's scheduler instead, within microseconds of its timer.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokenim_protocol::ChannelName;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::BroadcastParams;
use super::publisher::{self, Plan, Tally};
use super::subscriber::Clock;
use crate::report::Recorder;
use crate::runner::{ConnStats, Setup};
use crate::wire::Conn;

/// What the publishers' thread needs.
#[derive(Debug, Clone)]
pub(super) struct Job {
    pub(super) setup: Arc<Setup>,
    pub(super) params: BroadcastParams,
    pub(super) stats: Arc<ConnStats>,
    pub(super) channel: ChannelName,
    pub(super) clock: Clock,
    pub(super) ack: Arc<Recorder>,
    pub(super) lag: Arc<Recorder>,
    pub(super) interrupt: CancellationToken,
}

/// The running publishers.
#[derive(Debug)]
pub(super) struct Sending {
    /// Publishers connected.
    pub(super) ready: oneshot::Receiver<usize>,
    /// When the first message is due (publishing waits for it).
    pub(super) start: oneshot::Sender<Instant>,
    /// Every publisher's tally, once all are done.
    pub(super) done: oneshot::Receiver<Vec<Tally>>,
}

/// Starts the publishers' thread: it dials, reports ready, publishes and
/// hands back the tallies.
pub(super) fn spawn(job: Job) -> Sending {
    let (ready_tx, ready) = oneshot::channel();
    let (start, start_rx) = oneshot::channel();
    let (done_tx, done) = oneshot::channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let spawned = std::thread::Builder::new()
        .name("publishers".into())
        .spawn(move || {
            let Ok(runtime) = runtime else { return };
            let tallies = runtime.block_on(run(job, ready_tx, start_rx));
            let _ = done_tx.send(tallies);
        });
    // Without the thread both receivers report a closed channel: no
    // publishers.
    drop(spawned);
    Sending { ready, start, done }
}

async fn run(
    job: Job,
    ready: oneshot::Sender<usize>,
    start: oneshot::Receiver<Instant>,
) -> Vec<Tally> {
    let params = &job.params;
    let conns = open_publishers(&job.setup, params, &job.stats).await;
    let _ = ready.send(conns.len());
    let Ok(start) = start.await else {
        return Vec::new();
    };
    let end = start + params.duration;
    let limits = split_limit(params, conns.len());
    let interval = Duration::from_secs_f64(params.publishers as f64 / params.rate);
    let pad = "x".repeat(params.payload_padding);
    let mut running = JoinSet::new();
    for (i, conn) in conns {
        let plan = Plan {
            index: i as u32,
            channel: job.channel.clone(),
            codec: job.setup.codec,
            first: start + Duration::from_secs_f64(i as f64 / params.rate),
            interval,
            end,
            limit: limits[i],
            pad: pad.clone(),
            drain: params.drain,
            clock: job.clock,
            kind: job.setup.kind,
            publishers: params.publishers as u64,
        };
        let (ack, lag, interrupt) = (
            Arc::clone(&job.ack),
            Arc::clone(&job.lag),
            job.interrupt.clone(),
        );
        running.spawn(async move { publisher::run(conn, plan, &ack, &lag, &interrupt).await });
    }
    let mut tallies = Vec::new();
    while let Some(done) = running.join_next().await {
        if let Ok(tally) = done {
            tallies.push(tally);
        }
    }
    tallies
}

/// Opens the publisher connections (indexes after the subscribers'; of a
/// [`crate::worker`], only its own), all at once; failures are counted
/// like any other.
async fn open_publishers(
    setup: &Arc<Setup>,
    params: &BroadcastParams,
    stats: &Arc<ConnStats>,
) -> Vec<(usize, Conn)> {
    let mut dials = JoinSet::new();
    let role = crate::worker::role();
    for i in 0..params.publishers {
        if role.is_some_and(|r| !r.owns(i)) {
            continue;
        }
        let (setup, stats) = (Arc::clone(setup), Arc::clone(stats));
        let index = params.subscribers + i;
        dials.spawn(async move {
            stats.attempted.fetch_add(1, Ordering::Relaxed);
            let began = Instant::now();
            match setup.dial(index).await {
                Ok(conn) => {
                    let us = began.elapsed().as_micros() as u64;
                    stats.connect_us.record(index, us);
                    stats.connected.fetch_add(1, Ordering::Relaxed);
                    Some((i, conn))
                }
                Err(e) => {
                    stats.failed(&e, setup.file_limit);
                    None
                }
            }
        });
    }
    let mut out: Vec<_> = dials.join_all().await.into_iter().flatten().collect();
    out.sort_by_key(|(i, _)| *i);
    out
}

/// Each publisher's share of the `messages` cap.
fn split_limit(params: &BroadcastParams, publishers: usize) -> Vec<u64> {
    let p = params.publishers as u64;
    (0..params.publishers.max(publishers) as u64)
        .map(|i| match params.messages {
            Some(m) => m / p + u64::from(i < m % p),
            None => u64::MAX,
        })
        .collect()
}
