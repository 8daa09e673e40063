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
