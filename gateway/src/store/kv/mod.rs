//! [`Kv`]: the small key-value contract every store backend meets, and the
//! closed set of backends behind it.
//!
//! Everything the gateway keeps (users, groups, keys, policy, audit, jobs)
//! is written once, in [`crate::store`], on top of these few operations;
//! a backend only has to make them atomic and durable:
//!
//! * [`Kv::get_multi`]: several keys of several tables in one round trip.
//! * [`Kv::insert_new`]: put each item whose key is absent, together with
//!   the item's extra writes, atomically per item; report which went in.
//! * [`Kv::write`]: puts and deletes across tables, all or nothing.
//! * [`Kv::compare_and_swap`]: replace a value only if it is still the
//!   one read (read-modify-write from several nodes).
//! * [`Kv::scan`]: keys with a prefix, in byte order, after a cursor.
//! * [`Kv::count`]: how many keys have a prefix.
//! * [`Kv::incr`]: a shared counter (ids, versions).
//!
//! Backends: [`EmbeddedKv`] (redb, a single file on local disk: the
//! default), [`PostgresKv`] (the system of record of a cluster) and
//! [`RedisKv`] (shared by every node of a cluster; only on a Redis that
//! persists). All pass the same contract tests
//! (`gateway/tests/it/store_contract.rs`).
//!
//! Values are bytes, kept exactly. The store writes JSON records into
//! every table (counters are decimal text); PostgreSQL generates typed,
//! indexed columns from the audit log's records, so that table takes JSON
//! only, and refuses a membership whose user or group is not stored.
//!
//! Keys are text. Composite keys join their parts with [`SEP`], which no
//! id may contain, so a prefix scan of `"alice/"` finds exactly alice's.

mod embedded;
pub mod postgres;
mod redis;

pub use self::embedded::EmbeddedKv;
pub use self::postgres::PostgresKv;
pub use self::redis::RedisKv;

/// Joins the parts of a composite key (`group/user`).
pub const SEP: char = '/';

/// Where counter `name` lives in the meta table (both backends).
pub(crate) fn counter_key(name: &str) -> String {
    format!("counter{SEP}{name}")
}

/// A counter's stored text.
pub(crate) fn parse_counter(bytes: &[u8]) -> Result<u64, StoreError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| StoreError::Failed("a counter holds something other than a number".into()))
}

/// The tables of the store, in the order of [`Table::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// User id → user record.
    Users,
    /// Group id → group record.
    Groups,
    /// `group/user` → membership.
    Members,
    /// `user/group` → membership (the reverse index).
    UserGroups,
    /// Key id → API key.
    Keys,
    /// User id → ban.
    Bans,
    /// User id → tokens issued before this time are revoked.
    Revocations,
    /// Zero-padded id → audit record.
    Audit,
    /// `key id/idempotency key` → stored response.
    Idempotency,
    /// Job id → job state.
    Jobs,
    /// `job id/zero-padded line` → one failed item of a job.
    JobFailures,
    /// Single documents (the policy) and counters.
    Meta,
}

impl Table {
    /// Every table.
    pub const ALL: [Table; 12] = [
        Table::Users,
        Table::Groups,
        Table::Members,
        Table::UserGroups,
        Table::Keys,
        Table::Bans,
        Table::Revocations,
        Table::Audit,
        Table::Idempotency,
        Table::Jobs,
        Table::JobFailures,
        Table::Meta,
    ];

    /// The table's name in the backend.
    pub fn name(self) -> &'static str {
        match self {
            Table::Users => "users",
            Table::Groups => "groups",
            Table::Members => "members",
            Table::UserGroups => "user_groups",
            Table::Keys => "keys",
            Table::Bans => "bans",
            Table::Revocations => "revocations",
            Table::Audit => "audit",
            Table::Idempotency => "idempotency",
            Table::Jobs => "jobs",
            Table::JobFailures => "job_failures",
            Table::Meta => "meta",
        }
    }
}

/// One write of a [`Kv::write`] or of an item of [`Kv::insert_new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Sets `key` in a table to a value.
    Put(Table, String, Vec<u8>),
    /// Removes `key` from a table (nothing if absent).
    Delete(Table, String),
}

/// An item for [`Kv::insert_new`]: `value` goes in at `key` only if the key
/// is absent, and then so do the writes in `also`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewItem {
    /// The key that must be absent.
    pub key: String,
    /// Its value.
    pub value: Vec<u8>,
    /// Further writes made with it, atomically, only if it went in.
    pub also: Vec<Op>,
}

/// A swap for [`Kv::compare_and_swap_many`]: `key` becomes `new` (`None`:
/// deleted) only if its value is still `expected` (`None`: absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swap {
    /// The key.
    pub key: String,
    /// The value it must still hold.
    pub expected: Option<Vec<u8>>,
    /// Its value afterwards.
    pub new: Option<Vec<u8>>,
}

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached or did not answer in time (Redis
    /// down or hung). A write that timed out may or may not have been
    /// applied: every write of the store is safe to retry (creation is
    /// insert-if-absent, updates compare-and-swap). Retry later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The backend failed (disk, a corrupt value). Look at the logs.
    #[error("store failed: {0}")]
    Failed(String),
}

