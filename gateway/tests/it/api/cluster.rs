//! Two nodes on one Redis: what the API does through one node holds on
//! the other at once (the store is shared, moderation goes through the
//! broker).

use serde_json::json;
use tokenim_protocol::{Codec, ErrorCode};

use super::{create_key, create_users};
use crate::support::http::Api;
use crate::support::redis::RedisServer;
use crate::support::{TestGateway, close_code};

#[tokio::test]
async fn users_keys_and_bans_made_through_one_node_hold_on_the_other() {
    let redis = RedisServer::start();
    let (a, b) = TestGateway::pair(&redis.url(), false).await;
    let (api_a, api_b) = (Api::new(&a), Api::new(&b));

    create_users(&api_a, &["alice"]).await;
    assert_eq!(
        api_b.get("/v1/users/alice").await.expect(200),
        api_a.get("/v1/users/alice").await.expect(200)
    );

    let (key, secret) = create_key(&api_a, "shared", &["users:read"]).await;
    api_b
        .with_key(&key, &secret)
        .get("/v1/users/alice")
        .await
        .expect(200);
    api_a
        .post(&format!("/v1/keys/{key}/revoke"))
        .await
        .expect(200);
    api_b
        .with_key(&key, &secret)
        .get("/v1/users/alice")
        .await
        .expect_error(401, ErrorCode::ApiKeyRevoked);

    let mut carol = b.client("carol", Codec::Json).await;
    api_a
        .post_json("/v1/users/carol/ban", &json!({"reason": "spam"}))
        .await
        .expect(200);
    assert_eq!(close_code(&mut carol).await, Some(4504));
    api_b
        .post_json("/v1/tokens", &json!({"user": "carol"}))
        .await
        .expect_error(403, ErrorCode::UserBanned);
}
