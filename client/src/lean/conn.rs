//! [`Conn`]: an upgraded WebSocket on a raw [`TcpStream`] (or TLS over
//! one, for `wss://`), read with one `read` into a reused buffer and
//! parsed in place.
//!
//! The hot path is [`Conn::read_some`]: wait until the socket is
//! readable, read once, and hand every complete data message to a
//! closure as a slice of the buffer. Pings are answered, a close frame
//! ends the connection with its code, fragmented messages are assembled
//! (the gateway does not fragment, but a peer may), and a text heartbeat
//! (Engine.IO's `2`/`3`) can be answered in place. Writes are masked
//! client frames queued in an output buffer and flushed; flushing and
//! reading are cancel-safe (all progress is kept in the `Conn`), so both
//! can sit in a `tokio::select!`.

use std::io;
use std::time::Duration;

use tokenim_protocol::Codec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::either::Either;

pub use crate::handshake::Stream;

use super::ws::{self, CloseCode, Control, Data, FrameError, Masks, OpCode};

const TEXT: OpCode = OpCode::Data(Data::Text);
const BINARY: OpCode = OpCode::Data(Data::Binary);
const CONTINUE: OpCode = OpCode::Data(Data::Continue);
const CLOSE: OpCode = OpCode::Control(Control::Close);

