//! Bodies and parameters read as the OpenAPI document says: JSON only as
//! JSON (415 otherwise, even where the body is optional), malformed JSON
//! 400 and the wrong shape 422, durations with a ceiling, names counted in
//! characters, numbers within `int64`, and nothing stored by a refusal.

use serde_json::{Value, json};
use tokenim_protocol::ErrorCode;

use super::{create_key, create_users};
use crate::support::TestGateway;
use crate::support::http::Api;

/// 100 years of 365.25 days, in ms: the longest duration a body may ask.
const HUNDRED_YEARS_MS: u64 = 100 * 31_557_600 * 1000;

#[tokio::test]
async fn json_bodies_must_be_sent_as_json_even_when_optional() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    create_users(&api, &["alice"]).await;
    let patch = br#"{"name":"Alice"}"#;
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        api.send("PATCH", "/v1/users/alice", content_type, patch)
            .await
            .expect_error(415, ErrorCode::InvalidBody);
        api.send(
            "POST",
            "/v1/users/alice/ban",
            content_type,
            br#"{"duration":"1h"}"#,
        )
        .await
        .expect_error(415, ErrorCode::InvalidBody);
    }
    let alice = api.get("/v1/users/alice").await.expect(200);
    assert_eq!(alice["name"], "alice", "a refused patch changes nothing");
    // A refused ban bans nobody: she still gets a token.
    api.post_json("/v1/tokens", &json!({"user": "alice"}))
        .await
        .expect(200);
    // application/json is a merge patch too; an optional body may be empty.
    let patched = api
        .send("PATCH", "/v1/users/alice", "application/json", patch)
        .await
        .expect(200);
    assert_eq!(patched["name"], "Alice");
    let (id, _) = create_key(&api, "rotated", &["users:read"]).await;
    api.post(&format!("/v1/keys/{id}/rotate")).await.expect(200);

    // Malformed JSON is 400, JSON of the wrong shape 422.
    let (id, _) = create_key(&api, "rotated again", &["users:read"]).await;
    let rotate = format!("/v1/keys/{id}/rotate");
    api.send("POST", &rotate, "application/json", b"{")
        .await
        .expect_error(400, ErrorCode::InvalidBody);
    for body in [
        json!({"overlap": 5}),
        json!({"overlap": "soon"}),
        json!({"x": 1}),
        json!(["1h"]),
    ] {
        api.post_json(&rotate, &body)
            .await
            .expect_error(422, ErrorCode::InvalidBody);
    }
    // A body is an object, never an array of the fields in order (which
    // serde alone would read).
    for (path, body) in [
        ("/v1/keys", json!(["fields in order", ["users:read"]])),
        ("/v1/users/alice/disconnect", json!([])),
        ("/v1/users/alice/ban", json!(["1h", "spam"])),
    ] {
        api.post_json(path, &body)
            .await
            .expect_error(422, ErrorCode::InvalidBody);
    }
    assert_eq!(api.get("/v1/keys").await.expect(200)["count"], 3);
}

#[tokio::test]
async fn durations_read_like_90d_and_stop_at_a_hundred_years() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    let before = tokenim_gateway::unix_millis();
    let key = api
        .post_json(
            "/v1/keys",
            &json!({"name": "forever-ish", "scopes": ["users:read"], "expires_in": "999999999y 999999999y"}),
        )
        .await
        .expect(201);
    let expires_at = key["expires_at"].as_u64().unwrap();
    assert!(
        (before + HUNDRED_YEARS_MS..=tokenim_gateway::unix_millis() + HUNDRED_YEARS_MS)
            .contains(&expires_at),
        "{key}"
    );
    let key = api
        .post_json(
            "/v1/keys",
            &json!({"name": "a while", "scopes": ["users:read"], "expires_in": "1h 30m"}),
        )
        .await
        .expect(201);
    let lifetime = key["expires_at"].as_u64().unwrap() - key["created_at"].as_u64().unwrap();
    assert_eq!(lifetime, 5_400_000, "{key}");
    create_users(&api, &["bob"]).await;
    let ban = api
        .post_json("/v1/users/bob/ban", &json!({"duration": "100000000000w"}))
        .await
        .expect(200);
    assert_eq!(
        ban["until"].as_u64().unwrap() - ban["since"].as_u64().unwrap(),
        HUNDRED_YEARS_MS,
        "{ban}"
    );
    for bad in ["", "soon", "5", "-1h"] {
        api.post_json(
            "/v1/keys",
            &json!({"name": "bad", "scopes": ["users:read"], "expires_in": bad}),
        )
        .await
        .expect_error(422, ErrorCode::InvalidBody);
    }
    let keys = api.get("/v1/keys").await.expect(200);
    assert_eq!(keys["count"], 3, "refused keys are not stored: {keys}");
}

#[tokio::test]
async fn names_are_counted_in_characters_and_numbers_stay_within_int64() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    let new_key = |name: String| {
        let api = api.clone();
        async move {
            api.post_json("/v1/keys", &json!({"name": name, "scopes": ["users:read"]}))
                .await
        }
    };
    // 128 two-byte characters are 256 bytes, and a valid name.
    let long = "é".repeat(128);
    assert_eq!(new_key(long.clone()).await.expect(201)["name"], long);
    for bad in ["é".repeat(129), String::new(), "bell\u{7}".to_owned()] {
        new_key(bad)
            .await
            .expect_error(400, ErrorCode::InvalidField);
    }
    create_users(&api, &["carol"]).await;
    let reason = "ü".repeat(512);
    let ban = api
        .post_json("/v1/users/carol/ban", &json!({"reason": reason}))
        .await
        .expect(200);
    assert_eq!(ban["reason"], Value::String(reason));
    for path in ["/v1/users/carol/ban", "/v1/users/carol/disconnect"] {
        api.post_json(path, &json!({"reason": "ü".repeat(513)}))
            .await
            .expect_error(400, ErrorCode::InvalidField);
    }
    api.post_json(
        "/v1/users/carol/disconnect",
        &json!({"reason": "ü".repeat(512)}),
    )
    .await
    .expect(204);

    let max = i64::MAX;
    api.get(&format!("/v1/audit?to={max}&from=0&after=0"))
        .await
        .expect(200);
    for param in ["to", "from", "after"] {
        let message = api
            .get(&format!("/v1/audit?{param}={}", max as u64 + 1))
            .await
            .expect_error(400, ErrorCode::BadRequest);
        assert!(message.contains(&max.to_string()), "{message}");
    }
    // A job's failures are paged by item index.
    api.get("/v1/jobs/job_0000000000000000/failures?after=abc")
        .await
        .expect_error(400, ErrorCode::BadRequest);
    api.get("/v1/jobs/job_0000000000000000/failures?after=10")
        .await
        .expect_error(404, ErrorCode::NotFound);
}
