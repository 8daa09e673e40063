//! One contract, every store backend: the same checks run on the embedded
//! store (redb in a temporary directory), on a real standalone Redis and on
//! a real three-master Redis Cluster, and must behave the same. Plus what
//! only one backend has: the embedded file survives a reopen, and a Redis
//! that is down or hung gives `Unavailable` within the command timeout.

use std::time::{Duration, Instant};

use tokenim_gateway::config::{RedisConfig, StoreConfig};
use tokenim_gateway::store::kv::{
    EmbeddedKv, Kv, NewItem, Op, PostgresKv, RedisKv, StoreError, Swap, Table,
};

use crate::support::postgres::TestDatabase;
use crate::support::redis::{RedisCluster, RedisServer};

/// Bound on one store call in these tests.
const TIMEOUT: Duration = Duration::from_millis(800);

/// Not valid UTF-8, with NULs and a newline.
const BINARY: &[u8] = &[0, 0xff, 0xfe, 0x80, b'\n', 0, 0xc3];

fn put(table: Table, key: &str, value: &[u8]) -> Op {
    Op::Put(table, key.to_owned(), value.to_vec())
}

fn item(key: &str, value: &[u8], also: Vec<Op>) -> NewItem {
    NewItem {
        key: key.to_owned(),
        value: value.to_vec(),
        also,
    }
}

async fn redis_kv(url: String, cluster: bool) -> Kv {
    let config = RedisConfig {
        url,
        cluster,
        command_timeout: TIMEOUT,
        ..Default::default()
    };
    Kv::Redis(RedisKv::open(&config).await.expect("redis store opens"))
}

/// A value as the store writes them: JSON (here a JSON string), which
/// PostgreSQL's record tables require.
macro_rules! j {
    ($s:literal) => {
        concat!("\"", $s, "\"").as_bytes()
    };
}

/// Keys of a scan, for comparing.
async fn scan_keys(
    kv: &Kv,
    table: Table,
    prefix: &str,
    after: Option<&str>,
    n: usize,
) -> Vec<String> {
    let entries = kv.scan(table, prefix, after, n).await.unwrap();
    entries.into_iter().map(|(k, _)| k).collect()
}

/// Every check, on a fresh store.
async fn contract(kv: &Kv) {
    // Memberships name a group that exists (PostgreSQL checks).
    kv.write(vec![put(Table::Groups, "g1", j!("one"))])
        .await
        .unwrap();
    get_and_insert_new(kv).await;
    write(kv).await;
    compare_and_swap(kv).await;
    compare_and_swap_many(kv).await;
    scan(kv).await;
    count(kv).await;
    incr(kv).await;
    binary_values(kv).await;
}

async fn get_and_insert_new(kv: &Kv) {
    assert_eq!(kv.get(Table::Users, "nobody").await.unwrap(), None);
    assert_eq!(
        kv.insert_new(Table::Users, vec![]).await.unwrap(),
        Vec::<bool>::new()
    );
    let first = vec![
        item(
            "alice",
            j!("alice-1"),
            vec![
                put(Table::Members, "g1/alice", j!("m")),
                put(Table::UserGroups, "alice/g1", j!("m")),
            ],
        ),
        item("bob", j!("bob-1"), vec![]),
    ];
    assert_eq!(
        kv.insert_new(Table::Users, first).await.unwrap(),
        [true, true]
    );
    let second = vec![
        item(
            "alice",
            j!("alice-2"),
            vec![put(Table::Groups, "not-alice", j!("x"))],
        ),
        item(
            "carol",
            j!("carol-1"),
            vec![Op::Delete(Table::Members, "g1/alice".into())],
        ),
        item(
            "carol",
            j!("carol-2"),
            vec![put(Table::Groups, "not-carol", j!("x"))],
        ),
    ];
    assert_eq!(
        kv.insert_new(Table::Users, second).await.unwrap(),
        [false, true, false],
        "an existing key and a repeated key do not go in"
    );
    let got = kv
        .get_multi(vec![
            (Table::Users, "alice".into()),
            (Table::Users, "nobody".into()),
            (Table::UserGroups, "alice/g1".into()),
            (Table::Users, "carol".into()),
            (Table::Members, "g1/alice".into()),
            (Table::Groups, "not-alice".into()),
            (Table::Groups, "not-carol".into()),
        ])
        .await
        .unwrap();
    let want: [Option<&[u8]>; 7] = [
        Some(j!("alice-1")),
        None,
        Some(j!("m")),
        Some(j!("carol-1")),
        None,
        None,
        None,
    ];
    assert_eq!(
        got,
        want.map(|v| v.map(<[u8]>::to_vec)),
        "values in order; extra writes only for what went in"
    );
    assert_eq!(
        kv.get_multi(vec![]).await.unwrap(),
        Vec::<Option<Vec<u8>>>::new()
    );
    assert_eq!(
        scan_keys(kv, Table::Users, "", None, 10).await,
        ["alice", "bob", "carol"]
    );
    assert_eq!(
        scan_keys(kv, Table::Members, "", None, 10).await,
        Vec::<String>::new()
    );
}

