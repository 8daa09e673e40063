//! Several gateway nodes joined through a real `redis-server`: cross-node
//! fan-out in both codecs, direct messages, presence, reference-counted
//! subscriptions, and Redis outages (killed and restarted, frozen).

use std::time::Duration;

use tokenim_client::{Error, Event};
use tokenim_protocol::reply::Outcome;
use tokenim_protocol::{ChannelName, Codec, Data, ErrorCode, Push, ReplyBody, UserId};
use tokio_tungstenite::tungstenite::Message;

use crate::support::redis::{NodeProcess, RedisServer, numsub};
use crate::support::{TestGateway, WAIT, assert_quiet, next_push};

fn room() -> ChannelName {
    ChannelName::new("rooms.lobby").unwrap()
}

fn n(i: u64) -> Data {
    Data::from_value(&serde_json::json!({ "n": i })).unwrap()
}

/// The next message push, skipping joins and leaves.
async fn next_message(client: &mut tokenim_client::Client) -> tokenim_protocol::Publication {
    loop {
        match next_push(client).await {
            Push::Message(m) => return m,
            Push::Join(_) | Push::Leave(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

async fn two_nodes(redis: &RedisServer) -> (TestGateway, TestGateway) {
    TestGateway::pair(&redis.url(), false).await
}

#[tokio::test]
async fn messages_published_on_one_node_reach_subscribers_on_every_node_once_in_order() {
    let redis = RedisServer::start();
    let (a, b) = two_nodes(&redis).await;
    let mut on_a = a.client("alice", Codec::Json).await;
    let mut on_b = b.client("bob", Codec::MsgPack).await;
    let mut also_b = b.client("bea", Codec::Json).await;
    for c in [&on_a, &on_b, &also_b] {
        c.subscribe(&room()).await.unwrap();
    }
    let publisher = b.client("pub", Codec::MsgPack).await;
    let other = a.client("pub2", Codec::Json).await;
    for i in 1..=20 {
        let client = if i % 2 == 0 { &publisher } else { &other };
        assert_eq!(client.publish(&room(), n(i)).await.unwrap(), i);
    }
    for c in [&mut on_a, &mut on_b, &mut also_b] {
        for i in 1..=20 {
            let m = next_message(c).await;
            assert_eq!((m.seq, m.data), (i, n(i)), "one order for every node");
        }
        assert_quiet(c).await;
    }
    assert!(a.metric("tokenim_redis_messages_received_total") >= 20.0);
    assert!(a.metric("tokenim_redis_publish_seconds_count") >= 10.0);
}

#[tokio::test]
async fn direct_messages_reach_the_user_on_another_node() {
    let redis = RedisServer::start();
    let (a, b) = two_nodes(&redis).await;
    let sender = a.client("alice", Codec::Json).await;
    let mut bob = b.client("bob", Codec::MsgPack).await;
    let mut bob_on_a = a.client("bob", Codec::Json).await;
    sender
        .send(&UserId::new("bob").unwrap(), n(7))
        .await
        .unwrap();
    for c in [&mut bob, &mut bob_on_a] {
        let m = next_message(c).await;
        assert_eq!((m.channel.as_str(), m.data.clone()), ("#bob", n(7)));
        assert_eq!(m.from.unwrap().as_str(), "alice");
    }
}

#[tokio::test]
async fn a_node_subscribes_once_and_unsubscribes_when_its_last_listener_leaves() {
    let redis = RedisServer::start();
    let (a, b) = two_nodes(&redis).await;
    let name = "tokenim:ch:{rooms.lobby}";
    let count = || numsub(&redis.cli(&["PUBSUB", "NUMSUB", name]));
    let mut on_a = Vec::new();
    for i in 0..3 {
        let c = a.client(&format!("a{i}"), Codec::Json).await;
        c.subscribe(&room()).await.unwrap();
        on_a.push(c);
    }
    assert_eq!(count(), 1, "three listeners on one node: one subscription");
    let on_b = b.client("b", Codec::Json).await;
    on_b.subscribe(&room()).await.unwrap();
    assert_eq!(count(), 2);
    for c in &on_a {
        c.unsubscribe(&room()).await.unwrap();
    }
    wait_for(|| count() == 1).await;
    drop(on_b);
    wait_for(|| count() == 0).await;
}

#[tokio::test]
async fn presence_is_the_same_whichever_node_is_asked() {
    let redis = RedisServer::start();
    let (a, b) = two_nodes(&redis).await;
    let alice = a.client("alice", Codec::Json).await;
    let bob1 = b.client("bob", Codec::Json).await;
    let bob2 = a.client("bob", Codec::MsgPack).await;
    for c in [&alice, &bob1, &bob2] {
        c.subscribe(&room()).await.unwrap();
    }
    for asker in [&alice, &bob1] {
        let users = presence(asker).await;
        assert_eq!(users, vec![("alice".to_owned(), 1), ("bob".to_owned(), 2)]);
    }
    bob1.unsubscribe(&room()).await.unwrap();
    assert_eq!(
        presence(&alice).await,
        vec![("alice".to_owned(), 1), ("bob".to_owned(), 1)]
    );
}

async fn presence(client: &tokenim_client::Client) -> Vec<(String, u32)> {
    match client
        .request(tokenim_protocol::Command::Presence { channel: room() })
        .await
        .unwrap()
    {
        tokenim_protocol::ReplyBody::Presence { users, .. } => users
            .into_iter()
            .map(|e| (e.user.to_string(), e.connections))
            .collect(),
        other => panic!("unexpected {other:?}"),
    }
}

async fn wait_for(mut ok: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met in time"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn nodes_survive_redis_being_killed_and_restarted() {
    let mut redis = RedisServer::start();
    let (a, b) = two_nodes(&redis).await;
    let mut on_a = a.client("alice", Codec::Json).await;
    on_a.subscribe(&room()).await.unwrap();
    let publisher = b.client("pub", Codec::MsgPack).await;
    assert_eq!(publisher.publish(&room(), n(1)).await.unwrap(), 1);
    assert_eq!(next_message(&mut on_a).await.seq, 1);

    redis.kill();
    a.wait_ready(503).await;
    b.wait_ready(503).await;
    match publisher.publish(&room(), n(2)).await {
        Err(Error::Server(body)) => assert_eq!(body.code, ErrorCode::Unavailable),
        other => panic!("publishing without redis must fail clearly, got {other:?}"),
    }
    assert!(b.metric("tokenim_redis_publish_failures_total") >= 1.0);
    on_a.ping()
        .await
        .expect("clients stay connected through the outage");

    redis.restart();
    a.wait_ready(200).await;
    b.wait_ready(200).await;
    // Redis came back empty: the subscriber is told of the new epoch while
    // connected, then sequences start again.
    let mut told = Vec::new();
    while told.len() < 2 {
        let Push::Gap(gap) = next_push(&mut on_a).await else {
            panic!("expected gap pushes for the new epochs");
        };
        assert_eq!((gap.seq, gap.code), (0, ErrorCode::EpochChanged));
        told.push(gap.channel.to_string());
    }
    told.sort();
    assert_eq!(
        told,
        ["#alice", "rooms.lobby"],
        "the room and the personal channel"
    );
    let seq = publisher.publish(&room(), n(3)).await.unwrap();
    let m = next_message(&mut on_a).await;
    assert_eq!((m.seq, m.data), (seq, n(3)));
    assert!(a.metric("tokenim_redis_reconnects_total") >= 1.0);
    assert!(a.metric("tokenim_redis_resubscribes_total") >= 1.0);
}

#[tokio::test]
async fn a_frozen_redis_is_detected_by_the_probe_and_recovered_from() {
    let redis = RedisServer::start();
    let (a, b) = two_nodes(&redis).await;
    let mut on_a = a.client("alice", Codec::Json).await;
    on_a.subscribe(&room()).await.unwrap();
    let publisher = b.client("pub", Codec::Json).await;

    redis.signal("STOP");
    a.wait_ready(503).await;
    assert!(
        publisher.publish(&room(), n(1)).await.is_err(),
        "no silent drop while frozen"
    );
    redis.signal("CONT");
    a.wait_ready(200).await;
    b.wait_ready(200).await;
    let seq = publisher.publish(&room(), n(2)).await.unwrap();
    loop {
        let m = next_message(&mut on_a).await;
        if m.seq == seq {
            assert_eq!(m.data, n(2));
            break;
        }
    }
}

#[tokio::test]
async fn a_killed_nodes_presence_expires() {
    let redis = RedisServer::start();
    let a = TestGateway::with_redis(&redis.url(), false, |_| {}).await;
    a.wait_ready(200).await;
    // The other node is a real process, so it can be killed outright.
    let mut node = NodeProcess::start(&redis.url());
    let other = TestGateway::attach(node.addr, &a);
    other.wait_ready(200).await;
    let ghost = other.client("ghost", Codec::Json).await;
    ghost.subscribe(&room()).await.unwrap();
    let alice = a.client("alice", Codec::Json).await;
    alice.subscribe(&room()).await.unwrap();
    assert_eq!(presence(&alice).await.len(), 2);

    node.kill();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    while presence(&alice).await.len() == 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the dead node's user never expired"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(presence(&alice).await, vec![("alice".to_owned(), 1)]);
    drop(ghost);
}

/// Sends `publish` commands with ids `ids` without waiting for replies.
async fn publish_raw(client: &tokenim_client::Client, ids: std::ops::Range<u64>) {
    for id in ids {
        let frame = format!(
            r#"{{"id":{id},"type":"publish","channel":"rooms.lobby","data":{{"n":{id}}}}}"#
        );
        client.send_raw(Message::text(frame)).await.unwrap();
    }
}

/// The next reply that arrives, as (id, outcome).
async fn next_reply(client: &mut tokenim_client::Client) -> (u64, Outcome) {
    loop {
        match tokio::time::timeout(WAIT, client.next_event()).await {
            Ok(Some(Event::Reply(reply))) => return (reply.id, reply.outcome),
            Ok(Some(Event::Push(_))) => {}
            other => panic!("expected a reply, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_session_keeps_reading_while_its_publishes_wait_and_answers_in_command_order() {
    let redis = RedisServer::start();
    let a = TestGateway::with_redis(&redis.url(), false, |c| {
        c.limits.max_commands_in_flight = 8;
        c.redis.as_mut().unwrap().command_timeout = Duration::from_secs(2);
    })
    .await;
    a.wait_ready(200).await;
    let mut publisher = a.client("pub", Codec::Json).await;

    // While Redis holds writes no publish can be answered: the session
    // reads commands until 8 replies wait, then stops reading.
    redis.pause_writes();
    publish_raw(&publisher, 1..21).await;
    let ping = r#"{"id":21,"type":"ping"}"#;
    publisher.send_raw(Message::text(ping)).await.unwrap();
    a.wait_metric("tokenim_commands_in_flight", 8.0).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(a.metric("tokenim_commands_in_flight"), 8.0, "bounded");
    redis.unpause();

    for id in 1..=20 {
        match next_reply(&mut publisher).await {
            (got, Outcome::Result(ReplyBody::Publish { seq, .. })) => {
                assert_eq!(
                    (got, seq),
                    (id, id),
                    "replies and sequences in command order"
                );
            }
            other => panic!("publish {id}: {other:?}"),
        }
    }
    assert!(matches!(
        next_reply(&mut publisher).await,
        (21, Outcome::Result(ReplyBody::Ping {}))
    ));
    // Publishes that waited together went to Redis as one pipeline.
    assert_eq!(a.metric("tokenim_redis_publish_batch_sum"), 20.0);
    assert!(a.metric("tokenim_redis_publish_batch_count") <= 10.0);
    assert_eq!(a.metric("tokenim_commands_in_flight"), 0.0);
}

#[tokio::test]
async fn a_full_publish_queue_answers_unavailable_and_the_node_recovers() {
    let redis = RedisServer::start();
    let a = TestGateway::with_redis(&redis.url(), false, |c| {
        c.redis.as_mut().unwrap().publish_queue = 1;
    })
    .await;
    a.wait_ready(200).await;
    let mut publisher = a.client("pub", Codec::Json).await;

    redis.pause_writes();
    // One publish goes out (and hangs: its outcome is unknown), one waits
    // in the queue (sent late, or refused as too old), the third finds no
    // room (not published), answered in order.
    publish_raw(&publisher, 1..4).await;
    let mut codes = Vec::new();
    for id in 1..=3 {
        match next_reply(&mut publisher).await {
            (got, Outcome::Error(e)) if got == id => codes.push(e.code),
            other => panic!("publish {id}: {other:?}"),
        }
    }
    assert_eq!(codes[0], ErrorCode::OutcomeUnknown, "{codes:?}");
    assert!(
        matches!(codes[1], ErrorCode::OutcomeUnknown | ErrorCode::Unavailable),
        "{codes:?}"
    );
    assert_eq!(codes[2], ErrorCode::Unavailable, "{codes:?}");
    assert!(a.metric("tokenim_redis_publish_failures_total") >= 3.0);
    redis.unpause();
    a.wait_ready(200).await;
    let seq = publisher.publish(&room(), n(4)).await.unwrap();
    assert!(seq >= 1, "publishing works again");
}

/// A `publish` command with a `msg_id`.
fn publish_with_msg_id(id: u64, msg_id: &str) -> Message {
    Message::text(format!(
        r#"{{"id":{id},"type":"publish","channel":"rooms.lobby","data":{{"n":{id}}},"msg_id":"{msg_id}"}}"#
    ))
}

#[tokio::test]
async fn a_publish_redis_holds_unanswered_is_outcome_unknown_and_a_retry_with_its_msg_id_tells() {
    let redis = RedisServer::start();
    let a = TestGateway::with_redis(&redis.url(), false, |_| {}).await;
    a.wait_ready(200).await;
    let mut publisher = a.client("pub", Codec::Json).await;

    // Redis has the publish and does not answer within the command
    // timeout: the node cannot say "not published".
    redis.pause_writes();
    publisher
        .send_raw(publish_with_msg_id(1, "m-1"))
        .await
        .unwrap();
    match next_reply(&mut publisher).await {
        (1, Outcome::Error(e)) => assert_eq!(e.code, ErrorCode::OutcomeUnknown, "{e:?}"),
        other => panic!("{other:?}"),
    }
    redis.unpause();
    // Whether Redis ran it or dropped it with the connection the node gave
    // up on, a retry with its msg_id leaves exactly one message.
    publisher
        .send_raw(publish_with_msg_id(2, "m-1"))
        .await
        .unwrap();
    assert!(matches!(
        next_reply(&mut publisher).await,
        (2, Outcome::Result(ReplyBody::Publish { seq: 1, .. }))
    ));
    match publisher.history(&room(), Some(0), None).await.unwrap() {
        ReplyBody::History { publications, .. } => assert_eq!(publications.len(), 1),
        other => panic!("{other:?}"),
    }

    // Once the node knows Redis is gone it sends nothing: certainly not
    // published, and a retry publishes it once.
    redis.signal("STOP");
    a.wait_ready(503).await;
    publisher
        .send_raw(publish_with_msg_id(3, "m-2"))
        .await
        .unwrap();
    match next_reply(&mut publisher).await {
        (3, Outcome::Error(e)) => assert_eq!(e.code, ErrorCode::Unavailable, "{e:?}"),
        other => panic!("{other:?}"),
    }
    redis.signal("CONT");
    a.wait_ready(200).await;
    publisher
        .send_raw(publish_with_msg_id(4, "m-2"))
        .await
        .unwrap();
    assert!(matches!(
        next_reply(&mut publisher).await,
        (
            4,
            Outcome::Result(ReplyBody::Publish {
                seq: 2,
                duplicate: false,
                ..
            })
        )
    ));
}
