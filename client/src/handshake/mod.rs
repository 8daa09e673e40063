//! The full client's HTTP upgrade: the request and the TCP connection
//! from [`request`] (shared with the lean upgrade), TLS for `wss://`
//! ([`tls`]), then tungstenite's client handshake. A refused upgrade becomes [`Error::Http`] with the
//! whole response body, even when the body arrives after the headers.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::handshake::client::Response;
use tokio_tungstenite::tungstenite::http;
use tokio_tungstenite::tungstenite::http::header::CONTENT_LENGTH;
use tokio_tungstenite::{WebSocketStream, client_async_with_config, tungstenite};
use tokio_util::either::Either;

use crate::{ConnectOptions, Error};

pub(crate) mod request;
pub(crate) mod tls;

pub(crate) use request::{build_request, open_tcp, target};

/// Largest refused-upgrade body kept in [`Error::Http`].
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Opens the connection and upgrades it. The caller bounds the time.
pub(crate) async fn upgrade(options: &ConnectOptions) -> Result<WebSocketStream<Socket>, Error> {
    let request = build_request(options)?;
    let target = target(request.uri())?;
    let tcp = open_tcp(options, &target.host, target.port)
        .await
        .map_err(tungstenite::Error::from)?;
    let stream = if target.tls {
        let tls = tls::connect(tcp, &target.host, options).await;
        Either::Right(Box::new(tls.map_err(tungstenite::Error::Io)?))
    } else {
        Either::Left(tcp)
    };
    let (socket, given_back) = Socket::new(stream);
    match client_async_with_config(request, socket, Some(options.websocket)).await {
        Ok((mut ws, _response)) => {
            ws.get_mut().give_back = None;
            Ok(ws)
        }
        Err(tungstenite::Error::Http(response)) => Err(refused(*response, given_back).await),
        Err(e) => Err(e.into()),
    }
}

/// Turns a refused upgrade into [`Error::Http`]. tungstenite keeps only the
/// bytes that arrived with the headers; when `Content-Length` promises more,
/// the rest is read from the socket the failed handshake gave back.
async fn refused(response: Response, given_back: oneshot::Receiver<Stream>) -> Error {
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

/// A connection's byte stream: plaintext TCP, or TLS over TCP (boxed:
/// rustls's state is large).
pub type Stream = Either<TcpStream, Box<TlsStream<TcpStream>>>;

/// The stream under a connection. While the upgrade runs it can give
/// the stream back when dropped, so that the body of a refused upgrade can
/// still be read; after a successful upgrade it is a plain pass-through.
#[derive(Debug)]
pub(crate) struct Socket {
    /// Always `Some` until dropped.
    tcp: Option<Stream>,
    give_back: Option<oneshot::Sender<Stream>>,
}

impl Socket {
    fn new(tcp: Stream) -> (Self, oneshot::Receiver<Stream>) {
        let (tx, rx) = oneshot::channel();
        let socket = Self {
            tcp: Some(tcp),
            give_back: Some(tx),
        };
        (socket, rx)
    }

    fn tcp(self: Pin<&mut Self>) -> Pin<&mut Stream> {
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
