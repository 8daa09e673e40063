//! `/v1/keys`: a secret is shown once, a key can do exactly its scopes,
//! rotation keeps the old secret for the overlap only, revocation is
//! immediate, and the list is paginated.

use std::time::Duration;

use serde_json::{Value, json};
use tokenim_protocol::ErrorCode;

use super::{create_key, ids};
use crate::support::http::Api;
use crate::support::{ADMIN_KEY_ID, TestGateway};

fn now_ms() -> u64 {
    tokenim_gateway::unix_millis()
}

#[tokio::test]
async fn a_new_key_shows_its_secret_once_and_can_do_exactly_its_scopes() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    let before = now_ms();
    let created = api
        .post_json(
            "/v1/keys",
            &json!({"name": "billing backend", "scopes": ["users:write", "users:read"]}),
        )
        .await
        .expect(201);
    let id = created["id"].as_str().unwrap();
    let secret = created["secret"].as_str().unwrap();
    assert!(id.starts_with("ak_") && id.len() == 19, "{created}");
    assert!(secret.starts_with("sk_"), "{created}");
    assert_eq!(created["name"], "billing backend");
    assert_eq!(created["scopes"], json!(["users:read", "users:write"]));
    let created_at = created["created_at"].as_u64().unwrap();
    assert!((before..=now_ms()).contains(&created_at));
    assert!(created.get("expires_at").is_none(), "{created}");

    let shown = api.get(&format!("/v1/keys/{id}")).await.expect(200);
    assert_eq!(
        shown,
        json!({
            "id": id,
            "name": "billing backend",
            "scopes": ["users:read", "users:write"],
            "created_at": created_at,
        })
    );
    assert!(!api.get("/v1/keys").await.text().contains(secret));

    let key = api.with_key(id, secret);
    key.post_json("/v1/users", &json!([{"id": "amy"}]))
        .await
        .expect(200);
    key.get("/v1/users/amy").await.expect(200);
    for (method, path, scope) in [
        ("GET", "/v1/groups", "groups:read"),
        ("GET", "/v1/keys", "keys:admin"),
        ("GET", "/v1/audit", "audit:read"),
        ("POST", "/v1/users/amy/ban", "users:moderate"),
    ] {
        let message = key
            .send_with(method, path, &[], b"")
            .await
            .expect_error(403, ErrorCode::MissingScope);
        assert!(message.contains(scope), "{path}: {message}");
    }
    // The refused ban did nothing.
    api.post_json("/v1/tokens", &json!({"user": "amy"}))
        .await
        .expect(200);

    api.get("/v1/keys/ak_0000000000000bad")
        .await
        .expect_error(404, ErrorCode::NotFound);
    api.get("/v1/keys/not-a-key")
        .await
        .expect_error(404, ErrorCode::NotFound);
    api.post_json("/v1/keys", &json!({"name": "x", "scopes": ["users:fly"]}))
        .await
        .expect_error(422, ErrorCode::InvalidBody);
    api.post_json("/v1/keys", &json!({"name": "", "scopes": []}))
        .await
        .expect_error(400, ErrorCode::InvalidField);
}

/// Waits until `at_ms` (a time in ms since the epoch) has passed.
async fn sleep_until_ms(at_ms: u64) {
    let now = now_ms();
    if at_ms > now {
        tokio::time::sleep(Duration::from_millis(at_ms - now + 50)).await;
    }
}

