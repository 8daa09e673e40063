//! The PostgreSQL store beyond the common contract: its constraints, its
//! schema versioning, export and import between backends, two nodes on
//! one database, and a PostgreSQL server that freezes or dies.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection};
use tokenim_gateway::config::{StoreBackend, StoreConfig};
use tokenim_gateway::store::kv::{Kv, Op, PostgresKv, StoreError, Table};
use tokenim_protocol::{Codec, ErrorCode};

use crate::api::{create_key, create_users};
use crate::support::http::Api;
use crate::support::postgres::{PgServer, TestDatabase};
use crate::support::{TestGateway, WAIT};

fn config(url: String) -> StoreConfig {
    StoreConfig {
        url: Some(url),
        timeout: Duration::from_millis(800),
        pool_size: 4,
        ..Default::default()
    }
}

fn put(table: Table, key: &str, value: &str) -> Op {
    Op::Put(table, key.to_owned(), value.as_bytes().to_vec())
}

#[tokio::test]
async fn memberships_name_a_stored_user_and_group_and_go_with_them() {
    let db = TestDatabase::create().await;
    let kv = Kv::Postgres(PostgresKv::open(&config(db.url())).await.unwrap());
    kv.write(vec![
        put(Table::Users, "alice", r#"{"id":"alice","name":"Alice"}"#),
        put(Table::Groups, "g1", r#"{"id":"g1"}"#),
    ])
    .await
    .unwrap();

    // A membership of a user that is not stored is refused, and nothing
    // of that write is kept.
    let refused = kv
        .write(vec![
            put(Table::Groups, "g2", r#"{"id":"g2"}"#),
            put(Table::Members, "g1/nobody", "{}"),
        ])
        .await;
    assert!(
        matches!(&refused, Err(StoreError::Failed(why)) if why.contains("foreign key")),
        "{refused:?}"
    );
    assert_eq!(kv.get(Table::Groups, "g2").await.unwrap(), None);

    // The audit log, whose fields are columns, takes audit records only.
    let not_json = kv.write(vec![put(Table::Audit, "1", "not json")]).await;
    assert!(
        matches!(not_json, Err(StoreError::Failed(_))),
        "{not_json:?}"
    );
    let record = r#"{"id":1,"time":5,"actor":"ak_1","action":"role.set","target":"mod"}"#;
    kv.write(vec![put(Table::Audit, "1", record)])
        .await
        .unwrap();
    let filter = tokenim_gateway::store::kv::postgres::AuditFilter {
        actor: Some("ak_1"),
        from: Some(5),
        limit: 10,
        ..Default::default()
    };
    let Kv::Postgres(pg) = &kv else {
        unreachable!()
    };
    assert_eq!(
        pg.audit_records(&filter).await.unwrap(),
        [record.as_bytes()]
    );
    let none = tokenim_gateway::store::kv::postgres::AuditFilter {
        to: Some(5),
        ..filter
    };
    assert!(pg.audit_records(&none).await.unwrap().is_empty());

    kv.write(vec![
        put(Table::Members, "g1/alice", "{}"),
        put(Table::UserGroups, "alice/g1", "{}"),
    ])
    .await
    .unwrap();
    kv.write(vec![Op::Delete(Table::Users, "alice".into())])
        .await
        .unwrap();
    assert_eq!(kv.count(Table::Members, "").await.unwrap(), 0);
    assert_eq!(kv.count(Table::UserGroups, "").await.unwrap(), 0);
}

#[tokio::test]
async fn a_schema_newer_than_this_build_is_refused_and_migrating_twice_changes_nothing() {
    let db = TestDatabase::create().await;
    let kv = PostgresKv::open(&config(db.url())).await.unwrap();
    kv.migrate().await.expect("migrating again is a no-op");
    let mut conn = PgConnection::connect(&db.url()).await.unwrap();
    let version: i64 = sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(version, PostgresKv::schema_version());
    conn.execute(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (99990101000000, 'from the future', true, '\\x00', 1)",
    )
    .await
    .unwrap();
    let refused = PostgresKv::open(&config(db.url())).await;
    assert!(
        matches!(&refused, Err(StoreError::Failed(why)) if why.contains("newer tokenim")),
        "{refused:?}"
    );
}

/// Runs `tokenim store <args>` with `env`; returns (success, stderr).
fn store_command(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tokenim"));
    cmd.arg("store").args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What the API answers about everything a test stored.
async fn answers(api: &Api) -> Vec<Value> {
    let mut all = Vec::new();
    for path in [
        "/v1/users?limit=1000",
        "/v1/users/alice",
        "/v1/groups/team",
        "/v1/groups/team/members",
        "/v1/keys",
        "/v1/grants",
        "/v1/roles",
        "/v1/users/carol/ban",
        "/v1/audit?limit=1000",
    ] {
        let r = api.get(path).await;
        all.push(json!({"path": path, "status": r.status, "body": r.json()}));
    }
    all
}

#[tokio::test]
async fn an_embedded_store_exported_and_imported_into_postgres_answers_the_same() {
    let gw = TestGateway::with(|c| c.store.backend = StoreBackend::Embedded).await;
    let api = Api::new(&gw);
    create_users(&api, &["alice", "bob", "carol"]).await;
    api.patch_json(
        "/v1/users/alice",
        &json!({"name": "Alice", "metadata": {"team": "blue", "n": -0.0}}),
    )
    .await
    .expect(200);
    api.post_json(
        "/v1/groups",
        &json!([{"id": "team", "owner": "alice", "members": ["bob"]}]),
    )
    .await
    .expect(200);
    create_key(&api, "exported", &["users:read"]).await;
    api.post_json(
        "/v1/grants",
        &json!({"subject": {"user": "alice"}, "permission": "manage_group"}),
    )
    .await
    .expect(201);
    api.post_json("/v1/users/carol/ban", &json!({"reason": "spam"}))
        .await
        .expect(200);
    let before = answers(&api).await;
    let data = std::sync::Arc::clone(&gw.data);
    gw.stop().await;

    let dir = data.path().to_str().unwrap();
    let dump = data.path().join("dump.jsonl");
    let dump_s = dump.to_str().unwrap();
    let embedded = [
        ("TOKENIM_STORE__BACKEND", "embedded"),
        ("TOKENIM_STORE__PATH", dir),
    ];
    let (ok, err) = store_command(&["export", "--out", dump_s], &embedded);
    assert!(ok, "{err}");

    let db = TestDatabase::create().await;
    let url = db.url();
    let postgres = [("TOKENIM_STORE__URL", url.as_str())];
    let (ok, err) = store_command(&["import", "--in", dump_s], &postgres);
    assert!(ok, "{err}");
    assert!(err.contains("imported"), "{err}");
    let (ok, err) = store_command(&["import", "--in", dump_s], &postgres);
    assert!(
        !ok && err.contains("not empty"),
        "a second import is refused: {err}"
    );

    // The same bytes come back out.
    let again = data.path().join("again.jsonl");
    let (ok, err) = store_command(&["export", "--out", again.to_str().unwrap()], &postgres);
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read_to_string(&again).unwrap(),
        std::fs::read_to_string(&dump).unwrap()
    );

    let gw = TestGateway::with(|c| c.store.url = Some(url.clone())).await;
    assert_eq!(answers(&Api::new(&gw)).await, before);
}

#[tokio::test]
async fn a_bad_import_line_is_refused_with_its_number() {
    let db = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.jsonl");
    std::fs::write(
        &file,
        "{\"table\":\"users\",\"key\":\"a\",\"value\":{\"id\":\"a\"}}\n{\"table\":\"nope\",\"key\":\"a\",\"value\":1}\n",
    )
    .unwrap();
    let url = db.url();
    let (ok, err) = store_command(
        &["import", "--in", file.to_str().unwrap()],
        &[("TOKENIM_STORE__URL", url.as_str())],
    );
    assert!(
        !ok && err.contains("line 2") && err.contains("unknown table"),
        "{err}"
    );
}

#[tokio::test]
async fn two_nodes_on_one_postgres_share_users_keys_and_bans() {
    let db = TestDatabase::create().await;
    let url = db.url();
    let a = TestGateway::with(|c| c.store.url = Some(url.clone())).await;
    let b = TestGateway::with(|c| c.store.url = Some(url.clone())).await;
    let (api_a, api_b) = (Api::new(&a), Api::new(&b));

    create_users(&api_a, &["alice", "carol"]).await;
    assert_eq!(
        api_b.get("/v1/users/alice").await.expect(200),
        api_a.get("/v1/users/alice").await.expect(200)
    );
    let (key, secret) = create_key(&api_a, "shared", &["users:read"]).await;
    api_b
        .with_key(&key, &secret)
        .get("/v1/users/alice")
        .await
        .expect(200);
    api_a
        .post(&format!("/v1/keys/{key}/revoke"))
        .await
        .expect(200);
    api_b
        .with_key(&key, &secret)
        .get("/v1/users/alice")
        .await
        .expect_error(401, ErrorCode::ApiKeyRevoked);

    api_a
        .post_json("/v1/users/carol/ban", &json!({"reason": "spam"}))
        .await
        .expect(200);
    api_b
        .post_json("/v1/tokens", &json!({"user": "carol"}))
        .await
        .expect_error(403, ErrorCode::UserBanned);
    // A connection to the other node is refused within the access
    // refresh (api.access_refresh, 1 s by default).
    let started = Instant::now();
    loop {
        let connected = tokenim_client::Client::connect(
            b.options(Codec::Json, tokenim_client::Auth::Frame(b.token("carol"))),
        )
        .await;
        if connected.is_err() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "node B still lets the banned user in"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every stored user id, page by page.
async fn all_user_ids(api: &Api) -> std::collections::HashSet<String> {
    let mut ids = std::collections::HashSet::new();
    let mut path = "/v1/users?limit=1000".to_owned();
    loop {
        let page = api.get(&path).await.expect(200);
        for user in page["items"].as_array().unwrap() {
            ids.insert(user["id"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => path = format!("/v1/users?limit=1000&after={next}"),
            None => return ids,
        }
    }
}

/// Creates 50 users `<prefix>-<i>` through `api`; returns the ids the
/// answer reports created (none if the request failed as a whole).
async fn batch(api: &Api, prefix: &str) -> (u16, Vec<String>) {
    let items: Vec<Value> = (0..50)
        .map(|i| json!({"id": format!("{prefix}-{i}")}))
        .collect();
    let r = api.post_json("/v1/users", &json!(items)).await;
    if r.status != 200 {
        return (r.status, Vec::new());
    }
    let body = r.json();
    let created = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "created")
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    (200, created)
}

#[tokio::test]
async fn a_frozen_or_killed_postgres_gives_503_and_loses_no_acknowledged_user() {
    let mut pg = PgServer::start();
    let url = pg.url("postgres");
    let gw = TestGateway::with(|c| {
        c.store.url = Some(url.clone());
        c.store.timeout = Duration::from_millis(800);
    })
    .await;
    let api = Api::new(&gw);
    let alice = gw.client("alice", Codec::Json).await;
    let mut acknowledged = Vec::new();
    let (status, created) = batch(&api, "before").await;
    assert_eq!((status, created.len()), (200, 50));
    acknowledged.extend(created);

    // Frozen: answers come within the timeout, 503 with Retry-After.
    pg.signal("STOP");
    let started = Instant::now();
    let r = api.post_json("/v1/users", &json!([{"id": "frozen"}])).await;
    assert!(started.elapsed() < WAIT, "took {:?}", started.elapsed());
    r.expect_error(503, ErrorCode::Unavailable);
    assert!(r.header("retry-after").is_some(), "{:?}", r.headers);
    // A session that is in goes on (publishing needs no store).
    alice
        .subscribe(&tokenim_protocol::ChannelName::new("rooms.lobby").unwrap())
        .await
        .expect("subscribe while frozen");
    pg.signal("CONT");

    // Killed while batches run: every user reported created is stored.
    let writer = {
        let api = api.clone();
        tokio::spawn(async move {
            let mut created = Vec::new();
            let mut failures = 0;
            for round in 0..40 {
                match batch(&api, &format!("during{round}")).await {
                    (200, ids) => created.extend(ids),
                    (503, _) => failures += 1,
                    (status, _) => panic!("a batch answered {status}"),
                }
            }
            (created, failures)
        })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    pg.kill();
    let r = api.get("/v1/users/alice").await;
    r.expect_error(503, ErrorCode::Unavailable);
    pg.restart();
    let (created, failures) = writer.await.unwrap();
    acknowledged.extend(created);
    assert!(failures > 0, "the kill happened while batches ran");

    // Recovery is automatic.
    let deadline = Instant::now() + Duration::from_secs(10);
    while api.get("/v1/users?limit=1").await.status != 200 {
        assert!(Instant::now() < deadline, "the store never came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stored = all_user_ids(&api).await;
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !stored.contains(*id))
        .collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    eprintln!(
        "acknowledged {} users, {failures} batches refused with 503, lost 0",
        acknowledged.len()
    );
}

#[tokio::test]
async fn an_import_job_waits_out_a_postgres_restart_and_counts_every_user_once() {
    let mut pg = PgServer::start();
    let url = pg.url("postgres");
    let gw = TestGateway::with(|c| {
        c.store.url = Some(url.clone());
        c.store.timeout = Duration::from_millis(800);
        c.api.max_batch_items = 200;
    })
    .await;
    let api = Api::new(&gw);
    const USERS: u64 = 20_000;
    let csv: String = std::iter::once("id\n".to_owned())
        .chain((0..USERS).map(|i| format!("imported{i}\n")))
        .collect();
    let accepted = api
        .send("POST", "/v1/jobs/import/users", "text/csv", csv.as_bytes())
        .await
        .expect(202);
    let path = format!("/v1/jobs/{}", accepted["id"].as_str().unwrap());
    // Once it runs, PostgreSQL dies and comes back a second later.
    let deadline = Instant::now() + WAIT;
    loop {
        let processed = api.get(&path).await.expect(200)["processed"]
            .as_u64()
            .unwrap();
        if processed > 0 {
            assert!(
                processed < USERS / 2,
                "the job ran ahead of the test: {processed}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "the job never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pg.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    pg.restart();
    let deadline = Instant::now() + Duration::from_secs(60);
    let job = loop {
        let r = api.get(&path).await;
        if r.status == 200 {
            let job = r.json();
            if job["state"] != "queued" && job["state"] != "running" {
                break job;
            }
        }
        assert!(Instant::now() < deadline, "the job never finished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["processed"], USERS, "{job}");
    assert_eq!(job["failed"], 0, "{job}");
    let created = job["created"].as_u64().unwrap();
    let exists = job["exists"].as_u64().unwrap();
    assert_eq!(created + exists, USERS, "{job}");
    // A batch whose commit was lost with the server is found stored when
    // retried: `exists`, at most one batch of them.
    assert!(exists <= 200, "{job}");
    assert_eq!(all_user_ids(&api).await.len() as u64, USERS);
}
