//! The lean upgrade: the same request and TCP connection as the full
//! client's ([`crate::handshake::request`]: subprotocol, token, `Origin`,
//! a bound source address), written with tungstenite's
//! `generate_request` and answered through tungstenite's response
//! parser, but read by hand so the raw stream and whatever followed the
//! `101` stay with the [`Conn`]. With [`Auth::Frame`] the `connect`
//! round trip follows.

use std::io;

use tokenim_protocol::{ClientFrame, Codec, Command, ErrorCode, Outcome, Push, Reply, ServerFrame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::handshake::client::{Response, generate_request};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::handshake::machine::TryParse;
use tokio_tungstenite::tungstenite::http::header::{SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_PROTOCOL};

use super::{Conn, ConnError, Stream};
use crate::handshake::{build_request, open_tcp, target};
use crate::{Auth, ConnectOptions};
use tokio_util::either::Either;

/// Most bytes of upgrade response read before giving up on it.
const MAX_RESPONSE: usize = 16 * 1024;

/// A failed lean upgrade, classified by where it failed.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    /// A system call failed: socket, bind, connect, or the upgrade's
    /// reads and writes.
    #[error("{stage}: {source}")]
    Io {
        /// `socket`, `bind`, `connect` or `upgrade`.
        stage: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The server answered the upgrade with this HTTP status.
    #[error("upgrade refused with HTTP {status}")]
    Http {
        /// The status code (the gateway: 429 per-IP limit, 503 node limit
        /// or draining, 401 token refused, 403 origin refused).
        status: u16,
    },
    /// The request could not be built (a bad URL or header) or the
    /// response was not a valid WebSocket handshake.
    #[error("websocket handshake: {0}")]
    Handshake(String),
    /// The gateway refused the `connect` command with this code.
    #[error("connect refused with error {}", .0.code())]
    Refused(ErrorCode),
    /// The connection closed before the upgrade or authentication
    /// finished.
    #[error("closed during connect")]
    Closed,
}

impl From<ConnError> for UpgradeError {
    fn from(e: ConnError) -> UpgradeError {
        match e {
            ConnError::Io(source) => UpgradeError::Io {
                stage: "upgrade",
                source,
            },
            _ => UpgradeError::Closed,
        }
    }
}

/// Opens one connection and upgrades it as `options` say, with a
/// `read_buffer`-byte receive buffer; for [`Auth::Frame`] also
/// authenticates (command id 1). The caller bounds the time.
pub async fn upgrade(options: &ConnectOptions, read_buffer: usize) -> Result<Conn, UpgradeError> {
    let handshake = |e: &dyn std::fmt::Display| UpgradeError::Handshake(e.to_string());
    let request = build_request(options).map_err(|e| handshake(&e))?;
    let target = target(request.uri()).map_err(|e| handshake(&e))?;
    let tcp = open_tcp(options, &target.host, target.port)
        .await
        .map_err(|e| UpgradeError::Io {
            stage: e.stage,
            source: e.source,
        })?;
    let mut tcp: Stream = if target.tls {
        let tls = crate::handshake::tls::connect(tcp, &target.host, options)
            .await
            .map_err(|source| UpgradeError::Io {
                stage: "tls",
                source,
            })?;
        Either::Right(Box::new(tls))
    } else {
        Either::Left(tcp)
    };
    let (bytes, key) = generate_request(request).map_err(|e| handshake(&e))?;
    let io = |source| UpgradeError::Io {
        stage: "upgrade",
        source,
    };
    tcp.write_all(&bytes).await.map_err(io)?;
    tcp.flush().await.map_err(io)?;
    let mut response = Vec::with_capacity(1024);
    let header_len = loop {
        let mut chunk = [0u8; 1024];
        let n = tcp.read(&mut chunk).await.map_err(io)?;
        if n == 0 {
            return Err(UpgradeError::Closed);
        }
        response.extend_from_slice(&chunk[..n]);
        if let Some(len) = check_response(&response, &key, options)? {
            break len;
        }
        if response.len() > MAX_RESPONSE {
            return Err(UpgradeError::Handshake("response headers too long".into()));
        }
    };
    let mut conn = Conn::new(tcp, options.codec, read_buffer, &response[header_len..]);
    if let Auth::Frame(token) = &options.auth {
        let connect = Command::Connect {
            token: token.clone(),
        };
        conn.send(&encode(options.codec, 1, connect))
            .await
            .map_err(io)?;
        if let Outcome::Error(body) = next_reply(&mut conn, 1).await?.outcome {
            return Err(UpgradeError::Refused(body.code));
        }
    }
    Ok(conn)
}

/// `Some(header length)` once a `101` response's head is complete and
/// its accept key (and, when one was asked for, subprotocol) are right.
fn check_response(
    bytes: &[u8],
    key: &str,
    options: &ConnectOptions,
) -> Result<Option<usize>, UpgradeError> {
    let (len, response) = match Response::try_parse(bytes) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => return Ok(None),
        Err(e) => return Err(UpgradeError::Handshake(e.to_string())),
    };
    let status = response.status().as_u16();
    if status != 101 {
        return Err(UpgradeError::Http { status });
    }
    let headers = response.headers();
    let header = |name| headers.get(name).map(|v| v.as_bytes());
    if header(SEC_WEBSOCKET_ACCEPT) != Some(derive_accept_key(key.as_bytes()).as_bytes()) {
        return Err(UpgradeError::Handshake("wrong Sec-WebSocket-Accept".into()));
    }
    let protocol = options.codec.subprotocol();
    if options.subprotocol && header(SEC_WEBSOCKET_PROTOCOL) != Some(protocol.as_bytes()) {
        return Err(UpgradeError::Handshake(format!(
            "the gateway did not accept subprotocol {protocol}"
        )));
    }
    Ok(Some(len))
}

