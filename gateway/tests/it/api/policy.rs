//! `/v1/roles` and `/v1/grants`: define and delete roles (the built-in
//! ones stay), grant and revoke permissions, and see a grant apply to a
//! live session without reconnecting.

use serde_json::{Value, json};
use tokenim_protocol::{Codec, Data, ErrorCode};

use super::{assert_refused, channel};
use crate::support::TestGateway;
use crate::support::http::Api;

/// The role named `name` in `GET /v1/roles`, if any.
fn role(roles: &Value, name: &str) -> Option<Value> {
    roles["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .cloned()
}

#[tokio::test]
async fn roles_are_set_read_and_deleted_except_the_built_in_ones() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    let roles = api.get("/v1/roles").await.expect(200);
    assert_eq!(
        role(&roles, "app"),
        Some(json!({"name": "app", "permissions": ["send", "publish"]}))
    );
    assert_eq!(
        role(&roles, "user"),
        Some(json!({
            "name": "user",
            "permissions": ["send", "publish", "subscribe", "history", "presence"],
        }))
    );

    let set = api
        .put_json(
            "/v1/roles/moderator",
            &json!({"permissions": ["manage_group", "subscribe", "subscribe"]}),
        )
        .await
        .expect(200);
    let moderator = json!({"name": "moderator", "permissions": ["subscribe", "manage_group"]});
    assert_eq!(set, moderator);
    let roles = api.get("/v1/roles").await.expect(200);
    assert_eq!(role(&roles, "moderator"), Some(moderator));
    assert_eq!(roles["items"].as_array().unwrap().len(), 3);

    api.put_json("/v1/roles/Bad%20Name", &json!({"permissions": []}))
        .await
        .expect_error(400, ErrorCode::InvalidField);
    api.put_json("/v1/roles/x", &json!({"permissions": ["fly"]}))
        .await
        .expect_error(422, ErrorCode::InvalidBody);
    for builtin in ["user", "app"] {
        let message = api
            .delete(&format!("/v1/roles/{builtin}"))
            .await
            .expect_error(409, ErrorCode::PermissionDenied);
        assert!(message.contains("built-in"), "{message}");
    }
    api.delete("/v1/roles/moderator").await.expect(204);
    api.delete("/v1/roles/moderator")
        .await
        .expect_error(404, ErrorCode::NotFound);
    let roles = api.get("/v1/roles").await.expect(200);
    assert_eq!(role(&roles, "moderator"), None);
    assert!(role(&roles, "user").is_some() && role(&roles, "app").is_some());
}

#[tokio::test]
async fn grants_are_added_once_listed_by_subject_and_revoked() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    let alice_grant =
        json!({"subject": {"user": "alice"}, "permission": "publish", "channels": "rooms.*"});
    let bob_grant = json!({"subject": {"user": "bob"}, "permission": "history"});
    super::create_users(&api, &["alice", "bob"]).await;

    let created = api.post_json("/v1/grants", &alice_grant).await.expect(201);
    assert_eq!(created, alice_grant);
    let repeated = api.post_json("/v1/grants", &alice_grant).await.expect(200);
    assert_eq!(repeated, alice_grant);
    api.post_json("/v1/grants", &bob_grant).await.expect(201);

    assert_eq!(
        api.get("/v1/grants?subject=user:alice").await.expect(200),
        json!({"items": [alice_grant]})
    );
    assert_eq!(
        api.get("/v1/grants").await.expect(200),
        json!({"items": [alice_grant, bob_grant]})
    );

    api.post_json("/v1/grants/revoke", &alice_grant)
        .await
        .expect(204);
    api.post_json("/v1/grants/revoke", &alice_grant)
        .await
        .expect_error(404, ErrorCode::NotFound);
    assert_eq!(
        api.get("/v1/grants?subject=user:alice").await.expect(200),
        json!({"items": []})
    );

    let to_role = json!({"subject": {"role": "ghost"}, "permission": "subscribe"});
    let message = api
        .post_json("/v1/grants", &to_role)
        .await
        .expect_error(404, ErrorCode::NotFound);
    assert!(message.contains("ghost"), "{message}");
    api.put_json("/v1/roles/ghost", &json!({"permissions": []}))
        .await
        .expect(200);
    api.post_json("/v1/grants", &to_role).await.expect(201);
    assert_eq!(
        api.get("/v1/grants?subject=role:ghost").await.expect(200),
        json!({"items": [to_role]})
    );
    // A subject that names nothing is refused, not answered with no grants.
    for bogus in ["bogus", "user:bad%20id", "role:", "team:x", "app:nope"] {
        api.get(&format!("/v1/grants?subject={bogus}"))
            .await
            .expect_error(400, ErrorCode::BadRequest);
    }
    api.post_json(
        "/v1/grants",
        &json!({"subject": {"user": "alice"}, "permission": "publish", "channels": "ro*ms"}),
    )
    .await
    .expect_error(422, ErrorCode::InvalidBody);
}

#[tokio::test]
async fn a_grant_applies_to_a_live_session_at_once() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    api.put_json("/v1/roles/user", &json!({"permissions": ["subscribe"]}))
        .await
        .expect(200);
    let alice = gw.client("alice", Codec::Json).await;
    let lobby = channel("rooms.lobby");
    let hi = || Data::from_value(&"hi").unwrap();
    assert_refused(
        alice.publish(&lobby, hi()).await,
        ErrorCode::PermissionDenied,
    );

    let grant =
        json!({"subject": {"user": "alice"}, "permission": "publish", "channels": "rooms.*"});
    super::create_users(&api, &["alice"]).await;
    api.post_json("/v1/grants", &grant).await.expect(201);
    alice.publish(&lobby, hi()).await.unwrap();
    assert_refused(
        alice.publish(&channel("news.today"), hi()).await,
        ErrorCode::PermissionDenied,
    );

    api.post_json("/v1/grants/revoke", &grant).await.expect(204);
    assert_refused(
        alice.publish(&lobby, hi()).await,
        ErrorCode::PermissionDenied,
    );
}

#[tokio::test]
async fn grants_name_only_subjects_that_exist_and_go_with_their_role() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    for (subject, name) in [
        (json!({"user": "ghost"}), "user:ghost"),
        (json!({"role": "nobody"}), "role:nobody"),
        (
            json!({"app": "ak_00000000000000ee"}),
            "app:ak_00000000000000ee",
        ),
    ] {
        let message = api
            .post_json(
                "/v1/grants",
                &json!({"subject": subject, "permission": "send"}),
            )
            .await
            .expect_error(404, ErrorCode::NotFound);
        assert!(message.contains(name), "{message}");
    }
    assert_eq!(api.get("/v1/grants").await.expect(200)["items"], json!([]));
    // Deleting a role revokes what was granted to it.
    api.put_json("/v1/roles/mod", &json!({"permissions": []}))
        .await
        .expect(200);
    let grant = json!({"subject": {"role": "mod"}, "permission": "presence"});
    api.post_json("/v1/grants", &grant).await.expect(201);
    api.delete("/v1/roles/mod").await.expect(204);
    assert_eq!(api.get("/v1/grants").await.expect(200)["items"], json!([]));
    // A role made again later does not get the old grant back.
    api.put_json("/v1/roles/mod", &json!({"permissions": []}))
        .await
        .expect(200);
    assert_eq!(
        api.get("/v1/grants?subject=role:mod").await.expect(200)["items"],
        json!([])
    );
}
