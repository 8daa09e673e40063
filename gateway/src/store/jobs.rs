//! Import jobs as stored: their progress, readable from any node, and
//! their per-item failures, a page at a time.

use serde::{Deserialize, Serialize};
use tokenim_protocol::ErrorBody;

use super::kv::{Op, SEP, Table};
use super::records::ItemResult;
use super::users::MAX_PAGE;
use super::{Store, StoreError, decode, encode};

/// What a job imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Users.
    Users,
    /// Groups.
    Groups,
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Accepted, not started.
    Queued,
    /// Importing.
    Running,
    /// Every item was processed (some may have failed: see `failed`).
    Done,
    /// The job stopped early (`error` says why); items processed so far
    /// stay stored.
    Failed,
}

/// A job's progress. Times are milliseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Job {
    /// The job's id.
    pub id: String,
    /// What it imports.
    pub kind: JobKind,
    /// What it does with items that exist (`create`, `upsert`, `merge`).
    #[serde(default)]
    pub mode: super::merge::Mode,
    /// Where it is.
    pub state: JobState,
    /// Bytes of the uploaded file.
    pub bytes: u64,
    /// Items processed so far.
    pub processed: u64,
    /// Items created.
    pub created: u64,
    /// Items that existed already (unchanged).
    pub exists: u64,
    /// Items updated (upsert, merge).
    pub updated: u64,
    /// Items refused (see the job's failures).
    pub failed: u64,
    /// When it was accepted.
    pub created_at: u64,
    /// When it last reported progress.
    pub updated_at: u64,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub finished_at: Option<u64>,
    /// Why it stopped early.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::schema::ErrorBody>, nullable = false)]
    pub error: Option<ErrorBody>,
}

fn failure_key(job: &str, index: usize) -> String {
    format!("{job}{SEP}{index:012}")
}

impl Store {
    /// Stores a job's progress.
    pub async fn put_job(&self, job: &Job) -> Result<(), StoreError> {
        self.kv
            .write(vec![Op::Put(Table::Jobs, job.id.clone(), encode(job))])
            .await
    }

    /// One job.
    pub async fn job(&self, id: &str) -> Result<Option<Job>, StoreError> {
        self.kv
            .get(Table::Jobs, id)
            .await?
            .map(|b| decode(&b))
            .transpose()
    }

    /// A page of jobs by id, after `after`.
    pub async fn jobs(&self, after: Option<&str>, limit: usize) -> Result<Vec<Job>, StoreError> {
        self.kv
            .scan(Table::Jobs, "", after, limit.min(MAX_PAGE))
            .await?
            .iter()
            .map(|(_, v)| decode(v))
            .collect()
    }

    /// Records failed items of a job.
    pub async fn add_job_failures(
        &self,
        job: &str,
        failures: &[ItemResult],
    ) -> Result<(), StoreError> {
        if failures.is_empty() {
            return Ok(());
        }
        let ops = failures
            .iter()
            .map(|f| Op::Put(Table::JobFailures, failure_key(job, f.index), encode(f)))
            .collect();
        self.kv.write(ops).await
    }

    /// A page of a job's failures, in input order, after item `after`.
    pub async fn job_failures(
        &self,
        job: &str,
        after: Option<usize>,
        limit: usize,
    ) -> Result<Vec<ItemResult>, StoreError> {
        let after = after.map(|i| failure_key(job, i));
        self.kv
            .scan(
                Table::JobFailures,
                &format!("{job}{SEP}"),
                after.as_deref(),
                limit.min(MAX_PAGE),
            )
            .await?
            .iter()
            .map(|(_, v)| decode(v))
            .collect()
    }
}