async fn write(kv: &Kv) {
    kv.write(vec![]).await.unwrap();
    kv.write(vec![
        put(Table::Groups, "g1", j!("one")),
        put(Table::Members, "g1/alice", j!("m")),
        Op::Delete(Table::Users, "bob".into()),
        put(Table::Groups, "g2", j!("two")),
        Op::Delete(Table::Groups, "g2".into()),
        Op::Delete(Table::Groups, "never-there".into()),
        put(Table::Groups, "g1", j!("one-v2")),
    ])
    .await
    .unwrap();
    assert_eq!(
        kv.get(Table::Groups, "g1").await.unwrap().as_deref(),
        Some(j!("one-v2")),
        "later ops win"
    );
    assert_eq!(kv.get(Table::Groups, "g2").await.unwrap(), None);
    assert_eq!(
        kv.get(Table::Members, "g1/alice").await.unwrap().as_deref(),
        Some(j!("m"))
    );
    assert_eq!(kv.get(Table::Users, "bob").await.unwrap(), None);
    assert_eq!(
        scan_keys(kv, Table::Users, "", None, 10).await,
        ["alice", "carol"]
    );
    assert_eq!(scan_keys(kv, Table::Groups, "", None, 10).await, ["g1"]);
}

async fn compare_and_swap(kv: &Kv) {
    let cas = |expected: Option<&[u8]>, new: Option<&[u8]>| {
        kv.compare_and_swap(
            Table::Jobs,
            "j",
            expected.map(<[u8]>::to_vec),
            new.map(<[u8]>::to_vec),
        )
    };
    let value = || async { kv.get(Table::Jobs, "j").await.unwrap() };
    assert!(
        !cas(Some(j!("v1")), Some(j!("v2"))).await.unwrap(),
        "absent is not v1"
    );
    assert_eq!(value().await, None);
    assert!(cas(None, None).await.unwrap(), "absent stays absent");
    assert!(
        cas(None, Some(j!("v1"))).await.unwrap(),
        "create when absent"
    );
    assert_eq!(value().await.as_deref(), Some(j!("v1")));
    assert!(
        !cas(None, Some(j!("v2"))).await.unwrap(),
        "present is not absent"
    );
    assert!(
        !cas(Some(j!("other")), Some(j!("v2"))).await.unwrap(),
        "wrong value"
    );
    assert_eq!(value().await.as_deref(), Some(j!("v1")));
    assert!(cas(Some(j!("v1")), Some(j!("v2"))).await.unwrap());
    assert_eq!(value().await.as_deref(), Some(j!("v2")));
    assert_eq!(scan_keys(kv, Table::Jobs, "", None, 10).await, ["j"]);
    assert!(
        cas(Some(j!("v2")), None).await.unwrap(),
        "delete when still v2"
    );
    assert_eq!(value().await, None);
    assert_eq!(
        scan_keys(kv, Table::Jobs, "", None, 10).await,
        Vec::<String>::new()
    );
    assert!(!cas(Some(j!("v2")), None).await.unwrap(), "already deleted");
    // An empty value is present, not absent.
    assert!(cas(None, Some(j!(""))).await.unwrap());
    assert!(!cas(None, Some(j!("x"))).await.unwrap());
    assert!(cas(Some(j!("")), None).await.unwrap());
}