impl StoreError {
    /// The reply error code for this failure.
    pub fn code(&self) -> tokenim_protocol::ErrorCode {
        match self {
            StoreError::Unavailable(_) => tokenim_protocol::ErrorCode::Unavailable,
            StoreError::Failed(_) => tokenim_protocol::ErrorCode::Internal,
        }
    }
}

/// A key-value pair read by a scan.
pub type Entry = (String, Vec<u8>);

/// The store's backend.
#[derive(Debug, Clone)]
pub enum Kv {
    /// A redb file on local disk.
    Embedded(EmbeddedKv),
    /// PostgreSQL, shared by the nodes of a cluster.
    Postgres(PostgresKv),
    /// Redis, shared by the nodes of a cluster.
    Redis(RedisKv),
}

impl Kv {
    /// The value at `key`, if any.
    pub async fn get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut values = self.get_multi(vec![(table, key.to_owned())]).await?;
        Ok(values.pop().flatten())
    }

    /// The values at several keys, in order, in one round trip.
    pub async fn get_multi(
        &self,
        keys: Vec<(Table, String)>,
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        match self {
            Kv::Embedded(kv) => kv.get_multi(keys).await,
            Kv::Postgres(kv) => kv.get_multi(keys).await,
            Kv::Redis(kv) => kv.get_multi(keys).await,
        }
    }

    /// Inserts each item whose key is absent from `table` (with its `also`
    /// writes), atomically per item. Returns, per item, whether it went in.
    /// A key repeated within `items` goes in at most once.
    pub async fn insert_new(
        &self,
        table: Table,
        items: Vec<NewItem>,
    ) -> Result<Vec<bool>, StoreError> {
        match self {
            Kv::Embedded(kv) => kv.insert_new(table, items).await,
            Kv::Postgres(kv) => kv.insert_new(table, items).await,
            Kv::Redis(kv) => kv.insert_new(table, items).await,
        }
    }

    /// Applies every op, in order, atomically.
    pub async fn write(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        match self {
            Kv::Embedded(kv) => kv.write(ops).await,
            Kv::Postgres(kv) => kv.write(ops).await,
            Kv::Redis(kv) => kv.write(ops).await,
        }
    }

    /// Sets `key` to `new` (`None`: deletes it) only if its value is still
    /// `expected` (`None`: absent). Returns whether it did.
    pub async fn compare_and_swap(
        &self,
        table: Table,
        key: &str,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, StoreError> {
        let swap = Swap {
            key: key.to_owned(),
            expected,
            new,
        };
        Ok(self.compare_and_swap_many(table, vec![swap]).await?[0])
    }

    /// Each swap of [`Kv::compare_and_swap`], all in one atomic step (one
    /// transaction, one script), each on its own: one whose key changed is
    /// not done and the others are. Returns, per swap in order, whether it
    /// was done.
    pub async fn compare_and_swap_many(
        &self,
        table: Table,
        swaps: Vec<Swap>,
    ) -> Result<Vec<bool>, StoreError> {
        if swaps.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            Kv::Embedded(kv) => kv.compare_and_swap_many(table, swaps).await,
            Kv::Postgres(kv) => kv.compare_and_swap_many(table, swaps).await,
            Kv::Redis(kv) => kv.compare_and_swap_many(table, swaps).await,
        }
    }

    /// Up to `limit` entries whose keys start with `prefix` and sort after
    /// `after` (when given), in byte order of their keys.
    pub async fn scan(
        &self,
        table: Table,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        match self {
            Kv::Embedded(kv) => kv.scan(table, prefix, after, limit).await,
            Kv::Postgres(kv) => kv.scan(table, prefix, after, limit).await,
            Kv::Redis(kv) => kv.scan(table, prefix, after, limit).await,
        }
    }

    /// How many keys of `table` start with `prefix` (the whole table for
    /// `""`, without reading it: redb and Redis keep the length; a prefix
    /// reads its keys).
    pub async fn count(&self, table: Table, prefix: &str) -> Result<u64, StoreError> {
        match self {
            Kv::Embedded(kv) => kv.count(table, prefix).await,
            Kv::Postgres(kv) => kv.count(table, prefix).await,
            Kv::Redis(kv) => kv.count(table, prefix).await,
        }
    }

    /// The value of counter `name` (absent: 0), read without writing.
    pub async fn counter(&self, name: &str) -> Result<u64, StoreError> {
        match self.get(Table::Meta, &counter_key(name)).await? {
            Some(raw) => parse_counter(&raw),
            None => Ok(0),
        }
    }

    /// Adds `by` to the counter `name` (absent: 0) and returns the result.
    pub async fn incr(&self, name: &str, by: u64) -> Result<u64, StoreError> {
        match self {
            Kv::Embedded(kv) => kv.incr(name, by).await,
            Kv::Postgres(kv) => kv.incr(name, by).await,
            Kv::Redis(kv) => kv.incr(name, by).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Table;

    #[test]
    fn all_lists_the_tables_in_declaration_order() {
        for (i, table) in Table::ALL.into_iter().enumerate() {
            assert_eq!(table as usize, i, "{table:?}");
        }
    }
}
