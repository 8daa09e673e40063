//! [`RateLimiter`]: a token bucket for one connection's publishes.

use std::time::Instant;

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
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
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
}
