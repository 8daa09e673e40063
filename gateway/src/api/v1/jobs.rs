//! Import jobs: `POST /v1/jobs/import/users` (or `/groups`) with a CSV or
//! JSON-lines file of any size (up to `api.max_import_bytes`). The upload
//! is streamed to a temporary file (never held in memory), the request
//! answers `202` with the job, and the node imports it in the background,
//! `api.max_batch_items` at a time, recording progress (readable from any
//! node: `GET /v1/jobs/{id}`) and every refused item (`GET
//! /v1/jobs/{id}/failures`). A node runs at most `api.max_jobs` at once.
//!
//! An id repeated within one file is not refused as a duplicate: its
//! second occurrence reports `exists` (or `updated` in upsert or merge mode).

use std::io::BufReader;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use futures_util::StreamExt;
use serde::Deserialize;
use tokenim_auth::Scope;
use tokenim_protocol::{ErrorBody, ErrorCode};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::batch::{self, BatchQuery};
use super::caller::Caller;
use super::{Listing, Params, schemas};
use crate::api::error::ApiError;
use crate::import::{Format, GroupStream, ParsedItem, RecordLimits, UserStream};
use crate::state::AppState;
use crate::store::jobs::{Job, JobKind, JobState};
use crate::store::{ItemResult, ItemStatus, NewGroup, User};

