//! [`Conn`]: one WebSocket, frames in and frames out.
//!
//! Reading yields an [`Incoming`]: a decoded command, a decode failure to
//! answer, a control frame, a clean close, or a violation to close for.
//! Writing feeds frames into tungstenite's buffer and flushes once per
//! batch; every write is bounded by `limits.write_timeout`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokenim_protocol::{
    ClientFrame, Codec, CommandId, DecodeError, Disconnect, DisconnectCode, Push,
};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::metrics::Metrics;
use crate::stream::Stream;
use crate::wire::{Framing, to_message};

/// How long closing may take: the close frame written and the client's
/// answer awaited.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// The server side of an accepted WebSocket.
pub type Ws = WebSocketStream<Stream>;

/// What one read produced.
#[derive(Debug)]
pub enum Incoming {
    /// A command.
    Command(ClientFrame),
    /// A frame that did not decode; answer with an error for this id.
    Invalid(CommandId, DecodeError),
    /// A ping or pong (proof of life, nothing to answer by hand).
    Control,
    /// The peer closed or the socket ended.
    Closed,
    /// The peer broke the protocol or a size limit; close with this code.
    Violation(DisconnectCode),
}

/// A socket write failed or timed out; the connection is unusable.
#[derive(Debug)]
pub struct WriteFailed;

/// A WebSocket plus what is needed to speak the protocol on it.
#[derive(Debug)]
pub struct Conn {
    ws: Ws,
    codec: Codec,
    /// Limits and metrics, shared (one pointer per connection, not a copy).
    framing: Arc<Framing>,
}

impl Conn {
    /// Wraps an upgraded socket.
    pub fn new(ws: Ws, codec: Codec, framing: Arc<Framing>) -> Self {
        Self { ws, codec, framing }
    }

    fn metrics(&self) -> &Metrics {
        &self.framing.metrics
    }

    fn write_timeout(&self) -> Duration {
        self.framing.write_timeout
    }

    /// The codec this connection speaks.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Reads the next frame. Cancel-safe: a partly read frame stays
    /// buffered inside tungstenite.
    pub async fn recv(&mut self) -> Incoming {
        let msg = match self.ws.next().await {
            None => return Incoming::Closed,
            Some(Ok(msg)) => msg,
            Some(Err(WsError::Capacity(_))) => {
                return Incoming::Violation(DisconnectCode::MessageTooLarge);
            }
            Some(Err(WsError::Protocol(_) | WsError::Utf8(_))) => {
                return Incoming::Violation(DisconnectCode::ProtocolViolation);
            }
            Some(Err(_)) => return Incoming::Closed,
        };
        let bytes: &[u8] = match (&msg, self.codec) {
            (Message::Text(t), Codec::Json) => t.as_bytes(),
            (Message::Binary(b), Codec::MsgPack) => b,
            (Message::Text(_), _) => {
                return Incoming::Invalid(0, DecodeError::WrongFrameType("text"));
            }
            (Message::Binary(_), _) => {
                return Incoming::Invalid(0, DecodeError::WrongFrameType("binary"));
            }
            (Message::Close(_), _) => {
                // tungstenite queued the answering close frame: send it, so
                // the client sees a clean close rather than 1006.
                let _ = self.flush().await;
                return Incoming::Closed;
            }
            (Message::Ping(_) | Message::Pong(_) | Message::Frame(_), _) => {
                return Incoming::Control;
            }
        };
        match self
            .codec
            .decode::<ClientFrame>(bytes, self.framing.max_message_size)
        {
            Ok(frame) => Incoming::Command(frame),
            Err(e) => Incoming::Invalid(self.codec.peek_id(bytes).unwrap_or(0), e),
        }
    }

    /// Encodes and writes one frame, then flushes.
    pub async fn send<T: Serialize>(&mut self, frame: &T) -> Result<(), WriteFailed> {
        let msg = to_message(self.codec, frame).map_err(|e| {
            tracing::error!(error = %e, "frame could not be encoded");
            WriteFailed
        })?;
        let mut batch = VecDeque::from([msg]);
        self.write_batch(&mut batch).await
    }

    /// Writes every frame of `batch` (leaving it empty) with one flush.
    pub async fn write_batch(&mut self, batch: &mut VecDeque<Message>) -> Result<(), WriteFailed> {
        let frames = batch.len() as u64;
        let timeout = self.write_timeout();
        let ws = &mut self.ws;
        let write = async {
            while let Some(msg) = batch.pop_front() {
                ws.feed(msg).await?;
            }
            ws.flush().await
        };
        match tokio::time::timeout(timeout, write).await {
            Ok(Ok(())) => {
                self.metrics().frames_out.inc_by(frames);
                self.metrics().writes.inc();
                Ok(())
            }
            _ => {
                batch.clear();
                Err(WriteFailed)
            }
        }
    }

    /// Writes pending control frames (e.g. the pong tungstenite queued).
    pub async fn flush(&mut self) -> Result<(), WriteFailed> {
        match tokio::time::timeout(self.write_timeout(), self.ws.flush()).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(WriteFailed),
        }
    }

    /// Sends a server ping.
    pub async fn ping(&mut self) -> Result<(), WriteFailed> {
        let mut batch = VecDeque::from([Message::Ping(Default::default())]);
        self.write_batch(&mut batch).await
    }

    /// Sends the `disconnect` push and a close frame with `code`, waits
    /// briefly for the client's close, and counts the disconnect.
    pub async fn close(mut self, code: DisconnectCode) {
        self.metrics().disconnect(code);
        let push = Push::Disconnect(Disconnect::from(code));
        let frame = CloseFrame {
            code: CloseCode::from(code.code()),
            reason: code.reason().into(),
        };
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            if let Ok(msg) = to_message(self.codec, &push) {
                let _ = self.ws.feed(msg).await;
            }
            if self.ws.close(Some(frame)).await.is_ok() {
                // Read until the client's close so the socket ends cleanly.
                while let Some(Ok(_)) = self.ws.next().await {}
            }
        })
        .await;
    }
}
