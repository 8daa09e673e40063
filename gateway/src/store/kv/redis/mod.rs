//! [`RedisKv`]: the store in Redis, shared by every node of a cluster.
//!
//! # Layout
//!
//! Every key of the store carries the hash tag `{<prefix>:store}`, so on a
//! Redis Cluster the whole store lives in one slot and a script may touch
//! several tables at once. Per table:
//!
//! * `{<prefix>:store}:<table>`: a hash, key → value (binary-safe).
//! * `{<prefix>:store}:<table>:idx`: a sorted set of the same keys, all
//!   with score 0, for ordered prefix scans (`ZRANGEBYLEX`).
//!
//! Counters are fields `counter/<name>` of the `meta` hash, in decimal
//! text, the same keys the embedded backend uses.
//!
//! Each operation is one Lua script ([`scripts`]): one round trip, atomic,
//! bounded by `redis.command_timeout`. A call that fails or times out
//! gives [`StoreError::Unavailable`].

mod scripts;

use std::sync::Arc;
use std::time::Duration;

use redis::{FromRedisValue, ScriptInvocation};

use self::scripts::{DELETE, PUT, Scripts};
use super::counter_key;
use super::{Entry, NewItem, Op, StoreError, Swap, Table};
use crate::config::RedisConfig;
use crate::redis::{CallError, Commands, Keys, bounded};

/// The store's Redis connection, cheap to clone.
#[derive(Debug, Clone)]
pub struct RedisKv {
    commands: Commands,
    scripts: Arc<Scripts>,
    /// `{<prefix>:store}`, the start of every key.
    base: Arc<str>,
    timeout: Duration,
}

impl RedisKv {
    /// Opens the connection: lazily on a single Redis (so a node starts
    /// while Redis is down), eagerly on a Redis Cluster.
    pub async fn open(config: &RedisConfig) -> Result<Self, StoreError> {
        let commands = bounded(config.command_timeout, Commands::open(config))
            .await
            .map_err(|e| call_failed(&e))?;
        Ok(Self {
            commands,
            scripts: Arc::new(Scripts::new()),
            base: Keys::new(&config.prefix).store_base().into(),
            timeout: config.command_timeout,
        })
    }

    /// Refuses a Redis that keeps nothing on disk (`appendonly no` and no
    /// `save` points): its restart would lose the whole store. A Redis
    /// that cannot be reached now is let through with a warning (nodes
    /// start while Redis is down); one that refuses `CONFIG GET` (some
    /// managed services) is refused, since nothing tells it persists.
    pub async fn check_persistence(&self) -> Result<(), StoreError> {
        let setting = |name: &'static str| async move {
            let reply: Vec<String> = bounded(
                self.timeout,
                self.commands
                    .query(redis::cmd("CONFIG").arg("GET").arg(name)),
            )
            .await?;
            Ok::<_, CallError>(reply.get(1).cloned().unwrap_or_default())
        };
        let answers = match (setting("appendonly").await, setting("save").await) {
            (Ok(aof), Ok(save)) => Ok((aof, save)),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        let refused = |why: String| {
            Err(StoreError::Failed(format!(
                "{why}: a restart of that Redis would lose every user, key, ban and audit \
                 record. Use store.backend = \"postgres\", turn on appendonly, or set \
                 store.allow_volatile_redis = true to accept the loss"
            )))
        };
        match answers {
            Ok((aof, save)) if aof != "yes" && save.trim().is_empty() => refused(
                "the store's Redis keeps nothing on disk (appendonly no, no save points)".into(),
            ),
            Ok(_) => Ok(()),
            Err(CallError::Redis(e))
                if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError)
                    || e.code().is_some() =>
            {
                refused(format!(
                    "the store's Redis does not say whether it persists ({e})"
                ))
            }
            Err(e) => {
                tracing::warn!(error = %e, "the store's Redis is unreachable: whether it persists was not checked");
                Ok(())
            }
        }
    }

    /// The hash holding `table`.
    fn hash(&self, table: Table) -> String {
        Keys::store_table(&self.base, table.name())
    }

    /// The sorted set indexing the keys of `table`.
    fn idx(&self, table: Table) -> String {
        Keys::store_index(&self.base, table.name())
    }

    /// Adds one op to an invocation: its table's hash and index as keys;
    /// kind, key and value as arguments.
    fn push_op(&self, invocation: &mut ScriptInvocation<'_>, op: Op) {
        let (table, kind, key, value) = match op {
            Op::Put(table, key, value) => (table, PUT, key, value),
            Op::Delete(table, key) => (table, DELETE, key, Vec::new()),
        };
        invocation
            .key(self.hash(table))
            .key(self.idx(table))
            .arg(kind)
            .arg(key)
            .arg(value);
    }

    /// Runs a script, bounded by the command timeout.
    async fn run<T: FromRedisValue>(
        &self,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        bounded(self.timeout, self.commands.script(invocation))
            .await
            .map_err(|e| call_failed(&e))
    }

    pub(super) async fn get_multi(
        &self,
        keys: Vec<(Table, String)>,
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = self.scripts.get_multi.prepare_invoke();
        for (table, key) in keys {
            invocation.key(self.hash(table)).arg(key);
        }
        self.run(&invocation).await
    }

    pub(super) async fn insert_new(
        &self,
        table: Table,
        items: Vec<NewItem>,
    ) -> Result<Vec<bool>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = self.scripts.insert_new.prepare_invoke();
        invocation.key(self.hash(table)).key(self.idx(table));
        for item in items {
            invocation
                .arg(item.key)
                .arg(item.value)
                .arg(item.also.len());
            for op in item.also {
                self.push_op(&mut invocation, op);
            }
        }
        let inserted: Vec<i64> = self.run(&invocation).await?;
        Ok(inserted.into_iter().map(|i| i == 1).collect())
    }

    pub(super) async fn write(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        let mut invocation = self.scripts.write.prepare_invoke();
        for op in ops {
            self.push_op(&mut invocation, op);
        }
        self.run::<i64>(&invocation).await.map(drop)
    }

    pub(super) async fn compare_and_swap_many(
        &self,
        table: Table,
        swaps: Vec<Swap>,
    ) -> Result<Vec<bool>, StoreError> {
        let mut invocation = self.scripts.compare_and_swap.prepare_invoke();
        invocation.key(self.hash(table)).key(self.idx(table));
        for swap in swaps {
            invocation
                .arg(swap.key)
                .arg(u8::from(swap.expected.is_some()))
                .arg(swap.expected.unwrap_or_default())
                .arg(u8::from(swap.new.is_some()))
                .arg(swap.new.unwrap_or_default());
        }
        let done: Vec<i64> = self.run(&invocation).await?;
        Ok(done.into_iter().map(|d| d == 1).collect())
    }

    pub(super) async fn scan(
        &self,
        table: Table,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (min, max) = lex_range(prefix, after);
        let mut invocation = self.scripts.scan.prepare_invoke();
        invocation
            .key(self.hash(table))
            .key(self.idx(table))
            .arg(min)
            .arg(max)
            .arg(limit);
        let flat: Vec<Vec<u8>> = self.run(&invocation).await?;
        let mut entries = Vec::with_capacity(flat.len() / 2);
        let mut flat = flat.into_iter();
        while let (Some(key), Some(value)) = (flat.next(), flat.next()) {
            let key = String::from_utf8(key)
                .map_err(|_| StoreError::Failed(format!("{}: a key is not text", table.name())))?;
            entries.push((key, value));
        }
        Ok(entries)
    }

    pub(super) async fn count(&self, table: Table, prefix: &str) -> Result<u64, StoreError> {
        let (min, max) = lex_range(prefix, None);
        let mut invocation = self.scripts.count.prepare_invoke();
        invocation
            .key(self.hash(table))
            .key(self.idx(table))
            .arg(min)
            .arg(max);
        self.run(&invocation).await
    }

    pub(super) async fn incr(&self, name: &str, by: u64) -> Result<u64, StoreError> {
        let by = i64::try_from(by)
            .map_err(|_| StoreError::Failed(format!("counter {name}: increment too large")))?;
        let mut invocation = self.scripts.incr.prepare_invoke();
        invocation
            .key(self.hash(Table::Meta))
            .key(self.idx(Table::Meta))
            .arg(counter_key(name))
            .arg(by);
        let value: i64 = self.run(&invocation).await?;
        u64::try_from(value)
            .map_err(|_| StoreError::Failed(format!("counter {name} is negative: {value}")))
    }
}

