//! [`InFlight`]: replies still waiting for the broker, in command order.
//!
//! A publish or send is checked and queued at once ([`Broker::queue_publish`]
//! fixes its place), and the session goes on reading commands while the
//! broker works (through Redis, a round trip). Replies still leave in the
//! order the commands came: a reply that is ready while an earlier one
//! waits queues behind it. At most `limits.max_commands_in_flight` replies
//! wait; then the session stops reading until the oldest is answered, and
//! the client's socket pushes back.
//!
//! [`Broker::queue_publish`]: crate::broker::Broker::queue_publish

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::Poll;

use prometheus::IntGauge;
use tokenim_protocol::{ChannelName, CommandId, Reply, ReplyBody, UserId};

use super::error::CommandError;
use crate::broker::{PendingPublish, Published};

/// What a command produced.
#[derive(Debug)]
pub(super) enum Answer {
    /// Its reply.
    Now(ReplyBody),
    /// A publish on its way; the reply follows its outcome.
    Later(Later),
}

/// A publish or send whose reply waits for the broker.
#[derive(Debug)]
pub(super) struct Later {
    publish: PendingPublish,
    to: Target,
}

#[derive(Debug)]
enum Target {
    Channel(ChannelName),
    User(UserId),
}

impl Later {
    /// A channel publish.
    pub(super) fn publish(channel: ChannelName, publish: PendingPublish) -> Self {
        Self {
            publish,
            to: Target::Channel(channel),
        }
    }

    /// A direct message.
    pub(super) fn send(to: UserId, publish: PendingPublish) -> Self {
        Self {
            publish,
            to: Target::User(to),
        }
    }

    fn reply(self, id: CommandId, outcome: Result<Published, CommandError>) -> Reply {
        match (outcome, self.to) {
            (Ok(published), Target::Channel(channel)) => Reply::ok(
                id,
                ReplyBody::Publish {
                    channel,
                    seq: published.seq,
                    duplicate: published.duplicate,
                },
            ),
            (Ok(published), Target::User(to)) => Reply::ok(
                id,
                ReplyBody::Send {
                    to,
                    seq: published.seq,
                },
            ),
            (Err(e), _) => Reply::error(id, e.code, e.message),
        }
    }
}

#[derive(Debug)]
enum Waiting {
    Ready(Reply),
    Later(CommandId, Later),
}

/// The replies of one session that are not written yet, oldest first.
///
/// Every connection's serving loop holds one, and most connections never
/// publish: the queue is allocated on first use, so until then this is one
/// pointer.
#[derive(Debug, Default)]
pub(super) struct InFlight(Option<Box<Queue>>);

#[derive(Debug)]
struct Queue {
    waiting: VecDeque<Waiting>,
    /// Counts waiting replies node-wide.
    gauge: IntGauge,
}

impl InFlight {
    pub(super) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |q| q.waiting.len())
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues a reply that waits for the broker; `gauge` counts waiting
    /// replies node-wide.
    pub(super) fn push_later(&mut self, id: CommandId, later: Later, gauge: &IntGauge) {
        self.push(Waiting::Later(id, later), gauge);
    }

    /// Queues a ready reply behind those waiting.
    pub(super) fn push_ready(&mut self, reply: Reply, gauge: &IntGauge) {
        self.push(Waiting::Ready(reply), gauge);
    }

    fn push(&mut self, waiting: Waiting, gauge: &IntGauge) {
        let queue = self.0.get_or_insert_with(|| {
            Box::new(Queue {
                waiting: VecDeque::new(),
                gauge: gauge.clone(),
            })
        });
        queue.waiting.push_back(waiting);
        queue.gauge.inc();
    }

    /// The oldest reply, once it is ready. Cancel-safe: until it returns,
    /// nothing leaves the queue. Pending for ever when the queue is empty.
    /// (A bare `poll_fn`: this future sits in every connection's serving
    /// loop, so it is kept to one pointer.)
    pub(super) fn next(&mut self) -> impl Future<Output = Reply> + '_ {
        poll_fn(move |cx| {
            let Some(queue) = self.0.as_deref_mut() else {
                return Poll::Pending;
            };
            let outcome = match queue.waiting.front_mut() {
                None => return Poll::Pending,
                Some(Waiting::Ready(_)) => None,
                Some(Waiting::Later(_, later)) => match Pin::new(&mut later.publish).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(outcome) => Some(outcome.map_err(CommandError::from)),
                },
            };
            queue.gauge.dec();
            Poll::Ready(match (queue.waiting.pop_front(), outcome) {
                (Some(Waiting::Ready(reply)), _) => reply,
                (Some(Waiting::Later(id, later)), Some(outcome)) => later.reply(id, outcome),
                _ => unreachable!("the front was just looked at"),
            })
        })
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        // A closing session's unanswered commands: the broker still
        // carries the publishes out, nobody is left to tell.
        self.gauge.sub(self.waiting.len() as i64);
    }
}
