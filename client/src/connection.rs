//! The two tasks behind a [`crate::Client`] and the state they share.
//!
//! * The reader task decodes every server frame. A reply goes to the
//!   request waiting for its id; anything else becomes an [`Event`] in a
//!   bounded queue, and the reader waits while that queue is full (see the
//!   crate doc on backpressure). It records the server's close frame and,
//!   when the socket ends, fails every waiting request.
//! * The writer task takes frames from a bounded queue, feeds whatever is
//!   queued and flushes once per batch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokenim_protocol::{Codec, CommandId, DecodeError, Reply, ServerFrame};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use crate::handshake::Socket;
use crate::{CloseInfo, Error, Event};

/// Frames the writer may hold before senders wait.
const OUTBOUND_QUEUE: usize = 1024;

type Ws = WebSocketStream<Socket>;
/// What the reader hands to the request with the reply's id.
type ReplySlot = oneshot::Sender<Result<Reply, DecodeError>>;

/// Work for the writer task.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// Send this frame.
    Message(Message),
    /// Send nothing new, but flush: writes out the pong tungstenite queued
    /// for a ping the reader just saw.
    Flush,
}

/// State shared by the client handle and the reader task.
#[derive(Debug)]
struct Shared {
    /// Requests waiting for a reply, by id; `None` once the connection
    /// ended, so a late request fails at once instead of timing out.
    pending: Mutex<Option<HashMap<CommandId, ReplySlot>>>,
    /// The server's close frame, set before the event queue closes.
    close: Mutex<Option<CloseInfo>>,
}

