//! [`PostgresKv`]: the store in PostgreSQL, the system of record of a
//! cluster: every node uses the same database.
//!
//! # Layout
//!
//! One SQL table per [`Table`], created by the versioned migrations in
//! `gateway/migrations` (applied by [`PostgresKv::open`] under
//! PostgreSQL's advisory lock, so one node of several starting at once
//! applies them; a database whose schema is newer than this build is
//! refused). Each table has a `key` (text, bytewise order, so a prefix
//! is a range of the primary key) and the exact `value` bytes; the audit
//! log adds typed columns generated from its JSON records (time, actor,
//! action, target) with an index on each, and memberships carry foreign
//! keys to their user and group.
//!
//! Every operation of the contract is one transaction (one round trip
//! where it can be), bounded by `store.timeout` on both sides: the
//! server cancels a statement that runs longer, and the node gives up on
//! a server that does not answer (frozen, partitioned) and reports
//! [`StoreError::Unavailable`]. A write whose commit was not confirmed may
//! or may not have been applied; every write of the store is safe to
//! retry.

mod audit;
mod errors;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use crate::config::StoreConfig;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Row, Transaction};

pub use self::audit::AuditFilter;
use self::errors::{failed, store_error};
use super::{Entry, NewItem, Op, StoreError, Swap, Table, counter_key, parse_counter};

/// The migrations, embedded in the binary.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The store's connection pool, cheap to clone.
#[derive(Debug, Clone)]
pub struct PostgresKv {
    pool: PgPool,
    timeout: Duration,
}

/// The final state of the keys an op list writes: the last op on a key
/// wins (the ops are applied in order, atomically).
#[derive(Default)]
struct Changes {
    /// Per table: key → new value (`None`: deleted).
    tables: BTreeMap<usize, BTreeMap<String, Option<Vec<u8>>>>,
}

impl Changes {
    fn add(&mut self, op: Op) {
        let (table, key, value) = match op {
            Op::Put(t, k, v) => (t, k, Some(v)),
            Op::Delete(t, k) => (t, k, None),
        };
        self.tables
            .entry(table as usize)
            .or_default()
            .insert(key, value);
    }

    /// Applies every change within `tx`: a delete and an upsert per table.
    async fn apply(self, tx: &mut Transaction<'static, Postgres>) -> Result<(), StoreError> {
        for (index, changes) in self.tables {
            let name = Table::ALL[index].name();
            let (mut put_keys, mut put_values, mut deleted) = (Vec::new(), Vec::new(), Vec::new());
            for (key, value) in changes {
                match value {
                    Some(v) => {
                        put_keys.push(key);
                        put_values.push(v);
                    }
                    None => deleted.push(key),
                }
            }
            if !deleted.is_empty() {
                sqlx::query(&format!(r#"DELETE FROM "{name}" WHERE key = ANY($1)"#))
                    .bind(&deleted)
                    .execute(&mut **tx)
                    .await
                    .map_err(store_error)?;
            }
            if Table::ALL[index] == Table::Audit {
                audit::upsert(tx, &put_keys, &put_values).await?;
            } else if !put_keys.is_empty() {
                sqlx::query(&format!(
                    r#"INSERT INTO "{name}" (key, value) SELECT * FROM unnest($1::text[], $2::bytea[])
                       ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"#
                ))
                .bind(&put_keys)
                .bind(&put_values)
                .execute(&mut **tx)
                .await
                .map_err(store_error)?;
            }
        }
        Ok(())
    }
}

/// The least string above every string that starts with `prefix`, if
/// any: the exclusive upper bound of a prefix scan.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

impl PostgresKv {
    /// Connects, then applies the migrations this database lacks. Fails
    /// if the database cannot be reached within the timeout, or holds a
    /// schema this build does not know (a newer tokenim migrated it).
    pub async fn open(config: &StoreConfig) -> Result<Self, StoreError> {
        let kv = Self::connect(config)?;
        kv.migrate().await?;
        Ok(kv)
    }

    /// The pool, connecting lazily (nothing is checked yet).
    pub fn connect(config: &StoreConfig) -> Result<Self, StoreError> {
        let url = config
            .url
            .as_deref()
            .ok_or_else(|| failed("store.url is not set"))?;
        let millis = config.timeout.as_millis().to_string();
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| failed(format!("store.url: {e}")))?
            .application_name("tokenim")
            .options([
                ("statement_timeout", millis.as_str()),
                ("lock_timeout", millis.as_str()),
                ("idle_in_transaction_session_timeout", millis.as_str()),
                // Plans per call: the audit and listing queries' best index
                // depends on the values bound.
                ("plan_cache_mode", "force_custom_plan"),
            ]);
        let pool = PgPoolOptions::new()
            .max_connections(config.pool_size)
            .acquire_timeout(config.timeout)
            .connect_lazy_with(connect);
        Ok(Self {
            pool,
            timeout: config.timeout,
        })
    }

    /// Applies the migrations this database lacks, under an advisory lock
    /// (nodes starting together wait for the one applying them).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let run = MIGRATOR.run(&self.pool);
        tokio::time::timeout(self.timeout * 6, run)
            .await
            .map_err(|_| StoreError::Unavailable("applying the migrations timed out".into()))?
            .map_err(errors::migrate_error)
    }

