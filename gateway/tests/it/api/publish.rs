//! `POST /v1/publish`: the application publishes to channels and sends to
//! users; subscribers and users' personal channels receive it; the role
//! `app` (and grants to a key) decide what a key may publish.

use serde_json::{Value, json};
use tokenim_client::Client;
use tokenim_protocol::{Codec, Data, ErrorCode, Push};

use super::channel;
use crate::support::http::Api;
use crate::support::{ADMIN_KEY_ID, TestGateway, assert_quiet, next_push};

/// The next push must be a message on `on` carrying `data`; returns its seq.
async fn expect_message(client: &mut Client, on: &str, data: &Value) -> u64 {
    match next_push(client).await {
        Push::Message(p) => {
            assert_eq!(p.channel.as_str(), on);
            assert_eq!(p.from, None, "published by the server");
            let got: Value = serde_json::from_str(p.data.as_json()).unwrap();
            assert_eq!(&got, data);
            p.seq
        }
        other => panic!("expected a message on {on}, got {other:?}"),
    }
}

#[tokio::test]
async fn publish_reaches_channel_subscribers_and_users_personal_channels() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    let mut alice = gw.client("alice", Codec::Json).await;
    alice.subscribe(&channel("rooms.lobby")).await.unwrap();
    let mut bob = gw.client("bob", Codec::MsgPack).await;

    let data = json!({"text": "hello", "n": 1});
    let body = api
        .post_json(
            "/v1/publish",
            &json!({"channels": ["rooms.lobby"], "users": ["bob"], "data": data}),
        )
        .await
        .expect(200);
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{body}");
    assert_eq!(results[0]["channel"], "rooms.lobby");
    assert_eq!(results[1]["channel"], "#bob");
    let seq = expect_message(&mut alice, "rooms.lobby", &data).await;
    assert_eq!(results[0], json!({"channel": "rooms.lobby", "seq": seq}));
    let seq = expect_message(&mut bob, "#bob", &data).await;
    assert_eq!(results[1], json!({"channel": "#bob", "seq": seq}));
    assert_quiet(&mut alice).await;

    // A retry with the same msg_id is published once.
    let retried = json!({"channels": ["rooms.lobby"], "data": "once", "msg_id": "m-1"});
    let first = api.post_json("/v1/publish", &retried).await.expect(200);
    let second = api.post_json("/v1/publish", &retried).await.expect(200);
    assert_eq!(second["results"][0]["duplicate"], true, "{second}");
    assert_eq!(second["results"][0]["seq"], first["results"][0]["seq"]);
    expect_message(&mut alice, "rooms.lobby", &json!("once")).await;
    assert_quiet(&mut alice).await;

    // A personal channel is reached through `users` only.
    let body = api
        .post_json("/v1/publish", &json!({"channels": ["#bob"], "data": 1}))
        .await
        .expect(200);
    assert_eq!(
        body["results"][0]["error"]["code"],
        ErrorCode::PermissionDenied.code()
    );
    assert_quiet(&mut bob).await;

    api.post_json("/v1/publish", &json!({"data": 1}))
        .await
        .expect_error(400, ErrorCode::InvalidField);
    let many: Vec<String> = (0..1001).map(|i| format!("rooms.r{i}")).collect();
    api.post_json("/v1/publish", &json!({"channels": many, "data": 1}))
        .await
        .expect_error(413, ErrorCode::TooManyItems);

    // A bad target is refused alone: the others are published.
    let body = api
        .post_json(
            "/v1/publish",
            &json!({"channels": ["bad channel!", "rooms.lobby"], "users": ["no one", "bob"], "data": "mixed"}),
        )
        .await
        .expect(200);
    let results = body["results"].as_array().unwrap();
    let codes: Vec<&Value> = results.iter().map(|r| &r["error"]["code"]).collect();
    assert_eq!(
        codes,
        [
            &json!(ErrorCode::InvalidChannel.code()),
            &Value::Null,
            &json!(ErrorCode::InvalidUser.code()),
            &Value::Null,
        ],
        "{body}"
    );
    assert_eq!(results[0]["channel"], "bad channel!");
    assert_eq!(results[3]["channel"], "#bob");
    expect_message(&mut alice, "rooms.lobby", &json!("mixed")).await;
    expect_message(&mut bob, "#bob", &json!("mixed")).await;
}

