//! Latency recording: HDR histograms, sharded so thousands of receiving
//! tasks never contend on one lock, and [`LatencySummary`], the
//! percentiles a report shows.
//!
//! A receiving task owns a [`Batch`]: a small buffer of samples that it
//! flushes into one shard of a [`Recorder`] when the buffer fills or every
//! [`FLUSH_EVERY_US`]. So the hot path is a `Vec::push`, a lock is taken
//! once per [`BATCH`] samples, and a task costs a few hundred bytes
//! instead of a histogram each (a 3-significant-digit histogram up to an
//! hour is about 190 KiB). Each shard keeps the whole run's histogram and
//! one for the current progress interval; [`Recorder::merged`] adds the
//! shards up at the end.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Samples a [`Batch`] holds before it flushes.
pub const BATCH: usize = 128;
/// A [`Batch`] with samples flushes at least this often (µs), so the live
/// progress line stays current at low rates.
pub const FLUSH_EVERY_US: u64 = 200_000;
/// Largest value recorded (µs): one hour. Larger values are clamped.
const MAX_US: u64 = 3_600_000_000;
/// Significant digits kept: values within 0.1%.
const SIGFIG: u8 = 3;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, SIGFIG).expect("static bounds are valid")
}

#[derive(Debug)]
struct Shard {
    total: Histogram<u64>,
    interval: Histogram<u64>,
}

/// Sharded histograms of one latency, in microseconds.
#[derive(Debug)]
pub struct Recorder {
    shards: Box<[Mutex<Shard>]>,
    count: AtomicU64,
}

impl Recorder {
    /// A recorder with `shards` shards (at least 1): about one per worker
    /// thread, times a few, is plenty.
    pub fn new(shards: usize) -> Recorder {
        let shards = (0..shards.max(1))
            .map(|_| {
                Mutex::new(Shard {
                    total: histogram(),
                    interval: histogram(),
                })
            })
            .collect();
        Recorder {
            shards,
            count: AtomicU64::new(0),
        }
    }

    /// A batch for the task with this index (it picks the shard).
    pub fn batch(&self, index: usize) -> Batch {
        Batch {
            shard: index % self.shards.len(),
            samples: Vec::with_capacity(BATCH),
            last_flush_us: 0,
        }
    }

    /// Records one value directly (for rare events such as connects).
    pub fn record(&self, index: usize, value_us: u64) {
        let mut shard = self.lock(index % self.shards.len());
        shard.total.saturating_record(value_us.max(1));
        shard.interval.saturating_record(value_us.max(1));
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Samples recorded so far (flushed ones only).
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The whole run so far, all shards added up.
    pub fn merged(&self) -> Histogram<u64> {
        let mut out = histogram();
        for i in 0..self.shards.len() {
            out.add(&self.lock(i).total).expect("same bounds");
        }
        out
    }

    /// Everything recorded since the previous call, and resets the
    /// interval: what the progress line shows.
    pub fn take_interval(&self) -> Histogram<u64> {
        let mut out = histogram();
        for i in 0..self.shards.len() {
            let mut shard = self.lock(i);
            out.add(&shard.interval).expect("same bounds");
            shard.interval.reset();
        }
        out
    }

    fn lock(&self, i: usize) -> std::sync::MutexGuard<'_, Shard> {
        // A panicking recorder leaves counts, never a broken histogram.
        self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A task's buffer of samples on their way to the [`Recorder`].
#[derive(Debug)]
pub struct Batch {
    shard: usize,
    samples: Vec<u64>,
    last_flush_us: u64,
}

impl Batch {
    /// Adds a sample; flushes when full or when the last flush was more
    /// than [`FLUSH_EVERY_US`] before `now_us`.
    #[inline]
    pub fn record(&mut self, recorder: &Recorder, value_us: u64, now_us: u64) {
        self.samples.push(value_us.max(1));
        if self.samples.len() >= BATCH || now_us.saturating_sub(self.last_flush_us) > FLUSH_EVERY_US
        {
            self.last_flush_us = now_us;
            self.flush(recorder);
        }
    }

    /// Moves every buffered sample into the recorder.
    pub fn flush(&mut self, recorder: &Recorder) {
        if self.samples.is_empty() {
            return;
        }
        let mut shard = recorder.lock(self.shard);
        for &v in &self.samples {
            shard.total.saturating_record(v);
            shard.interval.saturating_record(v);
        }
        drop(shard);
        recorder
            .count
            .fetch_add(self.samples.len() as u64, Ordering::Relaxed);
        self.samples.clear();
    }
}

/// A histogram's recorded buckets as `[value, count]` pairs (each value
/// the highest of its bucket, so re-recording lands in the same bucket).
pub fn buckets(h: &Histogram<u64>) -> Vec<[u64; 2]> {
    h.iter_recorded()
        .map(|v| [v.value_iterated_to(), v.count_at_value()])
        .collect()
}

/// Adds up bucket lists from [`buckets`] into one histogram.
pub fn from_buckets<'a>(lists: impl IntoIterator<Item = &'a [[u64; 2]]>) -> Histogram<u64> {
    let mut out = histogram();
    for list in lists {
        for [value, count] in list {
            out.saturating_record_n(*value, *count);
        }
    }
    out
}

/// Percentiles of one latency, in microseconds. Part of the JSON schema.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Smallest.
    pub min: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
}

