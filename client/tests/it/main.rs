//! The client against a real WebSocket server (see `server.rs`), over
//! real sockets on 127.0.0.1, in both codecs.

mod server;

use std::time::Duration;

use futures_util::future::join_all;
use server::{Note, TestServer};
use tokenim_client::protocol::{
    ChannelName, Codec, Command, Data, DisconnectCode, ErrorCode, Push, ReplyBody, SessionId,
    UserId, reply::Outcome,
};
use tokenim_client::tungstenite::Message;
use tokenim_client::{Auth, Client, CloseInfo, ConnectOptions, Error, Event};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::timeout;

const PATIENCE: Duration = Duration::from_secs(5);

fn options(server: &TestServer, codec: Codec, auth: Auth) -> ConnectOptions {
    ConnectOptions::new(server.url.clone(), codec, auth).request_timeout(PATIENCE)
}

async fn connect(server: &TestServer, codec: Codec) -> Client {
    let client = Client::connect(options(server, codec, Auth::Frame("good".into())))
        .await
        .unwrap();
    // Skip what earlier connections left behind.
    while !matches!(server.note().await, Note::Upgrade { .. }) {}
    client
}

fn channel(name: &str) -> ChannelName {
    ChannelName::new(name).unwrap()
}

fn data() -> Data {
    Data::from_json(r#"{"text":"hi","n":[1,2.5,null]}"#).unwrap()
}

#[tokio::test]
async fn frame_auth_then_every_command_in_both_codecs() {
    let server = TestServer::spawn().await;
    for codec in Codec::ALL {
        let mut client = Client::connect(options(&server, codec, Auth::Frame("good".into())))
            .await
            .unwrap();
        let Note::Upgrade {
            subprotocol,
            authorization,
            query,
            ..
        } = server.note().await
        else {
            panic!("expected an upgrade");
        };
        assert_eq!(subprotocol.as_deref(), Some(codec.subprotocol()));
        assert_eq!((authorization, query), (None, None));
        let session = client.session().unwrap();
        assert_eq!(session.user, UserId::new("alice").unwrap());
        assert_eq!(session.session, SessionId(7));
        assert_eq!(session.ping_interval, Duration::from_secs(25));

        let lobby = channel("rooms.lobby");
        assert_eq!(client.subscribe(&lobby).await.unwrap(), 0);
        assert_eq!(client.publish(&lobby, data()).await.unwrap(), 1);
        let Some(Push::Message(message)) = client.next_push().await else {
            panic!("expected a message push");
        };
        assert_eq!((message.channel, message.seq), (lobby.clone(), 1));
        assert_eq!(message.data, data());
        assert_eq!(message.from, Some(UserId::new("alice").unwrap()));

        client.ping().await.unwrap();
        let bob = UserId::new("bob").unwrap();
        assert_eq!(client.send(&bob, data()).await.unwrap(), 1);
        assert_eq!(client.refresh("good").await.unwrap(), Some(123));
        client.unsubscribe(&lobby).await.unwrap();
        client.close().await.unwrap();
        assert_eq!(server.note().await, Note::ClientClosed(Some(1000)));
    }
}

#[tokio::test]
async fn concurrent_requests_get_their_own_replies() {
    let server = TestServer::spawn().await;
    let mut client = connect(&server, Codec::MsgPack).await;
    let lobby = channel("rooms.lobby");
    let seqs = join_all((0..10).map(|_| client.publish(&lobby, data()))).await;
    let mut seqs: Vec<u64> = seqs.into_iter().map(Result::unwrap).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
    for seq in 1..=10 {
        let Some(Push::Message(message)) = client.next_push().await else {
            panic!("expected a message push");
        };
        assert_eq!(message.seq, seq);
    }
}

#[tokio::test]
async fn error_reply_becomes_server_error() {
    let server = TestServer::spawn().await;
    for codec in Codec::ALL {
        let client = connect(&server, codec).await;
        let Err(Error::Server(body)) = client.publish(&channel("forbidden"), data()).await else {
            panic!("expected a server error");
        };
        assert_eq!(body.code, ErrorCode::PermissionDenied);
        assert_eq!(
            (body.code.code(), body.name.as_str()),
            (1104, "permission_denied")
        );
        // The connection is still usable.
        client.ping().await.unwrap();
    }
}

#[tokio::test]
async fn server_close_code_is_reported() {
    let server = TestServer::spawn().await;
    for codec in Codec::ALL {
        let mut client = connect(&server, codec).await;
        let expected = CloseInfo {
            code: 4001,
            reason: "slow consumer".into(),
        };
        // The server answers this subscribe by closing the connection.
        match client.subscribe(&channel("kick")).await {
            Err(Error::Closed(info)) => assert_eq!(info.as_ref(), Some(&expected)),
            other => panic!("expected Closed, got {other:?}"),
        }
        let Some(Push::Disconnect(disconnect)) = client.next_push().await else {
            panic!("expected the disconnect push");
        };
        assert_eq!((disconnect.code, disconnect.reconnect), (4001, true));
        let info = timeout(PATIENCE, client.closed()).await.unwrap().unwrap();
        assert_eq!(info, expected);
        assert_eq!(info.disconnect_code(), Some(DisconnectCode::SlowConsumer));
        assert_eq!(client.close_info(), Some(expected.clone()));
        assert!(matches!(client.ping().await, Err(Error::Closed(Some(_)))));
        // Closing what the server closed is not an error.
        client.close().await.unwrap();
    }
}

#[tokio::test]
async fn header_and_query_tokens_authenticate_during_the_upgrade() {
    let server = TestServer::spawn().await;
    let header = options(&server, Codec::Json, Auth::Header("good".into()))
        .header("Origin", "https://app.example");
    let client = Client::connect(header).await.unwrap();
    let Note::Upgrade {
        authorization,
        origin,
        ..
    } = server.note().await
    else {
        panic!("expected an upgrade");
    };
    assert_eq!(authorization.as_deref(), Some("Bearer good"));
    assert_eq!(origin.as_deref(), Some("https://app.example"));
    assert!(client.session().is_none());
    client.ping().await.unwrap();

    let query = options(&server, Codec::MsgPack, Auth::Query("good".into()));
    let client = Client::connect(query).await.unwrap();
    let Note::Upgrade { query, .. } = server.note().await else {
        panic!("expected an upgrade");
    };
    assert_eq!(query.as_deref(), Some("token=good"));
    client.ping().await.unwrap();
}

#[tokio::test]
async fn refused_upgrade_token_is_http_401_with_body() {
    let server = TestServer::spawn().await;
    for auth in [Auth::Header("bad".into()), Auth::Query("bad".into())] {
        match Client::connect(options(&server, Codec::Json, auth)).await {
            Err(Error::Http { status, body }) => {
                assert_eq!(status, 401);
                assert_eq!(
                    body,
                    r#"{"code":1102,"name":"invalid_token","message":"token refused"}"#
                );
            }
            other => panic!("expected Http, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn refused_upgrade_body_arriving_after_the_headers_is_read() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let body = r#"{"code":1102,"name":"invalid_token","message":"expired"}"#;
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0; 1024];
        while !request.ends_with(b"\r\n\r\n") {
            let n = tcp.read(&mut buf).await.unwrap();
            request.extend_from_slice(&buf[..n]);
        }
        let head = format!(
            "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        tcp.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        tcp.write_all(body.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
    });
    let options = ConnectOptions::new(url, Codec::Json, Auth::Header("old".into()));
    match Client::connect(options).await {
        Err(Error::Http {
            status: 401,
            body: got,
        }) => assert_eq!(got, body),
        other => panic!("expected Http, got {other:?}"),
    }
}

#[tokio::test]
async fn refused_connect_frame_is_server_error_then_close() {
    let server = TestServer::spawn().await;
    match Client::connect(options(&server, Codec::MsgPack, Auth::Frame("bad".into()))).await {
        Err(Error::Server(body)) => assert_eq!(body.code, ErrorCode::InvalidToken),
        other => panic!("expected Server, got {other:?}"),
    }
}

#[tokio::test]
async fn no_auth_sends_nothing_so_connect_can_be_sent_by_hand() {
    let server = TestServer::spawn().await;
    let client = Client::connect(options(&server, Codec::Json, Auth::None))
        .await
        .unwrap();
    let Note::Upgrade {
        authorization,
        query,
        ..
    } = server.note().await
    else {
        panic!("expected an upgrade");
    };
    assert_eq!((authorization, query), (None, None));
    let Err(Error::Server(body)) = client.ping().await else {
        panic!("expected not_connected");
    };
    assert_eq!(body.code, ErrorCode::NotConnected);
    let command = Command::Connect {
        token: "good".into(),
    };
    let reply = client.request(command).await.unwrap();
    assert!(matches!(reply, ReplyBody::Connect { .. }));
    client.ping().await.unwrap();
}

#[tokio::test]
async fn replies_to_raw_frames_arrive_as_events() {
    let server = TestServer::spawn().await;
    for codec in Codec::ALL {
        let mut client = connect(&server, codec).await;
        let (garbage, unknown) = if codec.is_text() {
            (
                Message::text("not json"),
                Message::text(r#"{"id":99,"type":"dance"}"#),
            )
        } else {
            // 0xc1 is never valid MessagePack; the map is {"id":99,"type":"dance"}.
            let mut unknown = vec![0x82, 0xa2, b'i', b'd', 99, 0xa4];
            unknown.extend_from_slice(b"type\xa5dance");
            (Message::binary(vec![0xc1]), Message::binary(unknown))
        };
        client.send_raw(garbage).await.unwrap();
        client.send_raw(unknown).await.unwrap();
        for (id, code) in [(0, ErrorCode::BadRequest), (99, ErrorCode::UnknownCommand)] {
            let Some(Event::Reply(reply)) = client.next_event().await else {
                panic!("expected an unclaimed reply");
            };
            assert_eq!(reply.id, id);
            let Outcome::Error(body) = reply.outcome else {
                panic!("expected an error reply");
            };
            assert_eq!(body.code, code);
        }
    }
}

#[tokio::test]
async fn server_ping_is_answered_with_a_pong() {
    let server = TestServer::spawn().await;
    let client = connect(&server, Codec::Json).await;
    // The server replies to this subscribe only once our pong arrived.
    assert_eq!(client.subscribe(&channel("ping.me")).await.unwrap(), 0);
}

#[tokio::test]
async fn full_push_queue_stops_reading_until_drained() {
    let server = TestServer::spawn().await;
    let options = options(&server, Codec::Json, Auth::Frame("good".into()))
        .push_buffer(2)
        .request_timeout(Duration::from_millis(300));
    let mut client = Client::connect(options).await.unwrap();
    // 20 pushes come before the reply; with room for 2 the reader stops and
    // the reply stays unread in the socket.
    let flood = channel("flood");
    assert!(matches!(
        client.publish(&flood, data()).await,
        Err(Error::Timeout)
    ));
    for seq in 1..=20 {
        let Some(Event::Push(Push::Message(message))) = client.next_event().await else {
            panic!("expected message {seq}");
        };
        assert_eq!(message.seq, seq);
    }
    // The late reply has no waiter any more.
    let Some(Event::Reply(reply)) = client.next_event().await else {
        panic!("expected the late reply");
    };
    assert!(matches!(
        reply.outcome,
        Outcome::Result(ReplyBody::Publish { seq: 20, .. })
    ));
    client.ping().await.unwrap();
}

#[tokio::test]
async fn unreachable_server_is_a_websocket_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    drop(listener);
    let options = ConnectOptions::new(url, Codec::Json, Auth::None);
    assert!(matches!(
        Client::connect(options).await,
        Err(Error::WebSocket(_))
    ));
}