#[tokio::test]
async fn the_app_role_and_grants_decide_what_a_key_may_publish() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    let mut alice = gw.client("alice", Codec::Json).await;
    alice.subscribe(&channel("rooms.lobby")).await.unwrap();
    let mut bob = gw.client("bob", Codec::Json).await;
    let both = json!({"channels": ["rooms.lobby"], "users": ["bob"], "data": "x"});

    api.put_json("/v1/roles/app", &json!({"permissions": ["send"]}))
        .await
        .expect(200);
    let body = api.post_json("/v1/publish", &both).await.expect(200);
    let refused = &body["results"][0];
    assert_eq!(refused["channel"], "rooms.lobby");
    assert!(refused.get("seq").is_none(), "{body}");
    assert_eq!(refused["error"]["code"], ErrorCode::PermissionDenied.code());
    assert_eq!(refused["error"]["name"], "permission_denied");
    assert!(body["results"][1]["seq"].is_u64(), "{body}");
    expect_message(&mut bob, "#bob", &json!("x")).await;
    assert_quiet(&mut alice).await;

    api.put_json("/v1/roles/app", &json!({"permissions": []}))
        .await
        .expect(200);
    let body = api.post_json("/v1/publish", &both).await.expect(200);
    for result in body["results"].as_array().unwrap() {
        assert_eq!(
            result["error"]["code"],
            ErrorCode::PermissionDenied.code(),
            "{body}"
        );
    }
    assert_quiet(&mut bob).await;

    // A grant to this key on `rooms.*` lets it publish there only.
    api.post_json(
        "/v1/grants",
        &json!({"subject": {"app": ADMIN_KEY_ID}, "permission": "publish", "channels": "rooms.*"}),
    )
    .await
    .expect(201);
    let body = api
        .post_json(
            "/v1/publish",
            &json!({"channels": ["rooms.lobby", "news.today"], "data": "y"}),
        )
        .await
        .expect(200);
    assert!(body["results"][0]["seq"].is_u64(), "{body}");
    assert_eq!(
        body["results"][1]["error"]["code"],
        ErrorCode::PermissionDenied.code()
    );
    expect_message(&mut alice, "rooms.lobby", &json!("y")).await;
}

/// The publish rules are one set for the socket and the server API: the
/// same mistake gets the same code on both, and publishes nothing.
#[tokio::test]
async fn a_publish_rule_answers_the_same_over_http_and_on_the_socket() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    let mut alice = gw.client("alice", Codec::Json).await;
    alice.subscribe(&channel("rooms.lobby")).await.unwrap();

    for bad in ["", "has space", "é"] {
        let body = json!({"channels": ["rooms.lobby"], "data": 1, "msg_id": bad});
        api.post_json("/v1/publish", &body)
            .await
            .expect_error(400, ErrorCode::BadRequest);
        let on_socket = alice
            .publish_with_id(
                &channel("rooms.lobby"),
                Data::from_json("1").unwrap(),
                Some(bad.into()),
            )
            .await;
        match on_socket {
            Err(tokenim_client::Error::Server(e)) => assert_eq!(e.code, ErrorCode::BadRequest),
            other => panic!("msg_id {bad:?} on the socket: {other:?}"),
        }
    }
    let personal = json!({"channels": ["#bob"], "data": 1});
    let over_http = api.post_json("/v1/publish", &personal).await.expect(200);
    let on_socket = alice
        .publish(&channel("#bob"), Data::from_json("1").unwrap())
        .await;
    match on_socket {
        Err(tokenim_client::Error::Server(e)) => {
            assert_eq!(e.code.code(), over_http["results"][0]["error"]["code"]);
            assert_eq!(e.message, over_http["results"][0]["error"]["message"]);
        }
        other => panic!("a channel publish to a personal channel: {other:?}"),
    }
    assert_quiet(&mut alice).await;
}
