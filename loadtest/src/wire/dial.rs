//! Opening a connection: TCP from a chosen source address, the HTTP
//! upgrade written and read by hand (so the raw stream and whatever
//! followed the `101` stay ours), the token in a header, the query or a
//! first `connect` frame; and failures classified for the report.

use std::io;
use std::net::{IpAddr, SocketAddr};

use tokenim_protocol::Codec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::{
    AuthMode, Conn, ConnError, PushKind, Reply, Target, TargetKind, connect, decode, eio, errno,
};

/// Most bytes of upgrade response read before giving up on it.
const MAX_RESPONSE: usize = 16 * 1024;

/// What one connection needs to dial.
#[derive(Debug, Clone, Copy)]
pub struct DialSpec<'a> {
    /// The gateway.
    pub target: &'a Target,
    /// Source address to bind before connecting; `None` lets the kernel
    /// choose.
    pub source: Option<IpAddr>,
    /// The codec (its subprotocol is requested).
    pub codec: Codec,
    /// How the token is presented.
    pub auth: AuthMode,
    /// The JWT.
    pub token: &'a str,
    /// Read buffer of the connection, bytes (allocated up front).
    pub read_buffer: usize,
    /// tokenim, or Socket.IO (no subprotocol, no token, the Engine.IO
    /// path and namespace handshake instead).
    pub kind: TargetKind,
}

/// A failed dial, classified so the report can count failures by reason.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// A system call failed: socket, bind, connect, or the upgrade's
    /// reads and writes.
    #[error("{stage}: {source}")]
    Io {
        /// `socket`, `bind`, `connect` or `upgrade`.
        stage: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The gateway answered the upgrade with this HTTP status.
    #[error("upgrade refused with HTTP {status}")]
    Http {
        /// The status code (429: per-IP limit, 503: node limit or
        /// draining, 401: token refused, 403: origin refused).
        status: u16,
    },
    /// The upgrade response was not a valid WebSocket handshake.
    #[error("websocket handshake: {0}")]
    Handshake(String),
    /// The gateway refused the `connect` command with this error code.
    #[error("connect refused with error {0}")]
    Refused(u16),
    /// The connection closed before authentication finished.
    #[error("closed during connect")]
    Closed,
    /// Dial, upgrade and authentication together took longer than the
    /// connect timeout.
    #[error("timed out")]
    Timeout,
    /// No token could be had for this connection.
    #[error("token: {0}")]
    Token(String),
}

impl DialError {
    /// A short stable key for the failure table and the JSON report, e.g.
    /// `http_429`, `emfile`, `econnrefused`.
    pub fn reason(&self) -> String {
        match self {
            DialError::Io { source, .. } => io_reason(source),
            DialError::Http { status } => format!("http_{status}"),
            DialError::Handshake(_) => "websocket_handshake".into(),
            DialError::Refused(code) => format!("connect_error_{code}"),
            DialError::Closed => "closed_during_connect".into(),
            DialError::Timeout => "timeout".into(),
            DialError::Token(_) => "token".into(),
        }
    }

    /// Whether the generator ran out of file descriptors (EMFILE/ENFILE).
    pub fn is_out_of_files(&self) -> bool {
        let code = match self {
            DialError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        };
        matches!(code, Some(errno::EMFILE | errno::ENFILE))
    }
}

impl From<ConnError> for DialError {
    fn from(e: ConnError) -> DialError {
        match e {
            ConnError::Io(source) => DialError::Io {
                stage: "upgrade",
                source,
            },
            _ => DialError::Closed,
        }
    }
}

/// The stable key for an OS error.
pub(super) fn io_reason(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(errno::EMFILE) => "emfile".into(),
        Some(errno::ENFILE) => "enfile".into(),
        Some(errno::EADDRNOTAVAIL) => "eaddrnotavail".into(),
        Some(errno::EADDRINUSE) => "eaddrinuse".into(),
        Some(errno::ECONNREFUSED) => "econnrefused".into(),
        Some(errno::ECONNRESET) => "econnreset".into(),
        Some(errno::ETIMEDOUT) => "etimedout".into(),
        Some(n) => format!("errno_{n}"),
        None => format!("io_{:?}", e.kind()).to_lowercase(),
    }
}