/// Several swaps at once: each is done or not on its own.
async fn compare_and_swap_many(kv: &Kv) {
    let swap = |key: &str, expected: Option<&[u8]>, new: Option<&[u8]>| Swap {
        key: key.to_owned(),
        expected: expected.map(<[u8]>::to_vec),
        new: new.map(<[u8]>::to_vec),
    };
    kv.write(vec![
        Op::Put(Table::Groups, "m1".into(), j!("a").to_vec()),
        Op::Put(Table::Groups, "m2".into(), j!("b").to_vec()),
    ])
    .await
    .unwrap();
    let done = kv
        .compare_and_swap_many(
            Table::Groups,
            vec![
                swap("m1", Some(j!("a")), Some(j!("a2"))),
                swap("m2", Some(j!("changed meanwhile")), Some(j!("b2"))),
                swap("m3", None, Some(j!("c"))),
                swap("m2", Some(j!("b")), None),
            ],
        )
        .await
        .unwrap();
    assert_eq!(done, [true, false, true, true]);
    let get = |key: &'static str| async move { kv.get(Table::Groups, key).await.unwrap() };
    assert_eq!(get("m1").await.as_deref(), Some(j!("a2")));
    assert_eq!(get("m2").await, None, "the later swap of m2 saw b");
    assert_eq!(get("m3").await.as_deref(), Some(j!("c")));
    assert_eq!(kv.count(Table::Groups, "m").await.unwrap(), 2);
    assert!(
        kv.compare_and_swap_many(Table::Groups, vec![])
            .await
            .unwrap()
            .is_empty()
    );
    kv.write(vec![
        Op::Delete(Table::Groups, "m1".into()),
        Op::Delete(Table::Groups, "m3".into()),
    ])
    .await
    .unwrap();
}

async fn scan(kv: &Kv) {
    let t = Table::Idempotency;
    let keys = ["b/1", "a/2", "ab/1", "a/10", "a", "a/1", "a/\u{e9}"];
    kv.write(
        keys.iter()
            .map(|k| put(t, k, format!("\"v:{k}\"").as_bytes()))
            .collect(),
    )
    .await
    .unwrap();
    assert_eq!(
        scan_keys(kv, t, "a/", None, 10).await,
        ["a/1", "a/10", "a/2", "a/\u{e9}"],
        "byte order"
    );
    assert_eq!(
        scan_keys(kv, t, "a", None, 10).await,
        ["a", "a/1", "a/10", "a/2", "a/\u{e9}", "ab/1"]
    );
    assert_eq!(scan_keys(kv, t, "b", None, 10).await, ["b/1"]);
    assert_eq!(scan_keys(kv, t, "c", None, 10).await, Vec::<String>::new());
    assert_eq!(scan_keys(kv, t, "", None, 10).await.len(), keys.len());
    assert_eq!(
        scan_keys(kv, t, "a/", Some("a/1"), 10).await,
        ["a/10", "a/2", "a/\u{e9}"],
        "strictly after"
    );
    assert_eq!(scan_keys(kv, t, "a/", Some("a/10"), 1).await, ["a/2"]);
    assert_eq!(
        scan_keys(kv, t, "a/", Some("a/\u{e9}"), 10).await,
        Vec::<String>::new()
    );
    assert_eq!(
        scan_keys(kv, t, "a/", Some("a"), 10).await.len(),
        4,
        "a cursor before the prefix"
    );
    assert_eq!(
        scan_keys(kv, t, "a/", Some("b"), 10).await,
        Vec::<String>::new(),
        "a cursor past the prefix"
    );
    assert_eq!(
        scan_keys(kv, t, "a/", Some("a/05"), 10).await,
        ["a/1", "a/10", "a/2", "a/\u{e9}"],
        "an absent cursor"
    );
    assert_eq!(scan_keys(kv, t, "a/", None, 2).await, ["a/1", "a/10"]);
    assert_eq!(scan_keys(kv, t, "a/", None, 0).await, Vec::<String>::new());
    let entries = kv.scan(t, "ab", None, 10).await.unwrap();
    assert_eq!(entries, [("ab/1".to_owned(), j!("v:ab/1").to_vec())]);

    // Paging through a prefix visits every key once, in order.
    let mut want: Vec<String> = (0..25).map(|i| format!("p/{:02}", (i * 7) % 25)).collect();
    kv.write(
        want.iter()
            .map(|k| put(t, k, format!("\"{k}\"").as_bytes()))
            .collect(),
    )
    .await
    .unwrap();
    want.sort();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = kv.scan(t, "p/", after.as_deref(), 7).await.unwrap();
        assert!(page.len() <= 7);
        for (k, v) in &page {
            assert_eq!(v, format!("\"{k}\"").as_bytes());
        }
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        seen.extend(page.into_iter().map(|(k, _)| k));
    }
    assert_eq!(seen, want);
}