    /// Refreshes the planner's statistics of every table (after a bulk
    /// load, before autovacuum gets to it: without them a time-range
    /// query of the audit log may walk the log by id instead of using its
    /// time index).
    pub async fn analyze(&self) -> Result<(), StoreError> {
        let run = async {
            let mut tx = self.begin().await?;
            // Longer than one statement may take otherwise.
            sqlx::query("SET LOCAL statement_timeout = '10min'")
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
            sqlx::query("ANALYZE")
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
            tx.commit().await.map_err(store_error)
        };
        tokio::time::timeout(Duration::from_secs(600), run)
            .await
            .map_err(|_| StoreError::Unavailable("ANALYZE timed out".into()))?
    }

    /// The newest migration this build has.
    pub fn schema_version() -> i64 {
        MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
    }

    /// Runs `f`, bounded by the timeout.
    async fn bounded<T>(
        &self,
        f: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.timeout, f)
            .await
            .map_err(|_| StoreError::Unavailable("PostgreSQL did not answer in time".into()))?
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.pool.begin().await.map_err(store_error)
    }

    pub(super) async fn get_multi(
        &self,
        keys: Vec<(Table, String)>,
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // One statement, one snapshot: a UNION of each table's lookups.
        let mut per_table: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for (table, key) in &keys {
            per_table
                .entry(*table as usize)
                .or_default()
                .push(key.clone());
        }
        let sql = per_table
            .keys()
            .enumerate()
            .map(|(i, &t)| {
                let name = Table::ALL[t].name();
                format!(
                    r#"SELECT {t}::int AS t, key, value FROM "{name}" WHERE key = ANY(${})"#,
                    i + 1
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let mut query = sqlx::query(&sql);
        for keys in per_table.values() {
            query = query.bind(keys);
        }
        let rows = self
            .bounded(async { query.fetch_all(&self.pool).await.map_err(store_error) })
            .await?;
        let mut found: BTreeMap<(usize, String), Vec<u8>> = BTreeMap::new();
        for row in rows {
            let t: i32 = row.try_get("t").map_err(store_error)?;
            found.insert(
                (t as usize, row.try_get("key").map_err(store_error)?),
                row.try_get("value").map_err(store_error)?,
            );
        }
        Ok(keys
            .into_iter()
            .map(|(table, key)| found.get(&(table as usize, key)).cloned())
            .collect())
    }

    pub(super) async fn insert_new(
        &self,
        table: Table,
        items: Vec<NewItem>,
    ) -> Result<Vec<bool>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let name = table.name();
        self.bounded(async {
            let mut tx = self.begin().await?;
            let keys: Vec<&str> = items.iter().map(|i| i.key.as_str()).collect();
            let values: Vec<&[u8]> = items.iter().map(|i| i.value.as_slice()).collect();
            let rows = sqlx::query(&format!(
                // Rows go in in order: of a repeated key, the first goes in
                // and the others meet it as a conflict.
                r#"INSERT INTO "{name}" (key, value) SELECT * FROM unnest($1::text[], $2::bytea[])
                   ON CONFLICT (key) DO NOTHING RETURNING key"#
            ))
            .bind(&keys)
            .bind(&values)
            .fetch_all(&mut *tx)
            .await
            .map_err(store_error)?;
            let mut fresh: std::collections::HashSet<String> = rows
                .into_iter()
                .map(|r| r.try_get("key"))
                .collect::<Result<_, _>>()
                .map_err(store_error)?;
            let mut changes = Changes::default();
            let mut inserted = Vec::with_capacity(items.len());
            for item in items {
                // The first of repeated keys is the one that went in.
                let new = fresh.remove(&item.key);
                if new {
                    for op in item.also {
                        changes.add(op);
                    }
                }
                inserted.push(new);
            }
            changes.apply(&mut tx).await?;
            tx.commit().await.map_err(store_error)?;
            Ok(inserted)
        })
        .await
    }

    pub(super) async fn write(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        let mut changes = Changes::default();
        for op in ops {
            changes.add(op);
        }
        self.bounded(async {
            let mut tx = self.begin().await?;
            changes.apply(&mut tx).await?;
            tx.commit().await.map_err(store_error)
        })
        .await
    }

    pub(super) async fn compare_and_swap_many(
        &self,
        table: Table,
        swaps: Vec<Swap>,
    ) -> Result<Vec<bool>, StoreError> {
        let name = table.name();
        self.bounded(async {
            let mut tx = self.begin().await?;
            let keys: Vec<&str> = swaps.iter().map(|s| s.key.as_str()).collect();
            // Lock the rows that exist; the absent ones are claimed by the
            // insert below, which fails for a key inserted meanwhile.
            let rows = sqlx::query(&format!(
                r#"SELECT key, value FROM "{name}" WHERE key = ANY($1) ORDER BY key FOR UPDATE"#
            ))
            .bind(&keys)
            .fetch_all(&mut *tx)
            .await
            .map_err(store_error)?;
            let mut current: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
            for row in rows {
                current.insert(
                    row.try_get("key").map_err(store_error)?,
                    Some(row.try_get("value").map_err(store_error)?),
                );
            }
            let absent_at_start: std::collections::BTreeSet<String> = keys
                .iter()
                .filter(|k| !current.contains_key(**k))
                .map(|k| (*k).to_owned())
                .collect();
            let mut done = Vec::with_capacity(swaps.len());
            let mut changes = Changes::default();
            for swap in &swaps {
                let now = current.entry(swap.key.clone()).or_default();
                if *now != swap.expected {
                    done.push(false);
                    continue;
                }
                now.clone_from(&swap.new);
                changes.add(match &swap.new {
                    Some(v) => Op::Put(table, swap.key.clone(), v.clone()),
                    None => Op::Delete(table, swap.key.clone()),
                });
                done.push(true);
            }
            // Keys that were absent and are written now: insert them first,
            // so a concurrent insert makes their swaps fail rather than be
            // overwritten.
            let claims: Vec<(String, Vec<u8>)> = absent_at_start
                .into_iter()
                .filter_map(|k| current.get(&k).cloned().flatten().map(|v| (k, v)))
                .collect();
            if !claims.is_empty() {
                let (ks, vs): (Vec<String>, Vec<Vec<u8>>) = claims.iter().cloned().unzip();
                let inserted = sqlx::query(&format!(
                    r#"INSERT INTO "{name}" (key, value) SELECT * FROM unnest($1::text[], $2::bytea[])
                       ON CONFLICT (key) DO NOTHING RETURNING key"#
                ))
                .bind(&ks)
                .bind(&vs)
                .fetch_all(&mut *tx)
                .await
                .map_err(store_error)?;
                if inserted.len() != ks.len() {
                    // Someone inserted one of them meanwhile: nothing is
                    // done; the caller reads again and retries.
                    tx.rollback().await.map_err(store_error)?;
                    return Ok(vec![false; swaps.len()]);
                }
            }
            changes.apply(&mut tx).await?;
            tx.commit().await.map_err(store_error)?;
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
        let name = table.name();
        let start = match after {
            Some(a) if a >= prefix => a,
            _ => prefix,
        };
        let op = if start == prefix && after != Some(prefix) {
            ">="
        } else {
            ">"
        };
        let end = prefix_end(prefix);
        let bound = if end.is_some() { "AND key < $3" } else { "" };
        let sql = format!(
            r#"SELECT key, value FROM "{name}" WHERE key {op} $1 {bound} ORDER BY key LIMIT $2"#
        );
        let mut query = sqlx::query(&sql)
            .bind(start)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX));
        if let Some(end) = &end {
            query = query.bind(end);
        }
        let rows = self
            .bounded(async { query.fetch_all(&self.pool).await.map_err(store_error) })
            .await?;
        rows.into_iter()
            .map(|r| Ok((r.try_get("key")?, r.try_get("value")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(store_error)
    }

    pub(super) async fn count(&self, table: Table, prefix: &str) -> Result<u64, StoreError> {
        let name = table.name();
        let end = prefix_end(prefix);
        let sql = match end {
            Some(_) => format!(r#"SELECT count(*) FROM "{name}" WHERE key >= $1 AND key < $2"#),
            None => format!(r#"SELECT count(*) FROM "{name}" WHERE key >= $1"#),
        };
        let mut query = sqlx::query_scalar::<_, i64>(&sql).bind(prefix);
        if let Some(end) = &end {
            query = query.bind(end);
        }
        let n = self
            .bounded(async { query.fetch_one(&self.pool).await.map_err(store_error) })
            .await?;
        Ok(n.max(0) as u64)
    }

    pub(super) async fn incr(&self, name: &str, by: u64) -> Result<u64, StoreError> {
        let by = i64::try_from(by).map_err(|_| failed("counter increment out of range"))?;
        let raw: Vec<u8> = self
            .bounded(async {
                sqlx::query_scalar(
                    r#"INSERT INTO meta (key, value) VALUES ($1, convert_to($2::bigint::text, 'UTF8'))
                       ON CONFLICT (key) DO UPDATE
                       SET value = convert_to((convert_from(meta.value, 'UTF8')::bigint + $2)::text, 'UTF8')
                       RETURNING value"#,
                )
                .bind(counter_key(name))
                .bind(by)
                .fetch_one(&self.pool)
                .await
                .map_err(store_error)
            })
            .await?;
        parse_counter(&raw)
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn a_prefix_ends_at_its_last_character_plus_one() {
        assert_eq!(prefix_end("alice/").as_deref(), Some("alice0"));
        assert_eq!(prefix_end("").as_deref(), None);
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{10FFFF}").as_deref(), None);
        // Surrogates are no characters: the next one after U+D7FF.
        assert_eq!(prefix_end("\u{D7FF}").as_deref(), Some("\u{E000}"));
    }
}