/// Imports users.
#[utoipa::path(
    post,
    path = "/v1/jobs/import/users",
    operation_id = "import_users",
    tag = "jobs",
    description = "Scope: `users:write`, and `users:roles` for `?mode=upsert` and for rows that \
give roles (without it such a row fails with `missing_scope`). Streams a CSV file (a header row naming some of \
`id,name,avatar_url,roles,metadata`, `id` required) or JSON lines of any size up to `api.max_import_bytes` to \
a temporary file and answers `202` with the job; the node then imports it in the background, \
`api.max_batch_items` at a time. Follow it with `GET /v1/jobs/{id}` and read refused items \
from `GET /v1/jobs/{id}/failures`. An id repeated within the file reports `exists` (or \
`updated` in upsert or merge mode) the second time.",
    params(BatchQuery),
    request_body(
        description = "The file: CSV, or one JSON object per line.",
        content(
            (schemas::UsersCsv = "text/csv"),
            (schemas::UserInput = "application/x-ndjson"),
        ),
    ),
    responses(
        (status = 202, description = "The job, queued.", body = Job),
        (status = 400, description = "A bad `mode` (`bad_request`) or an interrupted upload (`invalid_body`).", body = schemas::ErrorBody),
        (status = 413, description = "The file is larger than `api.max_import_bytes` (`body_too_large`).", body = schemas::ErrorBody),
        (status = 415, description = "`Content-Type` is not `text/csv` or `application/x-ndjson` (`invalid_body`).", body = schemas::ErrorBody),
        schemas::ApiKeyErrors,
        (status = 429, description = "This node runs `api.max_jobs` jobs already (`too_many_jobs`): retry when one finishes; or a rate limit was hit (`rate_limited`, with `Retry-After`).", body = schemas::ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub async fn import_users(
    state: State<AppState>,
    caller: Caller,
    query: Params<BatchQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Job>), ApiError> {
    start(state, caller, query, headers, body, JobKind::Users).await
}

/// Imports groups.
#[utoipa::path(
    post,
    path = "/v1/jobs/import/groups",
    operation_id = "import_groups",
    tag = "jobs",
    description = "Scope: `groups:write`. Streams a CSV file (a header row naming some of \
`id,name,owner,members,metadata`, `id` required) or JSON lines of any size up to `api.max_import_bytes` to \
a temporary file and answers `202` with the job; the node then imports it in the background, \
`api.max_batch_items` at a time. Follow it with `GET /v1/jobs/{id}` and read refused items \
from `GET /v1/jobs/{id}/failures`. An id repeated within the file reports `exists` (or \
`updated` in upsert or merge mode) the second time.",
    params(BatchQuery),
    request_body(
        description = "The file: CSV, or one JSON object per line.",
        content(
            (schemas::GroupsCsv = "text/csv"),
            (schemas::GroupInput = "application/x-ndjson"),
        ),
    ),
    responses(
        (status = 202, description = "The job, queued.", body = Job),
        (status = 400, description = "A bad `mode` (`bad_request`) or an interrupted upload (`invalid_body`).", body = schemas::ErrorBody),
        (status = 413, description = "The file is larger than `api.max_import_bytes` (`body_too_large`).", body = schemas::ErrorBody),
        (status = 415, description = "`Content-Type` is not `text/csv` or `application/x-ndjson` (`invalid_body`).", body = schemas::ErrorBody),
        schemas::ApiKeyErrors,
        (status = 429, description = "This node runs `api.max_jobs` jobs already (`too_many_jobs`): retry when one finishes; or a rate limit was hit (`rate_limited`, with `Retry-After`).", body = schemas::ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub async fn import_groups(
    state: State<AppState>,
    caller: Caller,
    query: Params<BatchQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Job>), ApiError> {
    start(state, caller, query, headers, body, JobKind::Groups).await
}

fn scope(kind: JobKind) -> Scope {
    match kind {
        JobKind::Users => Scope::UsersWrite,
        JobKind::Groups => Scope::GroupsWrite,
    }
}

/// Whether the caller may read jobs of `kind`: with `jobs:read`, or the
/// scope that starts them.
fn may_read(caller: &Caller, kind: JobKind) -> bool {
    let scopes = &caller.key.scopes;
    scopes.contains(&Scope::JobsRead) || scopes.contains(&scope(kind))
}

async fn start(
    State(state): State<AppState>,
    caller: Caller,
    Params(query): Params<BatchQuery>,
    headers: HeaderMap,
    body: Body,
    kind: JobKind,
) -> Result<(StatusCode, Json<Job>), ApiError> {
    caller.require(&state, scope(kind)).await?;
    let batch_kind = match kind {
        JobKind::Users => batch::Kind::Users,
        JobKind::Groups => batch::Kind::Groups,
    };
    batch::require_mode(&state, &caller, batch_kind, query.mode).await?;
    let format = batch::format(&headers)?;
    if format == Format::Json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::InvalidBody,
            "an import is text/csv or application/x-ndjson (one JSON object per line)",
        ));
    }
    let Ok(slot) = std::sync::Arc::clone(&state.job_slots).try_acquire_owned() else {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooManyJobs,
            format!(
                "this node runs {} import jobs already; retry when one finishes",
                state.config.api.max_jobs
            ),
        ));
    };
    let (file, bytes) = spool(&state, body).await?;
    let now = crate::clock::unix_millis();
    let job = Job {
        id: format!(
            "job_{}",
            tokenim_auth::ApiKeyId::generate()
                .as_str()
                .trim_start_matches("ak_")
        ),
        kind,
        mode: query.mode,
        state: JobState::Queued,
        bytes,
        processed: 0,
        created: 0,
        exists: 0,
        updated: 0,
        failed: 0,
        created_at: now,
        updated_at: now,
        finished_at: None,
        error: None,
    };
    state.store.put_job(&job).await?;
    let detail = serde_json::json!({ "kind": job.kind, "mode": job.mode, "bytes": job.bytes });
    caller
        .audit(
            &state,
            tokenim_auth::AuditAction::JobStarted,
            &job.id,
            detail,
        )
        .await?;
    let running = job.clone();
    tokio::spawn(async move {
        let _slot = slot;
        run(state, caller, running, file, format).await;
    });
    Ok((StatusCode::ACCEPTED, Json(job)))
}

/// Streams the body into a temporary file, at most `api.max_import_bytes`.
async fn spool(state: &AppState, body: Body) -> Result<(tempfile::NamedTempFile, u64), ApiError> {
    let internal = |e: std::io::Error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            e.to_string(),
        )
    };
    let file = tempfile::NamedTempFile::new().map_err(internal)?;
    let mut out = tokio::fs::File::from_std(file.reopen().map_err(internal)?);
    let max = state.config.api.max_import_bytes;
    let mut written = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request(ErrorCode::InvalidBody, format!("upload interrupted: {e}"))
        })?;
        written += chunk.len() as u64;
        if written > max {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::BodyTooLarge,
                format!("an import file is at most {max} bytes"),
            ));
        }
        out.write_all(&chunk).await.map_err(internal)?;
    }
    out.flush().await.map_err(internal)?;
    Ok((file, written))
}

