//! Tokens and moderation: a minted token connects a real client and its
//! channel claims hold; revoking tokens, banning and disconnecting close
//! live connections with their codes, and what is refused afterwards.

use serde_json::json;
use tokenim_protocol::{Codec, ErrorCode};

use super::{assert_refused, channel, connect, mint};
use crate::support::http::Api;
use crate::support::{TestGateway, close_code};

#[tokio::test]
async fn a_minted_token_connects_and_its_channel_claims_are_enforced() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    let before = tokenim_gateway::unix_millis();
    let minted = api
        .post_json(
            "/v1/tokens",
            &json!({"user": "alice", "ttl": "10m", "channels": ["rooms.*"]}),
        )
        .await
        .expect(200);
    assert_eq!(minted["user"], "alice");
    let expires_at = minted["expires_at"].as_u64().unwrap();
    assert!(
        (before + 599_000..=before + 602_000).contains(&expires_at),
        "{minted}"
    );
    let client = connect(&gw, minted["token"].as_str().unwrap().to_owned())
        .await
        .unwrap();
    assert_eq!(client.session().unwrap().user.as_str(), "alice");
    client.subscribe(&channel("rooms.lobby")).await.unwrap();
    assert_refused(
        client.subscribe(&channel("news.today")).await,
        ErrorCode::PermissionDenied,
    );

    for (body, field) in [
        (json!({"user": "alice", "ttl": "0s"}), "ttl"),
        (json!({"user": "alice", "ttl": "90d"}), "ttl"),
        (json!({"user": "alice", "channels": ["ro*ms"]}), "channels"),
        (json!({"user": "alice", "publish": ["a b*"]}), "publish"),
    ] {
        let message = api
            .post_json("/v1/tokens", &body)
            .await
            .expect_error(400, ErrorCode::InvalidField);
        assert!(message.starts_with(field), "{body}: {message}");
    }
    api.post_json("/v1/tokens", &json!({"user": "bad id"}))
        .await
        .expect_error(422, ErrorCode::InvalidBody);
}

#[tokio::test]
async fn revoking_tokens_closes_connections_and_refuses_the_old_token_only() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    let old = mint(&api, json!({"user": "bob"})).await;
    let mut live = connect(&gw, old.clone()).await.unwrap();
    let mut dev = gw.client("bob", Codec::MsgPack).await;
    let carol = gw.client("carol", Codec::Json).await;

    api.post("/v1/users/bob/revoke-tokens").await.expect(204);
    assert_eq!(close_code(&mut live).await, Some(4503));
    assert_eq!(close_code(&mut dev).await, Some(4503));
    assert_refused(connect(&gw, old).await, ErrorCode::TokenRevoked);
    carol.ping().await.unwrap();

    let fresh = mint(&api, json!({"user": "bob"})).await;
    let client = connect(&gw, fresh).await.unwrap();
    client.ping().await.unwrap();
    api.post("/v1/users/bad%20id/revoke-tokens")
        .await
        .expect_error(400, ErrorCode::InvalidUser);
}

#[tokio::test]
async fn a_ban_closes_connections_and_blocks_tokens_until_lifted() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    let token = mint(&api, json!({"user": "carol"})).await;
    let mut client = connect(&gw, token.clone()).await.unwrap();

    let ban = api
        .post_json("/v1/users/carol/ban", &json!({"reason": "spam"}))
        .await
        .expect(200);
    assert_eq!(ban["reason"], "spam");
    assert!(ban.get("until").is_none(), "{ban}");
    assert_eq!(close_code(&mut client).await, Some(4504));
    let message = api
        .post_json("/v1/tokens", &json!({"user": "carol"}))
        .await
        .expect_error(403, ErrorCode::UserBanned);
    assert!(message.contains("carol"), "{message}");
    assert_refused(connect(&gw, token.clone()).await, ErrorCode::UserBanned);

    api.delete("/v1/users/carol/ban").await.expect(204);
    connect(&gw, token).await.unwrap().ping().await.unwrap();
    let fresh = mint(&api, json!({"user": "carol"})).await;
    connect(&gw, fresh).await.unwrap().ping().await.unwrap();
    api.delete("/v1/users/carol/ban")
        .await
        .expect_error(404, ErrorCode::NotFound);

    let timed = api
        .post_json("/v1/users/carol/ban", &json!({"duration": "1h"}))
        .await
        .expect(200);
    assert_eq!(
        timed["until"].as_u64().unwrap(),
        timed["since"].as_u64().unwrap() + 3_600_000
    );
    api.post_json("/v1/users/carol/ban", &json!({"reason": "x".repeat(513)}))
        .await
        .expect_error(400, ErrorCode::InvalidField);
    api.post_json("/v1/users/carol/ban", &json!({"forever": true}))
        .await
        .expect_error(422, ErrorCode::InvalidBody);
}

#[tokio::test]
async fn a_timed_ban_ends_by_itself() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    let token = mint(&api, json!({"user": "erin"})).await;
    let ban = api
        .post_json("/v1/users/erin/ban", &json!({"duration": "1s"}))
        .await
        .expect(200);
    api.post_json("/v1/tokens", &json!({"user": "erin"}))
        .await
        .expect_error(403, ErrorCode::UserBanned);
    assert_refused(connect(&gw, token.clone()).await, ErrorCode::UserBanned);
    let until = ban["until"].as_u64().unwrap();
    let wait = until.saturating_sub(tokenim_gateway::unix_millis()) + 100;
    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
    connect(&gw, token).await.unwrap().ping().await.unwrap();
    let fresh = mint(&api, json!({"user": "erin"})).await;
    connect(&gw, fresh).await.unwrap().ping().await.unwrap();
}

#[tokio::test]
async fn disconnect_closes_with_4000_and_the_user_may_come_back() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    let mut clients = Vec::new();
    for codec in Codec::ALL {
        clients.push(gw.client("dave", codec).await);
    }
    api.post_json(
        "/v1/users/dave/disconnect",
        &json!({"reason": "maintenance"}),
    )
    .await
    .expect(204);
    for client in &mut clients {
        assert_eq!(close_code(client).await, Some(4000));
    }
    let client = gw.client("dave", Codec::Json).await;
    client.ping().await.unwrap();
    // Without a body too.
    let mut again = client;
    api.post("/v1/users/dave/disconnect").await.expect(204);
    assert_eq!(close_code(&mut again).await, Some(4000));
    let log = api
        .get("/v1/audit?action=user.disconnected&target=dave")
        .await
        .expect(200);
    let reasons: Vec<_> = log["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["detail"]["reason"].clone())
        .collect();
    assert_eq!(reasons, [json!("maintenance"), json!(null)]);
}