/// `ZRANGEBYLEX` bounds of a scan: keys starting with `prefix`, strictly
/// after `after` if it is given and not before `prefix`.
///
/// Keys are UTF-8, which never contains the byte `0xff`, so every key with
/// the prefix sorts before `prefix` followed by `0xff`, and every key
/// between the two bounds starts with the prefix.
fn lex_range(prefix: &str, after: Option<&str>) -> (Vec<u8>, Vec<u8>) {
    let min = match after {
        Some(after) if after >= prefix => [b"(", after.as_bytes()].concat(),
        _ if prefix.is_empty() => b"-".to_vec(),
        _ => [b"[", prefix.as_bytes()].concat(),
    };
    let max = if prefix.is_empty() {
        b"+".to_vec()
    } else {
        [b"(", prefix.as_bytes(), &[0xff]].concat()
    };
    (min, max)
}

/// A Redis error: `Unavailable` when Redis cannot be reached or is busy
/// (retrying may work), `Failed` when Redis refused the command itself (a
/// wrong key type, a script error: retrying will not help).
/// A bounded call's failure as the store reports it.
fn call_failed(e: &CallError) -> StoreError {
    match e {
        CallError::Redis(e) => unavailable(e),
        CallError::TimedOut(_) => StoreError::Unavailable(e.to_string()),
    }
}

fn unavailable(e: &redis::RedisError) -> StoreError {
    use redis::{ErrorKind, ServerErrorKind};
    let transient = e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_cluster_error()
        || matches!(
            e.kind(),
            ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    ServerErrorKind::BusyLoading
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::ClusterDown
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::ReadOnly
                )
        );
    if transient {
        StoreError::Unavailable(format!("redis: {e}"))
    } else {
        StoreError::Failed(format!("redis: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::lex_range;

    #[test]
    fn lex_range_bounds_the_prefix() {
        assert_eq!(lex_range("", None), (b"-".to_vec(), b"+".to_vec()));
        assert_eq!(lex_range("", Some("a")), (b"(a".to_vec(), b"+".to_vec()));
        assert_eq!(
            lex_range("a/", None),
            (b"[a/".to_vec(), b"(a/\xff".to_vec())
        );
        assert_eq!(
            lex_range("a/", Some("a/1")),
            (b"(a/1".to_vec(), b"(a/\xff".to_vec())
        );
        // A cursor before the prefix starts at the prefix.
        assert_eq!(
            lex_range("a/", Some("a")),
            (b"[a/".to_vec(), b"(a/\xff".to_vec())
        );
    }
}