#[tokio::test]
async fn rotation_keeps_the_old_secret_for_the_overlap_only() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    let (id, first) = create_key(&api, "rotating", &["users:read"]).await;
    let probe = "/v1/users?ids=x";

    let rotated = api
        .post_json(&format!("/v1/keys/{id}/rotate"), &json!({"overlap": "2s"}))
        .await
        .expect(200);
    let second = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    assert_eq!(rotated["id"], id.as_str());
    let rotated_at = rotated["rotated_at"].as_u64().unwrap();
    let valid_until = rotated["previous_secret_valid_until"].as_u64().unwrap();
    assert_eq!(valid_until, rotated_at + 2000);
    api.with_key(&id, &first).get(probe).await.expect(200);
    api.with_key(&id, &second).get(probe).await.expect(200);
    sleep_until_ms(valid_until).await;
    api.with_key(&id, &first)
        .get(probe)
        .await
        .expect_error(401, ErrorCode::WrongSecret);
    api.with_key(&id, &second).get(probe).await.expect(200);

    let rotated = api
        .post_json(&format!("/v1/keys/{id}/rotate"), &json!({"overlap": "0s"}))
        .await
        .expect(200);
    assert!(
        rotated.get("previous_secret_valid_until").is_none(),
        "{rotated}"
    );
    let third = rotated["secret"].as_str().unwrap().to_owned();
    api.with_key(&id, &second)
        .get(probe)
        .await
        .expect_error(401, ErrorCode::WrongSecret);
    api.with_key(&id, &third).get(probe).await.expect(200);

    // Without a body: the configured overlap (default one hour).
    let rotated = api.post(&format!("/v1/keys/{id}/rotate")).await.expect(200);
    assert_eq!(
        rotated["previous_secret_valid_until"].as_u64().unwrap(),
        rotated["rotated_at"].as_u64().unwrap() + 3_600_000
    );
    api.with_key(&id, &third).get(probe).await.expect(200);
    // The secret is never shown again.
    assert!(
        api.get(&format!("/v1/keys/{id}"))
            .await
            .expect(200)
            .get("secret")
            .is_none()
    );
    api.post_json("/v1/keys/ak_0000000000000bad/rotate", &json!({}))
        .await
        .expect_error(404, ErrorCode::NotFound);
}

#[tokio::test]
async fn a_revoked_key_is_refused_at_once_and_cannot_be_rotated() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    let (id, secret) = create_key(&api, "doomed", &["users:read"]).await;
    let key = api.with_key(&id, &secret);
    key.get("/v1/users?ids=x").await.expect(200);
    let revoked = api.post(&format!("/v1/keys/{id}/revoke")).await.expect(200);
    let revoked_at = revoked["revoked_at"].as_u64().unwrap();
    key.get("/v1/users?ids=x")
        .await
        .expect_error(401, ErrorCode::ApiKeyRevoked);
    assert_eq!(
        api.get(&format!("/v1/keys/{id}")).await.expect(200)["revoked_at"],
        revoked_at
    );
    api.post(&format!("/v1/keys/{id}/rotate"))
        .await
        .expect_error(409, ErrorCode::ApiKeyRevoked);
    api.post("/v1/keys/ak_0000000000000bad/revoke")
        .await
        .expect_error(404, ErrorCode::NotFound);
}

#[tokio::test]
async fn a_deleted_key_is_gone_refused_everywhere_and_audited() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    let (id, secret) = create_key(&api, "temporary", &["users:read"]).await;
    let key = api.with_key(&id, &secret);
    key.get("/v1/users?ids=x").await.expect(200);
    let path = format!("/v1/keys/{id}");
    api.delete(&path).await.expect(204);
    key.get("/v1/users?ids=x")
        .await
        .expect_error(401, ErrorCode::UnknownApiKey);
    api.get(&path).await.expect_error(404, ErrorCode::NotFound);
    api.delete(&path)
        .await
        .expect_error(404, ErrorCode::NotFound);
    let listed = api.get("/v1/keys").await.expect(200);
    assert_eq!(listed["count"], 1, "{listed}");
    assert!(!listed.to_string().contains(&id), "{listed}");
    let audit = api
        .get(&format!("/v1/audit?action=key.deleted&target={id}"))
        .await
        .expect(200);
    assert_eq!(
        audit["records"][0]["detail"]["name"], "temporary",
        "{audit}"
    );
    // A revoked key may be deleted too (tidying the list).
    let (revoked, _) = create_key(&api, "old", &["users:read"]).await;
    api.post(&format!("/v1/keys/{revoked}/revoke"))
        .await
        .expect(200);
    api.delete(&format!("/v1/keys/{revoked}")).await.expect(204);
}

