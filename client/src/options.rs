//! [`ConnectOptions`]: where to connect, with which codec and credentials,
//! and the client-side bounds. [`Auth`]: the three ways to present a token,
//! and none.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokenim_protocol::Codec;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// How the client presents its token to the gateway.
///
/// The gateway accepts a token in the upgrade request (header or query) or
/// in a first `connect` command; browsers can only use the latter two. The
/// `Debug` output never shows the token.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <jwt>` on the upgrade request. A refused token
    /// fails [`crate::Client::connect`] with [`crate::Error::Http`] (401).
    Header(String),
    /// `?token=<jwt>` appended to the URL (percent-encoded). Refusal as for
    /// [`Auth::Header`].
    Query(String),
    /// A first `connect` command carrying the token; `connect` waits for its
    /// reply and keeps it as [`crate::Client::session`]. A refused token
    /// fails with [`crate::Error::Server`].
    Frame(String),
    /// Send no token at all, e.g. to exercise the gateway's auth deadline
    /// or to send the `connect` command by hand.
    None,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Auth::Header(_) => "Header",
            Auth::Query(_) => "Query",
            Auth::Frame(_) => "Frame",
            Auth::None => return f.write_str("None"),
        };
        write!(f, "{kind}(<redacted>)")
    }
}

/// Everything [`crate::Client::connect`] needs.
///
/// Fields are public; [`ConnectOptions::new`] fills in the defaults and the
/// chained setters change one field each.
///
/// ```
/// use std::time::Duration;
/// use tokenim_client::{Auth, ConnectOptions};
/// use tokenim_client::protocol::Codec;
///
/// let options = ConnectOptions::new("ws://127.0.0.1:8080/ws", Codec::MsgPack, Auth::None)
///     .push_buffer(16)
///     .request_timeout(Duration::from_secs(2))
///     .header("Origin", "https://app.example");
/// assert_eq!(options.push_buffer, 16);
/// assert_eq!(options.extra_headers.len(), 1);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// The gateway's WebSocket endpoint, `ws://HOST:PORT/ws`, or
    /// `wss://HOST[:PORT]/ws` for TLS (port 443 by default), whose
    /// certificate must be valid for `HOST` and signed by a root of the
    /// webpki set or [`ConnectOptions::tls_ca_pem`]. The lean transport
    /// (the load generator's) speaks `ws://` only.
    pub url: String,
    /// The codec; its subprotocol is requested in the upgrade and the
    /// server must select it.
    pub codec: Codec,
    /// How to present the token.
    pub auth: Auth,
    /// How many unread events (pushes and unclaimed replies) to hold before
    /// the client stops reading its socket. Default
    /// [`ConnectOptions::DEFAULT_PUSH_BUFFER`]. Set it small to make a test
    /// client a slow consumer quickly. Must be at least 1.
    pub push_buffer: usize,
    /// How long a request waits for its reply, and how long `connect` may
    /// take in all (TCP, upgrade and the `connect` command). Default
    /// [`ConnectOptions::DEFAULT_REQUEST_TIMEOUT`].
    pub request_timeout: Duration,
    /// Extra headers for the upgrade request, e.g. `("Origin", "...")`.
    pub extra_headers: Vec<(String, String)>,
    /// The WebSocket settings. The default is tungstenite's except for a
    /// [`ConnectOptions::DEFAULT_READ_BUFFER`] read buffer: that buffer is
    /// allocated up front for every connection, and a load generator holding
    /// thousands of connections that each receive small frames does not need
    /// tungstenite's 128 KiB. Raise it for a client that receives a lot.
    pub websocket: WebSocketConfig,
    /// Source address to bind before connecting; `None` (the default) lets
    /// the kernel choose. A load generator spreads its connections over
    /// several loopback addresses this way.
    pub source: Option<IpAddr>,
    /// The address to dial, resolved beforehand; `None` (the default)
    /// resolves the URL's host on every connect. The URL still gives the
    /// `Host` header and the path.
    pub addr: Option<SocketAddr>,
    /// Whether to request the codec's subprotocol (default `true`). Off
    /// only for servers that speak no tokenim subprotocol, such as the
    /// Socket.IO server the load generator compares against.
    pub subprotocol: bool,
    /// PEM text of CA certificates trusted for `wss://` besides the
    /// webpki roots, for a gateway whose certificate a private or test CA
    /// signed. Default `None`.
    pub tls_ca_pem: Option<String>,
}

impl ConnectOptions {
    /// Default [`ConnectOptions::push_buffer`]: 4096 events.
    pub const DEFAULT_PUSH_BUFFER: usize = 4096;
    /// Default [`ConnectOptions::request_timeout`]: 10 seconds.
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default read buffer in [`ConnectOptions::websocket`]: 16 KiB.
    pub const DEFAULT_READ_BUFFER: usize = 16 * 1024;

    /// Options with every default: no extra headers, a 4096-event buffer,
    /// a 10 s request timeout.
    pub fn new(url: impl Into<String>, codec: Codec, auth: Auth) -> Self {
        Self {
            url: url.into(),
            codec,
            auth,
            push_buffer: Self::DEFAULT_PUSH_BUFFER,
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
            extra_headers: Vec::new(),
            websocket: WebSocketConfig::default().read_buffer_size(Self::DEFAULT_READ_BUFFER),
            source: None,
            addr: None,
            subprotocol: true,
            tls_ca_pem: None,
        }
    }

    /// Sets [`ConnectOptions::push_buffer`] (values below 1 count as 1).
    pub fn push_buffer(mut self, events: usize) -> Self {
        self.push_buffer = events;
        self
    }

    /// Sets [`ConnectOptions::request_timeout`].
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Adds one header to [`ConnectOptions::extra_headers`].
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra_headers.push((name.into(), value.into()));
        self
    }

    /// Adds the `Origin` header (the gateway checks it against its allowed
    /// origins).
    pub fn origin(self, origin: impl Into<String>) -> Self {
        self.header("Origin", origin)
    }

    /// Sets [`ConnectOptions::source`].
    pub fn source(mut self, ip: Option<IpAddr>) -> Self {
        self.source = ip;
        self
    }

    /// Sets [`ConnectOptions::addr`].
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = Some(addr);
        self
    }

    /// Sets [`ConnectOptions::subprotocol`].
    pub fn subprotocol(mut self, request: bool) -> Self {
        self.subprotocol = request;
        self
    }

    /// Sets [`ConnectOptions::tls_ca_pem`].
    pub fn tls_ca_pem(mut self, pem: impl Into<String>) -> Self {
        self.tls_ca_pem = Some(pem.into());
        self
    }

    /// Sets [`ConnectOptions::websocket`].
    pub fn websocket(mut self, config: WebSocketConfig) -> Self {
        self.websocket = config;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_token() {
        let options = ConnectOptions::new("ws://h/ws", Codec::Json, Auth::Header("secret".into()));
        let shown = format!("{options:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("Header(<redacted>)"), "{shown}");
    }
}
