//! The store's per-connection cost: `Store::user_access` (the user's
//! record, ban and revocation), read once when a token is admitted, on the
//! embedded store with 10,000 users, for a user without any record (the
//! common case: users known only from their token) and one with a record.
//!
//! Run: `cargo bench -p tokenim-gateway --bench store`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tokenim_gateway::store::kv::{EmbeddedKv, Kv};
use tokenim_gateway::store::{OnExisting, Store, User};
use tokenim_protocol::UserId;

fn user_access(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(Kv::Embedded(
        EmbeddedKv::open(dir.path(), 64 << 20).unwrap(),
    ));
    let users: Vec<User> = (0..10_000)
        .map(|i| User {
            id: UserId::new(&format!("user{i}")).unwrap(),
            name: format!("User {i}"),
            avatar_url: None,
            roles: Vec::new(),
            metadata: Default::default(),
            created_at: 0,
            updated_at: 0,
        })
        .collect();
    for chunk in users.chunks(1_000) {
        rt.block_on(store.create_users(chunk.to_vec(), OnExisting::Keep))
            .unwrap();
    }
    let known = UserId::new("user5000").unwrap();
    let unknown = UserId::new("nobody").unwrap();
    let mut group = c.benchmark_group("user_access");
    group.bench_function("embedded/unknown_user", |b| {
        b.iter(|| rt.block_on(store.user_access(black_box(&unknown))).unwrap())
    });
    group.bench_function("embedded/known_user", |b| {
        b.iter(|| rt.block_on(store.user_access(black_box(&known))).unwrap())
    });
    group.finish();
}

criterion_group!(benches, user_access);
criterion_main!(benches);