impl LatencySummary {
    /// Summarises a histogram (all zeros when it is empty).
    pub fn of(h: &Histogram<u64>) -> LatencySummary {
        if h.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: h.len(),
            min: h.min(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }

    /// `(name, value)` for each statistic, in display order.
    pub fn stats(&self) -> [(&'static str, f64); 8] {
        [
            ("count", self.count as f64),
            ("min", self.min as f64),
            ("mean", self.mean),
            ("p50", self.p50 as f64),
            ("p90", self.p90 as f64),
            ("p99", self.p99 as f64),
            ("p999", self.p999 as f64),
            ("max", self.max as f64),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_from_many_tasks_merge_exactly() {
        let recorder = Recorder::new(4);
        let mut batches: Vec<Batch> = (0..10).map(|i| recorder.batch(i)).collect();
        for v in 1..=1000u64 {
            let b = &mut batches[(v % 10) as usize];
            b.record(&recorder, v, 0);
        }
        for b in &mut batches {
            b.flush(&recorder);
        }
        let s = LatencySummary::of(&recorder.merged());
        assert_eq!(s.count, 1000);
        assert_eq!(s.min, 1);
        assert_eq!(s.max, 1000);
        assert!((s.p50 as i64 - 500).abs() <= 1, "{s:?}");
        assert!((s.p99 as i64 - 990).abs() <= 1, "{s:?}");
        assert_eq!(recorder.count(), 1000);
        assert_eq!(recorder.take_interval().len(), 1000);
        assert_eq!(recorder.take_interval().len(), 0);
        assert_eq!(recorder.merged().len(), 1000);
    }

    #[test]
    fn buckets_merge_back_exactly() {
        let (mut a, mut b) = (histogram(), histogram());
        for v in 1..=5000u64 {
            if v % 3 == 0 {
                a.record(v * 7).unwrap()
            } else {
                b.record(v * 7).unwrap()
            }
        }
        let mut both = a.clone();
        both.add(&b).unwrap();
        let merged = from_buckets([buckets(&a).as_slice(), buckets(&b).as_slice()]);
        assert_eq!(LatencySummary::of(&merged), LatencySummary::of(&both));
    }

    #[test]
    fn time_flushes_a_partial_batch() {
        let recorder = Recorder::new(1);
        let mut batch = recorder.batch(0);
        batch.record(&recorder, 5, 1);
        assert_eq!(recorder.count(), 0);
        batch.record(&recorder, 5, 1 + FLUSH_EVERY_US + 1);
        assert_eq!(recorder.count(), 2);
        assert_eq!(LatencySummary::of(&histogram()), LatencySummary::default());
    }
}