/// Items read from the file, a batch at a time.
enum Batch {
    Users(Vec<ParsedItem<User>>),
    Groups(Vec<ParsedItem<NewGroup>>),
}

/// Reads the file on a blocking thread, sending batches (at most two
/// waiting: the reader never runs far ahead of the store).
fn read(
    file: &tempfile::NamedTempFile,
    kind: JobKind,
    format: Format,
    limits: &RecordLimits,
    batch_size: usize,
    tx: &mpsc::Sender<Result<Batch, ErrorBody>>,
) -> Result<(), ErrorBody> {
    let reader = BufReader::new(
        file.reopen()
            .map_err(|e| ErrorBody::new(ErrorCode::Internal, e.to_string()))?,
    );
    let now = crate::clock::unix_millis();
    fn pump<T>(
        items: impl Iterator<Item = Result<ParsedItem<T>, crate::import::BodyError>>,
        batch_size: usize,
        wrap: fn(Vec<ParsedItem<T>>) -> Batch,
        tx: &mpsc::Sender<Result<Batch, ErrorBody>>,
    ) -> Result<(), ErrorBody> {
        let mut batch = Vec::with_capacity(batch_size);
        for item in items {
            let item = match item {
                Ok(item) => item,
                Err(e) => {
                    // What was read before the input broke is stored and
                    // counted; the job then fails saying where it broke.
                    if !batch.is_empty() && tx.blocking_send(Ok(wrap(batch))).is_err() {
                        return Ok(());
                    }
                    return Err(e.body());
                }
            };
            batch.push(item);
            if batch.len() == batch_size {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
                if tx.blocking_send(Ok(wrap(full))).is_err() {
                    return Ok(());
                }
            }
        }
        if !batch.is_empty() {
            let _ = tx.blocking_send(Ok(wrap(batch)));
        }
        Ok(())
    }
    match kind {
        JobKind::Users => {
            let items = UserStream::new(reader, format, limits, now).map_err(|e| e.body())?;
            pump(items, batch_size, Batch::Users, tx)
        }
        JobKind::Groups => {
            let items = GroupStream::new(reader, format, limits, now).map_err(|e| e.body())?;
            pump(items, batch_size, Batch::Groups, tx)
        }
    }
}

async fn run(
    state: AppState,
    caller: Caller,
    mut job: Job,
    file: tempfile::NamedTempFile,
    format: Format,
) {
    let (tx, mut rx) = mpsc::channel(2);
    let limits = batch::limits(&state);
    let batch_size = state.config.api.max_batch_items;
    let kind = job.kind;
    let reader = tokio::task::spawn_blocking(move || {
        if let Err(e) = read(&file, kind, format, &limits, batch_size, &tx) {
            let _ = tx.blocking_send(Err(e));
        }
    });
    job.state = JobState::Running;
    job.updated_at = crate::clock::unix_millis();
    if let Err(e) = state.store.put_job(&job).await {
        tracing::warn!(job = %job.id, error = %e, "job start not recorded");
    }
    let mut outcome = Ok(());
    while let Some(next) = rx.recv().await {
        let stored = match next {
            Ok(items) => {
                let mode = job.mode;
                patiently(&job.id, || async {
                    match &items {
                        Batch::Users(items) => {
                            batch::store_users(&state, &caller, items.clone(), mode).await
                        }
                        Batch::Groups(items) => {
                            batch::store_groups(&state, items.clone(), mode).await
                        }
                    }
                })
                .await
            }
            Err(e) => {
                outcome = Err(e);
                break;
            }
        };
        let results = match stored {
            Ok(results) => results,
            Err(e) => {
                outcome = Err(ErrorBody::new(e.code(), e.to_string()));
                break;
            }
        };
        if let Err(e) = record(&state, &mut job, &results).await {
            outcome = Err(ErrorBody::new(e.code(), e.to_string()));
            break;
        }
    }
    drop(rx);
    let _ = reader.await;
    let now = crate::clock::unix_millis();
    job.finished_at = Some(now);
    job.updated_at = now;
    match outcome {
        Ok(()) => job.state = JobState::Done,
        Err(e) => {
            job.state = JobState::Failed;
            job.error = Some(e);
        }
    }
    if let Err(e) = state.store.put_job(&job).await {
        tracing::warn!(job = %job.id, error = %e, "job's end not recorded");
    }
    let detail = serde_json::json!({
        "state": job.state,
        "processed": job.processed,
        "created": job.created,
        "updated": job.updated,
        "exists": job.exists,
        "failed": job.failed,
        "error": job.error,
    });
    let ended = caller.audit(
        &state,
        tokenim_auth::AuditAction::JobFinished,
        &job.id,
        detail,
    );
    if let Err(e) = ended.await {
        tracing::warn!(job = %job.id, error = ?e, "job's end not audited");
    }
    tracing::info!(job = %job.id, processed = job.processed, failed = job.failed, state = ?job.state, "import job ended");
}

