//! The lean connection the generator drives: one tokio-tungstenite
//! WebSocket per simulated user, dialled from a chosen source address, and
//! a decoder that reads only what the measurements need.
//!
//! `tokenim-client` is the full client (request table, event queue, two
//! tasks per connection). A load generator holding 10,000 sockets and
//! receiving a million frames a second needs less: one task per connection
//! that owns its socket, the ability to bind a source address before
//! connecting (to spread over 127.0.0.x), and a decode that skips channel
//! names and payload fields it does not measure. This module is that piece.
//!
//! * [`Target`]: one gateway URL, resolved once, with the `Origin` header
//!   the gateway accepts for it.
//! * [`dial`]: TCP (optionally bound to a source IP), WebSocket upgrade with
//!   the codec's subprotocol and the token, and for [`AuthMode::Frame`] the
//!   `connect` round trip.
//! * [`frame`]: commands out, and [`Inbound`], the lean view of a server
//!   frame; [`Stamp`], the broadcast payload that carries its intended
//!   send time.

pub mod frame;

pub use frame::{Inbound, PushKind, Reply, Stamp, decode, encode, payload, publish, subscribe};

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokenim_protocol::{Codec, Command};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::{AUTHORIZATION, ORIGIN, SEC_WEBSOCKET_PROTOCOL};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

/// An open WebSocket to a gateway.
pub type Ws = WebSocketStream<TcpStream>;

/// `errno` values the generator names in its failure table.
mod errno {
    pub(super) const ENFILE: i32 = 23;
    pub(super) const EMFILE: i32 = 24;
    pub(super) const EADDRINUSE: i32 = 98;
    pub(super) const EADDRNOTAVAIL: i32 = 99;
    pub(super) const ECONNRESET: i32 = 104;
    pub(super) const ETIMEDOUT: i32 = 110;
    pub(super) const ECONNREFUSED: i32 = 111;
}

/// How a connection presents its token (see `docs/PROTOCOL.md`,
/// Authentication).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// `Authorization: Bearer` on the upgrade request: checked before the
    /// `101`, no extra round trip. The default.
    Header,
    /// `?token=` in the URL.
    Query,
    /// A first `connect` command after the upgrade: one more round trip,
    /// counted in the connect time.
    Frame,
}

/// One gateway endpoint, resolved once at start.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL as given, e.g. `ws://127.0.0.1:8080/ws`.
    pub url: String,
    /// The address dialled.
    pub addr: SocketAddr,
    /// `http://<host:port>`: the gateway accepts its own host as origin.
    origin: String,
}

/// Why a target or source address was refused before any traffic.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The URL is not `ws://host[:port]/path`.
    #[error("{url}: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The host resolves to an address outside loopback and
    /// `--allow-remote` was not given.
    #[error(
        "{url} resolves to {addr}, which is not a loopback address; load is only sent to 127.0.0.0/8 or ::1 unless --allow-remote is given"
    )]
    NotLoopback {
        /// The URL as given.
        url: String,
        /// The address it resolved to.
        addr: IpAddr,
    },
}

impl Target {
    /// Parses and resolves a `ws://` URL. Unless `allow_remote`, every
    /// address it resolves to must be loopback.
    pub fn parse(url: &str, allow_remote: bool) -> Result<Target, TargetError> {
        let bad = |reason: &str| TargetError::BadUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let request = url.into_client_request().map_err(|e| bad(&e.to_string()))?;
        let uri = request.uri();
        if uri.scheme_str() != Some("ws") {
            return Err(bad("only ws:// URLs are supported (no TLS)"));
        }
        let host = uri.host().ok_or_else(|| bad("no host"))?;
        let port = uri.port_u16().unwrap_or(80);
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .ok_or_else(|| bad("no host"))?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = (bare, port)
            .to_socket_addrs()
            .map_err(|e| bad(&format!("cannot resolve: {e}")))?
            .collect();
        let addr = *addrs.first().ok_or_else(|| bad("resolves to nothing"))?;
        if !allow_remote {
            if let Some(remote) = addrs.iter().find(|a| !a.ip().is_loopback()) {
                return Err(TargetError::NotLoopback {
                    url: url.to_owned(),
                    addr: remote.ip(),
                });
            }
        }
        Ok(Target {
            url: url.to_owned(),
            addr,
            origin: format!("http://{authority}"),
        })
    }

    /// The `Origin` header sent with every upgrade.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

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
    /// WebSocket settings (read buffer size above all).
    pub websocket: WebSocketConfig,
}

