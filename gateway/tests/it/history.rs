//! History and recovery: pages, resume after a dropped connection (also on
//! another node and across a node restart), gaps and epochs, idempotent
//! publishes, and direct messages kept for offline users until acknowledged.

use std::collections::BTreeSet;
use std::time::Duration;

use tokenim_client::Client;
use tokenim_protocol::{
    ChannelName, Codec, Data, ErrorCode, Push, ReplyBody, Seq, StreamPosition, UserId,
};

use crate::support::redis::RedisServer;
use crate::support::{TestGateway, WAIT, assert_quiet, next_push};

fn room() -> ChannelName {
    ChannelName::new("rooms.history").unwrap()
}

fn n(i: u64) -> Data {
    Data::from_value(&i).unwrap()
}

fn page(body: ReplyBody) -> (Vec<Seq>, bool, String) {
    match body {
        ReplyBody::History {
            publications,
            more,
            epoch,
            ..
        } => (publications.iter().map(|p| p.seq).collect(), more, epoch),
        other => panic!("expected history, got {other:?}"),
    }
}

async fn history_pages_on(publisher: &Client, reader: &Client) {
    for i in 1..=10 {
        publisher.publish(&room(), n(i)).await.unwrap();
    }
    let (last, more, _) = page(reader.history(&room(), None, Some(4)).await.unwrap());
    assert_eq!((last, more), (vec![7, 8, 9, 10], false), "the last four");
    let (after, more, _) = page(reader.history(&room(), Some(3), Some(4)).await.unwrap());
    assert_eq!(
        (after, more),
        (vec![4, 5, 6, 7], true),
        "four after 3, more to come"
    );
    let (rest, more, _) = page(reader.history(&room(), Some(7), Some(4)).await.unwrap());
    assert_eq!((rest, more), (vec![8, 9, 10], false));
    // A page of nothing is refused, not served as one message.
    match reader.history(&room(), None, Some(0)).await {
        Err(tokenim_client::Error::Server(e)) => assert_eq!(e.code, ErrorCode::BadRequest),
        other => panic!("history with limit 0: {other:?}"),
    }
}

#[tokio::test]
async fn history_pages_with_both_brokers() {
    let gw = TestGateway::spawn().await;
    let (p, r) = (
        gw.client("p", Codec::Json).await,
        gw.client("r", Codec::MsgPack).await,
    );
    history_pages_on(&p, &r).await;

    let redis = RedisServer::start();
    let (a, b) = TestGateway::pair(&redis.url(), false).await;
    let (p, r) = (
        a.client("p", Codec::MsgPack).await,
        b.client("r", Codec::Json).await,
    );
    history_pages_on(&p, &r).await;
}

/// Subscribes with recovery; returns the recovered sequences and whether
/// recovery was complete.
async fn resume(
    client: &Client,
    since: StreamPosition,
) -> (Vec<Seq>, Option<bool>, Option<ErrorCode>) {
    match client.subscribe_from(&room(), Some(since)).await.unwrap() {
        ReplyBody::Subscribe {
            publications,
            recovered,
            gap,
            ..
        } => (publications.iter().map(|p| p.seq).collect(), recovered, gap),
        other => panic!("expected subscribe, got {other:?}"),
    }
}

async fn epoch_of(client: &Client) -> String {
    match client.subscribe_from(&room(), None).await.unwrap() {
        ReplyBody::Subscribe { epoch, .. } => epoch,
        other => panic!("{other:?}"),
    }
}

/// Reads messages until `last`, ignoring anything at or below what was
/// already seen (as a client must), and returns every sequence seen.
async fn collect_until(client: &mut Client, seen: &mut Vec<Seq>, last: Seq) {
    while seen.last().copied().unwrap_or(0) < last {
        match tokio::time::timeout(WAIT, client.next_push())
            .await
            .expect("messages keep coming")
        {
            Some(Push::Message(m)) if m.seq > seen.last().copied().unwrap_or(0) => seen.push(m.seq),
            Some(_) => {}
            None => panic!("connection closed"),
        }
    }
}

#[tokio::test]
async fn a_client_cut_off_during_1000_publishes_resumes_on_another_node_with_nothing_missing() {
    let redis = RedisServer::start();
    let deep = |c: &mut tokenim_gateway::Config| {
        c.history.size = 2_000;
        c.history.page = 1_000;
    };
    let a = TestGateway::with_redis(&redis.url(), false, deep).await;
    let b = TestGateway::with_redis(&redis.url(), false, deep).await;
    a.wait_ready(200).await;
    b.wait_ready(200).await;
    let mut first = a.client("reader", Codec::Json).await;
    let epoch = epoch_of(&first).await;
    let publisher = b.client("writer", Codec::MsgPack).await;
    let total = 1_000u64;
    let publishing = tokio::spawn(async move {
        for i in 1..=total {
            publisher.publish(&room(), n(i)).await.unwrap();
        }
        publisher
    });
    let mut seen = Vec::new();
    collect_until(&mut first, &mut seen, 100).await;
    drop(first); // cut off: no close handshake
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut second = b.client("reader", Codec::MsgPack).await;
    let since = StreamPosition {
        seq: *seen.last().unwrap(),
        epoch,
    };
    let (recovered, complete, gap) = resume(&second, since).await;
    assert_eq!(
        (complete, gap),
        (Some(true), None),
        "everything missed is still in history"
    );
    seen.extend(recovered);
    collect_until(&mut second, &mut seen, total).await;
    let _publisher = publishing.await.unwrap();
    assert_eq!(
        seen,
        (1..=total).collect::<Vec<_>>(),
        "exactly the published sequence, no gap, no duplicate"
    );
    assert_quiet(&mut second).await;
}

