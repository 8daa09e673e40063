//! Faults under live traffic: gateway nodes joined through real
//! `redis-server` processes (one, or a three-master cluster), a publisher
//! sending steadily with `msg_id`s, and subscribers that follow only the
//! documented client rules (the `Resuming` client: dedupe by `seq`, resume
//! with `since`, move on a `gap`). Each scenario counts, per subscriber, the
//! acknowledged messages it lost, got twice or out of order, and checks
//! that no publish answered `1901 unavailable` was applied. The figures go
//! to stderr (`--no-capture`); BENCHMARKS.md quotes them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use tokenim_client::{Auth, Client, Error, Resumed, Resuming};
use tokenim_protocol::{ChannelName, Codec, Command, Data, ErrorCode, ReplyBody};
use tokio::task::JoinHandle;

use crate::support::TestGateway;
use crate::support::balancer::Balancer;
use crate::support::redis::{NodeProcess, RedisCluster, RedisServer};

/// Message `n` goes to `channels[n % channels.len()]`.
#[derive(Debug, Clone)]
struct Traffic {
    channels: Arc<Vec<ChannelName>>,
}

impl Traffic {
    fn new(names: impl IntoIterator<Item = String>) -> Self {
        let channels = names
            .into_iter()
            .map(|n| ChannelName::new(&n).unwrap())
            .collect();
        Self {
            channels: Arc::new(channels),
        }
    }

    fn channel_of(&self, n: u64) -> &ChannelName {
        &self.channels[(n % self.channels.len() as u64) as usize]
    }
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
    /// The last message of each channel, which every subscriber waits for.
    last: Vec<u64>,
}

/// Publishes message `n` with `msg_id` `p-<n>`, as PROTOCOL.md says: given
/// up on `1901`, retried with the same id while the outcome is unknown
/// (a `1901` to a retry only says that the retry was not published).
async fn publish_one(client: &Client, traffic: &Traffic, n: u64, out: &mut Published) {
    let give_up = Instant::now() + Duration::from_secs(30);
    let mut unsure = false;
    loop {
        let command = Command::Publish {
            channel: traffic.channel_of(n).clone(),
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

/// A publisher sending about 40 messages a second, until
/// [`Publishing::finish`].
struct Publishing {
    stop: Arc<AtomicBool>,
    task: JoinHandle<(Published, Client, u64)>,
    traffic: Traffic,
}

impl Publishing {
    /// Connects to `node` as the publisher and starts, returning after two
    /// seconds of traffic.
    async fn warmed_up(node: &TestGateway, traffic: &Traffic) -> Self {
        let publisher = node.client("publisher", Codec::MsgPack).await;
        let publishing = Self::start(publisher, traffic);
        tokio::time::sleep(Duration::from_secs(2)).await;
        publishing
    }

    fn start(publisher: Client, traffic: &Traffic) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let stop = Arc::clone(&stop);
            let traffic = traffic.clone();
            async move {
                let mut out = Published::default();
                // Steady, also after a stall: a publisher that bursts the
                // ticks it missed while Redis was frozen sends hundreds of
                // messages in the second the other node is resubscribing,
                // more than the history window (100) holds, and that node
                // rightly tells a gap.
                let mut tick = tokio::time::interval(Duration::from_millis(25));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut n = 0;
                while !stop.load(Ordering::Acquire) {
                    tick.tick().await;
                    n += 1;
                    publish_one(&publisher, &traffic, n, &mut out).await;
                }
                (out, publisher, n)
            }
        });
        Self {
            stop,
            task,
            traffic: traffic.clone(),
        }
    }

    /// Stops, then publishes one last message to every channel; each must
    /// be acknowledged.
    async fn finish(self) -> Published {
        self.stop.store(true, Ordering::Release);
        let (mut published, publisher, n) = self.task.await.unwrap();
        let channels = self.traffic.channels.len() as u64;
        for last in n + 1..=n + channels {
            publish_one(&publisher, &self.traffic, last, &mut published).await;
            assert_eq!(
                published.acked.last(),
                Some(&last),
                "last message acknowledged"
            );
            published.last.push(last);
        }
        published
    }
}