impl Shared {
    fn pending(&self) -> std::sync::MutexGuard<'_, Option<HashMap<CommandId, ReplySlot>>> {
        // A panic elsewhere cannot leave the map half-updated.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take_waiter(&self, id: CommandId) -> Option<ReplySlot> {
        self.pending().as_mut()?.remove(&id)
    }

    fn close_info(&self) -> Option<CloseInfo> {
        self.close
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A connection's tasks and the queues to them; dropping it stops both
/// tasks.
#[derive(Debug)]
pub(crate) struct Connection {
    outbound: mpsc::Sender<Outbound>,
    events: mpsc::Receiver<Event>,
    shared: Arc<Shared>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Connection {
    /// Splits the socket and starts the reader and writer tasks.
    pub(crate) fn start(ws: Ws, codec: Codec, push_buffer: usize) -> Self {
        let (sink, stream) = ws.split();
        let (outbound, outbound_rx) = mpsc::channel(OUTBOUND_QUEUE);
        let (events_tx, events) = mpsc::channel(push_buffer.max(1));
        let shared = Arc::new(Shared {
            pending: Mutex::new(Some(HashMap::new())),
            close: Mutex::new(None),
        });
        let reader = Reader {
            stream,
            codec,
            events: events_tx,
            flush: outbound.downgrade(),
            shared: Arc::clone(&shared),
        };
        Self {
            outbound,
            events,
            shared,
            reader: tokio::spawn(reader.run()),
            writer: tokio::spawn(write_loop(sink, outbound_rx)),
        }
    }

    /// Registers a request; its reply (or decode failure) arrives on the
    /// returned waiter.
    pub(crate) fn register(&self, id: CommandId) -> Result<Waiter, Error> {
        let (tx, rx) = oneshot::channel();
        match self.shared.pending().as_mut() {
            Some(map) => map.insert(id, tx),
            None => return Err(self.closed_error()),
        };
        Ok(Waiter {
            rx,
            id,
            shared: Arc::clone(&self.shared),
        })
    }

    /// Queues a frame for the writer, waiting while its queue is full.
    pub(crate) async fn send(&self, message: Message) -> Result<(), Error> {
        self.outbound
            .send(Outbound::Message(message))
            .await
            .map_err(|_| self.closed_error())
    }

    /// The next event; `None` once the connection ended and all were read.
    pub(crate) async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// Stops taking events: the reader drops whatever else arrives but keeps
    /// reading, so it still sees the server's close frame.
    pub(crate) fn stop_events(&mut self) {
        self.events.close();
    }

    /// Waits for the reader task to end (the socket closed).
    pub(crate) async fn reader_done(&mut self) {
        let _ = (&mut self.reader).await;
    }

    pub(crate) fn close_info(&self) -> Option<CloseInfo> {
        self.shared.close_info()
    }

    pub(crate) fn closed_error(&self) -> Error {
        Error::Closed(self.close_info())
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}

/// A registered request's end of the reply slot; dropping it (timeout,
/// cancelled future) unregisters the id.
#[derive(Debug)]
pub(crate) struct Waiter {
    rx: oneshot::Receiver<Result<Reply, DecodeError>>,
    id: CommandId,
    shared: Arc<Shared>,
}

impl Waiter {
    /// The reply, or why none will come.
    pub(crate) async fn reply(&mut self) -> Result<Reply, Error> {
        match (&mut self.rx).await {
            Ok(reply) => Ok(reply?),
            Err(_) => Err(Error::Closed(self.shared.close_info())),
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.shared.take_waiter(self.id);
    }
}

/// The reader task's state.
struct Reader {
    stream: SplitStream<Ws>,
    codec: Codec,
    events: mpsc::Sender<Event>,
    /// Weak, so the reader alone does not keep the writer alive.
    flush: mpsc::WeakSender<Outbound>,
    shared: Arc<Shared>,
}

impl Reader {
    async fn run(mut self) {
        let mut discard = false;
        while let Some(next) = self.stream.next().await {
            let bytes = match next {
                Ok(Message::Text(text)) => text.into(),
                Ok(Message::Binary(bytes)) => bytes,
                Ok(Message::Ping(_)) => {
                    if let Some(writer) = self.flush.upgrade() {
                        let _ = writer.try_send(Outbound::Flush);
                    }
                    continue;
                }
                Ok(Message::Close(frame)) => {
                    // tungstenite answers the close itself; keep reading
                    // until the server drops the connection.
                    let info = frame.map(|f| CloseInfo {
                        code: f.code.into(),
                        reason: f.reason.to_string(),
                    });
                    *self
                        .shared
                        .close
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = info;
                    continue;
                }
                Ok(Message::Pong(_) | Message::Frame(_)) => continue,
                Err(error) => {
                    tracing::debug!(%error, "connection ended");
                    break;
                }
            };
            let event = match self.codec.decode_server(&bytes) {
                Ok(ServerFrame::Reply(reply)) => match self.shared.take_waiter(reply.id) {
                    Some(slot) => {
                        let _ = slot.send(Ok(reply));
                        continue;
                    }
                    None => Event::Reply(reply),
                },
                Ok(ServerFrame::Push(push)) => Event::Push(push),
                Err(error) => {
                    let slot = self
                        .codec
                        .peek_id(&bytes)
                        .and_then(|id| self.shared.take_waiter(id));
                    match slot {
                        Some(slot) => {
                            let _ = slot.send(Err(error));
                        }
                        None => tracing::warn!(%error, "skipped an undecodable server frame"),
                    }
                    continue;
                }
            };
            if !discard && self.events.send(event).await.is_err() {
                discard = true;
            }
        }
        // Dropping the slots fails every waiting request with `Closed`.
        self.shared.pending().take();
    }
}

/// The writer task: feed every queued frame, flush once per batch. Ends
/// after sending a close frame, on a write error, or when the client is
/// gone.
async fn write_loop(mut sink: SplitSink<Ws, Message>, mut rx: mpsc::Receiver<Outbound>) {
    while let Some(first) = rx.recv().await {
        let mut item = Some(first);
        let mut closing = false;
        while let Some(next) = item.take() {
            if let Outbound::Message(message) = next {
                closing = message.is_close();
                if let Err(error) = sink.feed(message).await {
                    tracing::debug!(%error, "write failed");
                    return;
                }
                if closing {
                    break;
                }
            }
            item = rx.try_recv().ok();
        }
        if let Err(error) = sink.flush().await {
            tracing::debug!(%error, "flush failed");
            return;
        }
        if closing {
            return;
        }
    }
}