async fn count(kv: &Kv) {
    let t = Table::Revocations;
    assert_eq!(kv.count(t, "").await.unwrap(), 0, "an empty table");
    let keys = ["a", "a/1", "a/2", "ab/1", "b/1"];
    kv.write(keys.iter().map(|k| put(t, k, j!("v"))).collect())
        .await
        .unwrap();
    assert_eq!(kv.count(t, "").await.unwrap(), 5);
    assert_eq!(kv.count(t, "a/").await.unwrap(), 2);
    assert_eq!(kv.count(t, "a").await.unwrap(), 4);
    assert_eq!(kv.count(t, "c").await.unwrap(), 0);
    // Overwriting is not adding; deleting is removing.
    kv.write(vec![
        put(t, "a/1", j!("w")),
        Op::Delete(t, "b/1".into()),
        Op::Delete(t, "zz".into()),
    ])
    .await
    .unwrap();
    assert_eq!(kv.count(t, "").await.unwrap(), 4);
    assert_eq!(kv.count(Table::Bans, "").await.unwrap(), 0, "tables apart");
}

async fn incr(kv: &Kv) {
    assert_eq!(kv.incr("ids", 1).await.unwrap(), 1, "starts at 0");
    assert_eq!(kv.incr("ids", 5).await.unwrap(), 6);
    assert_eq!(kv.incr("other", 0).await.unwrap(), 0);
    assert_eq!(kv.incr("other", 3).await.unwrap(), 3);
    assert_eq!(kv.incr("ids", 0).await.unwrap(), 6, "counters are separate");
}

async fn binary_values(kv: &Kv) {
    kv.write(vec![put(Table::Meta, "bin", BINARY)])
        .await
        .unwrap();
    assert_eq!(
        kv.get(Table::Meta, "bin").await.unwrap().as_deref(),
        Some(BINARY)
    );
    let inserted = kv.insert_new(
        Table::Keys,
        vec![item("k", BINARY, vec![put(Table::Bans, "u", BINARY)])],
    );
    assert_eq!(inserted.await.unwrap(), [true]);
    assert_eq!(
        kv.get(Table::Bans, "u").await.unwrap().as_deref(),
        Some(BINARY)
    );
    let swapped = kv.compare_and_swap(
        Table::Keys,
        "k",
        Some(BINARY.to_vec()),
        Some(BINARY[1..].to_vec()),
    );
    assert!(swapped.await.unwrap());
    let entries = kv.scan(Table::Keys, "k", None, 10).await.unwrap();
    assert_eq!(entries, [("k".to_owned(), BINARY[1..].to_vec())]);
}

#[tokio::test]
async fn embedded_kv_meets_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    contract(&Kv::Embedded(
        EmbeddedKv::open(dir.path(), 4 << 20).unwrap(),
    ))
    .await;
}

async fn postgres_kv(url: String) -> Kv {
    let config = StoreConfig {
        url: Some(url),
        timeout: TIMEOUT,
        pool_size: 4,
        ..Default::default()
    };
    Kv::Postgres(
        PostgresKv::open(&config)
            .await
            .expect("postgres store opens"),
    )
}

#[tokio::test]
async fn postgres_kv_meets_the_contract() {
    let db = TestDatabase::create().await;
    contract(&postgres_kv(db.url()).await).await;
}

#[tokio::test]
async fn redis_kv_meets_the_contract() {
    let server = RedisServer::start();
    contract(&redis_kv(server.url(), false).await).await;
    // The documented layout: a hash per table, and its index.
    assert_eq!(
        server
            .cli(&["HGET", "{tokenim:store}:users", "alice"])
            .trim(),
        "\"alice-1\""
    );
    assert_eq!(
        server.cli(&["ZCARD", "{tokenim:store}:users:idx"]).trim(),
        "2"
    );
    assert_eq!(
        server
            .cli(&["HGET", "{tokenim:store}:meta", "counter/ids"])
            .trim(),
        "6"
    );
}

