//! The audit log: records appended with a shared, increasing id, queried
//! by time range, actor, action and target, a page at a time.

use serde::{Deserialize, Serialize};
use tokenim_auth::{AuditAction, AuditRecord};

use super::kv::postgres::AuditFilter;
use super::kv::{Kv, Op, Table};
use super::{Store, StoreError, decode, encode};

/// Records read (and filtered) at most per query: a query whose filters
/// match little returns a short page with a cursor to continue from,
/// rather than reading the whole log.
pub const MAX_SCAN: usize = 10_000;

/// Records deleted per write.
pub const RETENTION_BATCH: usize = 1_000;
/// Batches per round at most (the rest waits for the next round).
pub const RETENTION_BATCHES: usize = 20;

/// Which records to return.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    /// Only records at or after this time (ms).
    pub from: Option<u64>,
    /// Only records before this time (ms).
    pub to: Option<u64>,
    /// Only this actor.
    pub actor: Option<String>,
    /// Only this action.
    pub action: Option<AuditAction>,
    /// Only this target.
    pub target: Option<String>,
    /// Continue after this record id (the `next` of the previous page).
    pub after: Option<u64>,
    /// Most records returned.
    pub limit: usize,
}

impl AuditQuery {
    fn matches(&self, r: &AuditRecord) -> bool {
        self.from.is_none_or(|t| r.time >= t)
            && self.to.is_none_or(|t| r.time < t)
            && self.actor.as_deref().is_none_or(|a| r.actor == a)
            && self.action.is_none_or(|a| r.action == a)
            && self.target.as_deref().is_none_or(|t| r.target == t)
    }
}

/// A page of the audit log, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditPage {
    /// Matching records.
    #[schema(value_type = Vec<crate::schema::AuditRecord>)]
    pub records: Vec<AuditRecord>,
    /// Pass as `after` to continue; absent at the end of the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub next: Option<u64>,
}

/// The key of record `id`: zero-padded so byte order is numeric order.
fn key(id: u64) -> String {
    format!("{id:020}")
}

impl Store {
    /// Appends a record; returns its id.
    pub async fn audit(&self, mut record: AuditRecord) -> Result<u64, StoreError> {
        let id = self.kv.incr("audit", 1).await?;
        record.id = id;
        self.kv
            .write(vec![Op::Put(Table::Audit, key(id), encode(&record))])
            .await?;
        Ok(id)
    }

    /// Replaces record `id` with `record` (same id): only for the count of
    /// an aggregated record of failed authentications, which grows while
    /// its minute lasts.
    pub async fn rewrite_audit(&self, id: u64, mut record: AuditRecord) -> Result<(), StoreError> {
        record.id = id;
        self.kv
            .write(vec![Op::Put(Table::Audit, key(id), encode(&record))])
            .await
    }

    /// Deletes up to `batch` of the oldest records that are beyond
    /// `max_records` (counting from the newest id) or older than
    /// `before` (ms); returns how many it deleted. Stops at the first
    /// record it keeps, so one call reads at most `batch` records.
    pub async fn trim_audit(
        &self,
        max_records: u64,
        before: u64,
        batch: usize,
    ) -> Result<usize, StoreError> {
        let last = self.kv.counter("audit").await?;
        let keep_from = last.saturating_sub(max_records) + 1;
        let oldest = self.kv.scan(Table::Audit, "", None, batch).await?;
        let mut ops = Vec::new();
        for (k, raw) in oldest {
            let record: AuditRecord = decode(&raw)?;
            if record.id >= keep_from && record.time >= before {
                break;
            }
            ops.push(Op::Delete(Table::Audit, k));
        }
        let deleted = ops.len();
        if deleted > 0 {
            self.kv.write(ops).await?;
        }
        Ok(deleted)
    }

    /// Enforces retention every `every` until `shutdown`: the
    /// oldest records beyond `max_records` or older than `max_age` are
    /// deleted, at most [`RETENTION_BATCHES`] batches of
    /// [`RETENTION_BATCH`] a round; `deleted` hears each batch's count.
    pub async fn run_audit_retention(
        self,
        max_records: u64,
        max_age: std::time::Duration,
        every: std::time::Duration,
        shutdown: tokio_util::sync::CancellationToken,
        deleted: impl Fn(usize),
    ) {
        crate::clock::every(every, &shutdown, || async {
            let before = crate::clock::unix_millis().saturating_sub(max_age.as_millis() as u64);
            for _ in 0..RETENTION_BATCHES {
                match self.trim_audit(max_records, before, RETENTION_BATCH).await {
                    Ok(n) => {
                        deleted(n);
                        if n < RETENTION_BATCH {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "audit retention not enforced this round");
                        break;
                    }
                }
            }
        })
        .await;
    }

    /// Appends several records with consecutive ids, in one write.
    pub async fn audit_many(&self, mut records: Vec<AuditRecord>) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let last = self.kv.incr("audit", records.len() as u64).await?;
        let first = last + 1 - records.len() as u64;
        let ops = records
            .iter_mut()
            .zip(first..)
            .map(|(r, id)| {
                r.id = id;
                Op::Put(Table::Audit, key(id), encode(r))
            })
            .collect();
        self.kv.write(ops).await
    }

    /// Records matching `query`, oldest first.
    pub async fn audit_log(&self, query: &AuditQuery) -> Result<AuditPage, StoreError> {
        let limit = query.limit.clamp(1, 1_000);
        if let Kv::Postgres(pg) = &self.kv {
            // The indexes answer it: no scan, no page cut short.
            let after = query.after.map(key);
            let filter = AuditFilter {
                from: query.from,
                to: query.to,
                actor: query.actor.as_deref(),
                action: query.action.map(AuditAction::as_str),
                target: query.target.as_deref(),
                after: after.as_deref(),
                limit,
            };
            let records = pg
                .audit_records(&filter)
                .await?
                .iter()
                .map(|raw| decode::<AuditRecord>(raw))
                .collect::<Result<Vec<_>, _>>()?;
            let next = (records.len() == limit)
                .then(|| records.last().map(|r| r.id))
                .flatten();
            return Ok(AuditPage { records, next });
        }
        let mut cursor = query.after.map(key);
        let mut records = Vec::new();
        let mut scanned = 0;
        loop {
            let batch = self
                .kv
                .scan(Table::Audit, "", cursor.as_deref(), 500)
                .await?;
            let Some((last, _)) = batch.last() else {
                return Ok(AuditPage {
                    records,
                    next: None,
                });
            };
            cursor = Some(last.clone());
            for (_, raw) in &batch {
                scanned += 1;
                let record: AuditRecord = decode(raw)?;
                let time = record.time;
                if query.matches(&record) {
                    records.push(record);
                    if records.len() == limit {
                        let next = records.last().map(|r| r.id);
                        return Ok(AuditPage { records, next });
                    }
                }
                if query.to.is_some_and(|to| time >= to + 60_000) {
                    // Ids follow time (within clock skew): nothing later matches.
                    return Ok(AuditPage {
                        records,
                        next: None,
                    });
                }
            }
            if scanned >= MAX_SCAN {
                let next = cursor.as_deref().and_then(|c| c.parse().ok());
                return Ok(AuditPage { records, next });
            }
        }
    }
}
