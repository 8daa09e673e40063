//! [`SeqTracker`]: per subscriber, which sequence numbers of a channel
//! arrived, in constant memory.
//!
//! The gateway numbers a channel's messages 1, 2, 3, ... without gaps, and
//! a subscriber is owed every message above the `seq` its `subscribe`
//! reply gave (its *base*). The tracker keeps the highest sequence seen
//! and a bitmap of the [`WINDOW`] sequences below it, so it tells a
//! duplicate from a late (out-of-order) arrival without storing every
//! number. Loss is what was owed minus the distinct sequences that came.
//!
//! Order is owed per *lane*. A tokenim channel has one lane: the gateway
//! gives one order. A Socket.IO server numbers nothing, so each of `P`
//! publishers numbers its own messages (`k * P + i + 1`), and only each
//! publisher's own order is owed: messages of two publishers may cross on
//! the way to the server.

/// How many sequences below the highest one seen the tracker remembers
/// exactly. An arrival further back than this counts as late, never as a
/// duplicate.
pub const WINDOW: u64 = 1024;
const WORDS: usize = (WINDOW / 64) as usize;

/// The sequence numbers one subscriber received on one channel.
#[derive(Debug, Clone)]
pub struct SeqTracker {
    base: u64,
    max: u64,
    seen: [u64; WORDS],
    /// Distinct sequences above the base received.
    pub distinct: u64,
    /// Sequences received more than once.
    pub duplicates: u64,
    /// Sequences received after a higher one.
    pub out_of_order: u64,
    /// Sequences at or below the base (published before the subscription
    /// took effect); not owed, not counted.
    pub before_base: u64,
    /// The highest sequence seen per lane, when there are several (empty
    /// for one lane: `max` is that lane's).
    lane_max: Vec<u64>,
}

impl SeqTracker {
    /// A tracker owed every sequence above `base`, in one order.
    pub fn new(base: u64) -> SeqTracker {
        Self::with_lanes(base, 1)
    }

    /// A tracker owed every sequence above `base`, in order within each
    /// of `lanes` lanes (sequence `s` is in lane `(s - 1) % lanes`).
    pub fn with_lanes(base: u64, lanes: usize) -> SeqTracker {
        SeqTracker {
            base,
            max: base,
            seen: [0; WORDS],
            distinct: 0,
            duplicates: 0,
            out_of_order: 0,
            before_base: 0,
            lane_max: if lanes > 1 {
                vec![base; lanes]
            } else {
                Vec::new()
            },
        }
    }

    /// Whether `seq` comes after a higher sequence of its lane (and notes
    /// it as seen in its lane).
    fn late(&mut self, seq: u64) -> bool {
        if self.lane_max.is_empty() {
            return seq < self.max;
        }
        let lane = ((seq - 1) % self.lane_max.len() as u64) as usize;
        let late = seq < self.lane_max[lane];
        self.lane_max[lane] = self.lane_max[lane].max(seq);
        late
    }

    /// The base (the `subscribe` reply's `seq`).
    pub fn base(&self) -> u64 {
        self.base
    }

    /// The highest sequence seen (the base if none).
    pub fn max(&self) -> u64 {
        self.max
    }

    fn slot(seq: u64) -> (usize, u64) {
        let i = seq % WINDOW;
        ((i / 64) as usize, 1 << (i % 64))
    }

    /// Records one arrival.
    #[inline]
    pub fn observe(&mut self, seq: u64) {
        if seq <= self.base {
            self.before_base += 1;
            return;
        }
        let late = self.late(seq);
        if seq > self.max {
            if seq - self.max >= WINDOW {
                self.seen = [0; WORDS];
            } else {
                for s in self.max + 1..seq {
                    let (w, bit) = Self::slot(s);
                    self.seen[w] &= !bit;
                }
            }
            let (w, bit) = Self::slot(seq);
            self.seen[w] |= bit;
            self.max = seq;
            self.distinct += 1;
            return;
        }
        if self.max - seq < WINDOW {
            let (w, bit) = Self::slot(seq);
            if self.seen[w] & bit != 0 {
                self.duplicates += 1;
                return;
            }
            self.seen[w] |= bit;
        }
        self.distinct += 1;
        self.out_of_order += u64::from(late);
    }

    /// Messages owed up to `last` (the channel's last sequence) that never
    /// arrived.
    pub fn lost(&self, last: u64) -> u64 {
        last.saturating_sub(self.base).saturating_sub(self.distinct)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_stream_loses_nothing() {
        let mut t = SeqTracker::new(10);
        (11..=5000).for_each(|s| t.observe(s));
        assert_eq!(
            (t.distinct, t.duplicates, t.out_of_order, t.lost(5000)),
            (4990, 0, 0, 0)
        );
        assert_eq!(t.lost(5010), 10);
    }

    #[test]
    fn gaps_duplicates_and_late_arrivals_are_told_apart() {
        let mut t = SeqTracker::new(0);
        for s in [1, 2, 4, 5, 3, 5, 2, 9] {
            t.observe(s);
        }
        assert_eq!(t.distinct, 6);
        assert_eq!(t.duplicates, 2);
        assert_eq!(t.out_of_order, 1);
        assert_eq!(t.lost(10), 4);
        t.observe(0);
        assert_eq!(t.before_base, 1);
    }

    #[test]
    fn publishers_crossing_on_the_way_are_not_out_of_order_in_their_lanes() {
        // Two publishers: 1, 3, 5 from one, 2, 4, 6 from the other.
        let mut t = SeqTracker::with_lanes(0, 2);
        for s in [2, 1, 4, 3, 5, 6] {
            t.observe(s);
        }
        assert_eq!((t.distinct, t.out_of_order, t.lost(6)), (6, 0, 0));
        // One publisher's own order broken is still counted.
        t.observe(9);
        t.observe(7);
        assert_eq!(t.out_of_order, 1);
        // The same arrivals in one lane are out of order.
        let mut one = SeqTracker::new(0);
        for s in [2, 1, 4, 3] {
            one.observe(s);
        }
        assert_eq!(one.out_of_order, 2);
    }

    #[test]
    fn window_wraps_without_false_duplicates() {
        let mut t = SeqTracker::new(0);
        for s in 1..=3 * WINDOW {
            t.observe(s);
        }
        t.observe(5 * WINDOW);
        t.observe(5 * WINDOW - 1);
        assert_eq!(t.duplicates, 0);
        assert_eq!(t.out_of_order, 1);
        t.observe(5 * WINDOW - 1);
        assert_eq!(t.duplicates, 1);
        t.observe(10);
        assert_eq!(t.out_of_order, 2);
    }
}
