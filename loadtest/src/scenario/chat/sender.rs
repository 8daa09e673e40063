//! A chat user's sending: its Poisson schedule ([`Tx`]), drawn from a
//! per-user seed, and writing every send that is due ([`send_due`]):
//! a publish to its room or a `send` to a random other user, stamped
//! with its intended time and a filler of skewed size.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokenim_protocol::{ChannelName, UserId};

use super::member::{MemberPlan, Rx};
use crate::wire::{self, Conn, Stamp};

/// xorshift64*: the user's schedule, recipients and sizes.
#[derive(Debug, Clone)]
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The send side: the Poisson schedule and its counters.
pub(super) struct Tx {
    rng: Rng,
    next: Instant,
    end: Instant,
    k: u64,
}

impl Tx {
    pub(super) fn new(plan: &MemberPlan, start: Instant, end: Instant) -> Tx {
        let mut rng = Rng((plan.index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let first = start + gap(&mut rng, plan.rate);
        Tx {
            rng,
            next: first,
            end,
            k: 0,
        }
    }

    /// When the next send is due, if one is left.
    pub(super) fn due(&self) -> Option<Instant> {
        (self.next < self.end).then_some(self.next)
    }
}

/// An exponential gap with mean `1 / rate` (at most an hour).
fn gap(rng: &mut Rng, rate: f64) -> Duration {
    let seconds = -(1.0 - rng.unit()).ln() / rate;
    Duration::from_secs_f64(seconds.min(3600.0))
}

/// Writes every send that is due by now; `false` if the connection broke.
pub(super) async fn send_due(
    conn: &mut Conn,
    tx: &mut Tx,
    rx: &mut Rx<'_>,
    plan: &MemberPlan,
    room: Option<&ChannelName>,
) -> bool {
    let now = Instant::now();
    let shared = rx.shared;
    while let Some(due) = tx.due().filter(|d| *d <= now) {
        let filler = if plan.payload_max > 0 {
            (plan.payload_max as f64).powf(tx.rng.unit()) as usize
        } else {
            0
        };
        let stamp = Stamp {
            t: shared.clock.at(due),
            p: plan.index as u32,
            n: tx.k,
            pad: "x".repeat(filler),
        };
        let id = tx.k + 2;
        let payload = match room {
            Some(channel) => wire::publish(rx.codec, id, channel, &stamp),
            None => {
                let mut to = (tx.rng.unit() * (plan.users - 1) as f64) as usize;
                if to >= plan.index {
                    to += 1;
                }
                let to = plan.tokens.user(to.min(plan.users - 1));
                // `validate` refused a run whose users have no valid ids.
                let Some(to) = to.and_then(|u| UserId::new(&u).ok()) else {
                    return false;
                };
                wire::send(rx.codec, id, &to, &stamp)
            }
        };
        conn.queue(&payload);
        shared.lag.record(
            plan.index,
            now.saturating_duration_since(due).as_micros() as u64,
        );
        rx.pending.push_back((id, now));
        rx.out.sent += 1;
        shared.sent.fetch_add(1, Ordering::Relaxed);
        tx.k += 1;
        tx.next += gap(&mut tx.rng, plan.rate);
    }
    conn.flush().await.is_ok()
}