#[tokio::test]
async fn redis_cluster_kv_meets_the_contract() {
    let cluster = RedisCluster::start();
    contract(&redis_kv(cluster.url(), true).await).await;
}

#[tokio::test]
async fn embedded_kv_keeps_data_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let kv = Kv::Embedded(EmbeddedKv::open(dir.path(), 4 << 20).unwrap());
        kv.write(vec![put(Table::Users, "alice", BINARY)])
            .await
            .unwrap();
        assert_eq!(kv.incr("ids", 41).await.unwrap(), 41);
    }
    let kv = Kv::Embedded(EmbeddedKv::open(dir.path(), 4 << 20).unwrap());
    assert_eq!(
        kv.get(Table::Users, "alice").await.unwrap().as_deref(),
        Some(BINARY)
    );
    assert_eq!(scan_keys(&kv, Table::Users, "", None, 10).await, ["alice"]);
    assert_eq!(kv.incr("ids", 1).await.unwrap(), 42);
}

/// Runs `get` and checks it fails with `Unavailable`, promptly.
async fn assert_unavailable(kv: &Kv, what: &str) {
    let started = Instant::now();
    let result = kv.get(Table::Users, "alice").await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{what}: {result:?}"
    );
    assert!(
        started.elapsed() < TIMEOUT + Duration::from_secs(2),
        "{what}: took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn redis_kv_is_unavailable_while_redis_is_hung_or_down() {
    let mut server = RedisServer::start();
    let kv = redis_kv(server.url(), false).await;
    kv.write(vec![put(Table::Users, "alice", b"a")])
        .await
        .unwrap();

    server.signal("STOP");
    assert_unavailable(&kv, "hung").await;
    server.signal("CONT");

    server.kill();
    assert_unavailable(&kv, "killed").await;

    // A store opened while Redis is down opens (lazily), then fails promptly.
    let down = redis_kv(server.url(), false).await;
    assert_unavailable(&down, "down at open").await;

    server.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    while kv.get(Table::Users, "alice").await.is_err() {
        assert!(Instant::now() < deadline, "the store never reconnected");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        kv.get(Table::Users, "alice").await.unwrap(),
        None,
        "a fresh Redis is empty"
    );
}

#[tokio::test]
async fn a_redis_store_that_keeps_nothing_on_disk_is_refused() {
    let server = RedisServer::start();
    let config = RedisConfig {
        url: server.url(),
        command_timeout: TIMEOUT,
        ..Default::default()
    };
    let kv = RedisKv::open(&config).await.unwrap();
    let refused = kv.check_persistence().await;
    assert!(
        matches!(&refused, Err(StoreError::Failed(why))
            if why.contains("keeps nothing on disk") && why.contains("allow_volatile_redis")),
        "{refused:?}"
    );
    assert_eq!(
        server.cli(&["CONFIG", "SET", "appendonly", "yes"]).trim(),
        "OK"
    );
    kv.check_persistence()
        .await
        .expect("an append-only Redis persists");
    assert_eq!(
        server.cli(&["CONFIG", "SET", "appendonly", "no"]).trim(),
        "OK"
    );
    assert_eq!(server.cli(&["CONFIG", "SET", "save", "60 1"]).trim(), "OK");
    kv.check_persistence()
        .await
        .expect("a Redis with save points persists");

    // The node refuses to start on it; allowed, it starts.
    assert_eq!(server.cli(&["CONFIG", "SET", "save", ""]).trim(), "OK");
    let mut node = tokenim_gateway::Config {
        redis: Some(config),
        ..Default::default()
    };
    node.store.backend = tokenim_gateway::config::StoreBackend::Redis;
    let refused = tokenim_gateway::state::open_store(&node).await;
    assert!(refused.is_err(), "started on a volatile Redis");
    node.store.allow_volatile_redis = true;
    tokenim_gateway::state::open_store(&node)
        .await
        .expect("allowed");
}
