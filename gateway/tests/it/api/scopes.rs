//! Finer scopes: `users:write` creates and updates users but neither
//! deletes them (`users:delete`) nor gives roles (`users:roles`); and
//! keys whose name, scopes and expiry change with `PATCH /v1/keys/{id}`.

use serde_json::{Value, json};
use tokenim_protocol::ErrorCode;

use super::{create_key, define_roles, item, item_results};
use crate::support::http::Api;
use crate::support::{ADMIN_KEY_ID, TestGateway};

#[tokio::test]
async fn users_write_neither_deletes_nor_gives_roles() {
    let gw = TestGateway::spawn().await;
    let admin = Api::new(&gw);
    define_roles(&admin, &["teacher"]).await;
    let (id, secret) = create_key(&admin, "sync", &["users:write", "users:read"]).await;
    let sync = admin.with_key(&id, &secret);

    // Items that give roles are refused one by one; the others go in.
    let body = sync
        .post_json(
            "/v1/users",
            &json!([{"id": "amy", "roles": ["teacher"]}, {"id": "bob"}]),
        )
        .await
        .expect(200);
    assert_eq!(
        item_results(&body),
        [
            item(0, Some("amy"), "error", Some(ErrorCode::MissingScope)),
            item(1, Some("bob"), "created", None),
        ]
    );
    let message = body["results"][0]["error"]["message"].as_str().unwrap();
    assert!(message.contains("users:roles"), "{message}");
    let body = sync
        .post_json(
            "/v1/users?mode=merge",
            &json!([{"id": "bob", "roles": []}, {"id": "bob2", "name": "B"}]),
        )
        .await
        .expect(200);
    assert_eq!(
        item_results(&body),
        [
            item(0, Some("bob"), "error", Some(ErrorCode::MissingScope)),
            item(1, Some("bob2"), "created", None),
        ]
    );
    // An upsert replaces roles too.
    sync.post_json("/v1/users?mode=upsert", &json!([{"id": "bob"}]))
        .await
        .expect_error(403, ErrorCode::MissingScope);
    sync.patch_json("/v1/users/bob", &json!({"roles": ["teacher"]}))
        .await
        .expect_error(403, ErrorCode::MissingScope);
    sync.post_json("/v1/roles/teacher/users", &json!({"users": ["bob"]}))
        .await
        .expect_error(403, ErrorCode::MissingScope);
    let bob = sync
        .patch_json("/v1/users/bob", &json!({"name": "Bob"}))
        .await
        .expect(200);
    assert_eq!(bob["name"], "Bob");
    assert!(bob.get("roles").is_none(), "no roles were given: {bob}");
    sync.delete("/v1/users/bob")
        .await
        .expect_error(403, ErrorCode::MissingScope);
    sync.get("/v1/users/bob").await.expect(200);

    // The scopes that do it.
    let (id, secret) = create_key(&admin, "hr", &["users:roles", "users:delete"]).await;
    let hr = admin.with_key(&id, &secret);
    hr.post_json("/v1/roles/teacher/users", &json!({"users": ["bob"]}))
        .await
        .expect(200);
    assert_eq!(
        sync.get("/v1/users/bob").await.expect(200)["roles"],
        json!(["teacher"])
    );
    assert_eq!(hr.delete("/v1/users/bob").await.status, 204);
    sync.get("/v1/users/bob")
        .await
        .expect_error(404, ErrorCode::NotFound);
}

fn key_path(id: &str) -> String {
    format!("/v1/keys/{id}")
}

#[tokio::test]
async fn a_key_changes_name_scopes_and_expiry_and_requests_see_it_at_once() {
    let gw = TestGateway::spawn().await;
    let admin = Api::new(&gw);
    let (id, secret) = create_key(&admin, "reporting", &["users:read"]).await;
    let key = admin.with_key(&id, &secret);
    key.get("/v1/users").await.expect(200);
    key.get("/v1/groups")
        .await
        .expect_error(403, ErrorCode::MissingScope);

    let changed = admin
        .patch_json(
            &key_path(&id),
            &json!({"name": "reports", "scopes": ["groups:read"], "expires_in": "30d"}),
        )
        .await
        .expect(200);
    assert_eq!(changed["name"], "reports");
    assert_eq!(changed["scopes"], json!(["groups:read"]));
    let now = tokenim_gateway::unix_millis();
    let expires = changed["expires_at"].as_u64().unwrap();
    let month = 30 * 86_400_000;
    assert!(
        (now + month - 60_000..=now + month).contains(&expires),
        "{changed}"
    );
    assert!(
        changed.get("secret").is_none(),
        "the secret is never shown again"
    );
    key.get("/v1/groups").await.expect(200);
    key.get("/v1/users")
        .await
        .expect_error(403, ErrorCode::MissingScope);
    let never = admin
        .patch_json(&key_path(&id), &json!({"expires_in": null}))
        .await
        .expect(200);
    assert!(never.get("expires_at").is_none(), "{never}");

    // Refusals change nothing.
    for (patch, status, code) in [
        (json!({"scopes": []}), 400, ErrorCode::InvalidField),
        (
            json!({"scopes": ["users:everything"]}),
            422,
            ErrorCode::InvalidBody,
        ),
        (json!({"name": ""}), 400, ErrorCode::InvalidField),
        (json!({"secret": "sk_x"}), 422, ErrorCode::InvalidBody),
        (json!({"expires_in": "soon"}), 422, ErrorCode::InvalidBody),
    ] {
        admin
            .patch_json(&key_path(&id), &patch)
            .await
            .expect_error(status, code);
    }
    assert_eq!(admin.get(&key_path(&id)).await.expect(200), never);
    admin
        .patch_json("/v1/keys/ak_ffffffffffffffff", &json!({"name": "x"}))
        .await
        .expect_error(404, ErrorCode::NotFound);

    // Audited with the fields before and after.
    let log = admin
        .get(&format!("/v1/audit?action=key.updated&target={id}"))
        .await
        .expect(200);
    let records = log["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{log}");
    let first = records
        .iter()
        .find(|r| r["detail"]["after"]["name"] == "reports")
        .expect("the first change");
    assert_eq!(
        first["detail"]["before"],
        json!({"name": "reporting", "scopes": ["users:read"], "expires_at": null})
    );

    // A revoked key stays revoked.
    admin
        .post(&format!("{}/revoke", key_path(&id)))
        .await
        .expect(200);
    admin
        .patch_json(&key_path(&id), &json!({"scopes": ["users:read"]}))
        .await
        .expect_error(409, ErrorCode::ApiKeyRevoked);
}

#[tokio::test]
async fn the_last_admin_key_keeps_keys_admin_and_its_lifetime() {
    let gw = TestGateway::spawn().await;
    let admin = Api::new(&gw);
    let path = key_path(ADMIN_KEY_ID);
    for patch in [
        json!({"scopes": ["users:read"]}),
        json!({"expires_in": "1h"}),
    ] {
        admin
            .patch_json(&path, &patch)
            .await
            .expect_error(409, ErrorCode::LastAdminKey);
    }
    let renamed = admin
        .patch_json(&path, &json!({"name": "root"}))
        .await
        .expect(200);
    assert_eq!(renamed["name"], "root");
    // With a second admin key, the first may give up keys:admin.
    create_key(&admin, "second admin", &["keys:admin"]).await;
    let reduced: Value = admin
        .patch_json(&path, &json!({"scopes": ["audit:read"]}))
        .await
        .expect(200);
    assert_eq!(reduced["scopes"], json!(["audit:read"]));
    admin
        .get("/v1/keys")
        .await
        .expect_error(403, ErrorCode::MissingScope);
}
