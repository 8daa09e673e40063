//! [`FailureLog`]: failed authentications (of the server API's keys and
//! of WebSocket tokens) folded into the audit log, one record per source
//! address, way in, reason, actor and minute, so a flood of bad
//! credentials grows the log by a record a minute instead of a record a
//! request.
//!
//! The first failure of a minute is written at once (an operator sees an
//! attack begin); later ones of the same minute only count, and the count
//! (`detail.count`, with up to [`MAX_TARGETS`] distinct targets in
//! `detail.targets`) is written into that same record every
//! [`FLUSH_EVERY`] and when the node stops. At most `max_sources` such
//! records are open at once; failures from further sources count into one
//! record of source `*`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokenim_auth::{AuditAction, AuditRecord};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::store::Store;

/// How often counts are written into their records.
pub const FLUSH_EVERY: Duration = Duration::from_secs(5);
/// Distinct targets named in one record.
pub const MAX_TARGETS: usize = 5;
/// The source of failures folded together once `max_sources` is reached.
pub const MANY_SOURCES: &str = "*";

/// How a failed authentication came in: [`Failure::via`].
pub const VIA_API: &str = "api";
/// A WebSocket upgrade or `connect` frame: [`Failure::via`].
pub const VIA_WEBSOCKET: &str = "websocket";

/// One failed authentication.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The client's address, if known.
    pub source: Option<String>,
    /// How it came in: [`VIA_API`] (an API key) or [`VIA_WEBSOCKET`] (a
    /// user token).
    pub via: &'static str,
    /// Why (a closed set: the metric label).
    pub reason: &'static str,
    /// Who: `anonymous`, or the key that proved itself but lacked a scope.
    pub actor: String,
    /// The key it named (never anything that could be a secret).
    pub target: String,
    /// The message the client got.
    pub message: String,
}

/// (source, via, reason, actor).
type WindowKey = (String, &'static str, &'static str, String);

/// A minute's failures of one key.
#[derive(Debug)]
struct Window {
    minute: u64,
    /// The record, once written.
    id: Option<u64>,
    record: AuditRecord,
    count: u64,
    /// The count the stored record holds.
    written: u64,
    targets: Vec<String>,
}

impl Window {
    fn record(&self) -> AuditRecord {
        let mut record = self.record.clone();
        record.detail["count"] = self.count.into();
        record.detail["targets"] = self.targets.clone().into();
        record
    }
}

/// See the module doc.
#[derive(Debug)]
pub struct FailureLog {
    store: Store,
    metrics: Metrics,
    max_sources: usize,
    windows: Mutex<HashMap<WindowKey, Window>>,
}

impl FailureLog {
    /// A log writing to `store`, folding at most `max_sources` keys at once.
    pub fn new(store: Store, metrics: Metrics, max_sources: usize) -> Self {
        Self {
            store,
            metrics,
            max_sources,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Records a failure (see the module doc).
    pub async fn record(&self, failure: Failure, now_ms: u64) {
        let minute = now_ms / 60_000;
        let source = failure.source.clone().unwrap_or_else(|| "-".into());
        let (key, fresh, closed) = {
            let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
            let mut key = (source, failure.via, failure.reason, failure.actor.clone());
            if !windows.contains_key(&key) && windows.len() >= self.max_sources {
                key.0 = MANY_SOURCES.into();
            }
            match windows.get_mut(&key) {
                Some(w) if w.minute == minute => {
                    w.count += 1;
                    if w.targets.len() < MAX_TARGETS && !w.targets.contains(&failure.target) {
                        w.targets.push(failure.target);
                    }
                    self.metrics.audit_failures_folded.inc();
                    return;
                }
                _ => {}
            }
            let mut record = AuditRecord::new(
                now_ms,
                &failure.actor,
                AuditAction::AuthFailed,
                &failure.target,
            );
            record.source = Some(key.0.clone()).filter(|s| s != "-");
            record.detail = serde_json::json!({
                "via": failure.via,
                "reason": failure.reason,
                "message": failure.message,
                "minute": minute * 60_000,
            });
            let window = Window {
                minute,
                id: None,
                record,
                count: 1,
                written: 1,
                targets: vec![failure.target],
            };
            let fresh = window.record();
            let closed = windows.insert(key.clone(), window);
            (key, fresh, closed.and_then(|mut w| unflushed(&mut w)))
        };
        if let Some((id, record)) = closed {
            self.rewrite(id, record).await;
        }
        match self.store.audit(fresh).await {
            Ok(id) => {
                let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(w) = windows.get_mut(&key).filter(|w| w.minute == minute) {
                    w.id = Some(id);
                }
            }
            Err(e) => tracing::warn!(error = %e, "failed authentication not audited"),
        }
    }

    /// Writes every count that grew, and forgets the windows of past
    /// minutes once written.
    pub async fn flush(&self, now_ms: u64) {
        let minute = now_ms / 60_000;
        let due: Vec<(u64, AuditRecord)> = {
            let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
            let due = windows.values_mut().filter_map(unflushed).collect();
            windows.retain(|_, w| w.minute >= minute || w.id.is_none());
            due
        };
        for (id, record) in due {
            self.rewrite(id, record).await;
        }
    }

    async fn rewrite(&self, id: u64, record: AuditRecord) {
        if let Err(e) = self.store.rewrite_audit(id, record).await {
            tracing::warn!(error = %e, "count of failed authentications not audited");
        }
    }

    /// Flushes every [`FLUSH_EVERY`] until `shutdown`, then once more.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        crate::clock::every(FLUSH_EVERY, &shutdown, || {
            self.flush(crate::clock::unix_millis())
        })
        .await;
        self.flush(crate::clock::unix_millis()).await;
    }
}

/// The record to write for a window whose count grew; marks it written.
fn unflushed(w: &mut Window) -> Option<(u64, AuditRecord)> {
    let id = w.id?;
    if w.count == w.written {
        return None;
    }
    w.written = w.count;
    Some((id, w.record()))
}