/// Opens one authenticated connection. The caller bounds the time.
pub async fn dial(spec: DialSpec<'_>) -> Result<Conn, DialError> {
    let io = |stage| move |source| DialError::Io { stage, source };
    let addr = spec.target.addr;
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(io("socket"))?;
    if let Some(ip) = spec.source {
        socket.bind(SocketAddr::new(ip, 0)).map_err(io("bind"))?;
    }
    let mut tcp = socket.connect(addr).await.map_err(io("connect"))?;
    tcp.set_nodelay(true).map_err(io("connect"))?;

    let key = generate_key();
    let request = upgrade_request(&spec, &key);
    tcp.write_all(request.as_bytes())
        .await
        .map_err(io("upgrade"))?;
    let mut response = Vec::with_capacity(1024);
    let (status, header_len) = loop {
        let mut chunk = [0u8; 1024];
        let n = tcp.read(&mut chunk).await.map_err(io("upgrade"))?;
        if n == 0 {
            return Err(DialError::Closed);
        }
        response.extend_from_slice(&chunk[..n]);
        let protocol = (spec.kind == TargetKind::Tokenim).then_some(spec.codec);
        if let Some(parsed) = check_response(&response, &key, protocol)? {
            break parsed;
        }
        if response.len() > MAX_RESPONSE {
            return Err(DialError::Handshake("response headers too long".into()));
        }
    };
    if status != 101 {
        return Err(DialError::Http { status });
    }
    let mut conn = Conn::new(tcp, spec.codec, spec.read_buffer, &response[header_len..]);
    if spec.kind == TargetKind::Socketio {
        conn.set_engine_io();
        eio::handshake(&mut conn).await?;
        return Ok(conn);
    }
    if spec.auth == AuthMode::Frame {
        conn.send(&connect(spec.codec, 1, spec.token))
            .await
            .map_err(io("upgrade"))?;
        match next_reply(&mut conn, 1).await? {
            Reply::Ok(_) => {}
            Reply::Error(code) => return Err(DialError::Refused(code)),
        }
    }
    Ok(conn)
}

/// The upgrade request: codec subprotocol, Origin, and the token as the
/// auth mode says.
fn upgrade_request(spec: &DialSpec<'_>, key: &str) -> String {
    let target = spec.target;
    if spec.kind == TargetKind::Socketio {
        return format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\nOrigin: {origin}\r\n\r\n",
            path = eio::upgrade_path(&target.path),
            host = target.host,
            origin = target.origin(),
        );
    }
    let path = match spec.auth {
        AuthMode::Query => with_query_token(&target.path, spec.token),
        _ => target.path.clone(),
    };
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Protocol: {protocol}\r\nOrigin: {origin}\r\n",
        host = target.host,
        protocol = spec.codec.subprotocol(),
        origin = target.origin(),
    );
    if spec.auth == AuthMode::Header {
        request.push_str("Authorization: Bearer ");
        request.push_str(spec.token);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request
}

/// `Some((status, header length))` once the response's head is complete;
/// for a `101`, checks the accept key and the codec's subprotocol (when
/// one was asked for).
fn check_response(
    bytes: &[u8],
    key: &str,
    codec: Option<Codec>,
) -> Result<Option<(u16, usize)>, DialError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(DialError::Handshake(e.to_string())),
    };
    let status = response.code.unwrap_or(0);
    if status == 101 {
        let header = |name: &str| {
            response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| h.value)
        };
        if header("Sec-WebSocket-Accept") != Some(derive_accept_key(key.as_bytes()).as_bytes()) {
            return Err(DialError::Handshake("wrong Sec-WebSocket-Accept".into()));
        }
        if let Some(codec) = codec {
            if header("Sec-WebSocket-Protocol") != Some(codec.subprotocol().as_bytes()) {
                return Err(DialError::Handshake(format!(
                    "the gateway did not accept subprotocol {}",
                    codec.subprotocol()
                )));
            }
        }
    }
    Ok(Some((status, len)))
}

/// `path` with `token=<percent-encoded token>` added to its query.
pub(super) fn with_query_token(path: &str, token: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut out = format!("{path}{sep}token=");
    for b in token.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reads messages until the reply to command `id`, skipping pushes (join
/// events arrive while a channel fills up). Messages after the reply stay
/// buffered in the connection.
pub async fn next_reply(conn: &mut Conn, id: u64) -> Result<Reply, DialError> {
    let codec = conn.codec();
    loop {
        let message = conn.recv().await?;
        match decode(codec, message) {
            Some(inbound) if inbound.id == Some(id) => return Ok(inbound.reply()),
            Some(inbound) if inbound.push == Some(PushKind::Disconnect) => {
                return Err(DialError::Closed);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_have_stable_reasons() {
        let emfile = DialError::Io {
            stage: "socket",
            source: io::Error::from_raw_os_error(24),
        };
        assert_eq!(emfile.reason(), "emfile");
        assert!(emfile.is_out_of_files());
        assert_eq!(DialError::Http { status: 429 }.reason(), "http_429");
        assert_eq!(with_query_token("/ws", "a+b"), "/ws?token=a%2Bb");
        assert_eq!(with_query_token("/ws?x=1", "t"), "/ws?x=1&token=t");
    }

    #[test]
    fn upgrade_responses_are_checked() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: tokenim.v1.json\r\n\r\n\x01\x02hi";
        let bytes = ok.as_bytes();
        assert_eq!(
            check_response(bytes, key, Some(Codec::Json)).unwrap(),
            Some((101, bytes.len() - 4))
        );
        assert!(
            check_response(&bytes[..40], key, Some(Codec::Json))
                .unwrap()
                .is_none()
        );
        assert!(check_response(bytes, key, Some(Codec::MsgPack)).is_err());
        assert!(check_response(bytes, "b3RoZXIga2V5IGhlcmUhIQ==", Some(Codec::Json)).is_err());
        let refused = b"HTTP/1.1 429 Too Many Requests\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(
            check_response(refused, key, Some(Codec::Json)).unwrap(),
            Some((429, refused.len()))
        );
    }
}