/// What one subscriber handed out.
#[derive(Debug, Default)]
struct Received {
    /// The channels it subscribed to.
    channels: HashSet<ChannelName>,
    /// Every message's `n`, in arrival order.
    numbers: Vec<u64>,
    gaps: Vec<(ChannelName, ErrorCode)>,
    reconnects: u32,
}

/// Subscribers, each connected to `targets[i % targets.len()]` and
/// subscribed to `per_reader` channels of `traffic` (starting at its own).
async fn readers(
    targets: &[&TestGateway],
    count: usize,
    traffic: &Traffic,
    per_reader: usize,
) -> Vec<(Resuming, HashSet<ChannelName>)> {
    let connecting = (0..count).map(|i| {
        let node = targets[i % targets.len()];
        let channels: Vec<ChannelName> = (0..per_reader)
            .map(|k| traffic.channel_of((i + k) as u64).clone())
            .collect();
        async move {
            let auth = Auth::Frame(node.token(&format!("reader-{i}")));
            let mut reader = Resuming::connect(node.options(Codec::Json, auth), 0)
                .await
                .unwrap();
            for channel in &channels {
                reader.subscribe(channel).await.unwrap();
            }
            (reader, channels.into_iter().collect())
        }
    });
    join_all(connecting).await
}

/// Reads every subscriber until each of its channels' last messages
/// arrived (or 30 s pass).
async fn receive_all(
    readers: Vec<(Resuming, HashSet<ChannelName>)>,
    traffic: &Traffic,
    published: &Published,
) -> Vec<Received> {
    let receiving = readers
        .into_iter()
        .map(|(mut reader, channels)| async move {
            let mut waiting: HashSet<u64> = published
                .last
                .iter()
                .copied()
                .filter(|n| channels.contains(traffic.channel_of(*n)))
                .collect();
            let mut got = Received {
                channels,
                ..Received::default()
            };
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while !waiting.is_empty() {
                match tokio::time::timeout_at(deadline, reader.next()).await {
                    Ok(Some(Resumed::Message(m))) => {
                        let n = number(&m.data);
                        assert_eq!(&m.channel, traffic.channel_of(n), "message {n}'s channel");
                        waiting.remove(&n);
                        got.numbers.push(n);
                    }
                    Ok(Some(Resumed::Gap { channel, code })) => got.gaps.push((channel, code)),
                    Ok(Some(Resumed::Reconnected { .. })) => got.reconnects += 1,
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
            got
        });
    join_all(receiving).await
}

/// The gap pushes a subscriber got for the traffic's channels (its own
/// personal channel, which it also listens to, lives in Redis too).
fn told(traffic: &Traffic, got: &Received) -> Vec<(ChannelName, ErrorCode)> {
    got.gaps
        .iter()
        .filter(|(channel, _)| traffic.channels.contains(channel))
        .cloned()
        .collect()
}

/// Lost, duplicated and reordered acknowledged messages of one subscriber
/// (in its channels; reordering within a channel), and refused messages
/// it got.
#[derive(Debug, PartialEq, Eq)]
struct Tally {
    lost: usize,
    duplicated: usize,
    reordered: usize,
    refused_but_applied: usize,
}

fn tally(traffic: &Traffic, published: &Published, got: &Received) -> Tally {
    let mut seen: HashMap<u64, usize> = HashMap::new();
    for n in &got.numbers {
        *seen.entry(*n).or_default() += 1;
    }
    let mut last_in: HashMap<&ChannelName, u64> = HashMap::new();
    let mut reordered = 0;
    for n in &got.numbers {
        let last = last_in.entry(traffic.channel_of(*n)).or_default();
        if *n < *last {
            reordered += 1;
        }
        *last = (*last).max(*n);
    }
    Tally {
        lost: published
            .acked
            .iter()
            .filter(|n| got.channels.contains(traffic.channel_of(**n)))
            .filter(|n| !seen.contains_key(n))
            .count(),
        duplicated: seen.values().filter(|&&c| c > 1).count(),
        reordered,
        refused_but_applied: published
            .refused
            .iter()
            .filter(|n| seen.contains_key(n))
            .count(),
    }
}

/// The acknowledged messages of its channels a subscriber never got, with
/// their channels.
fn lost<'a>(traffic: &'a Traffic, published: &Published, got: &Received) -> Vec<(u64, &'a str)> {
    let seen: HashSet<u64> = got.numbers.iter().copied().collect();
    published
        .acked
        .iter()
        .map(|n| (*n, traffic.channel_of(*n)))
        .filter(|(n, channel)| got.channels.contains(*channel) && !seen.contains(n))
        .map(|(n, channel)| (n, channel.as_str()))
        .collect()
}

const CLEAN: Tally = Tally {
    lost: 0,
    duplicated: 0,
    reordered: 0,
    refused_but_applied: 0,
};

fn assert_clean(traffic: &Traffic, published: &Published, received: &[Received]) {
    for (i, got) in received.iter().enumerate() {
        assert_eq!(
            tally(traffic, published, got),
            CLEAN,
            "subscriber {i}: gaps {:?}, reconnects {}, lost {:?}",
            got.gaps,
            got.reconnects,
            lost(traffic, published, got)
        );
    }
}

/// One line of figures per scenario, from the nodes running in this
/// process.
fn report(
    scenario: &str,
    timing: &str,
    published: &Published,
    received: &[Received],
    nodes: &[&TestGateway],
) {
    let per_node = |metric: &str| -> Vec<f64> { nodes.iter().map(|n| n.metric(metric)).collect() };
    let reconnects: u32 = received.iter().map(|r| r.reconnects).sum();
    eprintln!(
        "{scenario}: {timing}; {} acknowledged, {} refused (1901), {} outcome-unknown answers \
         retried; per node: refilled from history {:?}, sessions sent a gap push {:?}, repeats \
         dropped {:?}, probe timeouts {:?}; {} subscribers, {reconnects} reconnects in all",
        published.acked.len(),
        published.refused.len(),
        published.unknown,
        per_node("tokenim_redis_refilled_total"),
        per_node("tokenim_redis_gaps_told_total"),
        per_node("tokenim_redis_duplicates_total"),
        per_node("tokenim_redis_probe_timeouts_total"),
        received.len(),
    );
}

/// What happens to the single Redis while messages flow.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// `SIGSTOP` for this long, then `SIGCONT`.
    Freeze(Duration),
    /// `SIGKILL`, down this long, then started again empty.
    RestartEmpty(Duration),
}