/// A failed dial, classified so the report can count failures by reason.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// A system call failed: socket, bind or connect.
    #[error("{stage}: {source}")]
    Io {
        /// `socket`, `bind` or `connect`.
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
    /// The WebSocket handshake or the `connect` round trip broke.
    #[error("websocket: {0}")]
    WebSocket(#[from] tungstenite::Error),
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
            DialError::WebSocket(tungstenite::Error::Io(e)) => io_reason(e),
            DialError::WebSocket(_) => "websocket_handshake".into(),
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
            DialError::WebSocket(tungstenite::Error::Io(e)) => e.raw_os_error(),
            _ => None,
        };
        matches!(code, Some(errno::EMFILE | errno::ENFILE))
    }
}

/// The stable key for an OS error.
fn io_reason(e: &io::Error) -> String {
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
pub async fn dial(spec: DialSpec<'_>) -> Result<Ws, DialError> {
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
    let tcp = socket.connect(addr).await.map_err(io("connect"))?;
    tcp.set_nodelay(true).map_err(io("connect"))?;

    let url = match spec.auth {
        AuthMode::Query => with_query_token(&spec.target.url, spec.token),
        _ => spec.target.url.clone(),
    };
    let mut request = url.into_client_request()?;
    let headers = request.headers_mut();
    headers.insert(
        SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(spec.codec.subprotocol()),
    );
    let header = |v: &str| {
        HeaderValue::try_from(v)
            .map_err(|e| tungstenite::Error::from(tungstenite::http::Error::from(e)))
    };
    headers.insert(ORIGIN, header(&spec.target.origin)?);
    if spec.auth == AuthMode::Header {
        let bearer = header(&format!("Bearer {}", spec.token))?;
        headers.insert(AUTHORIZATION, bearer);
    }
    let mut ws = match client_async_with_config(request, tcp, Some(spec.websocket)).await {
        Ok((ws, _)) => ws,
        Err(tungstenite::Error::Http(response)) => {
            return Err(DialError::Http {
                status: response.status().as_u16(),
            });
        }
        Err(e) => return Err(e.into()),
    };
    if spec.auth == AuthMode::Frame {
        let token = spec.token.to_owned();
        let first = encode(spec.codec, 1, Command::Connect { token });
        ws.send(first).await?;
        match next_reply(&mut ws, spec.codec, 1).await? {
            Reply::Ok(_) => {}
            Reply::Error(code) => return Err(DialError::Refused(code)),
        }
    }
    Ok(ws)
}

/// `url` with `token=<percent-encoded token>` added to its query.
fn with_query_token(url: &str, token: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    let mut out = format!("{url}{sep}token=");
    for b in token.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
/// Reads frames until the reply to command `id`, skipping pushes (join
/// events arrive while a channel fills up). Pings are answered by
/// tungstenite as the stream is read.
pub async fn next_reply(ws: &mut Ws, codec: Codec, id: u64) -> Result<Reply, DialError> {
    while let Some(message) = ws.next().await {
        let message = message?;
        let Some(frame) = payload(&message) else {
            continue;
        };
        match decode(codec, frame) {
            Some(inbound) if inbound.id == Some(id) => return Ok(inbound.reply()),
            Some(inbound) if inbound.push == Some(PushKind::Disconnect) => {
                return Err(DialError::Closed);
            }
            _ => {}
        }
    }
    Err(DialError::Closed)
}
/// Sends a close frame and waits briefly for the server's, so the gateway
/// sees a clean close rather than a reset.
pub async fn close(mut ws: Ws, wait: Duration) {
    let _ = tokio::time::timeout(wait, async {
        if ws.close(None).await.is_ok() {
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_only_unless_allowed() {
        let t = Target::parse("ws://127.0.0.1:18080/ws", false).unwrap();
        assert_eq!(t.origin(), "http://127.0.0.1:18080");
        assert_eq!(t.addr, "127.0.0.1:18080".parse().unwrap());
        assert!(Target::parse("ws://[::1]:9/ws", false).is_ok());
        let e = Target::parse("ws://10.1.2.3:8080/ws", false).unwrap_err();
        assert!(matches!(e, TargetError::NotLoopback { .. }), "{e}");
        assert!(Target::parse("ws://10.1.2.3:8080/ws", true).is_ok());
        assert!(Target::parse("wss://127.0.0.1/ws", false).is_err());
        assert!(Target::parse("http://127.0.0.1/ws", false).is_err());
    }

    #[test]
    fn failures_have_stable_reasons() {
        let emfile = DialError::Io {
            stage: "socket",
            source: io::Error::from_raw_os_error(24),
        };
        assert_eq!(emfile.reason(), "emfile");
        assert!(emfile.is_out_of_files());
        assert_eq!(DialError::Http { status: 429 }.reason(), "http_429");
        assert_eq!(
            with_query_token("ws://h/ws", "a+b"),
            "ws://h/ws?token=a%2Bb"
        );
    }
}
