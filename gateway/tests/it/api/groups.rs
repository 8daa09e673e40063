//! `/v1/groups`: creating with members (all must be known users), reading,
//! paging members, adding and removing members in batches, a user's
//! groups, deleting.

use serde_json::json;
use tokenim_protocol::ErrorCode;

use super::{create_users, ids, item, item_results};
use crate::support::TestGateway;
use crate::support::http::Api;

#[tokio::test]
async fn a_group_is_created_with_known_members_only() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    create_users(&api, &["alice", "bob"]).await;
    let body = api
        .post_json(
            "/v1/groups",
            &json!([
                {"id": "team", "name": "Team", "owner": "alice", "members": ["bob", "bob"], "metadata": {"tier": 1}},
                {"id": "ghosts", "members": ["alice", "nobody"]},
                {"id": "bad id"},
            ]),
        )
        .await
        .expect(200);
    assert_eq!(
        item_results(&body),
        [
            item(0, Some("team"), "created", None),
            item(1, Some("ghosts"), "error", Some(ErrorCode::UnknownMember)),
            item(2, Some("bad id"), "error", Some(ErrorCode::InvalidGroup)),
        ]
    );
    let message = body["results"][1]["error"]["message"].as_str().unwrap();
    assert!(message.contains("nobody"), "{message}");
    api.get("/v1/groups/ghosts")
        .await
        .expect_error(404, ErrorCode::NotFound);
    assert_eq!(
        api.get("/v1/users/alice/groups").await.expect(200),
        json!({"items": ["team"], "count": 1})
    );

    let team = api.get("/v1/groups/team").await.expect(200);
    let created_at = team["created_at"].as_u64().unwrap();
    assert_eq!(
        team,
        json!({
            "id": "team",
            "name": "Team",
            "owner": "alice",
            "metadata": {"tier": 1},
            "created_at": created_at,
            "updated_at": created_at,
        })
    );
    assert_eq!(
        ids(&api.get("/v1/groups/team/members").await.expect(200)),
        ["alice", "bob"]
    );
    assert_eq!(ids(&api.get("/v1/groups").await.expect(200)), ["team"]);
    api.get("/v1/groups/nope/members")
        .await
        .expect_error(404, ErrorCode::NotFound);
    api.get("/v1/groups/bad%20id")
        .await
        .expect_error(400, ErrorCode::InvalidGroup);
}

#[tokio::test]
async fn members_are_added_paged_removed_and_go_with_the_group() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    create_users(&api, &["alice", "bob", "carol", "dave"]).await;
    api.post_json(
        "/v1/groups",
        &json!([{"id": "team", "members": ["alice", "bob"]}]),
    )
    .await
    .expect(200);

    let added = api
        .post_json(
            "/v1/groups/team/members",
            &json!({"users": ["carol", "dave", "bob"]}),
        )
        .await
        .expect(200);
    assert_eq!(added, json!({"changed": 2, "unchanged": 1}));
    let message = api
        .post_json(
            "/v1/groups/team/members",
            &json!({"users": ["zed", "carol"]}),
        )
        .await
        .expect_error(404, ErrorCode::UnknownMember);
    assert!(message.contains("zed"), "{message}");
    api.post_json("/v1/groups/nope/members", &json!({"users": ["carol"]}))
        .await
        .expect_error(404, ErrorCode::NotFound);

    let page = api.get("/v1/groups/team/members?limit=2").await.expect(200);
    assert_eq!(
        page,
        json!({"items": ["alice", "bob"], "next": "bob", "count": 4})
    );
    let page = api
        .get("/v1/groups/team/members?limit=2&after=bob")
        .await
        .expect(200);
    assert_eq!(
        page,
        json!({"items": ["carol", "dave"], "next": "dave", "count": 4})
    );
    let page = api
        .get("/v1/groups/team/members?limit=2&after=dave")
        .await
        .expect(200);
    assert_eq!(page, json!({"items": [], "count": 4}));

    let removed = api
        .post_json(
            "/v1/groups/team/members/remove",
            &json!({"users": ["bob", "zed"]}),
        )
        .await
        .expect(200);
    assert_eq!(removed, json!({"changed": 1, "unchanged": 1}));
    assert_eq!(
        ids(&api.get("/v1/groups/team/members").await.expect(200)),
        ["alice", "carol", "dave"]
    );
    assert_eq!(
        api.get("/v1/users/bob/groups").await.expect(200),
        json!({"items": [], "count": 0})
    );

    api.post_json("/v1/groups", &json!([{"id": "club", "members": ["carol"]}]))
        .await
        .expect(200);
    assert_eq!(
        api.get("/v1/users/carol/groups").await.expect(200),
        json!({"items": ["club", "team"], "count": 2})
    );
    api.delete("/v1/groups/team").await.expect(204);
    api.get("/v1/groups/team")
        .await
        .expect_error(404, ErrorCode::NotFound);
    assert_eq!(
        api.get("/v1/users/carol/groups").await.expect(200),
        json!({"items": ["club"], "count": 1})
    );
    api.delete("/v1/groups/team")
        .await
        .expect_error(404, ErrorCode::NotFound);
}

#[tokio::test]
async fn a_membership_batch_over_the_limit_is_refused_whole() {
    let gw = TestGateway::with(|c| c.api.max_batch_items = 3).await;
    let api = Api::new(&gw);
    create_users(&api, &["a", "b", "c"]).await;
    create_users(&api, &["d"]).await;
    api.post_json("/v1/groups", &json!([{"id": "g"}]))
        .await
        .expect(200);
    let message = api
        .post_json(
            "/v1/groups/g/members",
            &json!({"users": ["a", "b", "c", "d"]}),
        )
        .await
        .expect_error(413, ErrorCode::TooManyItems);
    assert!(message.contains("at most 3"), "{message}");
    assert_eq!(
        api.get("/v1/groups/g/members").await.expect(200),
        json!({"items": [], "count": 0})
    );
}

#[tokio::test]
async fn an_owner_who_is_deleted_or_leaves_owns_the_group_no_more() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    create_users(&api, &["alice", "bob"]).await;
    let groups = json!([
        {"id": "a-team", "owner": "alice"},
        {"id": "b-team", "owner": "bob", "members": ["alice"]},
    ]);
    api.post_json("/v1/groups", &groups).await.expect(200);
    api.delete("/v1/users/alice").await.expect(204);
    let a = api.get("/v1/groups/a-team").await.expect(200);
    assert!(a.get("owner").is_none_or(|o| o.is_null()), "{a}");
    let b = api.get("/v1/groups/b-team").await.expect(200);
    assert_eq!(b["owner"], "bob", "{b}");
    // Leaving the members is leaving the ownership.
    api.post_json(
        "/v1/groups/b-team/members/remove",
        &json!({"users": ["bob"]}),
    )
    .await
    .expect(200);
    let b = api.get("/v1/groups/b-team").await.expect(200);
    assert!(b.get("owner").is_none_or(|o| o.is_null()), "{b}");
}
