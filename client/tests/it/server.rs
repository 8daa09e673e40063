//! A tiny tokenim-speaking server for the client's tests: a real
//! WebSocket server on 127.0.0.1:0 that follows a fixed script.
//!
//! * Upgrade: picks the codec from the requested subprotocol; a header or
//!   query token other than `good` gets a 401 with the gateway's JSON error
//!   body.
//! * `connect` with `good` answers as the gateway does; any other token gets
//!   an `invalid_token` error reply and a 4500 close.
//! * `subscribe`: `kick` sends a `disconnect` push and a 4001 close instead
//!   of replying; `ping.me` pings first and replies only after the pong.
//! * `publish`: `forbidden` is refused with `permission_denied`; `flood`
//!   sends 20 pushes before the reply; anything else is answered and echoed
//!   as a message push.
//! * A frame that does not decode gets a `bad_request`/`unknown_command`
//!   error reply with whatever id could be read (or 0).

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokenim_client::protocol::{
    ChannelName, ClientFrame, Codec, Command, Data, Disconnect, DisconnectCode, ErrorCode,
    Publication, Push, Reply, ReplyBody, SessionId, UserId,
};
use tokenim_client::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokenim_client::tungstenite::http::{HeaderValue, StatusCode};
use tokenim_client::tungstenite::protocol::CloseFrame;
use tokenim_client::tungstenite::protocol::frame::coding::CloseCode;
use tokenim_client::tungstenite::{Bytes, Message};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, mpsc};
use tokio_tungstenite::WebSocketStream;

/// What the server observed, in order, for the test to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Note {
    /// An upgrade request arrived.
    Upgrade {
        subprotocol: Option<String>,
        authorization: Option<String>,
        query: Option<String>,
        origin: Option<String>,
    },
    /// The client sent a close frame with this code.
    ClientClosed(Option<u16>),
}

/// The running server.
pub(crate) struct TestServer {
    /// `ws://127.0.0.1:PORT/ws`.
    pub(crate) url: String,
    notes: Mutex<mpsc::UnboundedReceiver<Note>>,
}

impl TestServer {
    pub(crate) async fn spawn() -> Arc<TestServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/ws", listener.local_addr().unwrap());
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(serve(tcp, tx.clone()));
            }
        });
        Arc::new(TestServer {
            url,
            notes: Mutex::new(rx),
        })
    }

    /// The next thing the server observed.
    pub(crate) async fn note(&self) -> Note {
        self.notes.lock().await.recv().await.unwrap()
    }
}

fn alice() -> UserId {
    UserId::new("alice").unwrap()
}

async fn serve(tcp: TcpStream, notes: mpsc::UnboundedSender<Note>) {
    let mut codec = None;
    let mut authenticated = false;
    // tungstenite's `Callback` fixes the error type.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, mut resp: Response| {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let subprotocol = header("sec-websocket-protocol");
        let authorization = header("authorization");
        let query = req.uri().query().map(str::to_owned);
        notes
            .send(Note::Upgrade {
                subprotocol: subprotocol.clone(),
                authorization: authorization.clone(),
                query: query.clone(),
                origin: header("origin"),
            })
            .unwrap();
        let token = authorization
            .and_then(|a| a.strip_prefix("Bearer ").map(str::to_owned))
            .or_else(|| query.and_then(|q| q.strip_prefix("token=").map(str::to_owned)));
        if let Some(token) = token {
            if token != "good" {
                return Err(refusal());
            }
            authenticated = true;
        }
        let chosen = subprotocol.as_deref().and_then(|list| {
            list.split(',')
                .find_map(|p| Codec::from_subprotocol(p.trim()))
        });
        if let Some(chosen) = chosen {
            let value = HeaderValue::from_static(chosen.subprotocol());
            resp.headers_mut().insert("sec-websocket-protocol", value);
        }
        codec = Some(chosen.unwrap_or(Codec::Json));
        Ok(resp)
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
        return;
    };
    let codec = codec.unwrap();
    Session {
        ws,
        codec,
        authenticated,
        seq: 0,
        after_pong: None,
        notes,
    }
    .run()
    .await;
}

/// The gateway's answer to a refused header or query token.
fn refusal() -> ErrorResponse {
    let body = r#"{"code":1102,"name":"invalid_token","message":"token refused"}"#;
    let mut resp = ErrorResponse::new(Some(body.to_owned()));
    *resp.status_mut() = StatusCode::UNAUTHORIZED;
    let headers = resp.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("content-length", HeaderValue::from(body.len()));
    resp
}

struct Session {
    ws: WebSocketStream<TcpStream>,
    codec: Codec,
    authenticated: bool,
    seq: u64,
    /// A reply held back until the client answers our ping.
    after_pong: Option<Reply>,
    notes: mpsc::UnboundedSender<Note>,
}

