//! The audit log on PostgreSQL: records are written with their fields as
//! typed columns, whose indexes answer the log's query instead of a scan.

use serde::Deserialize;
use sqlx::{Postgres, Row, Transaction};

use super::PostgresKv;
use super::errors::{failed, store_error};
use crate::store::kv::StoreError;

/// The fields of a record that are columns.
#[derive(Deserialize)]
struct Fields<'a> {
    time: u64,
    #[serde(borrow)]
    actor: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    action: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    target: std::borrow::Cow<'a, str>,
}

/// Writes audit records (insert or replace), their fields as columns.
pub(super) async fn upsert(
    tx: &mut Transaction<'static, Postgres>,
    keys: &[String],
    values: &[Vec<u8>],
) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    let (mut at, mut actor, mut action, mut target) = (
        Vec::with_capacity(keys.len()),
        Vec::with_capacity(keys.len()),
        Vec::with_capacity(keys.len()),
        Vec::with_capacity(keys.len()),
    );
    for (key, value) in keys.iter().zip(values) {
        let f: Fields<'_> = serde_json::from_slice(value)
            .map_err(|e| failed(format!("audit record {key} is not one: {e}")))?;
        at.push(millis(f.time));
        actor.push(f.actor.into_owned());
        action.push(f.action.into_owned());
        target.push(f.target.into_owned());
    }
    sqlx::query(
        r#"INSERT INTO audit (key, value, at, actor, action, target)
           SELECT * FROM unnest($1::text[], $2::bytea[], $3::bigint[], $4::text[], $5::text[], $6::text[])
           ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, at = EXCLUDED.at,
               actor = EXCLUDED.actor, action = EXCLUDED.action, target = EXCLUDED.target"#,
    )
    .bind(keys)
    .bind(values)
    .bind(&at)
    .bind(&actor)
    .bind(&action)
    .bind(&target)
    .execute(&mut **tx)
    .await
    .map_err(store_error)?;
    Ok(())
}

/// Which audit records to read (every field that is set must match).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter<'a> {
    /// Records at or after this time (ms).
    pub from: Option<u64>,
    /// Records before this time (ms).
    pub to: Option<u64>,
    /// This actor.
    pub actor: Option<&'a str>,
    /// This action (its wire name).
    pub action: Option<&'a str>,
    /// This target.
    pub target: Option<&'a str>,
    /// Records whose key sorts after this one.
    pub after: Option<&'a str>,
    /// Most records.
    pub limit: usize,
}

fn millis(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

impl PostgresKv {
    /// Up to `filter.limit` values of matching audit records, in key
    /// (id) order.
    pub async fn audit_records(
        &self,
        filter: &AuditFilter<'_>,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut conditions = vec!["key > $1".to_owned()];
        let mut texts: Vec<&str> = vec![filter.after.unwrap_or("")];
        for (column, value) in [
            ("actor", filter.actor),
            ("action", filter.action),
            ("target", filter.target),
        ] {
            if let Some(v) = value {
                texts.push(v);
                conditions.push(format!("{column} = ${}", texts.len()));
            }
        }
        let mut numbers = Vec::new();
        for (condition, value) in [("at >=", filter.from), ("at <", filter.to)] {
            if let Some(t) = value {
                numbers.push(millis(t));
                conditions.push(format!("{condition} ${}", texts.len() + numbers.len()));
            }
        }
        let sql = format!(
            "SELECT value FROM audit WHERE {} ORDER BY key LIMIT ${}",
            conditions.join(" AND "),
            texts.len() + numbers.len() + 1
        );
        let mut query = sqlx::query(&sql);
        for t in texts {
            query = query.bind(t);
        }
        for n in numbers {
            query = query.bind(n);
        }
        let query = query.bind(i64::try_from(filter.limit).unwrap_or(i64::MAX));
        let rows = self
            .bounded(async { query.fetch_all(&self.pool).await.map_err(store_error) })
            .await?;
        rows.into_iter()
            .map(|r| r.try_get("value").map_err(store_error))
            .collect()
    }
}
