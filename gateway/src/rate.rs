//! Token buckets: [`RateLimiter`], one bucket (a connection's
//! publishes), and [`KeyedRates`], a bounded table of buckets by key (API
//! requests per key and per source address, failed authentications per
//! source), whose [`Verdict`] carries what the rate-limit headers say.

use std::hash::Hash;
use std::time::Instant;

use dashmap::DashMap;

/// Allows `rate` events per second on average and bursts of `burst`.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64) -> Self {
        Self {
            rate,
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    /// Takes one token if there is one.
    pub fn try_acquire(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Adds what accrued since the last look.
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
    }

    /// The bucket's state at `now`, after `allowed` was decided.
    fn verdict(&mut self, now: Instant, allowed: bool) -> Verdict {
        self.refill(now);
        let secs = |tokens: f64| (tokens / self.rate).ceil().max(0.0) as u64;
        Verdict {
            allowed,
            limit: self.burst as u64,
            remaining: self.tokens.floor() as u64,
            reset_secs: secs(self.burst - self.tokens),
            retry_after_secs: secs(1.0 - self.tokens).max(1),
        }
    }
}

/// What a [`KeyedRates`] decided, and the bucket's state for the
/// `RateLimit-*` and `Retry-After` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the event may happen.
    pub allowed: bool,
    /// The burst: most events at once (`RateLimit-Limit`).
    pub limit: u64,
    /// Events left at once (`RateLimit-Remaining`).
    pub remaining: u64,
    /// Seconds until the bucket is full again (`RateLimit-Reset`).
    pub reset_secs: u64,
    /// Seconds until the next event is allowed (`Retry-After`; at least 1).
    pub retry_after_secs: u64,
}

/// Buckets by key, at most `max_keys` of them: a full bucket is the same
/// as none, so full ones are dropped when the table is full; a new key
/// that finds the table full of partly used buckets is refused (the
/// table cannot grow, and refusing is the safe side under a flood from
/// many addresses).
#[derive(Debug)]
pub struct KeyedRates<K: Eq + Hash> {
    buckets: DashMap<K, RateLimiter>,
    rate: f64,
    burst: f64,
    max_keys: usize,
}

impl<K: Eq + Hash + Clone> KeyedRates<K> {
    /// `rate` events per second per key on average, bursts of `burst`.
    pub fn new(rate: f64, burst: f64, max_keys: usize) -> Self {
        Self {
            buckets: DashMap::new(),
            rate,
            burst,
            max_keys,
        }
    }

    /// Takes one token of `key`'s bucket if there is one.
    pub fn take(&self, key: &K, now: Instant) -> Verdict {
        self.with_bucket(key, now, |bucket| {
            let allowed = bucket.try_acquire(now);
            bucket.verdict(now, allowed)
        })
    }

    /// Whether `key` has a token, taking none.
    pub fn peek(&self, key: &K, now: Instant) -> Verdict {
        match self.buckets.get_mut(key) {
            Some(mut bucket) => {
                let allowed = {
                    bucket.refill(now);
                    bucket.tokens >= 1.0
                };
                bucket.verdict(now, allowed)
            }
            None => RateLimiter::new(self.rate, self.burst).verdict(now, true),
        }
    }

    /// Buckets held.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    fn with_bucket(
        &self,
        key: &K,
        now: Instant,
        decide: impl FnOnce(&mut RateLimiter) -> Verdict,
    ) -> Verdict {
        if let Some(mut bucket) = self.buckets.get_mut(key) {
            return decide(&mut bucket);
        }
        if self.buckets.len() >= self.max_keys {
            self.buckets.retain(|_, b| {
                b.refill(now);
                b.tokens < b.burst
            });
            if self.buckets.len() >= self.max_keys {
                return Verdict {
                    allowed: false,
                    limit: self.burst as u64,
                    remaining: 0,
                    reset_secs: 1,
                    retry_after_secs: 1,
                };
            }
        }
        let mut bucket = self
            .buckets
            .entry(key.clone())
            .or_insert_with(|| RateLimiter::new(self.rate, self.burst));
        decide(&mut bucket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refill() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(10.0, 3.0);
        assert!((0..3).all(|_| r.try_acquire(t0)));
        assert!(!r.try_acquire(t0));
        assert!(r.try_acquire(t0 + Duration::from_millis(100)));
        assert!(!r.try_acquire(t0 + Duration::from_millis(100)));
    }

    #[test]
    fn keyed_buckets_are_separate_and_report_their_state() {
        let t0 = Instant::now();
        let rates = KeyedRates::new(1.0, 2.0, 10);
        let a = rates.take(&"a", t0);
        assert_eq!((a.allowed, a.limit, a.remaining), (true, 2, 1));
        assert!(rates.take(&"a", t0).allowed);
        let refused = rates.take(&"a", t0);
        assert!(!refused.allowed);
        assert_eq!((refused.remaining, refused.retry_after_secs), (0, 1));
        assert_eq!(refused.reset_secs, 2);
        assert!(!rates.peek(&"a", t0).allowed);
        assert!(rates.peek(&"b", t0).allowed);
        assert!(rates.take(&"b", t0).allowed);
        assert!(rates.peek(&"a", t0 + Duration::from_secs(1)).allowed);
    }

    #[test]
    fn the_table_is_bounded() {
        let t0 = Instant::now();
        let rates = KeyedRates::new(1.0, 5.0, 3);
        for k in 0..3 {
            assert!(rates.take(&k, t0).allowed);
        }
        // Full of partly used buckets: a new key is refused.
        assert!(!rates.take(&3, t0).allowed);
        assert_eq!(rates.len(), 3);
        // Once they have refilled they are dropped to make room.
        assert!(rates.take(&3, t0 + Duration::from_secs(2)).allowed);
        assert_eq!(rates.len(), 1);
    }
}