#[tokio::test]
async fn resume_works_across_a_node_restart() {
    let redis = RedisServer::start();
    let (a, b) = TestGateway::pair(&redis.url(), false).await;
    let mut on_a = a.client("reader", Codec::Json).await;
    let epoch = epoch_of(&on_a).await;
    let publisher = b.client("writer", Codec::Json).await;
    publisher.publish(&room(), n(1)).await.unwrap();
    assert!(matches!(next_push(&mut on_a).await, Push::Message(m) if m.seq == 1));
    a.stop().await; // drain: the client is told to reconnect
    for i in 2..=30 {
        publisher.publish(&room(), n(i)).await.unwrap();
    }
    let c = TestGateway::with_redis(&redis.url(), false, |_| {}).await;
    c.wait_ready(200).await;
    let again = c.client("reader", Codec::MsgPack).await;
    let (recovered, complete, _) = resume(&again, StreamPosition { seq: 1, epoch }).await;
    assert_eq!(complete, Some(true));
    assert_eq!(recovered, (2..=30).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_gap_beyond_the_history_is_reported_with_what_remains() {
    let gw = TestGateway::with(|c| c.history.size = 5).await;
    let reader = gw.client("reader", Codec::Json).await;
    let epoch = epoch_of(&reader).await;
    reader.unsubscribe(&room()).await.unwrap();
    let publisher = gw.client("writer", Codec::Json).await;
    for i in 1..=12 {
        publisher.publish(&room(), n(i)).await.unwrap();
    }
    let (remaining, complete, gap) = resume(&reader, StreamPosition { seq: 2, epoch }).await;
    assert_eq!((complete, gap), (Some(false), Some(ErrorCode::HistoryGap)));
    assert_eq!(
        remaining,
        vec![8, 9, 10, 11, 12],
        "what the history still holds"
    );
}

/// A `since` ahead of the channel's latest `seq`, in its epoch, is told to
/// start over (`epoch_changed`), not taken for recovered.
async fn a_since_ahead_is_told_to_start_over(publisher: &Client, reader: &Client) {
    for i in 1..=3 {
        publisher.publish(&room(), n(i)).await.unwrap();
    }
    let epoch = epoch_of(reader).await;
    reader.unsubscribe(&room()).await.unwrap();
    let ahead = StreamPosition {
        seq: 10,
        epoch: epoch.clone(),
    };
    let (recovered, complete, gap) = resume(reader, ahead).await;
    assert_eq!(
        (recovered, complete, gap),
        (vec![], Some(false), Some(ErrorCode::EpochChanged))
    );
    reader.unsubscribe(&room()).await.unwrap();
    // At the latest itself nothing was missed.
    let (recovered, complete, gap) = resume(reader, StreamPosition { seq: 3, epoch }).await;
    assert_eq!((recovered, complete, gap), (vec![], Some(true), None));
}

#[tokio::test]
async fn a_since_ahead_of_the_channel_is_never_taken_for_recovered_with_both_brokers() {
    let gw = TestGateway::spawn().await;
    let (p, r) = (
        gw.client("p", Codec::Json).await,
        gw.client("r", Codec::MsgPack).await,
    );
    a_since_ahead_is_told_to_start_over(&p, &r).await;

    let redis = RedisServer::start();
    let (a, b) = TestGateway::pair(&redis.url(), false).await;
    let (p, r) = (
        a.client("p", Codec::MsgPack).await,
        b.client("r", Codec::Json).await,
    );
    a_since_ahead_is_told_to_start_over(&p, &r).await;
}

#[tokio::test]
async fn an_epoch_change_after_redis_restarts_empty_is_detected() {
    let mut redis = RedisServer::start();
    let (a, _b) = TestGateway::pair(&redis.url(), false).await;
    let client = a.client("reader", Codec::Json).await;
    let old = epoch_of(&client).await;
    client.publish(&room(), n(1)).await.unwrap();
    client.unsubscribe(&room()).await.unwrap();
    redis.kill();
    a.wait_ready(503).await;
    redis.restart();
    a.wait_ready(200).await;
    client.publish(&room(), n(2)).await.unwrap();
    let (recovered, complete, gap) = resume(
        &client,
        StreamPosition {
            seq: 1,
            epoch: old.clone(),
        },
    )
    .await;
    assert_eq!(
        (complete, gap),
        (Some(false), Some(ErrorCode::EpochChanged))
    );
    assert!(
        recovered.is_empty(),
        "positions from the old epoch mean nothing"
    );
    let (_, _, epoch) = page(client.history(&room(), None, None).await.unwrap());
    assert_ne!(epoch, old);
}

#[tokio::test]
async fn a_retried_publish_is_stored_and_delivered_once() {
    let redis = RedisServer::start();
    let (a, b) = TestGateway::pair(&redis.url(), false).await;
    let local = TestGateway::spawn().await;
    for (p_node, s_node) in [(&a, &b), (&local, &local)] {
        let mut sub = s_node.client("sub", Codec::Json).await;
        sub.subscribe(&room()).await.unwrap();
        let publisher = p_node.client("pub", Codec::MsgPack).await;
        let id = Some("client-msg-1".to_owned());
        let first = publisher
            .publish_with_id(&room(), n(7), id.clone())
            .await
            .unwrap();
        for _ in 0..3 {
            assert_eq!(
                publisher
                    .publish_with_id(&room(), n(7), id.clone())
                    .await
                    .unwrap(),
                first
            );
        }
        let other = publisher
            .publish_with_id(&room(), n(8), Some("client-msg-2".into()))
            .await
            .unwrap();
        assert_eq!(other, first + 1);
        let mut seqs = BTreeSet::new();
        while seqs.len() < 2 {
            if let Push::Message(m) = next_push(&mut sub).await {
                assert!(seqs.insert(m.seq), "delivered once");
            }
        }
        assert_quiet(&mut sub).await;
        let (kept, _, _) = page(sub.history(&room(), Some(0), None).await.unwrap());
        assert_eq!(kept, vec![first, other], "stored once");
    }
}

#[tokio::test]
async fn direct_messages_wait_for_offline_users_until_acknowledged() {
    let gw = TestGateway::spawn().await;
    let alice = gw.client("alice", Codec::Json).await;
    let bob_id = UserId::new("bob").unwrap();
    for i in 1..=3 {
        alice.send(&bob_id, n(i)).await.unwrap();
    }
    // Bob connects: all three arrive.
    let mut bob = gw.client("bob", Codec::MsgPack).await;
    let mut got = Vec::new();
    while got.len() < 3 {
        if let Push::Message(m) = next_push(&mut bob).await {
            assert_eq!(m.channel.as_str(), "#bob");
            got.push(m.seq);
        }
    }
    assert_eq!(got, vec![1, 2, 3]);
    assert_eq!(bob.ack(2).await.unwrap(), 2);
    assert_eq!(
        bob.ack(1).await.unwrap(),
        2,
        "acknowledgements never go back"
    );
    drop(bob);
    // Unacknowledged: delivered again on the next connection.
    let mut bob = gw.client("bob", Codec::Json).await;
    assert!(matches!(next_push(&mut bob).await, Push::Message(m) if m.seq == 3));
    assert_quiet(&mut bob).await;
    bob.ack(3).await.unwrap();
    drop(bob);
    let mut bob = gw.client("bob", Codec::Json).await;
    assert_quiet(&mut bob).await;
    assert!(
        bob.ack(99).await.is_err(),
        "cannot acknowledge what was never sent"
    );
}

#[tokio::test]
async fn the_resuming_client_reconnects_by_itself_and_misses_nothing() {
    let gw = TestGateway::spawn().await;
    let options = gw.options(
        Codec::MsgPack,
        tokenim_client::Auth::Frame(gw.token("reader")),
    );
    let mut reader = tokenim_client::Resuming::connect(options, 20)
        .await
        .unwrap();
    reader.subscribe(&room()).await.unwrap();
    let publisher = gw.client("writer", Codec::Json).await;
    let alice = UserId::new("reader").unwrap();
    for i in 1..=5 {
        publisher.publish(&room(), n(i)).await.unwrap();
    }
    let mut seen = Vec::new();
    while seen.len() < 5 {
        if let Some(tokenim_client::Resumed::Message(m)) = reader.next().await {
            seen.push(m.seq);
        }
    }
    // The server drops the connection (as a deploy would); more messages
    // are published while the client is away.
    gw.state
        .broker
        .disconnect_user(&alice, tokenim_protocol::DisconnectCode::Shutdown)
        .await
        .unwrap();
    for i in 6..=40 {
        publisher.publish(&room(), n(i)).await.unwrap();
    }
    let mut reconnected = false;
    while seen.len() < 40 {
        match tokio::time::timeout(WAIT, reader.next())
            .await
            .expect("resumes in time")
        {
            Some(tokenim_client::Resumed::Message(m)) => seen.push(m.seq),
            Some(tokenim_client::Resumed::Reconnected { .. }) => reconnected = true,
            Some(other) => panic!("unexpected {other:?}"),
            None => panic!("gave up"),
        }
    }
    assert!(reconnected);
    assert_eq!(seen, (1..=40).collect::<Vec<_>>());
}