/// `command` with `id`, encoded with `codec`: the payload of one message.
pub fn encode(codec: Codec, id: u64, command: Command) -> bytes::Bytes {
    codec
        .encode(&ClientFrame { id, command })
        .expect("commands always encode")
}

/// Reads messages until the reply to command `id`, skipping pushes (join
/// events arrive while a channel fills up); a `disconnect` push ends it
/// with [`UpgradeError::Closed`]. Messages after the reply stay buffered
/// in the connection.
pub async fn next_reply(conn: &mut Conn, id: u64) -> Result<Reply, UpgradeError> {
    let codec = conn.codec();
    loop {
        match codec.decode_server(conn.recv().await?) {
            Ok(ServerFrame::Reply(reply)) if reply.id == id => return Ok(reply),
            Ok(ServerFrame::Push(Push::Disconnect(_))) => return Err(UpgradeError::Closed),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_responses_are_checked() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let json = ConnectOptions::new("ws://h/ws", Codec::Json, Auth::None);
        let ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: tokenim.v1.json\r\n\r\n\x01\x02hi";
        let bytes = ok.as_bytes();
        let check = |bytes: &[u8], key: &str, options: &ConnectOptions| {
            check_response(bytes, key, options).map_err(|e| e.to_string())
        };
        assert_eq!(check(bytes, key, &json), Ok(Some(bytes.len() - 4)));
        assert_eq!(check(&bytes[..40], key, &json), Ok(None));
        let msgpack = ConnectOptions::new("ws://h/ws", Codec::MsgPack, Auth::None);
        assert!(check(bytes, key, &msgpack).is_err());
        assert!(check(bytes, key, &msgpack.subprotocol(false)).is_ok());
        assert!(check(bytes, "b3RoZXIga2V5IGhlcmUhIQ==", &json).is_err());
        let refused = b"HTTP/1.1 429 Too Many Requests\r\ncontent-length: 0\r\n\r\n";
        assert!(matches!(
            check_response(refused, key, &json),
            Err(UpgradeError::Http { status: 429 })
        ));
    }

    #[tokio::test]
    async fn wss_dials_tcp_first() {
        let options = ConnectOptions::new("wss://127.0.0.1:9/ws", Codec::Json, Auth::None);
        let e = upgrade(&options, 512).await.unwrap_err();
        assert!(
            matches!(
                e,
                UpgradeError::Io {
                    stage: "connect",
                    ..
                }
            ),
            "{e}"
        );
    }
}