/// Two nodes, two subscribers on each, a publisher on the second node at
/// about 40 messages a second: two seconds of traffic, the fault, then
/// traffic until both nodes are ready again and one second more.
async fn single_redis(fault: Fault) -> (Traffic, Published, Vec<Received>) {
    let mut redis = RedisServer::start();
    let (a, b) = TestGateway::pair(&redis.url(), false).await;
    let traffic = Traffic::new(["rooms.faults".to_owned()]);
    let readers = readers(&[&a, &b], 4, &traffic, 1).await;
    let publishing = Publishing::warmed_up(&b, &traffic).await;
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
    let published = publishing.finish().await;
    let received = receive_all(readers, &traffic, &published).await;
    let timing = format!(
        "outage {outage:.1?}; nodes ready {ready_after:.1?} after Redis was back, every \
         subscriber complete {:.1?} after",
        back.elapsed()
    );
    report(
        &format!("{fault:?}"),
        &timing,
        &published,
        &received,
        &[&a, &b],
    );
    (traffic, published, received)
}

#[tokio::test]
async fn redis_frozen_ten_seconds_loses_nothing_acknowledged_and_1901_is_never_applied() {
    let (traffic, published, received) = single_redis(Fault::Freeze(Duration::from_secs(10))).await;
    assert_clean(&traffic, &published, &received);
    for (i, got) in received.iter().enumerate() {
        // The history held everything the freeze kept from live delivery.
        assert!(got.gaps.is_empty(), "subscriber {i}: {:?}", got.gaps);
    }
}

