//! [`Resuming`]: a client that survives dropped connections without losing
//! messages.
//!
//! It remembers the last position (sequence and epoch) it saw in every
//! channel it subscribed to. When the connection ends for any reason but
//! a final one (a close code for which
//! [`reconnect_after`](tokenim_protocol::disconnect::reconnect_after) is
//! false: 4500–4999, defined or not), it reconnects with exponential
//! backoff and jitter, subscribes again with those positions, hands out
//! what the server recovered, then live messages; anything at or below a
//! remembered position is dropped, so each message comes out once and in
//! order. A `gap` push (messages the server could not deliver while the
//! connection stayed open, or a new epoch) moves the channel's position
//! and is reported. Direct messages (the personal channel) are
//! acknowledged as they are handed out, so the server does not deliver
//! them again.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokenim_protocol::disconnect::reconnect_after;
use tokenim_protocol::{
    ChannelName, ErrorCode, Gap, Publication, Push, ReplyBody, Seq, StreamPosition,
};

use crate::{Client, ConnectOptions, Error};

/// First wait before reconnecting; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// What [`Resuming::next`] hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resumed {
    /// A message, each exactly once, in order per channel.
    Message(Publication),
    /// Messages of a channel were lost (`history_gap`) or its epoch
    /// changed (`epoch_changed`), while disconnected or, told by a `gap`
    /// push, while connected; what remained has been handed out, and the
    /// channel goes on from its new position.
    Gap {
        /// The channel.
        channel: ChannelName,
        /// Why.
        code: ErrorCode,
    },
    /// The connection was re-established (after the given attempts).
    Reconnected {
        /// Connection attempts it took.
        attempts: u32,
    },
    /// Another push (join, leave).
    Push(Push),
}

/// A client that reconnects and resumes by itself.
#[derive(Debug)]
pub struct Resuming {
    options: ConnectOptions,
    client: Client,
    positions: HashMap<ChannelName, StreamPosition>,
    pending: VecDeque<Resumed>,
    max_attempts: u32,
}

impl Resuming {
    /// Connects. `max_attempts` bounds each reconnection (0: forever).
    pub async fn connect(options: ConnectOptions, max_attempts: u32) -> Result<Self, Error> {
        let client = Client::connect(options.clone()).await?;
        Ok(Self {
            options,
            client,
            positions: HashMap::new(),
            pending: VecDeque::new(),
            max_attempts,
        })
    }

    /// The current connection, for publishing and other commands.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Subscribes and starts remembering the channel's position.
    pub async fn subscribe(&mut self, channel: &ChannelName) -> Result<(), Error> {
        if let ReplyBody::Subscribe { seq, epoch, .. } =
            self.client.subscribe_from(channel, None).await?
        {
            self.positions
                .insert(channel.clone(), StreamPosition { seq, epoch });
        }
        Ok(())
    }

    /// The last position seen in `channel`.
    pub fn position(&self, channel: &ChannelName) -> Option<&StreamPosition> {
        self.positions.get(channel)
    }

    /// The next message or event; reconnects as needed. `None` once the
    /// server closed for good or reconnection gave up.
    pub async fn next(&mut self) -> Option<Resumed> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            match self.client.next_push().await {
                Some(Push::Message(message)) => {
                    if let Some(message) = self.accept(message).await {
                        return Some(Resumed::Message(message));
                    }
                }
                Some(Push::Disconnect(_)) => {}
                Some(Push::Gap(gap)) => {
                    if let Some(event) = self.on_gap(gap) {
                        return Some(event);
                    }
                }
                Some(other) => return Some(Resumed::Push(other)),
                None => {
                    let final_close = self
                        .client
                        .close_info()
                        .is_some_and(|close| !reconnect_after(close.code));
                    if final_close || !self.reconnect().await {
                        return None;
                    }
                }
            }
        }
    }

    /// Drops what was already seen; records and acknowledges the rest.
    async fn accept(&mut self, message: Publication) -> Option<Publication> {
        if message.channel.is_personal() {
            // Direct messages are delivered until acknowledged.
            let _ = self.client.ack(message.seq).await;
        }
        match self.positions.get_mut(&message.channel) {
            Some(position) if message.seq <= position.seq => None,
            Some(position) => {
                position.seq = message.seq;
                Some(message)
            }
            None => Some(message),
        }
    }

    /// A `gap` push: the channel goes on after its position. Moves there
    /// (a new epoch, or a `seq` above the one held) and reports the gap;
    /// one at or below what was already handed out changes nothing.
    fn on_gap(&mut self, gap: Gap) -> Option<Resumed> {
        let to = StreamPosition {
            seq: gap.seq,
            epoch: gap.epoch,
        };
        match self.positions.get_mut(&gap.channel) {
            Some(position) if position.epoch == to.epoch && position.seq >= to.seq => return None,
            Some(position) => *position = to,
            None => {}
        }
        Some(Resumed::Gap {
            channel: gap.channel,
            code: gap.code,
        })
    }

    /// Reconnects with backoff and jitter, then resubscribes every channel
    /// from its position. Returns whether it succeeded.
    async fn reconnect(&mut self) -> bool {
        let mut backoff = MIN_BACKOFF;
        let mut attempts = 0;
        loop {
            attempts += 1;
            if self.max_attempts > 0 && attempts > self.max_attempts {
                return false;
            }
            tokio::time::sleep(jitter(backoff)).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            let Ok(client) = Client::connect(self.options.clone()).await else {
                continue;
            };
            self.client = client;
            if self.resubscribe().await.is_ok() {
                self.pending.push_front(Resumed::Reconnected { attempts });
                return true;
            }
        }
    }

    async fn resubscribe(&mut self) -> Result<(), Error> {
        let channels: Vec<(ChannelName, StreamPosition)> = self
            .positions
            .iter()
            .map(|(c, p)| (c.clone(), p.clone()))
            .collect();
        for (channel, since) in channels {
            let ReplyBody::Subscribe {
                seq,
                epoch,
                gap,
                publications,
                ..
            } = self
                .client
                .subscribe_from(&channel, Some(since.clone()))
                .await?
            else {
                continue;
            };
            let mut last: Seq = if epoch == since.epoch { since.seq } else { 0 };
            for message in publications {
                if message.seq > last {
                    last = message.seq;
                    self.pending.push_back(Resumed::Message(message));
                }
            }
            if let Some(code) = gap {
                // What could not be recovered is reported, then skipped.
                self.pending.push_back(Resumed::Gap {
                    channel: channel.clone(),
                    code,
                });
                last = last.max(seq);
            }
            self.positions
                .insert(channel, StreamPosition { seq: last, epoch });
        }
        Ok(())
    }
}

/// `d` ± 25 %.
fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    d.mul_f64(0.75 + f64::from(nanos % 1000) / 2000.0)
}
