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
async fn listings_carry_their_totals_and_users_are_found_by_prefix_name_and_metadata() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    let mut users: Vec<Value> = (0..1200)
        .map(|i| {
            json!({"id": format!("s{i:04}"), "name": format!("Student {i}"),
                   "metadata": {"class": format!("c{}", i % 40), "year": 2026}})
        })
        .collect();
    users.push(json!({"id": "t-ann", "name": "Ann Teacher", "metadata": {"class": "c7"}}));
    for chunk in users.chunks(1000) {
        api.post_json("/v1/users", &json!(chunk)).await.expect(200);
    }
    let page = api.get("/v1/users?limit=5").await.expect(200);
    assert_eq!(page["count"], 1201);
    let page = api.get("/v1/users?prefix=s01&limit=1000").await.expect(200);
    assert_eq!((ids(&page).len(), &page["count"]), (100, &json!(100)));
    assert!(ids(&page).iter().all(|id| id.starts_with("s01")));
    assert!(page.get("next").is_none(), "{}", page["next"]);

    // A search reads a bounded number of users per page and says where to go on.
    let collect = |query: &'static str| {
        let api = api.clone();
        async move {
            let mut found = Vec::new();
            let mut path = format!("/v1/users?{query}");
            loop {
                let page = api.get(&path).await.expect(200);
                assert!(
                    page.get("count").is_none(),
                    "a search is not counted: {page}"
                );
                found.extend(ids(&page));
                match page["next"].as_str() {
                    Some(next) => path = format!("/v1/users?{query}&after={next}"),
                    None => return found,
                }
            }
        }
    };
    assert_eq!(collect("name=TEACHER").await, ["t-ann"]);
    let class7 = collect("metadata_key=class&metadata_value=c7&limit=7").await;
    assert_eq!(class7.len(), 31, "30 students and the teacher");
    assert!(
        class7.windows(2).all(|w| w[0] < w[1]),
        "in id order, once each"
    );
    assert_eq!(
        collect("metadata_key=year&metadata_value=2026&prefix=s119")
            .await
            .len(),
        10
    );
    assert!(collect("name=nobody").await.is_empty());
    // A key alone: every user that has it; a value alone: in any field.
    assert_eq!(collect("metadata_key=year").await.len(), 1200);
    assert_eq!(collect("metadata_value=c7").await.len(), 31);
    for empty in ["name=", "metadata_key="] {
        api.get(&format!("/v1/users?{empty}"))
            .await
            .expect_error(400, ErrorCode::BadRequest);
    }
    // A page size beyond the largest page is lowered to it; 0 and words are refused.
    let huge = api
        .get("/v1/users?limit=99999999999999999999999999")
        .await
        .expect(200);
    assert_eq!(ids(&huge).len(), 1000);
    for bad in ["0", "-1", "ten", ""] {
        api.get(&format!("/v1/users?limit={bad}"))
            .await
            .expect_error(400, ErrorCode::BadRequest);
    }

    // Groups, members, a user's groups and keys are counted too.
    let group = json!([{"id": "c7", "members": ["s0007", "s0047", "t-ann"]}, {"id": "c8"}]);
    api.post_json("/v1/groups", &group).await.expect(200);
    assert_eq!(api.get("/v1/groups?limit=1").await.expect(200)["count"], 2);
    let members = api.get("/v1/groups/c7/members?limit=1").await.expect(200);
    assert_eq!((ids(&members).len(), &members["count"]), (1, &json!(3)));
    assert_eq!(
        api.get("/v1/users/t-ann/groups").await.expect(200)["count"],
        1
    );
    assert_eq!(api.get("/v1/keys").await.expect(200)["count"], 1);
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
    let before_deletion = gw.token("alice");

    api.delete("/v1/users/alice").await.expect(204);
    for client in &mut clients {
        assert_eq!(close_code(client).await, Some(4503));
    }
    api.get("/v1/users/alice")
        .await
        .expect_error(404, ErrorCode::NotFound);
    let members = api.get("/v1/groups/team/members").await.expect(200);
    assert_eq!(ids(&members), ["bob"]);
    api.get("/v1/users/alice/groups")
        .await
        .expect_error(404, ErrorCode::NotFound);
    api.delete("/v1/users/alice")
        .await
        .expect_error(404, ErrorCode::NotFound);
    // Created again, the id has no memberships from before.
    create_users(&api, &["alice"]).await;
    let groups = api.get("/v1/users/alice/groups").await.expect(200);
    assert_eq!(groups, json!({"items": [], "count": 0}));
    // A token issued before the deletion stays revoked, also once the id
    // is created again.
    assert_refused(connect(&gw, before_deletion).await, ErrorCode::TokenRevoked);
    // Bob was not touched.
    bob.ping().await.unwrap();
    assert!(bob.close_info().is_none());
}