#[tokio::test]
async fn redis_restarted_empty_loses_nothing_acknowledged_and_live_clients_learn_the_new_epoch() {
    let (traffic, published, received) =
        single_redis(Fault::RestartEmpty(Duration::from_secs(2))).await;
    assert_clean(&traffic, &published, &received);
    for (i, got) in received.iter().enumerate() {
        assert_eq!(
            told(&traffic, got),
            [(traffic.channels[0].clone(), ErrorCode::EpochChanged)],
            "subscriber {i} is told once, while connected"
        );
        assert_eq!(got.reconnects, 0, "subscriber {i} stayed connected");
    }
}

/// One channel name per master of `cluster`, in the masters' order, so a
/// master's loss touches exactly one of them.
fn one_channel_per_shard(cluster: &RedisCluster) -> Traffic {
    let mut by_master: Vec<Option<String>> = vec![None; cluster.nodes.len()];
    for i in 0.. {
        let name = format!("rooms.shard-{i}");
        let (master, _) = cluster.owner_of(cluster.slot_of(&name));
        by_master[master].get_or_insert(name);
        if by_master.iter().all(Option::is_some) {
            break;
        }
    }
    let names: Vec<String> = by_master.into_iter().map(Option::unwrap).collect();
    Traffic::new(names)
}

#[tokio::test]
async fn a_cluster_master_killed_and_restarted_empty_stops_only_its_own_channels() {
    let mut cluster = RedisCluster::start();
    let (a, b) = TestGateway::pair(&cluster.url(), true).await;
    a.wait_ready(200).await;
    b.wait_ready(200).await;
    let traffic = one_channel_per_shard(&cluster);
    let lost_master = 0;
    let hit = traffic.channels[lost_master].clone();
    let readers = readers(&[&a, &b], 4, &traffic, traffic.channels.len()).await;
    let publishing = Publishing::warmed_up(&b, &traffic).await;
    let killed = Instant::now();
    cluster.nodes[lost_master].kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.nodes[lost_master].restart();
    let back = Instant::now();
    // Each node tells its two subscribers of the channel's new epoch once
    // it has caught up.
    for node in [&a, &b] {
        node.wait_metric_within(
            "tokenim_redis_gaps_told_total",
            2.0,
            Duration::from_secs(20),
        )
        .await;
    }
    let caught_up = back.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let published = publishing.finish().await;
    let received = receive_all(readers, &traffic, &published).await;
    let timing = format!(
        "master down {:.1?}; both nodes caught up {caught_up:.1?} after it was back, every \
         subscriber complete {:.1?} after",
        back - killed,
        back.elapsed()
    );
    report(
        "ClusterMasterRestartEmpty",
        &timing,
        &published,
        &received,
        &[&a, &b],
    );
    assert_clean(&traffic, &published, &received);
    // The healthy shards' publishes all went through.
    let refused_elsewhere: Vec<&u64> = published
        .refused
        .iter()
        .filter(|n| traffic.channel_of(**n) != &hit)
        .collect();
    assert!(refused_elsewhere.is_empty(), "{refused_elsewhere:?}");
    for (i, got) in received.iter().enumerate() {
        assert_eq!(
            told(&traffic, got),
            [(hit.clone(), ErrorCode::EpochChanged)],
            "subscriber {i} is told of the lost shard's channel only"
        );
        assert_eq!(got.reconnects, 0, "subscriber {i} stayed connected");
    }
    assert_eq!(a.metric("tokenim_redis_reconnects_total"), 0.0);
    assert_eq!(b.metric("tokenim_redis_reconnects_total"), 0.0);
}

