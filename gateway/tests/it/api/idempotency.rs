//! `Idempotency-Key`: a retry gets the first response again and does
//! nothing twice; the same key with another request is refused.

use serde_json::json;
use tokenim_protocol::ErrorCode;

use super::{create_key, item, item_results};
use crate::support::TestGateway;
use crate::support::http::Api;

const JSON: (&str, &str) = ("content-type", "application/json");

#[tokio::test]
async fn a_retry_with_the_same_key_replays_the_first_response_and_does_nothing_twice() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    let body = br#"[{"id": "alice"}, {"id": "bob"}]"#;
    let headers = [JSON, ("idempotency-key", "import-2024-01")];

    let first = api.send_with("POST", "/v1/users", &headers, body).await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.header("idempotent-replayed"), None);
    assert_eq!(first.json()["created"], 2);

    // Deleted in between: a replay does not create it again.
    api.delete("/v1/users/alice").await.expect(204);
    let retry = api.send_with("POST", "/v1/users", &headers, body).await;
    assert_eq!(retry.status, 200, "{}", retry.text());
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.body, first.body);
    api.get("/v1/users/alice")
        .await
        .expect_error(404, ErrorCode::NotFound);

    // The same key with another body, or another mode, is a conflict.
    let other = br#"[{"id": "carol"}]"#;
    let message = api
        .send_with("POST", "/v1/users", &headers, other)
        .await
        .expect_error(422, ErrorCode::IdempotencyConflict);
    assert!(message.contains("different request"), "{message}");
    api.send_with("POST", "/v1/users?mode=upsert", &headers, body)
        .await
        .expect_error(422, ErrorCode::IdempotencyConflict);
    api.get("/v1/users/carol")
        .await
        .expect_error(404, ErrorCode::NotFound);
    // ... and so is the same key on another endpoint.
    api.send_with("POST", "/v1/groups", &headers, br#"[{"id": "g"}]"#)
        .await
        .expect_error(422, ErrorCode::IdempotencyConflict);
    api.get("/v1/groups/g")
        .await
        .expect_error(404, ErrorCode::NotFound);

    // Keys are per API key: another key's request with it runs.
    let (id, secret) = create_key(&api, "other", &["users:write"]).await;
    let fresh = api
        .with_key(&id, &secret)
        .send_with("POST", "/v1/users", &headers, body)
        .await;
    assert_eq!(fresh.header("idempotent-replayed"), None);
    assert_eq!(
        item_results(&fresh.expect(200)),
        [
            item(0, Some("alice"), "created", None),
            item(1, Some("bob"), "exists", None),
        ]
    );
}

#[tokio::test]
async fn a_request_refused_whole_is_not_kept_so_its_retry_runs() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    let headers = [JSON, ("idempotency-key", "k2")];
    api.send_with("POST", "/v1/users", &headers, b"[{")
        .await
        .expect_error(400, ErrorCode::InvalidBody);
    let fixed = api
        .send_with("POST", "/v1/users", &headers, br#"[{"id": "dan"}]"#)
        .await;
    assert_eq!(fixed.header("idempotent-replayed"), None);
    assert_eq!(fixed.expect(200)["created"], 1);

    let bad_key = [JSON, ("idempotency-key", "has space")];
    api.send_with("POST", "/v1/users", &bad_key, br#"[{"id": "eve"}]"#)
        .await
        .expect_error(400, ErrorCode::BadRequest);
    api.get("/v1/users/eve")
        .await
        .expect_error(404, ErrorCode::NotFound);
}

#[tokio::test]
async fn group_batches_are_idempotent_too() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    super::create_users(&api, &["amy"]).await;
    let headers = [JSON, ("idempotency-key", "groups-1")];
    let body = json!([{"id": "team", "members": ["amy"]}]).to_string();
    let first = api
        .send_with("POST", "/v1/groups", &headers, body.as_bytes())
        .await;
    assert_eq!(first.json()["created"], 1);
    api.delete("/v1/groups/team").await.expect(204);
    let retry = api
        .send_with("POST", "/v1/groups", &headers, body.as_bytes())
        .await;
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.body, first.body);
    api.get("/v1/groups/team")
        .await
        .expect_error(404, ErrorCode::NotFound);
}
