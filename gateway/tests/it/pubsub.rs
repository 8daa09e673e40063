//! Channels, fan-out, direct messages, join/leave: in both codecs.

use tokenim_protocol::{ChannelName, Codec, Data, ErrorCode, Push, UserId};

use crate::support::{TestGateway, assert_quiet, next_push};

fn lobby() -> ChannelName {
    ChannelName::new("rooms.lobby").unwrap()
}

fn text(s: &str) -> Data {
    Data::from_value(&serde_json::json!({ "text": s })).unwrap()
}

#[tokio::test]
async fn publish_fans_out_in_order_to_every_subscriber_of_both_codecs() {
    let gw = TestGateway::spawn().await;
    let mut subscribers = Vec::new();
    for i in 0..24 {
        let codec = Codec::ALL[i % 2];
        let client = gw.client(&format!("user{i}"), codec).await;
        assert_eq!(client.subscribe(&lobby()).await.unwrap(), 0);
        subscribers.push(client);
    }
    let publisher = gw.client("publisher", Codec::MsgPack).await;
    for n in 1..=10u64 {
        let seq = publisher
            .publish(&lobby(), text(&format!("m{n}")))
            .await
            .unwrap();
        assert_eq!(seq, n);
    }
    for client in &mut subscribers {
        for n in 1..=10u64 {
            // Skip joins of later subscribers.
            let message = loop {
                match next_push(client).await {
                    Push::Message(m) => break m,
                    Push::Join(_) => continue,
                    other => panic!("unexpected {other:?}"),
                }
            };
            assert_eq!(message.seq, n);
            assert_eq!(message.channel, lobby());
            assert_eq!(message.from, Some(UserId::new("publisher").unwrap()));
            assert_eq!(message.data, text(&format!("m{n}")));
            assert!(message.time > 1_600_000_000_000);
        }
    }
    assert_eq!(gw.metric("tokenim_publications_total"), 10.0);
    assert!(gw.metric("tokenim_deliveries_total") >= 240.0);
    // A late subscriber learns the latest sequence number.
    let late = gw.client("late", Codec::Json).await;
    assert_eq!(late.subscribe(&lobby()).await.unwrap(), 10);
}

#[tokio::test]
async fn unsubscribed_clients_receive_nothing() {
    let gw = TestGateway::spawn().await;
    let mut a = gw.client("a", Codec::Json).await;
    let b = gw.client("b", Codec::Json).await;
    a.subscribe(&lobby()).await.unwrap();
    a.unsubscribe(&lobby()).await.unwrap();
    b.publish(&lobby(), text("x")).await.unwrap();
    assert_quiet(&mut a).await;
}

#[tokio::test]
async fn direct_messages_reach_every_connection_of_the_recipient_only() {
    for codec in Codec::ALL {
        let gw = TestGateway::spawn().await;
        let mut alice = gw.client("alice", codec).await;
        let mut bob1 = gw.client("bob", Codec::Json).await;
        let mut bob2 = gw.client("bob", Codec::MsgPack).await;
        let mut carol = gw.client("carol", codec).await;
        let bob = UserId::new("bob").unwrap();
        assert_eq!(alice.send(&bob, text("psst")).await.unwrap(), 1);
        assert_eq!(alice.send(&bob, text("again")).await.unwrap(), 2);
        for client in [&mut bob1, &mut bob2] {
            for (seq, body) in [(1, "psst"), (2, "again")] {
                let Push::Message(m) = next_push(client).await else {
                    panic!("expected a message")
                };
                assert_eq!(m.channel.as_str(), "#bob");
                assert_eq!(m.from, Some(UserId::new("alice").unwrap()));
                assert_eq!((m.seq, m.data), (seq, text(body)));
            }
        }
        assert_quiet(&mut alice).await;
        assert_quiet(&mut carol).await;
    }
}

/// A connection's own personal channel cannot be left (1104, as
/// documented), and direct messages still reach it afterwards.
#[tokio::test]
async fn the_personal_channel_cannot_be_unsubscribed() {
    for codec in Codec::ALL {
        let gw = TestGateway::spawn().await;
        let mut bob = gw.client("bob", codec).await;
        let alice = gw.client("alice", Codec::Json).await;
        let own = UserId::new("bob").unwrap().personal_channel();
        match bob.unsubscribe(&own).await {
            Err(tokenim_client::Error::Server(e)) => {
                assert_eq!(e.code, ErrorCode::PermissionDenied, "{codec:?}: {e:?}")
            }
            other => panic!("{codec:?}: unsubscribe from #bob answered {other:?}"),
        }
        let bob_id = UserId::new("bob").unwrap();
        assert_eq!(alice.send(&bob_id, text("still here")).await.unwrap(), 1);
        let Push::Message(m) = next_push(&mut bob).await else {
            panic!("expected the direct message")
        };
        assert_eq!((m.channel, m.data), (own, text("still here")));
    }
}

#[tokio::test]
async fn join_and_leave_are_pushed_to_the_others_in_the_channel() {
    for codec in Codec::ALL {
        let gw = TestGateway::spawn().await;
        let mut alice = gw.client("alice", codec).await;
        alice.subscribe(&lobby()).await.unwrap();
        let mut bob = gw.client("bob", Codec::Json).await;
        bob.subscribe(&lobby()).await.unwrap();
        let Push::Join(join) = next_push(&mut alice).await else {
            panic!("expected join")
        };
        assert_eq!((join.user.as_str(), join.channel.clone()), ("bob", lobby()));
        let bob_session = bob.session().unwrap().session;
        assert_eq!(join.session, bob_session);
        assert_quiet(&mut bob).await;

        bob.unsubscribe(&lobby()).await.unwrap();
        let Push::Leave(leave) = next_push(&mut alice).await else {
            panic!("expected leave")
        };
        assert_eq!((leave.user.as_str(), leave.session), ("bob", bob_session));

        bob.subscribe(&lobby()).await.unwrap();
        assert!(matches!(next_push(&mut alice).await, Push::Join(_)));
        bob.close().await.unwrap();
        let Push::Leave(leave) = next_push(&mut alice).await else {
            panic!("expected leave on disconnect")
        };
        assert_eq!(leave.user.as_str(), "bob");
        assert_eq!(gw.state.hub.subscriber_count(&lobby()), 1);
    }
}

#[tokio::test]
async fn large_channels_get_no_join_or_leave_pushes() {
    let gw = TestGateway::with(|c| c.limits.max_join_leave_subscribers = 2).await;
    let mut alice = gw.client("alice", Codec::Json).await;
    alice.subscribe(&lobby()).await.unwrap();
    let bob = gw.client("bob", Codec::Json).await;
    bob.subscribe(&lobby()).await.unwrap();
    assert!(
        matches!(next_push(&mut alice).await, Push::Join(_)),
        "two subscribers: joins still pushed"
    );
    let carol = gw.client("carol", Codec::Json).await;
    carol.subscribe(&lobby()).await.unwrap();
    assert_quiet(&mut alice).await;
    carol.unsubscribe(&lobby()).await.unwrap();
    // Back at two: leaves are pushed again.
    bob.unsubscribe(&lobby()).await.unwrap();
    assert!(matches!(next_push(&mut alice).await, Push::Leave(_)));
}
