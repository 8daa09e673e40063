//! [`EmbeddedKv`]: the store in one redb file on local disk, the default
//! for a single node. Every write is a redb transaction, durable when it
//! returns (fsync on commit), so a restart loses nothing that was
//! acknowledged. Writes run on tokio's blocking pool (a commit waits for
//! the disk). Reads run on the caller's thread against a snapshot (a read
//! transaction with every table open) that each commit of this process
//! replaces: the file is this process's alone, so a read always sees every
//! acknowledged write, and costs a B-tree lookup, not a transaction and
//! twelve table opens (about 15 µs for a connecting user's three lookups
//! before; see `benches/store.rs`).

use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, RwLock};

use redb::{
    Database, ReadOnlyTable, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition, WriteTransaction,
};

use super::{Entry, NewItem, Op, StoreError, Swap, Table, counter_key, parse_counter};

type Def = TableDefinition<'static, &'static str, &'static [u8]>;

fn def(table: Table) -> Def {
    TableDefinition::new(table.name())
}

fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError::Failed(e.to_string())
}

/// The file's name inside `store.path`.
pub(crate) const FILE_NAME: &str = "tokenim.redb";

/// Every table, open in one read transaction.
struct Snapshot {
    tables: Vec<ReadOnlyTable<&'static str, &'static [u8]>>,
}

impl Snapshot {
    /// The latest committed state.
    fn read(db: &Database) -> Result<Self, StoreError> {
        let tx = db.begin_read().map_err(failed)?;
        let tables = Table::ALL
            .iter()
            .map(|t| tx.open_table(def(*t)).map_err(failed))
            .collect::<Result<_, _>>()?;
        Ok(Self { tables })
    }

    fn table(&self, table: Table) -> &ReadOnlyTable<&'static str, &'static [u8]> {
        // `tables` follows `Table::ALL`, which lists the variants in order.
        &self.tables[table as usize]
    }
}

/// A redb database shared by the node's tasks.
#[derive(Clone)]
pub struct EmbeddedKv {
    db: Arc<Database>,
    snapshot: Arc<RwLock<Arc<Snapshot>>>,
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
        let snapshot = Arc::new(RwLock::new(Arc::new(Snapshot::read(&db)?)));
        Ok(Self {
            db: Arc::new(db),
            snapshot,
        })
    }

    /// The snapshot reads go to.
    fn current(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshot.read().unwrap_or_else(|e| e.into_inner()))
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
        let snapshot = Arc::clone(&self.snapshot);
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(failed)?;
            let out = f(&tx)?;
            tx.commit().map_err(failed)?;
            // Read a fresh snapshot before answering: the caller's next
            // read sees this write.
            let fresh = Arc::new(Snapshot::read(db)?);
            *snapshot.write().unwrap_or_else(|e| e.into_inner()) = fresh;
            Ok(out)
        })
        .await
    }

    /// Reads the snapshot on the caller's thread: a lookup in cached pages
    /// takes about a microsecond, far less than a hop to the blocking pool
    /// (which would also grow a thread per concurrent connect during a
    /// connection storm).
    pub(super) async fn get_multi(
        &self,
        keys: Vec<(Table, String)>,
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let snapshot = self.current();
        keys.iter()
            .map(|(table, key)| {
                let value = snapshot.table(*table).get(key.as_str()).map_err(failed)?;
                Ok(value.map(|v| v.value().to_vec()))
            })
            .collect()
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

    pub(super) async fn compare_and_swap_many(
        &self,
        table: Table,
        swaps: Vec<Swap>,
    ) -> Result<Vec<bool>, StoreError> {
        self.write_tx(move |tx| {
            let mut t = tx.open_table(def(table)).map_err(failed)?;
            let mut done = Vec::with_capacity(swaps.len());
            for swap in swaps {
                let key = swap.key.as_str();
                let current = t.get(key).map_err(failed)?.map(|v| v.value().to_vec());
                if current != swap.expected {
                    done.push(false);
                    continue;
                }
                match swap.new {
                    Some(value) => drop(t.insert(key, value.as_slice()).map_err(failed)?),
                    None => drop(t.remove(key).map_err(failed)?),
                }
                done.push(true);
            }
            Ok(done)
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
        let snapshot = self.current();
        let t = snapshot.table(table);
        let start = match after {
            Some(a) if a >= prefix => Bound::Excluded(a),
            _ => Bound::Included(prefix),
        };
        let mut out = Vec::new();
        for entry in t.range::<&str>((start, Bound::Unbounded)).map_err(failed)? {
            let (k, v) = entry.map_err(failed)?;
            if !k.value().starts_with(prefix) || out.len() >= limit {
                break;
            }
            out.push((k.value().to_owned(), v.value().to_vec()));
        }
        Ok(out)
    }

    pub(super) async fn count(&self, table: Table, prefix: &str) -> Result<u64, StoreError> {
        let snapshot = self.current();
        let t = snapshot.table(table);
        if prefix.is_empty() {
            // redb keeps each table's length: no walk.
            return t.len().map_err(failed);
        }
        let mut n = 0;
        for entry in t.range::<&str>(prefix..).map_err(failed)? {
            let (k, _) = entry.map_err(failed)?;
            if !k.value().starts_with(prefix) {
                break;
            }
            n += 1;
        }
        Ok(n)
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
