//! [`Outbound`]: a session's bounded queue of frames waiting to be written.
//!
//! Fan-out pushes into it without ever waiting; the session's write loop
//! takes everything queued at once, writes it, and flushes once. When the
//! queue is full the session is marked closed with
//! [`DisconnectCode::SlowConsumer`]: a client that reads too slowly is cut
//! off instead of growing memory or slowing the publishers. An empty queue
//! holds no allocation, which keeps idle connections cheap.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokenim_protocol::DisconnectCode;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The queue hit `limits.outbound_queue_frames` or
    /// `limits.outbound_queue_bytes`; the session is now closing with
    /// 4001 (slow consumer). Raise the limits only if clients are
    /// legitimately bursty.
    Full,
    /// The session is already closing; the frame is dropped.
    Closed,
}

#[derive(Debug, Default)]
struct State {
    frames: VecDeque<Message>,
    bytes: usize,
    closed: Option<DisconnectCode>,
}

/// A bounded, lock-light queue of outgoing frames with a close flag.
#[derive(Debug)]
pub struct Outbound {
    state: Mutex<State>,
    notify: Notify,
    max_frames: usize,
    max_bytes: usize,
}

impl Outbound {
    /// An empty queue holding at most `max_frames` frames and `max_bytes`
    /// bytes.
    pub fn new(max_frames: usize, max_bytes: usize) -> Self {
        Self {
            state: Mutex::default(),
            notify: Notify::new(),
            max_frames,
            max_bytes,
        }
    }

    /// Queues a frame without waiting. On overflow the queue closes itself
    /// with [`DisconnectCode::SlowConsumer`] and returns [`PushError::Full`].
    pub fn push(&self, frame: Message) -> Result<(), PushError> {
        let mut s = self.state.lock().expect("outbound lock");
        if s.closed.is_some() {
            return Err(PushError::Closed);
        }
        let len = frame.len();
        if s.frames.len() >= self.max_frames || s.bytes + len > self.max_bytes {
            s.closed = Some(DisconnectCode::SlowConsumer);
            drop(s);
            self.notify.notify_one();
            return Err(PushError::Full);
        }
        s.bytes += len;
        s.frames.push_back(frame);
        let was_empty = s.frames.len() == 1;
        drop(s);
        if was_empty {
            self.notify.notify_one();
        }
        Ok(())
    }

    /// Asks the session to close with `code` (the first code asked wins).
    pub fn close(&self, code: DisconnectCode) {
        let mut s = self.state.lock().expect("outbound lock");
        if s.closed.is_none() {
            s.closed = Some(code);
        }
        drop(s);
        self.notify.notify_one();
    }

    /// Moves every queued frame into `batch` (which must be empty) and
    /// returns the close code if the session should close.
    pub fn take(&self, batch: &mut VecDeque<Message>) -> Option<DisconnectCode> {
        debug_assert!(batch.is_empty());
        let mut s = self.state.lock().expect("outbound lock");
        std::mem::swap(&mut s.frames, batch);
        s.bytes = 0;
        s.closed
    }

    /// Waits until a frame is queued or a close is asked.
    pub async fn ready(&self) {
        self.notify.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_closes_as_slow_consumer_and_drops_nothing_already_queued() {
        let q = Outbound::new(2, 1 << 20);
        q.push(Message::text("a")).unwrap();
        q.push(Message::text("b")).unwrap();
        assert_eq!(q.push(Message::text("c")), Err(PushError::Full));
        assert_eq!(q.push(Message::text("d")), Err(PushError::Closed));
        let mut batch = VecDeque::new();
        assert_eq!(q.take(&mut batch), Some(DisconnectCode::SlowConsumer));
        assert_eq!(batch.len(), 2);
    }

    #[test]
    fn byte_bound_applies() {
        let q = Outbound::new(100, 5);
        q.push(Message::text("1234")).unwrap();
        assert_eq!(q.push(Message::text("56")), Err(PushError::Full));
    }

    #[test]
    fn first_close_code_wins() {
        let q = Outbound::new(1, 10);
        q.close(DisconnectCode::Shutdown);
        q.close(DisconnectCode::SlowConsumer);
        let mut batch = VecDeque::new();
        assert_eq!(q.take(&mut batch), Some(DisconnectCode::Shutdown));
    }
}