/// How a node leaves while its clients listen.
#[derive(Debug, Clone, Copy)]
enum Leaving {
    /// SIGKILL: its connections just break.
    Killed,
    /// SIGTERM: it drains, asking each client to reconnect.
    Drained,
}

/// A node (its own process) behind a balancer holds four subscribers;
/// the publisher is on another node; the first node leaves and its
/// subscribers come back through the balancer on the other one.
async fn node_leaves(how: Leaving) -> (Traffic, Published, Vec<Received>) {
    let redis = RedisServer::start();
    let b = TestGateway::with_redis(&redis.url(), false, |_| {}).await;
    b.wait_ready(200).await;
    let mut doomed = NodeProcess::start(&redis.url());
    TestGateway::attach(doomed.addr, &b).wait_ready(200).await;
    // The balancer sends every connection to the process node while it
    // accepts, and to `b` once it does not (a draining node still accepts
    // and answers upgrades 503 until it exits: clients retry).
    let balancer = Balancer::start(vec![doomed.addr, b.addr]).await;
    let entry = TestGateway::attach(balancer.addr, &b);
    let traffic = Traffic::new(["rooms.leaving".to_owned()]);
    let readers = readers(&[&entry], 4, &traffic, 1).await;
    let publishing = Publishing::warmed_up(&b, &traffic).await;
    let left = Instant::now();
    match how {
        Leaving::Killed => doomed.kill(),
        Leaving::Drained => doomed.terminate(),
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let published = publishing.finish().await;
    let received = receive_all(readers, &traffic, &published).await;
    let timing = format!(
        "every subscriber complete {:.1?} after the signal",
        left.elapsed()
    );
    report(
        &format!("Node{how:?}"),
        &timing,
        &published,
        &received,
        &[&b],
    );
    (traffic, published, received)
}

fn assert_resumed_elsewhere(traffic: &Traffic, published: &Published, received: &[Received]) {
    assert_clean(traffic, published, received);
    assert!(published.refused.is_empty(), "{:?}", published.refused);
    for (i, got) in received.iter().enumerate() {
        assert_eq!(got.reconnects, 1, "subscriber {i} resumed once, elsewhere");
        assert!(got.gaps.is_empty(), "subscriber {i}: {:?}", got.gaps);
    }
}

#[tokio::test]
async fn a_node_killed_outright_loses_its_clients_nothing_they_resume_on_another() {
    let (traffic, published, received) = node_leaves(Leaving::Killed).await;
    assert_resumed_elsewhere(&traffic, &published, &received);
}

#[tokio::test]
async fn a_draining_node_hands_its_clients_to_another_without_a_loss() {
    let (traffic, published, received) = node_leaves(Leaving::Drained).await;
    assert_resumed_elsewhere(&traffic, &published, &received);
}

#[tokio::test]
async fn steady_traffic_on_three_nodes_loses_nothing() {
    let redis = RedisServer::start();
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(TestGateway::with_redis(&redis.url(), false, |_| {}).await);
    }
    for node in &nodes {
        node.wait_ready(200).await;
    }
    let targets: Vec<&TestGateway> = nodes.iter().collect();
    let traffic = Traffic::new((0..100).map(|i| format!("rooms.steady-{i}")));
    let readers = readers(&targets, 300, &traffic, 3).await;
    let started = Instant::now();
    let run = Publishing::warmed_up(&nodes[0], &traffic).await;
    tokio::time::sleep(Duration::from_secs(58)).await;
    let published = run.finish().await;
    let received = receive_all(readers, &traffic, &published).await;
    let timing = format!("{:.1?} of traffic over 100 channels", started.elapsed());
    report("Steady", &timing, &published, &received, &targets);
    assert_clean(&traffic, &published, &received);
    assert!(published.refused.is_empty() && published.unknown == 0);
    for (i, got) in received.iter().enumerate() {
        assert!(got.gaps.is_empty(), "subscriber {i}: {:?}", got.gaps);
        assert_eq!(got.reconnects, 0, "subscriber {i}");
    }
}
