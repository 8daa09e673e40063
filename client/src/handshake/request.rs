//! What both upgrades share, the full client's ([`super::upgrade`]) and
//! the lean one's ([`crate::lean::upgrade`]): the upgrade request built
//! from [`ConnectOptions`] (subprotocol, token, `Origin` and other extra
//! headers) and the TCP connection, optionally from a bound source
//! address.

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::UrlError;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_tungstenite::tungstenite::http::header::{
    AUTHORIZATION, HeaderName, HeaderValue, SEC_WEBSOCKET_PROTOCOL,
};

use crate::{Auth, ConnectOptions};

/// The upgrade request: the codec's subprotocol (unless
/// [`ConnectOptions::subprotocol`] is off), the token (header or query)
/// and any extra headers.
pub(crate) fn build_request(options: &ConnectOptions) -> Result<Request, tungstenite::Error> {
    let url = match &options.auth {
        Auth::Query(token) => with_query_token(&options.url, token),
        _ => options.url.clone(),
    };
    let mut request = url.into_client_request()?;
    let headers = request.headers_mut();
    if options.subprotocol {
        headers.insert(
            SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(options.codec.subprotocol()),
        );
    }
    if let Auth::Header(token) = &options.auth {
        let value = HeaderValue::try_from(format!("Bearer {token}"))?;
        headers.insert(AUTHORIZATION, value);
    }
    for (name, value) in &options.extra_headers {
        headers.append(
            HeaderName::try_from(name.as_str())?,
            HeaderValue::try_from(value.as_str())?,
        );
    }
    Ok(request)
}

/// Where to connect: host, port, and whether to speak TLS first.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) host: String,
    pub(crate) port: u16,
    /// `wss://`.
    pub(crate) tls: bool,
}

/// The target of a `ws://` (port 80 by default) or `wss://` (443) URL.
pub(crate) fn target(uri: &Uri) -> Result<Target, tungstenite::Error> {
    let (tls, default_port) = match uri.scheme_str() {
        Some("ws") => (false, 80),
        Some("wss") => (true, 443),
        _ => return Err(UrlError::UnsupportedUrlScheme.into()),
    };
    let host = uri.host().ok_or(UrlError::NoHostName)?;
    // `Uri::host` keeps the brackets of an IPv6 literal.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok(Target {
        host: host.to_owned(),
        port: uri.port_u16().unwrap_or(default_port),
        tls,
    })
}

/// `url` with `token=<percent-encoded token>` added to its query.
pub(crate) fn with_query_token(url: &str, token: &str) -> String {
    let (base, fragment) = url
        .split_once('#')
        .map_or((url, None), |(b, f)| (b, Some(f)));
    let sep = if base.contains('?') { '&' } else { '?' };
    let mut out = format!("{base}{sep}token=");
    for b in token.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

/// A failed TCP connect, with the step that failed.
#[derive(Debug)]
pub(crate) struct TcpError {
    /// `socket`, `bind` or `connect`.
    pub(crate) stage: &'static str,
    /// The OS error.
    pub(crate) source: io::Error,
}

impl From<TcpError> for tungstenite::Error {
    fn from(e: TcpError) -> Self {
        tungstenite::Error::Io(e.source)
    }
}

/// Opens the TCP connection: to [`ConnectOptions::addr`] when set, else
/// to each address `host` resolves to in turn (`host` and `port` come
/// from [`target`]);
/// bound to [`ConnectOptions::source`] when set; with `TCP_NODELAY`
/// (frames are small, and latency is what tests and the load generator
/// measure).
pub(crate) async fn open_tcp(
    options: &ConnectOptions,
    host: &str,
    port: u16,
) -> Result<TcpStream, TcpError> {
    let resolved;
    let addrs: &[SocketAddr] = match &options.addr {
        Some(addr) => std::slice::from_ref(addr),
        None => {
            resolved = tokio::net::lookup_host((host, port))
                .await
                .map_err(|source| TcpError {
                    stage: "connect",
                    source,
                })?
                .collect::<Vec<_>>();
            &resolved
        }
    };
    let mut last = None;
    for &addr in addrs {
        match connect_one(addr, options).await {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| TcpError {
        stage: "connect",
        source: io::Error::new(io::ErrorKind::NotFound, "the host resolves to nothing"),
    }))
}

async fn connect_one(addr: SocketAddr, options: &ConnectOptions) -> Result<TcpStream, TcpError> {
    let at = |stage| move |source| TcpError { stage, source };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(at("socket"))?;
    if let Some(ip) = options.source {
        socket.bind(SocketAddr::new(ip, 0)).map_err(at("bind"))?;
    }
    let tcp = socket.connect(addr).await.map_err(at("connect"))?;
    tcp.set_nodelay(true).map_err(at("connect"))?;
    Ok(tcp)
}

#[cfg(test)]
mod tests {
    use tokenim_protocol::Codec;

    use super::*;

    #[test]
    fn query_token_is_appended_and_encoded() {
        assert_eq!(
            with_query_token("ws://h:1/ws", "a.b_c-d~"),
            "ws://h:1/ws?token=a.b_c-d~"
        );
        assert_eq!(
            with_query_token("ws://h/ws?x=1#f", "a+b/="),
            "ws://h/ws?x=1&token=a%2Bb%2F%3D#f"
        );
    }

    #[test]
    fn request_carries_subprotocol_token_and_extra_headers() {
        let options = ConnectOptions::new(
            "ws://127.0.0.1:9/ws",
            Codec::MsgPack,
            Auth::Header("jwt".into()),
        )
        .header("Origin", "https://app.example");
        let request = build_request(&options).unwrap();
        let h = request.headers();
        assert_eq!(h[SEC_WEBSOCKET_PROTOCOL], "tokenim.v1.msgpack");
        assert_eq!(h[AUTHORIZATION], "Bearer jwt");
        assert_eq!(h["origin"], "https://app.example");
    }

    #[test]
    fn ws_and_wss_urls_are_dialled() {
        let dial = |url: &str| target(&url.parse().unwrap());
        let at = |host: &str, port, tls| Target {
            host: host.to_owned(),
            port,
            tls,
        };
        assert_eq!(dial("ws://[::1]:7/ws").unwrap(), at("::1", 7, false));
        assert_eq!(
            dial("ws://localhost/ws").unwrap(),
            at("localhost", 80, false)
        );
        assert_eq!(
            dial("wss://localhost/ws").unwrap(),
            at("localhost", 443, true)
        );
        assert_eq!(dial("wss://h:8443/ws").unwrap(), at("h", 8443, true));
        assert!(dial("http://localhost/ws").is_err());
    }
}
