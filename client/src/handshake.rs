//! The HTTP upgrade: builds the request (subprotocol, token, extra
//! headers), opens the TCP connection and runs tungstenite's client
//! handshake. A refused upgrade becomes [`Error::Http`] with the whole
//! response body, even when the body arrives after the headers.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::UrlError;
use tokio_tungstenite::tungstenite::handshake::client::{Request, Response};
use tokio_tungstenite::tungstenite::http::header::{
    AUTHORIZATION, CONTENT_LENGTH, HeaderName, HeaderValue, SEC_WEBSOCKET_PROTOCOL,
};
use tokio_tungstenite::tungstenite::http::{self, Uri};
use tokio_tungstenite::{WebSocketStream, client_async_with_config, tungstenite};

use crate::{Auth, ConnectOptions, Error};

/// Largest refused-upgrade body kept in [`Error::Http`].
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Opens the connection and upgrades it. The caller bounds the time.
pub(crate) async fn upgrade(options: &ConnectOptions) -> Result<WebSocketStream<Socket>, Error> {
    let request = build_request(options)?;
    let (host, port) = target(request.uri())?;
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(tungstenite::Error::Io)?;
    // Frames are small and latency is what tests and the load generator
    // measure.
    tcp.set_nodelay(true).map_err(tungstenite::Error::Io)?;
    let (socket, given_back) = Socket::new(tcp);
    match client_async_with_config(request, socket, Some(options.websocket)).await {
        Ok((mut ws, _response)) => {
            ws.get_mut().give_back = None;
            Ok(ws)
        }
        Err(tungstenite::Error::Http(response)) => Err(refused(*response, given_back).await),
        Err(e) => Err(e.into()),
    }
}

/// The upgrade request: the codec's subprotocol, the token (header or
/// query) and any extra headers.
fn build_request(options: &ConnectOptions) -> Result<Request, tungstenite::Error> {
    let url = match &options.auth {
        Auth::Query(token) => with_query_token(&options.url, token),
        _ => options.url.clone(),
    };
    let mut request = url.into_client_request()?;
    let headers = request.headers_mut();
    headers.insert(
        SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(options.codec.subprotocol()),
    );
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

/// Host and port to dial; only `ws://` (no TLS in this client).
fn target(uri: &Uri) -> Result<(String, u16), tungstenite::Error> {
    match uri.scheme_str() {
        Some("ws") => {}
        Some("wss") => return Err(UrlError::TlsFeatureNotEnabled.into()),
        _ => return Err(UrlError::UnsupportedUrlScheme.into()),
    }
    let host = uri.host().ok_or(UrlError::NoHostName)?;
    // `Uri::host` keeps the brackets of an IPv6 literal.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((host.to_owned(), uri.port_u16().unwrap_or(80)))
}

/// `url` with `token=<percent-encoded token>` added to its query.
fn with_query_token(url: &str, token: &str) -> String {
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

/// Turns a refused upgrade into [`Error::Http`]. tungstenite keeps only the
/// bytes that arrived with the headers; when `Content-Length` promises more,
/// the rest is read from the socket the failed handshake gave back.
async fn refused(response: Response, given_back: oneshot::Receiver<TcpStream>) -> Error {
    let status = response.status().as_u16();
    let expected = content_length(response.headers()).map(|n| n.min(MAX_ERROR_BODY));
    let mut body = response.into_body().unwrap_or_default();
    if let Some(expected) = expected {
        if body.len() < expected {
            if let Ok(mut tcp) = given_back.await {
                let mut rest = vec![0; expected - body.len()];
                let mut filled = 0;
                while filled < rest.len() {
                    match tcp.read(&mut rest[filled..]).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => filled += n,
                    }
                }
                body.extend_from_slice(&rest[..filled]);
            }
        }
        body.truncate(expected);
    }
    body.truncate(MAX_ERROR_BODY);
    Error::Http {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn content_length(headers: &http::HeaderMap) -> Option<usize> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The TCP stream under a connection. While the upgrade runs it can give
/// the stream back when dropped, so that the body of a refused upgrade can
/// still be read; after a successful upgrade it is a plain pass-through.
#[derive(Debug)]
pub(crate) struct Socket {
    /// Always `Some` until dropped.
    tcp: Option<TcpStream>,
    give_back: Option<oneshot::Sender<TcpStream>>,
}

impl Socket {
    fn new(tcp: TcpStream) -> (Self, oneshot::Receiver<TcpStream>) {
        let (tx, rx) = oneshot::channel();
        let socket = Self {
            tcp: Some(tcp),
            give_back: Some(tx),
        };
        (socket, rx)
    }

    fn tcp(self: Pin<&mut Self>) -> Pin<&mut TcpStream> {
        Pin::new(
            self.get_mut()
                .tcp
                .as_mut()
                .expect("the stream is only taken on drop"),
        )
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        if let (Some(tcp), Some(tx)) = (self.tcp.take(), self.give_back.take()) {
            let _ = tx.send(tcp);
        }
    }
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.tcp().poll_read(cx, buf)
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.tcp().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.tcp().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.as_ref().is_some_and(|t| t.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tcp().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tcp().poll_shutdown(cx)
    }
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
    fn only_plain_ws_urls_are_dialled() {
        let dial = |url: &str| target(&url.parse().unwrap());
        assert_eq!(dial("ws://[::1]:7/ws").unwrap(), ("::1".to_owned(), 7));
        assert_eq!(
            dial("ws://localhost/ws").unwrap(),
            ("localhost".to_owned(), 80)
        );
        assert!(dial("wss://localhost/ws").is_err());
        assert!(dial("http://localhost/ws").is_err());
    }
}