impl Session {
    async fn run(mut self) {
        while let Some(Ok(message)) = self.ws.next().await {
            let bytes: Bytes = match message {
                Message::Text(text) => text.into(),
                Message::Binary(bytes) => bytes,
                Message::Pong(_) => {
                    if let Some(reply) = self.after_pong.take() {
                        self.send(&reply).await;
                    }
                    continue;
                }
                Message::Close(frame) => {
                    let code = frame.map(|f| u16::from(f.code));
                    let _ = self.notes.send(Note::ClientClosed(code));
                    continue;
                }
                _ => continue,
            };
            match self.codec.decode_client(&bytes) {
                Ok(frame) => self.handle(frame).await,
                Err(error) => {
                    let id = self.codec.peek_id(&bytes).unwrap_or(0);
                    let reply = Reply::error(id, error.code(), error.to_string());
                    self.send(&reply).await;
                }
            }
        }
    }

    async fn handle(&mut self, ClientFrame { id, command }: ClientFrame) {
        let body = match command {
            Command::Connect { token } if token == "good" => {
                self.authenticated = true;
                ReplyBody::Connect {
                    user: alice(),
                    session: SessionId(7),
                    expires_at: None,
                    ping_interval_ms: 25_000,
                }
            }
            Command::Connect { .. } => {
                let reply = Reply::error(id, ErrorCode::InvalidToken, "token refused");
                self.send(&reply).await;
                return self.kick(DisconnectCode::InvalidToken).await;
            }
            _ if !self.authenticated => {
                let reply = Reply::error(id, ErrorCode::NotConnected, "connect first");
                return self.send(&reply).await;
            }
            Command::Subscribe { channel, .. } => match channel.as_str() {
                "kick" => return self.kick(DisconnectCode::SlowConsumer).await,
                "ping.me" => {
                    self.after_pong = Some(Reply::ok(id, ReplyBody::subscribed(channel, 0, "e")));
                    let _ = self.ws.send(Message::Ping(Bytes::from_static(b"hb"))).await;
                    return;
                }
                _ => ReplyBody::subscribed(channel, self.seq, "e"),
            },
            Command::Publish { channel, .. } if channel.as_str() == "forbidden" => {
                let reply = Reply::error(id, ErrorCode::PermissionDenied, "not allowed here");
                return self.send(&reply).await;
            }
            Command::Publish { channel, data, .. } if channel.as_str() == "flood" => {
                for _ in 0..20 {
                    self.seq += 1;
                    let push = self.message(&channel, data.clone());
                    self.push(&push).await;
                }
                ReplyBody::published(channel, self.seq)
            }
            Command::Publish { channel, data, .. } => {
                self.seq += 1;
                let seq = self.seq;
                let reply = Reply::ok(id, ReplyBody::published(channel.clone(), seq));
                self.send(&reply).await;
                let push = self.message(&channel, data);
                return self.push(&push).await;
            }
            Command::Unsubscribe { channel } => ReplyBody::Unsubscribe { channel },
            Command::Send { to, .. } => ReplyBody::Send { to, seq: 1 },
            Command::Refresh { .. } => ReplyBody::Refresh {
                expires_at: Some(123),
            },
            Command::Ping {} => ReplyBody::Ping {},
            Command::Presence { channel } => ReplyBody::Presence {
                channel,
                users: Vec::new(),
            },
            Command::History { channel, .. } => ReplyBody::History {
                channel,
                seq: self.seq,
                epoch: "e".into(),
                publications: Vec::new(),
                more: false,
            },
            Command::Ack { seq } => ReplyBody::Ack { seq },
        };
        self.send(&Reply::ok(id, body)).await;
    }

    fn message(&self, channel: &ChannelName, data: Data) -> Push {
        Push::Message(Publication {
            channel: channel.clone(),
            seq: self.seq,
            from: Some(alice()),
            data,
            time: 1_700_000_000_000,
        })
    }

    /// The gateway's way out: a `disconnect` push, then the close frame.
    async fn kick(&mut self, code: DisconnectCode) {
        self.push(&Push::Disconnect(Disconnect::from(code))).await;
        let frame = CloseFrame {
            code: CloseCode::from(code.code()),
            reason: code.reason().into(),
        };
        let _ = self.ws.send(Message::Close(Some(frame))).await;
    }

    async fn send(&mut self, reply: &Reply) {
        let bytes = self.codec.encode(reply).unwrap();
        self.send_bytes(bytes).await;
    }

    async fn push(&mut self, push: &Push) {
        let bytes = self.codec.encode(push).unwrap();
        self.send_bytes(bytes).await;
    }

    async fn send_bytes(&mut self, bytes: Bytes) {
        let message = if self.codec.is_text() {
            Message::Text(bytes.try_into().unwrap())
        } else {
            Message::Binary(bytes)
        };
        let _ = self.ws.send(message).await;
    }
}