/// Largest message a [`Conn`] accepts (the gateway's frames are far
/// smaller; this only bounds a misbehaving peer).
pub const MAX_MESSAGE: usize = 1 << 20;

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// The server sent a close frame (with this code) or the stream ended
    /// (`None`).
    #[error("closed by the server (code {0:?})")]
    Closed(Option<u16>),
    /// The server broke the framing rules.
    #[error("protocol: {0}")]
    Protocol(#[from] FrameError),
    /// The socket failed.
    #[error("io: {0}")]
    Io(#[from] io::Error),
}

impl ConnError {
    /// The close code to count this end under (`None`: no close frame).
    pub fn close_code(&self) -> Option<u16> {
        match self {
            ConnError::Closed(code) => *code,
            _ => None,
        }
    }
}

/// Where the next complete message lies.
#[derive(Clone, Copy)]
enum Loc {
    Buf(usize, usize),
    Assembled,
}

/// One upgraded connection.
#[derive(Debug)]
pub struct Conn {
    stream: Stream,
    codec: Codec,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// Fragments of a message being assembled, and its opcode.
    assembled: Vec<u8>,
    assembling: Option<OpCode>,
    assembled_ready: bool,
    out: Vec<u8>,
    out_sent: usize,
    masks: Masks,
    pings: u64,
    /// A text message that is a ping, and the text that answers it.
    text_heartbeat: Option<(&'static [u8], &'static [u8])>,
}

impl Conn {
    /// Wraps an upgraded stream; `leftover` is what was read past the
    /// upgrade response. `read_buffer` bytes are allocated now.
    pub fn new(stream: Stream, codec: Codec, read_buffer: usize, leftover: &[u8]) -> Conn {
        let size = read_buffer.max(leftover.len()).max(256);
        let mut buf = vec![0u8; size].into_boxed_slice();
        buf[..leftover.len()].copy_from_slice(leftover);
        let tcp = match &stream {
            Either::Left(tcp) => tcp,
            Either::Right(tls) => tls.get_ref().0,
        };
        let seed = tcp.local_addr().map_or(0, |a| {
            u64::from(a.port()) << 32 | u64::from(a.ip().is_loopback())
        });
        Conn {
            stream,
            codec,
            buf,
            start: 0,
            end: leftover.len(),
            assembled: Vec::new(),
            assembling: None,
            assembled_ready: false,
            out: Vec::new(),
            out_sent: 0,
            masks: Masks::new(seed ^ std::process::id() as u64),
            pings: 0,
            text_heartbeat: None,
        }
    }

    /// The codec this connection speaks.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Answer a heartbeat carried in text messages from now on: a text
    /// message equal to `ping` is answered with `pong` and counted in
    /// [`Conn::pings`] rather than handed to the reader (Engine.IO's
    /// heartbeat is `2`, answered with `3`).
    pub fn set_text_heartbeat(&mut self, ping: &'static [u8], pong: &'static [u8]) {
        self.text_heartbeat = Some((ping, pong));
    }

    /// Pings received so far (each was answered).
    pub fn pings(&self) -> u64 {
        self.pings
    }

    /// Queues a data message (text or binary, as the codec says).
    pub fn queue(&mut self, payload: &[u8]) {
        let op = if self.codec.is_text() { TEXT } else { BINARY };
        ws::write_frame(&mut self.out, op, payload, self.masks.next_key());
    }

    /// Queues a data message and writes everything queued.
    pub async fn send(&mut self, payload: &[u8]) -> io::Result<()> {
        self.queue(payload);
        self.flush().await
    }

    /// Writes everything queued. Cancel-safe: what was written stays
    /// written, the rest stays queued.
    pub async fn flush(&mut self) -> io::Result<()> {
        while self.out_sent < self.out.len() {
            match &mut self.stream {
                Either::Left(tcp) => {
                    tcp.writable().await?;
                    self.write_some()?;
                }
                Either::Right(tls) => {
                    match tls.write(&self.out[self.out_sent..]).await? {
                        0 => return Err(io::ErrorKind::WriteZero.into()),
                        n => self.out_sent += n,
                    }
                    if self.out_sent == self.out.len() {
                        self.out.clear();
                        self.out_sent = 0;
                    }
                }
            }
        }
        if let Either::Right(tls) = &mut self.stream {
            // What rustls holds encrypted goes out now.
            tls.flush().await?;
        }
        Ok(())
    }

    /// Writes what the plaintext socket takes now without waiting.
    fn write_some(&mut self) -> io::Result<()> {
        let Either::Left(tcp) = &self.stream else {
            return Ok(());
        };
        while self.out_sent < self.out.len() {
            match tcp.try_write(&self.out[self.out_sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.out_sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        self.out.clear();
        self.out_sent = 0;
        Ok(())
    }

    /// Reads until at least one complete data message or ping is in
    /// (waiting for the socket if none is buffered) and passes each
    /// buffered message to `on_message`; returns how many. Cancel-safe.
    pub async fn read_some(
        &mut self,
        mut on_message: impl FnMut(&[u8]),
    ) -> Result<usize, ConnError> {
        let pings = self.pings;
        loop {
            let mut n = 0;
            while let Some(loc) = self.parse_one()? {
                on_message(self.slice(loc));
                n += 1;
            }
            if !self.out.is_empty() {
                self.write_some()?;
            }
            if n > 0 || self.pings != pings {
                return Ok(n);
            }
            self.fill().await?;
        }
    }

    /// The next data message. Cancel-safe.
    pub async fn recv(&mut self) -> Result<&[u8], ConnError> {
        loop {
            if let Some(loc) = self.parse_one()? {
                return Ok(self.slice(loc));
            }
            if !self.out.is_empty() {
                self.write_some()?;
            }
            self.fill().await?;
        }
    }

    /// Sends a close frame (1000) and waits at most `wait` for the
    /// server's, so the gateway sees a clean close rather than a reset.
    pub async fn close(mut self, wait: Duration) {
        let mask = self.masks.next_key();
        let normal = u16::from(CloseCode::Normal).to_be_bytes();
        ws::write_frame(&mut self.out, CLOSE, &normal, mask);
        let _ = tokio::time::timeout(wait, async {
            if self.flush().await.is_ok() {
                while self.read_some(|_| {}).await.is_ok() {}
            }
        })
        .await;
    }

    fn slice(&self, loc: Loc) -> &[u8] {
        match loc {
            Loc::Buf(from, to) => &self.buf[from..to],
            Loc::Assembled => &self.assembled,
        }
    }

    /// Consumes buffered frames up to the next complete data message,
    /// answering pings on the way.
    fn parse_one(&mut self) -> Result<Option<Loc>, ConnError> {
        if self.assembled_ready {
            self.assembled.clear();
            self.assembled_ready = false;
        }
        loop {
            let avail = &self.buf[self.start..self.end];
            let Some(h) = ws::parse_header(avail, MAX_MESSAGE)? else {
                return Ok(None);
            };
            if avail.len() < h.frame_len() {
                return Ok(None);
            }
            let (from, to) = (self.start + h.header_len, self.start + h.frame_len());
            self.start = to;
            match h.opcode {
                TEXT if h.fin && self.assembling.is_none() && self.is_heartbeat(from, to) => {
                    let pong = self.text_heartbeat.map_or(&[][..], |(_, pong)| pong);
                    self.pings += 1;
                    let mask = self.masks.next_key();
                    ws::write_frame(&mut self.out, TEXT, pong, mask);
                }
                TEXT | BINARY if h.fin && self.assembling.is_none() => {
                    return Ok(Some(Loc::Buf(from, to)));
                }
                TEXT | BINARY if self.assembling.is_none() => {
                    self.assembling = Some(h.opcode);
                    self.assembled.extend_from_slice(&self.buf[from..to]);
                }
                CONTINUE if self.assembling.is_some() => {
                    if self.assembled.len() + (to - from) > MAX_MESSAGE {
                        return Err(FrameError::TooLarge(
                            (self.assembled.len() + to - from) as u64,
                        )
                        .into());
                    }
                    self.assembled.extend_from_slice(&self.buf[from..to]);
                    if h.fin {
                        self.assembling = None;
                        self.assembled_ready = true;
                        return Ok(Some(Loc::Assembled));
                    }
                }
                OpCode::Control(Control::Ping) => {
                    self.pings += 1;
                    let mask = self.masks.next_key();
                    let pong = OpCode::Control(Control::Pong);
                    ws::write_frame(&mut self.out, pong, &self.buf[from..to], mask);
                }
                OpCode::Control(Control::Pong) => {}
                CLOSE => {
                    let code = ws::close_code(&self.buf[from..to]).map(u16::from);
                    let mask = self.masks.next_key();
                    let echo = code.map(u16::to_be_bytes);
                    let echo = echo.as_ref().map_or(&[][..], |c| &c[..]);
                    ws::write_frame(&mut self.out, CLOSE, echo, mask);
                    let _ = self.write_some();
                    return Err(ConnError::Closed(code));
                }
                _ => return Err(FrameError::Fragments.into()),
            }
        }
    }

    /// Whether the text message at `from..to` is the heartbeat's ping.
    #[inline]
    fn is_heartbeat(&self, from: usize, to: usize) -> bool {
        self.text_heartbeat
            .is_some_and(|(ping, _)| &self.buf[from..to] == ping)
    }

    /// Makes room and reads once from the socket.
    async fn fill(&mut self) -> Result<(), ConnError> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        if self.end == self.buf.len() {
            // A frame larger than the buffer: grow to fit it (bounded by
            // MAX_MESSAGE through parse_header).
            let need = ws::parse_header(&self.buf[..self.end], MAX_MESSAGE)?
                .map_or(self.buf.len() * 2, |h| h.frame_len());
            let mut bigger = vec![0u8; need.max(self.buf.len() * 2)].into_boxed_slice();
            bigger[..self.end].copy_from_slice(&self.buf[..self.end]);
            self.buf = bigger;
        }
        // `read` (unlike `readable` + `try_read`) marks the socket not
        // ready after a short read, which saves the `EAGAIN` read that
        // would otherwise follow every batch.
        match self.stream.read(&mut self.buf[self.end..]).await? {
            0 => Err(ConnError::Closed(None)),
            n => {
                self.end += n;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests;
