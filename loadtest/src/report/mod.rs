//! [`RunReport`]: the result of one run, printed as a table for people and
//! written as JSON (`--json FILE`) for machines and for `compare`.
//!
//! # JSON schema, version 1
//!
//! ```json
//! {
//!   "schema_version": 1,
//!   "tool": "tokenim-loadtest 0.1.0",
//!   "scenario": "broadcast",
//!   "started_at_unix_ms": 1700000000000,
//!   "elapsed_s": 13.2,
//!   "interrupted": false,
//!   "params": {"subscribers": 1000, "rate": 1000.0, "codec": "json", "...": "..."},
//!   "metrics": {"deliveries_per_s": 999871.2, "loss": 0, "...": 0},
//!   "latency_us": {"delivery": {"count": 1, "min": 1, "mean": 1.0, "p50": 1, "p90": 1, "p99": 1, "p999": 1, "max": 1}},
//!   "failures": {"http_429": 3},
//!   "closes": {"4001": 2},
//!   "generator": {"threads": 1, "cores": 1, "cpu_user_s": 1.0, "cpu_system_s": 1.0, "cpu_cores_used": 0.2, "saturated": false, "other_cores_used": 0.01, "peak_rss_bytes": 1, "nofile_soft": 20000, "nofile_hard": 20000},
//!   "gateway": {"pid": 1234, "rss_before_bytes": 1, "rss_after_bytes": 1, "rss_end_bytes": 1, "cpu_s": 1.0},
//!   "warnings": ["..."]
//! }
//! ```
//!
//! * `schema_version` changes only when a field changes meaning or goes
//!   away; new fields and new `metrics` keys may appear within a version,
//!   so readers ignore what they do not know.
//! * `params`: the scenario's inputs, as given (numbers, strings, lists).
//! * `metrics`: flat `name → number`, the figures `compare` lines up. Names
//!   end in their unit when they have one (`_per_s`, `_bytes`, `_s`);
//!   counts have none. Each scenario's names are listed in its module doc.
//! * `latency_us`: HDR-histogram summaries in **microseconds**: `connect`
//!   (dial to authenticated), and for broadcast `delivery` (intended send
//!   time to receipt), `publish_ack` (send to reply) and `send_lag`
//!   (how late the publisher sent compared with its schedule).
//! * `failures`: failed connection attempts by reason (`http_429`: the
//!   gateway's per-IP limit, `http_503`: its node limit, `emfile`: the
//!   generator ran out of file descriptors, `eaddrnotavail`: out of
//!   ephemeral ports for a source address, `timeout`, ...).
//! * `closes`: connections the server closed during the run, by close code
//!   (`4001` slow consumer, `4002` idle timeout, ...; `none` without a
//!   close frame).
//! * `generator.saturated`: the generator used more than 90% of the cores
//!   it ran on during the measured phase; treat its figures as a lower
//!   bound of what the server can do.
//! * `generator.other_cores_used`: CPU the machine's other processes used
//!   meanwhile, in cores (above [`crate::sys::BUSY_MACHINE`] the report
//!   warns that latencies are unreliable).
//! * `gateway`: present when `--gateway-pid` was given; RSS from
//!   `/proc/<pid>/status` before the connections opened, after, and at
//!   the end; CPU seconds the gateway used during the measured phase.
//! * `steps` (ramp only): every step in order, each with `rate`,
//!   `passed`, `verdict` (`ok`, `p99`, `loss`, `closed`,
//!   `publish_errors`, `setup`, `interrupted`),
//!   its `metrics` and its `delivery` latency summary.
//! * `histograms` (worker results only): each latency's HDR histogram as
//!   `[value, count]` pairs, which the parent adds up exactly.
//!
//! # Layout
//!
//! * [`latency`]: sharded HDR histograms and [`LatencySummary`].
//! * [`table`]: the human-readable summary.
//! * [`compare`]: two reports side by side.
//! * [`merge`]: one report from several workers'.

pub mod compare;
pub mod latency;
pub mod merge;
pub mod table;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use latency::{Batch, LatencySummary, Recorder};

/// The JSON schema version this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// One run's result. See the module doc for the JSON form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// `tokenim-loadtest <version>`.
    pub tool: String,
    /// `connect`, `idle`, `broadcast`, `ramp`, `rooms` or `direct`.
    pub scenario: String,
    /// When the run started, ms since the Unix epoch.
    pub started_at_unix_ms: u64,
    /// Wall time of the whole run, setup and teardown included.
    pub elapsed_s: f64,
    /// Stopped early by Ctrl-C.
    pub interrupted: bool,
    /// The scenario's inputs.
    pub params: BTreeMap<String, serde_json::Value>,
    /// Flat figures, `name → number`.
    pub metrics: BTreeMap<String, f64>,
    /// Latency summaries in microseconds, by name.
    pub latency_us: BTreeMap<String, LatencySummary>,
    /// Failed connection attempts by reason.
    pub failures: BTreeMap<String, u64>,
    /// Server closes during the run, by close code.
    pub closes: BTreeMap<String, u64>,
    /// The generator's own resource use.
    pub generator: GeneratorUsage,
    /// The gateway's, when its pid was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewayUsage>,
    /// Things the reader should know (limits hit, saturation, ...).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The steps of a `ramp`, in order (absent for other scenarios).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepReport>,
    /// Each latency's histogram as `[value, count]` buckets, so results
    /// of several worker processes merge exactly (written by workers;
    /// absent otherwise).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub histograms: BTreeMap<String, Vec<[u64; 2]>>,
}

