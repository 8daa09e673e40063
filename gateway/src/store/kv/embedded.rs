//! [`EmbeddedKv`]: the store in one redb file on local disk, the default
//! for a single node. Every write is a redb transaction, durable when it
//! returns (fsync on commit), so a restart loses nothing that was
//! acknowledged. redb is synchronous: each call runs on tokio's blocking
//! pool.

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use super::{Entry, NewItem, Op, StoreError, Table, counter_key, parse_counter};

type Def = TableDefinition<'static, &'static str, &'static [u8]>;

fn def(table: Table) -> Def {
    TableDefinition::new(table.name())
}

fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError::Failed(e.to_string())
}

/// The file's name inside `store.path`.
pub(crate) const FILE_NAME: &str = "tokenim.redb";

/// A redb database shared by the node's tasks.
#[derive(Clone)]
pub struct EmbeddedKv {
    db: Arc<Database>,
}

impl std::fmt::Debug for EmbeddedKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedKv").finish_non_exhaustive()
    }
}

impl EmbeddedKv {
    /// Opens (or creates) the database in directory `dir`, creating the
    /// directory and every table, with a page cache of at most
    /// `cache_bytes`. Fails if another process holds it.
    pub fn open(dir: &Path, cache_bytes: usize) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| failed(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join(FILE_NAME);
        let db = redb::Builder::new()
            .set_cache_size(cache_bytes)
            .create(&path)
            .map_err(|e| failed(format!("cannot open {}: {e}", path.display())))?;
        let tx = db.begin_write().map_err(failed)?;
        for table in Table::ALL {
            tx.open_table(def(table)).map_err(failed)?;
        }
        tx.commit().map_err(failed)?;
        Ok(Self { db: Arc::new(db) })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(failed)?
    }

    /// Runs `f` in one write transaction and commits it.
    async fn write_tx<T: Send + 'static>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(failed)?;
            let out = f(&tx)?;
            tx.commit().map_err(failed)?;
            Ok(out)
        })
        .await
    }

    pub(super) async fn get_multi(
        &self,
        keys: Vec<(Table, String)>,
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(failed)?;
            keys.iter()
                .map(|(table, key)| {
                    let t = tx.open_table(def(*table)).map_err(failed)?;
                    Ok(t.get(key.as_str())
                        .map_err(failed)?
                        .map(|v| v.value().to_vec()))
                })
                .collect()
        })
        .await
    }

    pub(super) async fn insert_new(
        &self,
        table: Table,
        items: Vec<NewItem>,
    ) -> Result<Vec<bool>, StoreError> {
        self.write_tx(move |tx| {
            let mut inserted = Vec::with_capacity(items.len());
            for item in items {
                let fresh = {
                    let mut t = tx.open_table(def(table)).map_err(failed)?;
                    let absent = t.get(item.key.as_str()).map_err(failed)?.is_none();
                    if absent {
                        t.insert(item.key.as_str(), item.value.as_slice())
                            .map_err(failed)?;
                    }
                    absent
                };
                if fresh {
                    apply(tx, item.also)?;
                }
                inserted.push(fresh);
            }
            Ok(inserted)
        })
        .await
    }

    pub(super) async fn write(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        self.write_tx(move |tx| apply(tx, ops)).await
    }

    pub(super) async fn compare_and_swap(
        &self,
        table: Table,
        key: &str,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, StoreError> {
        let key = key.to_owned();
        self.write_tx(move |tx| {
            let mut t = tx.open_table(def(table)).map_err(failed)?;
            let current = t
                .get(key.as_str())
                .map_err(failed)?
                .map(|v| v.value().to_vec());
            if current != expected {
                return Ok(false);
            }
            match new {
                Some(value) => drop(t.insert(key.as_str(), value.as_slice()).map_err(failed)?),
                None => drop(t.remove(key.as_str()).map_err(failed)?),
            }
            Ok(true)
        })
        .await
    }

    pub(super) async fn scan(
        &self,
        table: Table,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let prefix = prefix.to_owned();
        let after = after.map(str::to_owned);
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(failed)?;
            let t = tx.open_table(def(table)).map_err(failed)?;
            let start = match after.as_deref() {
                Some(a) if a >= prefix.as_str() => Bound::Excluded(a),
                _ => Bound::Included(prefix.as_str()),
            };
            let mut out = Vec::new();
            for entry in t.range::<&str>((start, Bound::Unbounded)).map_err(failed)? {
                let (k, v) = entry.map_err(failed)?;
                if !k.value().starts_with(prefix.as_str()) || out.len() >= limit {
                    break;
                }
                out.push((k.value().to_owned(), v.value().to_vec()));
            }
            Ok(out)
        })
        .await
    }

    pub(super) async fn incr(&self, name: &str, by: u64) -> Result<u64, StoreError> {
        let key = counter_key(name);
        self.write_tx(move |tx| {
            let mut t = tx.open_table(def(Table::Meta)).map_err(failed)?;
            let current = match t.get(key.as_str()).map_err(failed)? {
                Some(v) => parse_counter(v.value())?,
                None => 0,
            };
            let next = current.saturating_add(by);
            t.insert(key.as_str(), next.to_string().as_bytes())
                .map_err(failed)?;
            Ok(next)
        })
        .await
    }
}

fn apply(tx: &WriteTransaction, ops: Vec<Op>) -> Result<(), StoreError> {
    for op in ops {
        match op {
            Op::Put(table, key, value) => {
                let mut t = tx.open_table(def(table)).map_err(failed)?;
                t.insert(key.as_str(), value.as_slice()).map_err(failed)?;
            }
            Op::Delete(table, key) => {
                let mut t = tx.open_table(def(table)).map_err(failed)?;
                t.remove(key.as_str()).map_err(failed)?;
            }
        }
    }
    Ok(())
}
