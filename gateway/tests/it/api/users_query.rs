//! Reading users (one, several by id, a page at a time) and deleting one:
//! its memberships go and its live connections are closed.

use serde_json::{Value, json};
use tokenim_protocol::{Codec, ErrorCode};

use super::{assert_refused, connect, create_users, ids};
use crate::support::http::Api;
use crate::support::{TestGateway, close_code};

#[tokio::test]
async fn users_are_read_one_by_one_by_ids_and_a_page_at_a_time() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    let all: Vec<String> = (0..25).map(|i| format!("u{i:02}")).collect();
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    create_users(&api, &refs).await;

    let one = api.get("/v1/users/u03").await.expect(200);
    let created_at = one["created_at"].as_u64().unwrap();
    assert_eq!(
        one,
        json!({"id": "u03", "name": "u03", "created_at": created_at, "updated_at": created_at})
    );
    let message = api
        .get("/v1/users/zz")
        .await
        .expect_error(404, ErrorCode::NotFound);
    assert!(message.contains("zz"), "{message}");
    api.get("/v1/users/bad%20id")
        .await
        .expect_error(400, ErrorCode::InvalidUser);

    let many = api.get("/v1/users?ids=u01,zz,u02").await.expect(200);
    assert_eq!(ids(&many), ["u01", "u02"]);
    assert_eq!(many["missing"], json!(["zz"]));
    api.get("/v1/users?ids=u01,bad%20id")
        .await
        .expect_error(400, ErrorCode::InvalidUser);
    // A page of nothing is refused on every listing, not served as one item.
    for listing in [
        "/v1/users",
        "/v1/groups",
        "/v1/keys",
        "/v1/audit",
        "/v1/users/u01/groups",
    ] {
        let message = api
            .get(&format!("{listing}?limit=0"))
            .await
            .expect_error(400, ErrorCode::BadRequest);
        assert!(message.contains("limit"), "{listing}: {message}");
    }
    api.get("/v1/users?colour=red")
        .await
        .expect_error(400, ErrorCode::BadRequest);

    let mut seen = Vec::new();
    let mut pages = Vec::new();
    let mut path = "/v1/users?limit=10".to_owned();
    loop {
        let page: Value = api.get(&path).await.expect(200);
        let page_ids = ids(&page);
        pages.push(page_ids.len());
        seen.extend(page_ids);
        match page["next"].as_str() {
            Some(next) => path = format!("/v1/users?limit=10&after={next}"),
            None => break,
        }
    }
    assert_eq!(pages, [10, 10, 5]);
    assert_eq!(seen, all);
}

#[tokio::test]
async fn deleting_a_user_removes_its_memberships_and_closes_its_connections() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    create_users(&api, &["alice", "bob"]).await;
    api.post_json(
        "/v1/groups",
        &json!([{"id": "team", "members": ["alice", "bob"]}]),
    )
    .await
    .expect(200);
    let mut clients = Vec::new();
    for codec in Codec::ALL {
        clients.push(gw.client("alice", codec).await);
    }
    let bob = gw.client("bob", Codec::Json).await;

    api.delete("/v1/users/alice").await.expect(204);
    for client in &mut clients {
        assert_eq!(close_code(client).await, Some(4503));
    }
    api.get("/v1/users/alice")
        .await
        .expect_error(404, ErrorCode::NotFound);
    let members = api.get("/v1/groups/team/members").await.expect(200);
    assert_eq!(ids(&members), ["bob"]);
    let groups = api.get("/v1/users/alice/groups").await.expect(200);
    assert_eq!(groups, json!({"items": []}));
    api.delete("/v1/users/alice")
        .await
        .expect_error(404, ErrorCode::NotFound);
    // A token issued before the deletion stays revoked.
    assert_refused(
        connect(&gw, gw.token("alice")).await,
        ErrorCode::TokenRevoked,
    );
    // Bob was not touched.
    bob.ping().await.unwrap();
    assert!(bob.close_info().is_none());
}