/// One step of a `ramp`: the rate tried, the verdict, and its headline
/// figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// Messages per second published in this step.
    pub rate: f64,
    /// Within the thresholds.
    pub passed: bool,
    /// `ok`, or why not: `p99` (delivery p99 over the limit), `loss`,
    /// `closed` (subscribers disconnected), `publish_errors`, `setup`
    /// (not every subscriber connected), `interrupted`.
    pub verdict: String,
    /// The step's flat figures (a subset of broadcast's).
    pub metrics: BTreeMap<String, f64>,
    /// Delivery latency in this step, microseconds.
    pub delivery: LatencySummary,
}

/// The generator's resource use during the measured phase.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GeneratorUsage {
    /// Tokio worker threads.
    pub threads: usize,
    /// Cores the process may run on (its affinity).
    pub cores: usize,
    /// User CPU seconds in the measured phase.
    pub cpu_user_s: f64,
    /// System CPU seconds in the measured phase.
    pub cpu_system_s: f64,
    /// CPU seconds per wall second in the measured phase (1.0 = one core
    /// fully busy).
    pub cpu_cores_used: f64,
    /// Used more than 90% of `min(threads, cores)` cores.
    pub saturated: bool,
    /// Peak resident memory of the generator.
    pub peak_rss_bytes: u64,
    /// CPU the machine's *other* processes used in the measured phase, in
    /// cores (all busy time minus the generator's and, with
    /// `--gateway-pid`, the gateway's). Above a few tenths, latencies are
    /// distorted by competition for the cores.
    #[serde(default)]
    pub other_cores_used: f64,
    /// Soft open-file limit in force.
    pub nofile_soft: u64,
    /// Hard open-file limit.
    pub nofile_hard: u64,
}

/// The gateway's resource use, from `/proc/<pid>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GatewayUsage {
    /// The pid given with `--gateway-pid`.
    pub pid: u32,
    /// RSS before the scenario opened its connections.
    pub rss_before_bytes: u64,
    /// RSS once the connections were open (and settled).
    pub rss_after_bytes: u64,
    /// RSS at the end of the measured phase.
    pub rss_end_bytes: u64,
    /// CPU seconds (user + system) the gateway used in the measured phase.
    pub cpu_s: f64,
}

/// Reading or writing a report file failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a report of a version this build reads.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

impl RunReport {
    /// An empty report for `scenario`, started now.
    pub fn new(scenario: &str) -> RunReport {
        RunReport {
            schema_version: SCHEMA_VERSION,
            tool: format!("tokenim-loadtest {}", env!("CARGO_PKG_VERSION")),
            scenario: scenario.to_owned(),
            started_at_unix_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            elapsed_s: 0.0,
            interrupted: false,
            params: BTreeMap::new(),
            metrics: BTreeMap::new(),
            latency_us: BTreeMap::new(),
            failures: BTreeMap::new(),
            closes: BTreeMap::new(),
            generator: GeneratorUsage::default(),
            gateway: None,
            warnings: Vec::new(),
            steps: Vec::new(),
            histograms: BTreeMap::new(),
        }
    }

    /// Sets one parameter.
    pub fn param(&mut self, name: &str, value: impl Serialize) {
        let value = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
        self.params.insert(name.to_owned(), value);
    }

    /// Sets one metric.
    pub fn metric(&mut self, name: &str, value: impl Into<f64>) {
        self.metrics.insert(name.to_owned(), value.into());
    }

    /// Sets latency `name`'s summary from its histogram; a
    /// [`crate::worker`] also keeps the buckets, for the parent to merge.
    pub fn latency(&mut self, name: &str, histogram: &hdrhistogram::Histogram<u64>) {
        self.latency_us
            .insert(name.to_owned(), LatencySummary::of(histogram));
        if crate::worker::role().is_some() {
            self.histograms
                .insert(name.to_owned(), latency::buckets(histogram));
        }
    }

    /// A metric's value, 0 if absent.
    pub fn get(&self, name: &str) -> f64 {
        self.metrics.get(name).copied().unwrap_or(0.0)
    }

    /// Writes the report as pretty JSON.
    pub fn write_json(&self, path: &Path) -> Result<(), ReportError> {
        let text = serde_json::to_string_pretty(self).expect("reports serialise");
        std::fs::write(path, text + "\n").map_err(|source| ReportError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// Reads a report written by [`RunReport::write_json`], refusing other
    /// schema versions.
    pub fn read_json(path: &Path) -> Result<RunReport, ReportError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ReportError::Io {
            path: shown.clone(),
            source,
        })?;
        let format = |reason: String| ReportError::Format {
            path: shown.clone(),
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format(e.to_string()))?;
        match value.get("schema_version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(SCHEMA_VERSION) => {}
            Some(v) => {
                return Err(format(format!(
                    "schema_version {v}; this build reads {SCHEMA_VERSION}"
                )));
            }
            None => {
                return Err(format(
                    "no schema_version: not a tokenim-loadtest report".into(),
                ));
            }
        }
        serde_json::from_value(value).map_err(|e| format(e.to_string()))
    }
}
