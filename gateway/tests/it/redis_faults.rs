//! Redis faults under live traffic: two gateway nodes joined through a real
//! `redis-server`, a publisher sending steadily with `msg_id`s, and
//! subscribers on both nodes that follow only the documented client rules
//! (the `Resuming` client: dedupe by `seq`, resume with `since`, move on a
//! `gap`). Each scenario counts, per subscriber, the acknowledged messages
//! it lost, got twice or out of order, and checks that no publish answered
//! `1901 unavailable` was applied. The figures go to stderr
//! (`--no-capture`); BENCHMARKS.md quotes them.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use tokenim_client::{Auth, Client, Error, Resumed, Resuming};
use tokenim_protocol::{ChannelName, Codec, Command, Data, ErrorCode, ReplyBody};

use crate::support::TestGateway;
use crate::support::redis::RedisServer;

fn room() -> ChannelName {
    ChannelName::new("rooms.faults").unwrap()
}

/// The `n` a message carries.
fn number(data: &Data) -> u64 {
    let value: serde_json::Value = serde_json::from_str(data.as_json()).unwrap();
    value["n"].as_u64().expect("a numbered message")
}

/// What the publisher was told.
#[derive(Debug, Default)]
struct Published {
    /// Acknowledged (a `seq`, new or duplicate), in publishing order.
    acked: Vec<u64>,
    /// Answered `1901 unavailable`: must never be applied.
    refused: Vec<u64>,
    /// Answers of `1902 outcome_unknown` (each retried with its `msg_id`).
    unknown: u32,
}

