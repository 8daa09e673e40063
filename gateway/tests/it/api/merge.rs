//! Changing only what is given: `mode=merge` batches of users and groups
//! (JSON and CSV), `PATCH /v1/groups/{id}`, and giving or taking a role
//! for many users at once (`/v1/roles/{name}/users`).

use serde_json::{Value, json};
use tokenim_protocol::ErrorCode;

use super::{create_users, define_roles, item, item_results};
use crate::support::TestGateway;
use crate::support::http::Api;

async fn stored(api: &Api, path: &str) -> Value {
    api.get(path).await.expect(200)
}

#[tokio::test]
async fn a_merge_batch_changes_only_the_fields_each_item_gives() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    define_roles(&api, &["student", "monitor"]).await;
    let first = json!([
        {"id": "s1", "name": "Sam", "roles": ["student"], "avatar_url": "https://img/s1.png",
         "metadata": {"class": "7b", "year": 2026}},
        {"id": "s2", "name": "Sue", "roles": ["student"], "metadata": {"class": "7c"}},
    ]);
    api.post_json("/v1/users", &first).await.expect(200);

    let body = api
        .post_json(
            "/v1/users?mode=merge",
            &json!([
                {"id": "s1", "roles": ["student", "monitor"]},
                {"id": "s2", "metadata": {"class": null, "house": "red"}},
                {"id": "s3", "name": "New"},
                {"id": "s1x", "roles": ["nobody"]},
                {"id": "s2", "name": "again"},
            ]),
        )
        .await
        .expect(200);
    assert_eq!(
        item_results(&body),
        [
            item(0, Some("s1"), "updated", None),
            item(1, Some("s2"), "updated", None),
            item(2, Some("s3"), "created", None),
            item(3, Some("s1x"), "error", Some(ErrorCode::InvalidField)),
            item(4, Some("s2"), "error", Some(ErrorCode::DuplicateItem)),
        ]
    );
    let s1 = stored(&api, "/v1/users/s1").await;
    assert_eq!(s1["roles"], json!(["student", "monitor"]));
    assert_eq!(
        (&s1["name"], &s1["avatar_url"]),
        (&json!("Sam"), &json!("https://img/s1.png"))
    );
    assert_eq!(s1["metadata"], json!({"class": "7b", "year": 2026}));
    let s2 = stored(&api, "/v1/users/s2").await;
    assert_eq!(s2["metadata"], json!({"house": "red"}));
    assert_eq!(
        (&s2["name"], &s2["roles"]),
        (&json!("Sue"), &json!(["student"]))
    );
    assert_eq!(stored(&api, "/v1/users/s3").await["name"], "New");

    // The same merge again changes nothing.
    let again = api
        .post_json(
            "/v1/users?mode=merge",
            &json!([{"id": "s1", "roles": ["student", "monitor"]}]),
        )
        .await
        .expect(200);
    assert_eq!(item_results(&again), [item(0, Some("s1"), "exists", None)]);

    // CSV: an empty cell leaves the field as it is.
    let csv = "id,name,roles,metadata\ns1,Samuel,,\ns2,,monitor,\"{\"\"house\"\":\"\"blue\"\"}\"\n";
    let body = api
        .send("POST", "/v1/users?mode=merge", "text/csv", csv.as_bytes())
        .await
        .expect(200);
    assert_eq!(body["updated"], 2, "{body}");
    let s1 = stored(&api, "/v1/users/s1").await;
    assert_eq!(
        (&s1["name"], &s1["roles"]),
        (&json!("Samuel"), &json!(["student", "monitor"]))
    );
    assert_eq!(s1["metadata"], json!({"class": "7b", "year": 2026}));
    let s2 = stored(&api, "/v1/users/s2").await;
    assert_eq!(
        (&s2["name"], &s2["roles"]),
        (&json!("Sue"), &json!(["monitor"]))
    );
    assert_eq!(s2["metadata"], json!({"house": "blue"}));

    // Merged metadata must still fit its limit; the stored user is kept.
    let big = json!([{"id": "s2", "metadata": {"essay": "x".repeat(5000)}}]);
    let body = api
        .post_json("/v1/users?mode=merge", &big)
        .await
        .expect(200);
    assert_eq!(
        item_results(&body),
        [item(0, Some("s2"), "error", Some(ErrorCode::InvalidField))]
    );
    assert_eq!(stored(&api, "/v1/users/s2").await, s2);
}