#[tokio::test]
async fn the_key_list_walks_every_key_once_a_page_at_a_time() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    let mut expected = vec![ADMIN_KEY_ID.to_owned()];
    for i in 0..5 {
        expected.push(create_key(&api, &format!("k{i}"), &["audit:read"]).await.0);
    }
    expected.sort();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..10 {
        let path = match &after {
            Some(a) => format!("/v1/keys?limit=2&after={a}"),
            None => "/v1/keys?limit=2".to_owned(),
        };
        let page: Value = api.get(&path).await.expect(200);
        for item in page["items"].as_array().unwrap() {
            assert!(item.get("secret").is_none(), "{item}");
        }
        let page_ids = ids(&page);
        assert!(page_ids.len() <= 2);
        seen.extend(page_ids);
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn the_last_working_admin_key_cannot_be_revoked() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    let bootstrap = format!("/v1/keys/{ADMIN_KEY_ID}/revoke");
    api.post(&bootstrap)
        .await
        .expect_error(409, ErrorCode::LastAdminKey);
    api.get("/v1/keys").await.expect(200);
    // A key that cannot administer keys does not count as a way back in.
    create_key(&api, "reader", &["users:read"]).await;
    api.post(&bootstrap)
        .await
        .expect_error(409, ErrorCode::LastAdminKey);

    let (id, secret) = create_key(&api, "second admin", &["keys:admin"]).await;
    api.post(&bootstrap).await.expect(200);
    let second = api.with_key(&id, &secret);
    second
        .post(&format!("/v1/keys/{id}/revoke"))
        .await
        .expect_error(409, ErrorCode::LastAdminKey);
    second
        .delete(&format!("/v1/keys/{id}"))
        .await
        .expect_error(409, ErrorCode::LastAdminKey);
    let keys = second.get(&format!("/v1/keys/{id}")).await.expect(200);
    assert!(keys["revoked_at"].is_null(), "{keys}");
}

#[tokio::test]
async fn the_configured_admin_key_is_restored_on_start_and_the_audit_log_says_so() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    let (id, secret) = create_key(&api, "second admin", &["keys:admin", "audit:read"]).await;
    api.post(&format!("/v1/keys/{ADMIN_KEY_ID}/revoke"))
        .await
        .expect(200);
    api.get("/v1/keys")
        .await
        .expect_error(401, ErrorCode::ApiKeyRevoked);

    let data = std::sync::Arc::clone(&gw.data);
    gw.stop().await;
    let gw = TestGateway::in_dir(data, |_| {}).await;
    let api = Api::new(&gw);
    let key = api
        .get(&format!("/v1/keys/{ADMIN_KEY_ID}"))
        .await
        .expect(200);
    assert!(key["revoked_at"].is_null(), "{key}");
    let log = api.get("/v1/audit?action=key.restored").await.expect(200);
    let records = log["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{log}");
    assert_eq!(records[0]["actor"], "config");
    assert!(records[0]["detail"]["revoked_at"].is_u64(), "{log}");
    // The other admin key is untouched; a second start restores nothing.
    api.with_key(&id, &secret).get("/v1/keys").await.expect(200);
    let data = std::sync::Arc::clone(&gw.data);
    gw.stop().await;
    let gw = TestGateway::in_dir(data, |_| {}).await;
    let log = Api::new(&gw)
        .get("/v1/audit?action=key.restored")
        .await
        .expect(200);
    assert_eq!(log["records"].as_array().unwrap().len(), 1, "{log}");
}

#[tokio::test]
async fn a_key_needs_a_scope_and_a_second_rotation_may_not_end_the_first_old_secret_unasked() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    let message = api
        .post_json("/v1/keys", &json!({"name": "nothing", "scopes": []}))
        .await
        .expect_error(400, ErrorCode::InvalidField);
    assert!(message.contains("scopes"), "{message}");

    let (id, first) = super::create_key(&api, "backend", &["users:read"]).await;
    let rotated = api
        .post_json(&format!("/v1/keys/{id}/rotate"), &json!({"overlap": "1h"}))
        .await
        .expect(200);
    let second = rotated["secret"].as_str().unwrap().to_owned();
    let message = api
        .post_json(&format!("/v1/keys/{id}/rotate"), &json!({"overlap": "1h"}))
        .await
        .expect_error(409, ErrorCode::RotationInProgress);
    assert!(message.contains("overlap"), "{message}");
    // Both secrets still work: nothing changed.
    for secret in [&first, &second] {
        api.with_key(&id, secret)
            .get("/v1/users?ids=x")
            .await
            .expect(200);
    }
    // Asked for on purpose (overlap 0): the old secret ends now.
    let third = api
        .post_json(&format!("/v1/keys/{id}/rotate"), &json!({"overlap": "0s"}))
        .await
        .expect(200);
    let third = third["secret"].as_str().unwrap();
    api.with_key(&id, &first)
        .get("/v1/users?ids=x")
        .await
        .expect_error(401, ErrorCode::WrongSecret);
    api.with_key(&id, third)
        .get("/v1/users?ids=x")
        .await
        .expect(200);
}
