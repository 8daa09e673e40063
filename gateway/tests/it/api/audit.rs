//! `GET /v1/audit`: every administrative action and failed
//! authentication, in order, with actor, target, time and source;
//! filtered by action, actor, target and time; a page at a time.

use std::time::Duration;

use serde_json::{Value, json};
use tokenim_protocol::ErrorCode;

use super::create_key;
use crate::support::http::Api;
use crate::support::{ADMIN_KEY_ID, TestGateway};

/// `(action, actor, target)` of each record of a page.
fn actions(page: &Value) -> Vec<(String, String, String)> {
    page["records"]
        .as_array()
        .unwrap_or_else(|| panic!("no records in {page}"))
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_owned(),
                r["actor"].as_str().unwrap().to_owned(),
                r["target"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn triple(action: &str, actor: &str, target: &str) -> (String, String, String) {
    (action.to_owned(), actor.to_owned(), target.to_owned())
}

/// Separates consecutive records in time, so time filters are exact.
async fn tick() {
    tokio::time::sleep(Duration::from_millis(15)).await;
}

#[tokio::test]
async fn the_audit_log_records_each_action_in_order_and_filters_it() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    // A grant's subject must exist (creating a user without roles is not
    // audited).
    super::create_users(&api, &["alice"]).await;
    let start_page = api.get("/v1/audit?limit=1000").await.expect(200);
    let start = start_page["records"]
        .as_array()
        .unwrap()
        .last()
        .map_or(0, |r| r["id"].as_u64().unwrap());
    let began = tokenim_gateway::unix_millis();

    let (key, secret) = create_key(&api, "ops", &["roles:admin"]).await;
    tick().await;
    api.with_key(&key, &secret)
        .put_json("/v1/roles/mod", &json!({"permissions": ["subscribe"]}))
        .await
        .expect(200);
    tick().await;
    api.post_json(&format!("/v1/keys/{key}/rotate"), &json!({"overlap": "0s"}))
        .await
        .expect(200);
    tick().await;
    api.post(&format!("/v1/keys/{key}/revoke"))
        .await
        .expect(200);
    tick().await;
    let grant = json!({"subject": {"user": "alice"}, "permission": "publish"});
    api.post_json("/v1/grants", &grant).await.expect(201);
    tick().await;
    api.post_json("/v1/grants/revoke", &grant).await.expect(204);
    tick().await;
    api.post("/v1/users/alice/revoke-tokens").await.expect(204);
    tick().await;
    api.post_json("/v1/users/alice/ban", &json!({"reason": "spam"}))
        .await
        .expect(200);
    tick().await;
    api.with_key(&key, &secret)
        .get("/v1/roles")
        .await
        .expect_error(401, ErrorCode::WrongSecret);
    let ended = tokenim_gateway::unix_millis();

    let all = api
        .get(&format!("/v1/audit?after={start}"))
        .await
        .expect(200);
    let admin = ADMIN_KEY_ID;
    assert_eq!(
        actions(&all),
        [
            triple("key.created", admin, &key),
            triple("role.set", &key, "mod"),
            triple("key.rotated", admin, &key),
            triple("key.revoked", admin, &key),
            triple("grant.added", admin, "user:alice"),
            triple("grant.revoked", admin, "user:alice"),
            triple("user.tokens_revoked", admin, "alice"),
            triple("user.banned", admin, "alice"),
            triple("auth.failed", "anonymous", &key),
        ]
    );
    assert_eq!(all["next"], Value::Null);
    let records = all["records"].as_array().unwrap();
    let mut previous: Option<(u64, u64)> = None;
    for r in records {
        let (id, time) = (r["id"].as_u64().unwrap(), r["time"].as_u64().unwrap());
        if let Some((previous_id, previous_time)) = previous {
            assert!(id > previous_id && time > previous_time, "{r}");
        }
        assert!(id > start && (began..=ended).contains(&time), "{r}");
        assert_eq!(r["source"], "127.0.0.1", "{r}");
        previous = Some((id, time));
    }
    assert_eq!(records[0]["detail"]["scopes"], json!(["roles:admin"]));
    assert_eq!(records[0]["detail"]["name"], "ops");
    assert_eq!(records[1]["detail"]["permissions"], json!(["subscribe"]));
    assert_eq!(records[2]["detail"]["overlap_ms"], 0);
    assert_eq!(records[4]["detail"], grant);
    assert_eq!(records[7]["detail"]["reason"], "spam");
    // A failed authentication keeps the reason, never the secret.
    assert_eq!(records[8]["detail"]["reason"], "wrong_secret");
    assert!(!all.to_string().contains(&secret));

    let query = |q: String| {
        let api = api.clone();
        async move { actions(&api.get(&format!("/v1/audit?{q}")).await.expect(200)) }
    };
    assert_eq!(
        query("action=key.rotated".into()).await,
        [triple("key.rotated", admin, &key)]
    );
    assert_eq!(
        query(format!("actor={key}")).await,
        [triple("role.set", &key, "mod")]
    );
    assert_eq!(
        query(format!("target={key}&after={start}")).await,
        [
            triple("key.created", admin, &key),
            triple("key.rotated", admin, &key),
            triple("key.revoked", admin, &key),
            triple("auth.failed", "anonymous", &key),
        ]
    );
    assert_eq!(
        query("target=alice&action=user.banned".into()).await,
        [triple("user.banned", admin, "alice")]
    );
    let time = |i: usize| records[i]["time"].as_u64().unwrap();
    assert_eq!(
        query(format!("from={}&to={}", time(2), time(4))).await,
        [
            triple("key.rotated", admin, &key),
            triple("key.revoked", admin, &key),
        ]
    );
    assert!(query(format!("from={}", ended + 1)).await.is_empty());
    api.get("/v1/audit?action=key.exploded")
        .await
        .expect_error(400, ErrorCode::BadRequest);

    // Pages of two walk the same records once, in order.
    let mut walked = Vec::new();
    let mut after = start;
    let mut pages = 0;
    loop {
        let page = api
            .get(&format!("/v1/audit?after={after}&limit=2"))
            .await
            .expect(200);
        pages += 1;
        walked.extend(actions(&page));
        match page["next"].as_u64() {
            Some(next) => after = next,
            None => break,
        }
        assert!(pages < 10, "the walk does not end");
    }
    assert_eq!(walked, actions(&all));
    assert_eq!(pages, 5);
}

/// The records of `action` in the log, oldest first.
async fn records_of(api: &Api, action: &str) -> Vec<Value> {
    let page = api
        .get(&format!("/v1/audit?action={action}&limit=1000"))
        .await
        .expect(200);
    page["records"].as_array().unwrap().clone()
}

#[tokio::test]
async fn every_change_through_the_api_is_audited_with_what_it_did() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    let batch = json!([{"id": "amy"}, {"id": "ben"}, {"id": "bad id"}]);
    api.post_json("/v1/users", &batch).await.expect(200);
    let users = records_of(&api, "users.batch").await;
    assert_eq!(users.len(), 1, "{users:?}");
    let d = &users[0]["detail"];
    assert_eq!(
        (&d["mode"], &d["created"], &d["failed"], &d["changed"]),
        (
            &json!("create"),
            &json!(2),
            &json!(1),
            &json!(["amy", "ben"])
        )
    );
    assert_eq!(users[0]["actor"], ADMIN_KEY_ID);

    api.post_json("/v1/groups", &json!([{"id": "g1"}]))
        .await
        .expect(200);
    assert_eq!(records_of(&api, "groups.batch").await.len(), 1);
    api.post_json("/v1/groups/g1/members", &json!({"users": ["amy", "ben"]}))
        .await
        .expect(200);
    api.post_json("/v1/groups/g1/members/remove", &json!({"users": ["ben"]}))
        .await
        .expect(200);
    let added = records_of(&api, "group.members_added").await;
    assert_eq!(added[0]["target"], "g1");
    assert_eq!(added[0]["detail"]["added"], 2);
    let removed = records_of(&api, "group.members_removed").await;
    assert_eq!(removed[0]["detail"]["users"], json!(["ben"]));

    api.post_json(
        "/v1/tokens",
        &json!({"user": "amy", "ttl": "10m", "channels": ["rooms.*"]}),
    )
    .await
    .expect(200);
    let minted = records_of(&api, "token.minted").await;
    assert_eq!(minted[0]["target"], "amy");
    assert_eq!(minted[0]["detail"]["ttl_secs"], 600);
    assert_eq!(minted[0]["detail"]["channels"], json!(["rooms.*"]));
    assert!(
        !minted[0].to_string().contains("eyJ"),
        "no token in the log"
    );

    api.post_json("/v1/publish", &json!({"channels": ["rooms.a"], "data": 1}))
        .await
        .expect(200);
    let published = records_of(&api, "message.published").await;
    assert_eq!(published[0]["detail"]["delivered"], json!(["rooms.a"]));

    let job = api
        .send(
            "POST",
            "/v1/jobs/import/users",
            "text/csv",
            b"id\ncid\n,x\n",
        )
        .await
        .expect(202);
    let id = job["id"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let finished = loop {
        let finished = records_of(&api, "job.finished").await;
        if !finished.is_empty() {
            break finished;
        }
        assert!(std::time::Instant::now() < deadline, "no job.finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let started = records_of(&api, "job.started").await;
    assert_eq!(started[0]["target"], id.as_str());
    assert_eq!(finished[0]["target"], id.as_str());
    let d = &finished[0]["detail"];
    assert_eq!(
        (&d["state"], &d["processed"], &d["created"], &d["failed"]),
        (&json!("done"), &json!(2), &json!(1), &json!(1))
    );
}
