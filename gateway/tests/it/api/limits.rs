//! Rate limits of `/v1` (per key, per source address, failed
//! authentications per source address) with their headers, and an audit
//! log that a flood of bad credentials cannot grow or bury.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokenim_protocol::ErrorCode;

use super::create_key;
use crate::support::TestGateway;
use crate::support::http::{Api, Response, basic};

fn header(r: &Response, name: &str) -> u64 {
    r.header(name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", r.headers))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn each_key_has_its_own_budget_and_the_headers_say_what_is_left() {
    let gw = TestGateway::with(|c| {
        c.api.rate_limits.per_key = 0.5;
        c.api.rate_limits.per_key_burst = 3.0;
    })
    .await;
    let admin = Api::new(&gw);
    let (id, secret) = create_key(&admin, "reader", &["users:read"]).await;
    let reader = admin.with_key(&id, &secret);
    for left in [2, 1, 0] {
        let r = reader.get("/v1/users?ids=x").await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(header(&r, "ratelimit-limit"), 3);
        assert_eq!(header(&r, "ratelimit-remaining"), left);
        assert!(header(&r, "ratelimit-reset") >= 1);
    }
    let r = reader.get("/v1/users?ids=x").await;
    let message = r.expect_error(429, ErrorCode::RateLimited);
    assert!(message.contains("api.rate_limits.per_key"), "{message}");
    assert!(header(&r, "retry-after") >= 1);
    assert_eq!(header(&r, "ratelimit-remaining"), 0);
    assert_eq!(
        gw.metric("tokenim_api_rate_limited_total{limit=\"key\"}"),
        1.0
    );
    // Another key is not slowed down by this one.
    assert_eq!(admin.get("/v1/users?ids=x").await.status, 200);
}

#[tokio::test]
async fn a_source_address_is_limited_whatever_keys_it_uses() {
    let gw = TestGateway::with(|c| {
        c.api.rate_limits.per_ip = 0.5;
        c.api.rate_limits.per_ip_burst = 4.0;
    })
    .await;
    let here = Api::new(&gw).from("127.0.0.3");
    // The admin key makes a key: one request of the budget.
    let (id, secret) = create_key(&here, "other", &["users:read"]).await;
    let other = here.with_key(&id, &secret);
    for api in [&here, &other, &here] {
        assert_eq!(api.get("/v1/users?ids=x").await.status, 200);
    }
    let r = other.get("/v1/users?ids=x").await;
    let message = r.expect_error(429, ErrorCode::RateLimited);
    assert!(message.contains("api.rate_limits.per_ip"), "{message}");
    assert!(header(&r, "retry-after") >= 1);
    // Requests without any key count too, and another address is free.
    here.with_authorization(None)
        .get("/v1/openapi.json")
        .await
        .expect_error(429, ErrorCode::RateLimited);
    let elsewhere = Api::new(&gw).from("127.0.0.4");
    assert_eq!(elsewhere.get("/v1/users?ids=x").await.status, 200);
}

#[tokio::test]
async fn an_address_that_keeps_failing_to_authenticate_is_refused_before_its_credentials_are_read()
{
    let gw = TestGateway::with(|c| {
        c.api.rate_limits.auth_failures_per_ip = 0.01;
        c.api.rate_limits.auth_failure_burst = 3.0;
    })
    .await;
    let admin = Api::new(&gw);
    let attacker = admin.from("127.0.0.5");
    let wrong = attacker.with_key(
        crate::support::ADMIN_KEY_ID,
        "not-the-secret-0123456789abcdef",
    );
    for _ in 0..3 {
        wrong
            .get("/v1/keys")
            .await
            .expect_error(401, ErrorCode::WrongSecret);
    }
    // Even the right secret is refused from there now...
    let r = attacker.get("/v1/keys").await;
    let message = r.expect_error(429, ErrorCode::RateLimited);
    assert!(message.contains("failed authentications"), "{message}");
    assert!(header(&r, "retry-after") >= 1);
    // ...but not from anywhere else.
    assert_eq!(admin.get("/v1/keys").await.status, 200);
    assert_eq!(
        gw.metric("tokenim_api_rate_limited_total{limit=\"auth_failures\"}"),
        1.0
    );
}

/// Every record of the audit log, in pages.
async fn whole_log(api: &Api) -> Vec<Value> {
    let mut records = Vec::new();
    let mut path = "/v1/audit?limit=1000".to_owned();
    loop {
        let page = api.get(&path).await.expect(200);
        records.extend(page["records"].as_array().unwrap().iter().cloned());
        match page["next"].as_u64() {
            Some(next) => path = format!("/v1/audit?limit=1000&after={next}"),
            None => return records,
        }
    }
}

#[tokio::test]
async fn a_flood_of_bad_credentials_leaves_the_audit_log_bounded_and_the_last_real_event_first() {
    const FLOOD: usize = 10_000;
    const AT_ONCE: usize = 64;
    let gw = TestGateway::spawn().await;
    let admin = Api::new(&gw);
    let before = whole_log(&admin).await.len();
    let missing = admin.from("127.0.0.6").with_authorization(None);
    let wrong = admin.from("127.0.0.7").with_authorization(Some(basic(
        "ak_00000000000000ee",
        "guess-0123456789abcdef-0123456789",
    )));
    let started = Instant::now();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for round in 0..FLOOD / AT_ONCE + 1 {
        let n = AT_ONCE.min(FLOOD - (round * AT_ONCE).min(FLOOD));
        let requests = (0..n).map(|i| {
            let api = if i % 2 == 0 { &missing } else { &wrong };
            async move { api.get("/v1/keys").await.status }
        });
        for status in futures_util::future::join_all(requests).await {
            *statuses.entry(status).or_default() += 1;
        }
    }
    assert_eq!(statuses.values().sum::<usize>(), FLOOD);
    assert!(
        statuses.keys().all(|s| [401, 429].contains(s)),
        "{statuses:?}"
    );
    // A real event after the flood.
    let (key, _) = create_key(&admin, "after-the-flood", &["users:read"]).await;
    let flood_secs = started.elapsed().as_secs_f64();

    // Bounded: a record per source, reason and minute (the flood may span
    // a minute's turn), not one per request.
    let log = whole_log(&admin).await;
    let failures: Vec<&Value> = log
        .iter()
        .filter(|r| r["action"] == "auth.failed")
        .collect();
    let minutes = (flood_secs / 60.0).ceil() as usize + 1;
    assert!(
        failures.len() <= 3 * 2 * minutes,
        "{} failure records for {FLOOD} requests",
        failures.len()
    );
    assert!(log.len() - before <= failures.len() + 1, "{}", log.len());
    // The counts add up once written (the node writes them every few
    // seconds); every refused request is accounted for except those the
    // per-address request limit turned away before authentication.
    let deadline = Instant::now() + Duration::from_secs(15);
    let limited_early = gw.metric("tokenim_api_rate_limited_total{limit=\"ip\"}") as u64;
    loop {
        let log = whole_log(&admin).await;
        let counted: u64 = log
            .iter()
            .filter(|r| r["action"] == "auth.failed")
            .map(|r| r["detail"]["count"].as_u64().unwrap())
            .sum();
        if counted + limited_early == FLOOD as u64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "counted {counted} + {limited_early} of {FLOOD}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The real event is on the first page of a query for it, and of the
    // whole log's first page too.
    let page = admin.get("/v1/audit?action=key.created").await.expect(200);
    let records = page["records"].as_array().unwrap();
    assert!(
        records.iter().any(|r| r["target"] == key.as_str()),
        "{page}"
    );
    let first = admin.get("/v1/audit?limit=100").await.expect(200);
    assert!(first.to_string().contains(&key), "{first}");
}

#[tokio::test]
async fn retention_keeps_the_newest_records_within_the_bound() {
    let gw = TestGateway::with(|c| {
        c.audit.max_records = 5;
        c.audit.retention_every = Duration::from_millis(50);
    })
    .await;
    let admin = Api::new(&gw);
    let mut keys = Vec::new();
    for i in 0..12 {
        keys.push(
            create_key(&admin, &format!("k{i}"), &["users:read"])
                .await
                .0,
        );
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = whole_log(&admin).await;
        if log.len() <= 5 {
            let targets: Vec<&str> = log.iter().map(|r| r["target"].as_str().unwrap()).collect();
            let newest: Vec<&str> = keys[keys.len() - log.len()..]
                .iter()
                .map(String::as_str)
                .collect();
            assert_eq!(targets, newest);
            assert!(log.len() >= 4, "{log:?}");
            break;
        }
        assert!(Instant::now() < deadline, "{} records", log.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gw.metric("tokenim_audit_records_deleted_total") >= 7.0);
}
