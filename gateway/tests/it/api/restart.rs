//! The embedded store across a restart: a node started on the same
//! directory finds users, groups, keys, roles, grants and the audit log.

use std::sync::Arc;

use serde_json::json;

use super::{create_key, create_users, ids};
use crate::support::TestGateway;
use crate::support::http::Api;

#[tokio::test]
async fn users_groups_keys_and_grants_survive_a_restart() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    create_users(&api, &["alice", "bob"]).await;
    api.post_json(
        "/v1/groups",
        &json!([{"id": "team", "owner": "alice", "members": ["bob"]}]),
    )
    .await
    .expect(200);
    let (key, secret) = create_key(&api, "survivor", &["users:read", "groups:read"]).await;
    let grant = json!({"subject": {"user": "alice"}, "permission": "manage_group"});
    api.post_json("/v1/grants", &grant).await.expect(201);
    api.put_json("/v1/roles/mod", &json!({"permissions": ["presence"]}))
        .await
        .expect(200);
    let alice = api.get("/v1/users/alice").await.expect(200);
    let team = api.get("/v1/groups/team").await.expect(200);
    let audit = api.get("/v1/audit").await.expect(200);

    let data = Arc::clone(&gw.data);
    gw.stop().await;
    let gw = TestGateway::in_dir(data, |_| {}).await;
    let api = Api::new(&gw);

    assert_eq!(api.get("/v1/users/alice").await.expect(200), alice);
    api.get("/v1/users/bob").await.expect(200);
    assert_eq!(api.get("/v1/groups/team").await.expect(200), team);
    assert_eq!(
        ids(&api.get("/v1/groups/team/members").await.expect(200)),
        ["alice", "bob"]
    );
    let survivor = api.with_key(&key, &secret);
    assert_eq!(
        survivor.get("/v1/users/alice").await.expect(200),
        alice,
        "the key still authenticates"
    );
    assert_eq!(
        api.get(&format!("/v1/keys/{key}")).await.expect(200)["name"],
        "survivor"
    );
    assert_eq!(
        api.get("/v1/grants").await.expect(200),
        json!({"items": [grant]})
    );
    let roles = api.get("/v1/roles").await.expect(200);
    assert!(
        roles["items"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "mod", "permissions": ["presence"]})),
        "{roles}"
    );
    let after = api.get("/v1/audit").await.expect(200);
    let before = audit["records"].as_array().unwrap();
    assert_eq!(
        &after["records"].as_array().unwrap()[..before.len()],
        before
    );
    // New records continue the log's ids.
    api.post(&format!("/v1/keys/{key}/revoke"))
        .await
        .expect(200);
    let log = api.get("/v1/audit?action=key.revoked").await.expect(200);
    let last_before = before.last().unwrap()["id"].as_u64().unwrap();
    assert!(log["records"][0]["id"].as_u64().unwrap() > last_before);
}
