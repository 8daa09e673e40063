//! Every limit answers with its own code and leaves the connection usable
//! (or closes it with its own code when the frame itself is too big).

use std::time::Duration;

use tokenim_client::{Client, Error};
use tokenim_protocol::{ChannelName, Codec, Data, ErrorCode};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{TestGateway, close_code};

fn channel(name: &str) -> ChannelName {
    ChannelName::new(name).unwrap()
}

fn code<T: std::fmt::Debug>(result: Result<T, Error>) -> ErrorCode {
    match result {
        Err(Error::Server(body)) => body.code,
        other => panic!("expected an error reply, got {other:?}"),
    }
}

#[tokio::test]
async fn subscription_limit_and_subscription_state_errors() {
    let gw = TestGateway::with(|c| c.limits.max_subscriptions = 2).await;
    for codec in Codec::ALL {
        let client = gw.client("alice", codec).await;
        client.subscribe(&channel("a")).await.unwrap();
        assert_eq!(
            code(client.subscribe(&channel("a")).await),
            ErrorCode::AlreadySubscribed
        );
        client.subscribe(&channel("b")).await.unwrap();
        assert_eq!(
            code(client.subscribe(&channel("c")).await),
            ErrorCode::TooManySubscriptions
        );
        assert_eq!(
            code(client.unsubscribe(&channel("c")).await),
            ErrorCode::NotSubscribed
        );
        client.unsubscribe(&channel("a")).await.unwrap();
        client.subscribe(&channel("c")).await.unwrap();
        assert_eq!(
            code(client.subscribe(&channel("#bob")).await),
            ErrorCode::PermissionDenied
        );
        assert_eq!(
            code(
                client
                    .publish(&channel("#bob"), Data::from_json("1").unwrap())
                    .await
            ),
            ErrorCode::PermissionDenied
        );
    }
    assert_eq!(
        gw.metric("tokenim_command_errors_total{error=\"too_many_subscriptions\"}"),
        2.0
    );
}

#[tokio::test]
async fn publish_rate_limit() {
    let gw = TestGateway::with(|c| {
        c.limits.publish_rate = 2.0;
        c.limits.publish_burst = 3.0;
    })
    .await;
    let client = gw.client("alice", Codec::Json).await;
    let data = Data::from_json("{}").unwrap();
    for _ in 0..3 {
        client.publish(&channel("a"), data.clone()).await.unwrap();
    }
    assert_eq!(
        code(client.publish(&channel("a"), data.clone()).await),
        ErrorCode::RateLimited
    );
    assert_eq!(
        code(client.send(&"bob".parse().unwrap(), data.clone()).await),
        ErrorCode::RateLimited
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    client
        .publish(&channel("a"), data)
        .await
        .expect("tokens refill");
}

#[tokio::test]
async fn oversized_data_is_refused_and_nothing_is_published() {
    let gw = TestGateway::with(|c| c.limits.max_data_size = 100).await;
    let client = gw.client("alice", Codec::MsgPack).await;
    let big = Data::from_value(&"x".repeat(200)).unwrap();
    assert_eq!(
        code(client.publish(&channel("a"), big).await),
        ErrorCode::MessageTooLarge
    );
    assert_eq!(
        client
            .publish(&channel("a"), Data::from_json("1").unwrap())
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn an_oversized_frame_closes_with_its_code_and_others_are_unaffected() {
    let gw = TestGateway::with(|c| {
        c.limits.max_frame_size = 1024;
        c.limits.max_message_size = 1024;
        c.limits.max_data_size = 512;
    })
    .await;
    let bystander = gw.client("bob", Codec::Json).await;
    let mut client = gw.client("alice", Codec::Json).await;
    client
        .send_raw(Message::text("x".repeat(4096)))
        .await
        .unwrap();
    assert_eq!(close_code(&mut client).await, Some(4502));
    bystander.ping().await.unwrap();
    assert_eq!(
        gw.metric("tokenim_disconnects_total{reason=\"message_too_large\"}"),
        1.0
    );
}

#[tokio::test]
async fn per_ip_connection_cap_refuses_with_429() {
    let gw = TestGateway::with(|c| c.limits.max_connections_per_ip = 2).await;
    let _a = gw.client("a", Codec::Json).await;
    let _b = gw.client("b", Codec::Json).await;
    match Client::connect(gw.options(Codec::Json, tokenim_client::Auth::Frame(gw.token("c")))).await
    {
        Err(Error::Http { status, .. }) => assert_eq!(status, 429),
        other => panic!("expected 429, got {:?}", other.map(|_| ())),
    }
    assert_eq!(
        gw.metric("tokenim_connections_rejected_total{reason=\"per_ip_limit\"}"),
        1.0
    );
}
