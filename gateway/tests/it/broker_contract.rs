//! One contract, two brokers: the same scenario runs on the in-process
//! broker (one node) and on Redis (two nodes, publisher and subscriber on
//! different ones), and must behave the same.

use tokenim_protocol::{ChannelName, Codec, Command, Data, Push, ReplyBody, UserId};

use crate::support::redis::RedisServer;
use crate::support::{TestGateway, assert_quiet, next_push};

/// Publisher on `p`, subscribers on `s` (the same node for the local broker).
async fn contract(p: &TestGateway, s: &TestGateway) {
    let ch = ChannelName::new("contract.room").unwrap();
    let mut sub = s.client("sub", Codec::Json).await;
    assert_eq!(
        sub.subscribe(&ch).await.unwrap(),
        0,
        "a fresh channel starts at 0"
    );
    let publisher = p.client("pub", Codec::MsgPack).await;
    publisher.subscribe(&ch).await.unwrap();
    let Push::Join(join) = next_push(&mut sub).await else {
        panic!("expected join")
    };
    assert_eq!(join.user.as_str(), "pub");

    for i in 1..=5u64 {
        assert_eq!(
            publisher
                .publish(&ch, Data::from_value(&i).unwrap())
                .await
                .unwrap(),
            i
        );
    }
    for i in 1..=5u64 {
        let Push::Message(m) = next_push(&mut sub).await else {
            panic!("expected message {i}")
        };
        assert_eq!((m.seq, m.data), (i, Data::from_value(&i).unwrap()));
    }
    let late = s.client("late", Codec::Json).await;
    assert_eq!(
        late.subscribe(&ch).await.unwrap(),
        5,
        "subscribe reports the latest sequence"
    );

    let ReplyBody::Presence { users, .. } = late
        .request(Command::Presence {
            channel: ch.clone(),
        })
        .await
        .unwrap()
    else {
        panic!("expected presence");
    };
    let names: Vec<_> = users.iter().map(|e| e.user.as_str()).collect();
    assert_eq!(names, ["late", "pub", "sub"]);

    publisher
        .send(
            &UserId::new("sub").unwrap(),
            Data::from_json("\"dm\"").unwrap(),
        )
        .await
        .unwrap();
    loop {
        match next_push(&mut sub).await {
            Push::Message(m) if m.channel.as_str() == "#sub" => break,
            Push::Join(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    sub.unsubscribe(&ch).await.unwrap();
    publisher
        .publish(&ch, Data::from_json("6").unwrap())
        .await
        .unwrap();
    assert_quiet(&mut sub).await;
}

#[tokio::test]
async fn local_broker_keeps_the_contract() {
    let gw = TestGateway::spawn().await;
    contract(&gw, &gw).await;
}

#[tokio::test]
async fn redis_broker_keeps_the_contract() {
    let redis = RedisServer::start();
    let (a, b) = TestGateway::pair(&redis.url(), false).await;
    contract(&a, &b).await;
}