/// Counts a stored batch and records its failures.
async fn record(
    state: &AppState,
    job: &mut Job,
    results: &[ItemResult],
) -> Result<(), crate::store::StoreError> {
    let failures: Vec<ItemResult> = results
        .iter()
        .filter(|r| r.status == ItemStatus::Error)
        .cloned()
        .collect();
    patiently(&job.id, || state.store.add_job_failures(&job.id, &failures)).await?;
    for r in results {
        job.processed += 1;
        match r.status {
            ItemStatus::Created => job.created += 1,
            ItemStatus::Exists => job.exists += 1,
            ItemStatus::Updated => job.updated += 1,
            ItemStatus::Error => job.failed += 1,
        }
    }
    job.updated_at = crate::clock::unix_millis();
    let job = &*job;
    patiently(&job.id, || state.store.put_job(job)).await
}

/// How long a job waits for a store that is unavailable (PostgreSQL or
/// Redis down) before it fails; shorter than [`STALLED_AFTER_MS`], so a
/// waiting job is not taken for a lost one.
pub const STORE_PATIENCE: Duration = Duration::from_secs(45);

/// `write`, tried again while the store is unavailable, for up to
/// [`STORE_PATIENCE`] (backing off from 100 ms to 5 s). Every write of a
/// job is safe to repeat: a batch whose commit was lost finds its items
/// stored (`exists`, counted once), progress and failures are
/// overwritten.
async fn patiently<T, F, Fut>(job: &str, mut write: F) -> Result<T, crate::store::StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, crate::store::StoreError>>,
{
    let deadline = tokio::time::Instant::now() + STORE_PATIENCE;
    let mut pause = Duration::from_millis(100);
    loop {
        match write().await {
            Err(crate::store::StoreError::Unavailable(e))
                if tokio::time::Instant::now() + pause < deadline =>
            {
                tracing::warn!(job, error = %e, "store unavailable: the job waits and retries");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            done => return done,
        }
    }
}

/// A queued or running job that has not reported progress for this long
/// lost the node running it (stopped, killed): it is reported as failed.
/// A running job reports after every batch, which takes well under a
/// second unless the store is down (and then the job fails by itself).
pub const STALLED_AFTER_MS: u64 = 60_000;

async fn existing(state: &AppState, caller: &Caller, id: &str) -> Result<Job, ApiError> {
    let job = state
        .store
        .job(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format_args!("job {id:?}")))?;
    if !may_read(caller, job.kind) {
        caller.require(state, Scope::JobsRead).await?;
    }
    settled(state, job).await
}

/// `job`, marked failed (and stored so) if it is unfinished but its node
/// stopped updating it.
async fn settled(state: &AppState, mut job: Job) -> Result<Job, ApiError> {
    let now = crate::clock::unix_millis();
    let unfinished = matches!(job.state, JobState::Queued | JobState::Running);
    if unfinished && now.saturating_sub(job.updated_at) > STALLED_AFTER_MS {
        job.state = JobState::Failed;
        job.finished_at = Some(now);
        job.error = Some(ErrorBody::new(
            ErrorCode::Internal,
            "the node running this job stopped; import the file again (items already imported report exists, or use mode=upsert)",
        ));
        state.store.put_job(&job).await?;
    }
    Ok(job)
}

/// `GET /v1/jobs`: filters and a page.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JobsQuery {
    /// Only jobs in this state.
    state: Option<JobState>,
    /// Only jobs of this kind.
    kind: Option<JobKind>,
    /// The `next` of the previous page.
    after: Option<String>,
    /// Page size: default 100, at least 1, lowered to 1,000 if larger.
    #[serde(default, deserialize_with = "super::page_size")]
    #[param(minimum = 1)]
    limit: Option<usize>,
}