#[tokio::test]
async fn a_group_merge_keeps_owner_and_metadata_and_adds_members() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    create_users(&api, &["t1", "a", "b", "c"]).await;
    let group = json!([{"id": "7b", "name": "Class 7b", "owner": "t1", "members": ["a"],
                        "metadata": {"room": 12}}]);
    api.post_json("/v1/groups", &group).await.expect(200);

    let body = api
        .post_json(
            "/v1/groups?mode=merge",
            &json!([{"id": "7b", "members": ["b"]}, {"id": "7c", "members": ["c"]}]),
        )
        .await
        .expect(200);
    assert_eq!(
        item_results(&body),
        [
            item(0, Some("7b"), "updated", None),
            item(1, Some("7c"), "created", None),
        ]
    );
    let g = stored(&api, "/v1/groups/7b").await;
    assert_eq!(
        (&g["name"], &g["owner"]),
        (&json!("Class 7b"), &json!("t1"))
    );
    assert_eq!(g["metadata"], json!({"room": 12}));
    let members = stored(&api, "/v1/groups/7b/members").await;
    assert_eq!(members["items"], json!(["a", "b", "t1"]));

    let body = api
        .post_json(
            "/v1/groups?mode=merge",
            &json!([{"id": "7b", "members": ["ghost"]}]),
        )
        .await
        .expect(200);
    assert_eq!(
        item_results(&body),
        [item(0, Some("7b"), "error", Some(ErrorCode::UnknownMember))]
    );
    let unchanged = api
        .post_json(
            "/v1/groups?mode=merge",
            &json!([{"id": "7b", "name": "Class 7b"}]),
        )
        .await
        .expect(200);
    assert_eq!(
        item_results(&unchanged),
        [item(0, Some("7b"), "exists", None)]
    );
}

#[tokio::test]
async fn a_group_patch_changes_name_owner_and_metadata_only() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    create_users(&api, &["t1", "t2", "a"]).await;
    let group = json!([{"id": "g", "name": "G", "owner": "t1", "members": ["a"],
                        "metadata": {"room": 12, "floor": 1}}]);
    api.post_json("/v1/groups", &group).await.expect(200);

    let g = api
        .patch_json(
            "/v1/groups/g",
            &json!({"owner": "t2", "metadata": {"floor": null}}),
        )
        .await
        .expect(200);
    assert_eq!((&g["name"], &g["owner"]), (&json!("G"), &json!("t2")));
    assert_eq!(g["metadata"], json!({"room": 12}));
    let members = stored(&api, "/v1/groups/g/members").await;
    assert_eq!(
        members["items"],
        json!(["a", "t1", "t2"]),
        "the new owner is a member"
    );
    let g = api
        .patch_json("/v1/groups/g", &json!({"owner": null, "name": null}))
        .await
        .expect(200);
    assert!(g.get("owner").is_none_or(Value::is_null), "{g}");
    assert_eq!(g["name"], "g");

    for (patch, status, code, names) in [
        (
            json!({"owner": "ghost"}),
            404,
            ErrorCode::UnknownMember,
            "ghost",
        ),
        (
            json!({"members": ["a"]}),
            400,
            ErrorCode::InvalidField,
            "members",
        ),
        (json!({"id": "h"}), 400, ErrorCode::InvalidField, "id"),
        (
            json!({"colour": "red"}),
            400,
            ErrorCode::InvalidField,
            "colour",
        ),
        (json!("name"), 400, ErrorCode::InvalidBody, "object"),
    ] {
        let message = api
            .patch_json("/v1/groups/g", &patch)
            .await
            .expect_error(status, code);
        assert!(message.contains(names), "{patch}: {message}");
    }
    assert_eq!(
        stored(&api, "/v1/groups/g").await,
        g,
        "nothing refused was stored"
    );
    api.patch_json("/v1/groups/nope", &json!({"name": "x"}))
        .await
        .expect_error(404, ErrorCode::NotFound);

    let log = api
        .get("/v1/audit?action=group.updated&target=g")
        .await
        .expect(200);
    let records = log["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{log}");
    let owners: Vec<(&Value, &Value)> = records
        .iter()
        .map(|r| (&r["detail"]["owner_before"], &r["detail"]["owner"]))
        .collect();
    assert!(owners.contains(&(&json!("t1"), &json!("t2"))), "{log}");
    assert!(owners.contains(&(&json!("t2"), &Value::Null)), "{log}");
}

