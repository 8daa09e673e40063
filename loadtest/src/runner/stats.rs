//! What every scenario's connections share: [`ConnStats`] (attempts,
//! failures by reason, closes by code, connect times) and [`Stopper`],
//! one signal that ends every held connection.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

use crate::progress::Progress;
use crate::report::Recorder;
use crate::sys::FileLimit;
use crate::wire::DialError;

/// Counters every scenario shares about its connections.
#[derive(Debug)]
pub struct ConnStats {
    /// Dial attempts started.
    pub attempted: AtomicU64,
    /// Dials that ended authenticated.
    pub connected: AtomicU64,
    /// Dials that failed.
    pub failed: AtomicU64,
    /// Connections open right now.
    pub open: AtomicU64,
    /// Dial-to-authenticated time, µs.
    pub connect_us: Recorder,
    failures: Mutex<BTreeMap<String, u64>>,
    closes: Mutex<BTreeMap<String, u64>>,
    out_of_files: AtomicBool,
    progress: Progress,
}

impl ConnStats {
    /// Empty counters; warnings go to `progress`.
    pub fn new(progress: Progress) -> ConnStats {
        ConnStats {
            attempted: AtomicU64::new(0),
            connected: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            open: AtomicU64::new(0),
            connect_us: Recorder::new(8),
            failures: Mutex::new(BTreeMap::new()),
            closes: Mutex::new(BTreeMap::new()),
            out_of_files: AtomicBool::new(false),
            progress,
        }
    }

    /// Counts a failed dial by reason; says loudly, once, when the
    /// generator ran out of file descriptors.
    pub fn failed(&self, error: &DialError, limit: Option<FileLimit>) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        *lock(&self.failures).entry(error.reason()).or_default() += 1;
        if error.is_out_of_files() && !self.out_of_files.swap(true, Ordering::Relaxed) {
            let limit = limit.map_or_else(String::new, |l| {
                format!(" (RLIMIT_NOFILE soft {}, hard {})", l.soft, l.hard)
            });
            self.progress.note(&format!(
                "tokenim-loadtest: the GENERATOR ran out of file descriptors (EMFILE) with {} connections open{limit}. This is the generator's limit, not the gateway's: raise the hard limit (ulimit -Hn, limits.conf) or split the load over several generator processes.",
                self.open.load(Ordering::Relaxed)
            ));
        }
    }

    /// Counts a connection the server (or the network) closed, by close
    /// code (`none` when no close frame came).
    pub fn closed(&self, code: Option<u16>) {
        let key = code.map_or_else(|| "none".to_owned(), |c| c.to_string());
        *lock(&self.closes).entry(key).or_default() += 1;
    }

    /// Whether a dial failed for lack of file descriptors.
    pub fn ran_out_of_files(&self) -> bool {
        self.out_of_files.load(Ordering::Relaxed)
    }

    /// Failures by reason so far.
    pub fn failures(&self) -> BTreeMap<String, u64> {
        lock(&self.failures).clone()
    }

    /// Server closes by code so far.
    pub fn closes(&self) -> BTreeMap<String, u64> {
        lock(&self.closes).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One signal that ends every held connection. Each connection task gets
/// a [`oneshot::Receiver`] (polling one is a couple of atomic loads, with
/// no lock shared between thousands of tasks); [`Stopper::stop`] drops the
/// senders, which resolves them all.
#[derive(Debug, Clone, Default)]
pub struct Stopper {
    senders: Arc<Mutex<Option<Vec<oneshot::Sender<()>>>>>,
}

impl Stopper {
    /// A stopper that has not fired.
    pub fn new() -> Stopper {
        Stopper {
            senders: Arc::new(Mutex::new(Some(Vec::new()))),
        }
    }

    /// A receiver that resolves when [`Stopper::stop`] is called (at once,
    /// if it already was).
    pub fn receiver(&self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        if let Some(senders) = lock(&self.senders).as_mut() {
            senders.push(tx);
        }
        rx
    }

    /// Fires: every receiver resolves.
    pub fn stop(&self) {
        lock(&self.senders).take();
    }
}