/// Publishes message `n` with `msg_id` `p-<n>`, as PROTOCOL.md says: given
/// up on `1901`, retried with the same id while the outcome is unknown
/// (a `1901` to a retry only says that the retry was not published).
async fn publish_one(client: &Client, n: u64, out: &mut Published) {
    let give_up = Instant::now() + Duration::from_secs(30);
    let mut unsure = false;
    loop {
        let command = Command::Publish {
            channel: room(),
            data: Data::from_value(&serde_json::json!({ "n": n })).unwrap(),
            msg_id: Some(format!("p-{n}")),
        };
        match client.request(command).await {
            Ok(ReplyBody::Publish { .. }) => return out.acked.push(n),
            Err(Error::Server(e)) if e.code == ErrorCode::Unavailable && !unsure => {
                return out.refused.push(n);
            }
            Err(Error::Server(e)) if e.code == ErrorCode::Unavailable => {}
            Err(Error::Server(e)) if e.code == ErrorCode::OutcomeUnknown => {
                out.unknown += 1;
                unsure = true;
            }
            other => panic!("publish {n}: {other:?}"),
        }
        assert!(Instant::now() < give_up, "publish {n} never settled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What one subscriber handed out.
#[derive(Debug, Default)]
struct Received {
    numbers: Vec<u64>,
    gaps: Vec<ErrorCode>,
    reconnects: u32,
}

/// Reads `reader` until the message `last` arrives (or 30 s pass).
async fn receive_until(mut reader: Resuming, last: u64) -> Received {
    let mut got = Received::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while got.numbers.last() != Some(&last) {
        match tokio::time::timeout_at(deadline, reader.next()).await {
            Ok(Some(Resumed::Message(m))) if m.channel == room() => {
                got.numbers.push(number(&m.data));
            }
            Ok(Some(Resumed::Gap { channel, code })) if channel == room() => got.gaps.push(code),
            Ok(Some(Resumed::Reconnected { .. })) => got.reconnects += 1,
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    got
}

/// Lost, duplicated and reordered acknowledged messages of one subscriber,
/// counted from `from` on (what was acknowledged before it subscribed is
/// not its business).
#[derive(Debug, PartialEq, Eq)]
struct Tally {
    lost: usize,
    duplicated: usize,
    reordered: usize,
    refused_but_applied: usize,
}

fn tally(published: &Published, got: &Received) -> Tally {
    let mut seen: HashMap<u64, usize> = HashMap::new();
    for n in &got.numbers {
        *seen.entry(*n).or_default() += 1;
    }
    Tally {
        lost: published
            .acked
            .iter()
            .filter(|n| !seen.contains_key(n))
            .count(),
        duplicated: seen.values().filter(|&&c| c > 1).count(),
        reordered: got.numbers.windows(2).filter(|w| w[1] < w[0]).count(),
        refused_but_applied: published
            .refused
            .iter()
            .filter(|n| seen.contains_key(n))
            .count(),
    }
}

const CLEAN: Tally = Tally {
    lost: 0,
    duplicated: 0,
    reordered: 0,
    refused_but_applied: 0,
};

/// What happens to Redis while messages flow.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// `SIGSTOP` for this long, then `SIGCONT`.
    Freeze(Duration),
    /// `SIGKILL`, down this long, then started again empty.
    RestartEmpty(Duration),
}

/// Two nodes, two subscribers on each, a publisher on the second node at
/// about 40 messages a second: two seconds of traffic, the fault, then
/// traffic until both nodes are ready again, and a last message every
/// subscriber must end with.
async fn run_scenario(fault: Fault) -> (Published, Vec<Received>) {
    let mut redis = RedisServer::start();
    let (a, b) = TestGateway::pair(&redis.url(), false).await;
    let mut readers = Vec::new();
    for (i, node) in [&a, &a, &b, &b].into_iter().enumerate() {
        let auth = Auth::Frame(node.token(&format!("reader-{i}")));
        let mut reader = Resuming::connect(node.options(Codec::Json, auth), 0)
            .await
            .unwrap();
        reader.subscribe(&room()).await.unwrap();
        readers.push(reader);
    }
    let publisher = b.client("publisher", Codec::MsgPack).await;
    let stop = Arc::new(AtomicBool::new(false));
    let publishing = tokio::spawn({
        let stop = Arc::clone(&stop);
        async move {
            let mut out = Published::default();
            let mut tick = tokio::time::interval(Duration::from_millis(25));
            let mut n = 0;
            while !stop.load(Ordering::Acquire) {
                tick.tick().await;
                n += 1;
                publish_one(&publisher, n, &mut out).await;
            }
            (out, publisher, n)
        }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    match fault {
        Fault::Freeze(length) => {
            redis.signal("STOP");
            tokio::time::sleep(length).await;
            redis.signal("CONT");
        }
        Fault::RestartEmpty(down) => {
            redis.kill();
            tokio::time::sleep(down).await;
            redis.restart();
        }
    }
    let outage = started.elapsed();
    let back = Instant::now();
    a.wait_ready(200).await;
    b.wait_ready(200).await;
    let ready_after = back.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Release);
    let (mut published, publisher, n) = publishing.await.unwrap();
    let last = n + 1;
    publish_one(&publisher, last, &mut published).await;
    assert_eq!(
        published.acked.last(),
        Some(&last),
        "the last message is acknowledged"
    );
    let received: Vec<Received> =
        join_all(readers.into_iter().map(|r| receive_until(r, last))).await;
    let complete_after = back.elapsed();
    eprintln!(
        "{fault:?}: outage {outage:.1?}; nodes ready {ready_after:.1?} after Redis was back, \
         every subscriber complete {complete_after:.1?} after; {} acknowledged, {} refused (1901), \
         {} outcome-unknown answers retried; messages refilled from history per node: {} and {}; \
         sessions sent a gap push: {} and {}; repeats dropped: {} and {}; reconnects per \
         subscriber: {:?}",
        published.acked.len(),
        published.refused.len(),
        published.unknown,
        a.metric("tokenim_redis_refilled_total"),
        b.metric("tokenim_redis_refilled_total"),
        a.metric("tokenim_redis_gaps_told_total"),
        b.metric("tokenim_redis_gaps_told_total"),
        a.metric("tokenim_redis_duplicates_total"),
        b.metric("tokenim_redis_duplicates_total"),
        received.iter().map(|r| r.reconnects).collect::<Vec<_>>(),
    );
    (published, received)
}

#[tokio::test]
async fn redis_frozen_ten_seconds_loses_nothing_acknowledged_and_1901_is_never_applied() {
    let (published, received) = run_scenario(Fault::Freeze(Duration::from_secs(10))).await;
    for (i, got) in received.iter().enumerate() {
        assert_eq!(tally(&published, got), CLEAN, "subscriber {i}: {got:?}");
        // The history held everything the freeze kept from live delivery.
        assert!(got.gaps.is_empty(), "subscriber {i}: {:?}", got.gaps);
    }
}

#[tokio::test]
async fn redis_restarted_empty_loses_nothing_acknowledged_and_live_clients_learn_the_new_epoch() {
    let (published, received) = run_scenario(Fault::RestartEmpty(Duration::from_secs(2))).await;
    for (i, got) in received.iter().enumerate() {
        assert_eq!(tally(&published, got), CLEAN, "subscriber {i}: {got:?}");
        assert_eq!(
            got.gaps,
            [ErrorCode::EpochChanged],
            "subscriber {i} is told once, while connected"
        );
        assert_eq!(got.reconnects, 0, "subscriber {i} stayed connected");
    }
}