#[tokio::test]
async fn a_role_is_given_to_and_taken_from_many_users_at_once() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    define_roles(&api, &["student", "monitor"]).await;
    let users: Vec<Value> = (0..300)
        .map(|i| json!({"id": format!("u{i:03}"), "roles": ["student"]}))
        .collect();
    api.post_json("/v1/users", &json!(users)).await.expect(200);
    let ids: Vec<String> = (0..300).map(|i| format!("u{i:03}")).collect();

    let change = api
        .post_json("/v1/roles/monitor/users", &json!({"users": ids}))
        .await
        .expect(200);
    assert_eq!(change, json!({"changed": 300, "unchanged": 0}));
    let again = api
        .post_json(
            "/v1/roles/monitor/users",
            &json!({"users": ["u000", "u001"]}),
        )
        .await
        .expect(200);
    assert_eq!(again, json!({"changed": 0, "unchanged": 2}));
    assert_eq!(
        stored(&api, "/v1/users/u299").await["roles"],
        json!(["student", "monitor"])
    );

    let taken = api
        .post_json(
            "/v1/roles/student/users/remove",
            &json!({"users": ["u000", "u001", "ghost"]}),
        )
        .await
        .expect(200);
    assert_eq!(taken, json!({"changed": 2, "unchanged": 1}));
    assert_eq!(
        stored(&api, "/v1/users/u000").await["roles"],
        json!(["monitor"])
    );
    assert_eq!(
        stored(&api, "/v1/users/u002").await["roles"],
        json!(["student", "monitor"])
    );

    // Refusals change nothing.
    let message = api
        .post_json(
            "/v1/roles/monitor/users",
            &json!({"users": ["u000", "ghost"]}),
        )
        .await
        .expect_error(404, ErrorCode::UnknownMember);
    assert!(message.contains("ghost"), "{message}");
    api.post_json("/v1/roles/principal/users", &json!({"users": ["u000"]}))
        .await
        .expect_error(404, ErrorCode::NotFound);
    api.post_json("/v1/roles/Bad%20Name/users", &json!({"users": ["u000"]}))
        .await
        .expect_error(400, ErrorCode::InvalidField);

    // Each user changed is audited with its roles before and after.
    let log = api
        .get("/v1/audit?action=user.roles_changed&target=u000")
        .await
        .expect(200);
    let details: Vec<&Value> = log["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["detail"])
        .collect();
    assert!(
        details.contains(&&json!({"roles_before": ["student", "monitor"], "roles": ["monitor"]})),
        "{log}"
    );
}

#[tokio::test]
async fn concurrent_merge_batches_lose_no_change() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    const USERS: usize = 300;
    const WRITERS: usize = 6;
    let ids: Vec<String> = (0..USERS).map(|i| format!("m{i:03}")).collect();
    let items: Vec<Value> = ids.iter().map(|id| json!({ "id": id })).collect();
    api.post_json("/v1/users", &json!(items)).await.expect(200);
    // Every writer merges its own metadata key into every user, all at once.
    let writers = (0..WRITERS).map(|w| {
        let (api, ids) = (api.clone(), ids.clone());
        tokio::spawn(async move {
            let items: Vec<Value> = ids
                .iter()
                .map(|id| json!({"id": id, "metadata": {format!("k{w}"): w}}))
                .collect();
            let body = api
                .post_json("/v1/users?mode=merge", &json!(items))
                .await
                .expect(200);
            body["results"].as_array().unwrap().clone()
        })
    });
    let results: Vec<_> = futures_util::future::join_all(writers)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let mut conflicts = 0;
    for (start, chunk) in ids.chunks(100).enumerate() {
        let query = format!("/v1/users?ids={}", chunk.join(","));
        let found = api.get(&query).await.expect(200);
        for (j, user) in found["items"].as_array().unwrap().iter().enumerate() {
            let i = start * 100 + j;
            for (w, outcome) in results.iter().enumerate() {
                let key = format!("k{w}");
                match outcome[i]["status"].as_str() {
                    Some("updated") => assert_eq!(user["metadata"][&key], w, "{user}"),
                    _ => {
                        // Told, never silently lost: a conflict stored nothing.
                        assert_eq!(outcome[i]["error"]["name"], "conflict", "{}", outcome[i]);
                        assert!(user["metadata"].get(&key).is_none(), "{user}");
                        conflicts += 1;
                    }
                }
            }
        }
    }
    assert!(conflicts < USERS * WRITERS / 10, "{conflicts} conflicts");
}