/// Jobs read (and filtered) at most per page: a filter that matches
/// little returns a short page with a cursor to go on from.
const MAX_JOBS_SCANNED: usize = 10_000;

/// Lists import jobs.
#[utoipa::path(
    get,
    path = "/v1/jobs",
    operation_id = "list_jobs",
    tag = "jobs",
    summary = "Lists import jobs",
    description = "Scope: `jobs:read` to see every import, or `users:write` to see user imports \
and `groups:write` to see group imports (a key sees the kinds its scopes allow; with none, 403). By id; filter by `state` and `kind`. \
At most 10,000 jobs are read per page: a filter that matches little may give a short page with \
a `next` to go on from.",
    params(JobsQuery),
    responses(
        (status = 200, description = "A page of jobs.", body = schemas::JobPage),
        (status = 400, description = "A bad query parameter (`bad_request`).", body = schemas::ErrorBody),
        schemas::ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Params(query): Params<JobsQuery>,
) -> Result<Json<Listing<Job>>, ApiError> {
    let visible: Vec<JobKind> = [JobKind::Users, JobKind::Groups]
        .into_iter()
        .filter(|&k| may_read(&caller, k))
        .collect();
    if visible.is_empty() {
        caller.require(&state, Scope::JobsRead).await?;
    }
    let limit = super::page_limit(query.limit);
    let mut after = query.after.clone();
    let (mut items, mut scanned) = (Vec::new(), 0);
    let next = loop {
        let page = state.store.jobs(after.as_deref(), 500).await?;
        let Some(last) = page.last().map(|j| j.id.clone()) else {
            break None;
        };
        for job in page {
            scanned += 1;
            let id = job.id.clone();
            let wanted = visible.contains(&job.kind) && query.kind.is_none_or(|k| k == job.kind);
            if wanted {
                let job = settled(&state, job).await?;
                if query.state.is_none_or(|s| s == job.state) {
                    items.push(job);
                    if items.len() == limit {
                        return Ok(Json(Listing::page(items, Some(id))));
                    }
                }
            }
        }
        if scanned >= MAX_JOBS_SCANNED {
            break Some(last);
        }
        after = Some(last);
    };
    Ok(Json(Listing::page(items, next)))
}

/// A job's progress.
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}",
    operation_id = "get_job",
    tag = "jobs",
    description = "Scope: `jobs:read`, or `users:write` for a user import, `groups:write` for a group import. \
Readable from any node.",
    params(("id" = String, Path, description = "The job's id.")),
    responses(
        (status = 200, description = "The job.", body = Job),
        (status = 404, description = "No such job (`not_found`).", body = schemas::ErrorBody),
        schemas::ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    Ok(Json(existing(&state, &caller, &id).await?))
}

/// A page of a job's refused items, in input order (`after` is an item
/// index).
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}/failures",
    operation_id = "list_job_failures",
    tag = "jobs",
    summary = "A page of a job's refused items",
    description = "Scope: `jobs:read`, or `users:write` for a user import, `groups:write` for a group import. The \
refused items in input order; `after` is an item index.",
    params(("id" = String, Path, description = "The job's id."), FailuresQuery),
    responses(
        (status = 200, description = "A page of refused items.", body = schemas::ItemResultPage),
        (status = 400, description = "A bad query parameter (`bad_request`).", body = schemas::ErrorBody),
        (status = 404, description = "No such job (`not_found`).", body = schemas::ErrorBody),
        schemas::ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
pub async fn failures(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Params(query): Params<FailuresQuery>,
) -> Result<Json<Listing<ItemResult>>, ApiError> {
    let job = existing(&state, &caller, &id).await?;
    let limit = super::page_limit(query.limit);
    let items = state
        .store
        .job_failures(&job.id, query.after, limit)
        .await?;
    Ok(Json(Listing::new(items, limit, |r| r.index.to_string())))
}

/// `GET /v1/jobs/{id}/failures`: a page.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FailuresQuery {
    /// The `next` of the previous page: the index of the last item seen.
    #[serde(default, deserialize_with = "super::index")]
    #[param(minimum = 0)]
    after: Option<usize>,
    /// Page size: default 100, at least 1, lowered to 1,000 if larger.
    #[serde(default, deserialize_with = "super::page_size")]
    #[param(minimum = 1)]
    limit: Option<usize>,
}
