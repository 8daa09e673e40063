//! API key authentication: Basic and Bearer credentials, a code for each
//! way a request can fail, and every failure in the audit log with its
//! source address.

use std::time::Duration;

use serde_json::json;
use tokenim_protocol::ErrorCode;

use super::create_key;
use crate::support::http::Api;
use crate::support::{ADMIN_KEY_ID, ADMIN_SECRET, TestGateway};

#[tokio::test]
async fn each_authentication_failure_has_its_own_code_and_is_audited() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    let (expiring, expiring_secret) = {
        let body = api
            .post_json(
                "/v1/keys",
                &json!({"name": "short", "scopes": ["users:read"], "expires_in": "1s"}),
            )
            .await
            .expect(201);
        assert!(body["expires_at"].as_u64().unwrap() > body["created_at"].as_u64().unwrap());
        (
            body["id"].as_str().unwrap().to_owned(),
            body["secret"].as_str().unwrap().to_owned(),
        )
    };
    let expiring_api = api.with_key(&expiring, &expiring_secret);
    expiring_api.get("/v1/users?ids=x").await.expect(200);
    let (revoked, revoked_secret) = create_key(&api, "gone", &["users:read"]).await;
    api.post(&format!("/v1/keys/{revoked}/revoke"))
        .await
        .expect(200);
    let (reader, reader_secret) = create_key(&api, "reader", &["users:read"]).await;

    let refused = api.with_authorization(None).get("/v1/users?ids=x").await;
    let message = refused.expect_error(401, ErrorCode::MissingCredentials);
    assert!(message.contains("Authorization"), "{message}");
    assert_eq!(
        refused.header("www-authenticate"),
        Some(r#"Basic realm="tokenim", charset="UTF-8""#),
        "a 401 says which credentials to send"
    );
    api.with_key("ak_00000000000000ff", "whatever")
        .get("/v1/users?ids=x")
        .await
        .expect_error(401, ErrorCode::UnknownApiKey);
    api.with_key(ADMIN_KEY_ID, "not-the-secret")
        .get("/v1/users?ids=x")
        .await
        .expect_error(401, ErrorCode::WrongSecret);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    expiring_api
        .get("/v1/users?ids=x")
        .await
        .expect_error(401, ErrorCode::ApiKeyExpired);
    api.with_key(&revoked, &revoked_secret)
        .get("/v1/users?ids=x")
        .await
        .expect_error(401, ErrorCode::ApiKeyRevoked);
    let message = api
        .with_key(&reader, &reader_secret)
        .post_json("/v1/users", &json!([{"id": "alice"}]))
        .await
        .expect_error(403, ErrorCode::MissingScope);
    assert!(message.contains("users:write"), "{message}");
    // Nothing was created by the refused request.
    api.get("/v1/users/alice")
        .await
        .expect_error(404, ErrorCode::NotFound);

    // A request that did not prove its key is `anonymous`, with the key
    // it named as the target; a proven key lacking a scope is the actor.
    let log = api.get("/v1/audit?action=auth.failed").await.expect(200);
    let records = log["records"].as_array().unwrap();
    let seen: Vec<(&str, &str, &str, &str)> = records
        .iter()
        .map(|r| {
            assert_eq!(r["action"], "auth.failed", "{r}");
            (
                r["actor"].as_str().unwrap(),
                r["target"].as_str().unwrap(),
                r["detail"]["reason"].as_str().unwrap(),
                r["source"].as_str().unwrap(),
            )
        })
        .collect();
    let local = "127.0.0.1";
    assert_eq!(
        seen,
        [
            ("anonymous", "anonymous", "missing", local),
            ("anonymous", "ak_00000000000000ff", "unknown_key", local),
            ("anonymous", ADMIN_KEY_ID, "wrong_secret", local),
            ("anonymous", expiring.as_str(), "expired", local),
            ("anonymous", revoked.as_str(), "revoked", local),
            (reader.as_str(), reader.as_str(), "missing_scope", local),
        ]
    );
    assert_eq!(
        gw.metric("tokenim_auth_failures_total{reason=\"wrong_secret\"}"),
        1.0
    );
}

#[tokio::test]
async fn basic_and_bearer_credentials_both_work_and_malformed_ones_are_missing() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    api.get("/v1/roles").await.expect(200);
    let bearer = api.with_authorization(Some(format!("Bearer {ADMIN_KEY_ID}:{ADMIN_SECRET}")));
    bearer.get("/v1/roles").await.expect(200);
    let lower = api.with_authorization(Some(format!("bearer {ADMIN_KEY_ID}:{ADMIN_SECRET}")));
    lower.get("/v1/roles").await.expect(200);
    api.with_authorization(Some(format!("Bearer {ADMIN_KEY_ID}:nope")))
        .get("/v1/roles")
        .await
        .expect_error(401, ErrorCode::WrongSecret);
    for value in [
        format!("Token {ADMIN_KEY_ID}:{ADMIN_SECRET}"),
        "Basic !!!not-base64".to_owned(),
        format!("Bearer {ADMIN_KEY_ID}"),
        "Basic".to_owned(),
    ] {
        api.with_authorization(Some(value))
            .get("/v1/roles")
            .await
            .expect_error(401, ErrorCode::MissingCredentials);
    }
}
