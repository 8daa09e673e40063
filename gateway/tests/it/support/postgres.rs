//! PostgreSQL for tests: a fresh database per test on the machine's
//! server (`TEST_POSTGRES`, default `postgres://postgres@127.0.0.1:5432`,
//! trust auth), dropped afterwards.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{Connection, Executor, PgConnection};

/// The server the tests use.
pub(crate) fn server_url() -> String {
    std::env::var("TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A database of its own, dropped (with its connections) on drop.
#[derive(Debug)]
pub(crate) struct TestDatabase {
    name: String,
}

impl TestDatabase {
    /// Creates an empty UTF-8 database with a name no other test uses.
    pub(crate) async fn create() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "tokenim_test_{}_{}_{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = admin().await;
        admin
            .execute(format!(r#"CREATE DATABASE "{name}" ENCODING 'UTF8' TEMPLATE template0"#).as_str())
            .await
            .expect("create the test database");
        Self { name }
    }

    /// Its URL.
    pub(crate) fn url(&self) -> String {
        format!("{}/{}", server_url(), self.name)
    }
}

async fn admin() -> PgConnection {
    PgConnection::connect(&format!("{}/postgres", server_url()))
        .await
        .expect("PostgreSQL at TEST_POSTGRES (default 127.0.0.1:5432, user postgres, trust)")
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = std::mem::take(&mut self.name);
        // Drop runs inside the test's runtime: a thread of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut admin = admin().await;
                admin
                    .execute(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str())
                    .await
            })
        });
        if let Ok(Err(e)) = dropped.join() {
            eprintln!("test database not dropped: {e}");
        }
    }
}
