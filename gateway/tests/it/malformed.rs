//! Malformed frames get an error reply with a stable code; the connection
//! and the server keep working.

use tokenim_client::Event;
use tokenim_protocol::reply::Outcome;
use tokenim_protocol::{Codec, ErrorCode, Reply};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{TestGateway, WAIT};

async fn error_reply(client: &mut tokenim_client::Client) -> Reply {
    match tokio::time::timeout(WAIT, client.next_event())
        .await
        .unwrap()
    {
        Some(Event::Reply(reply)) => reply,
        other => panic!("expected a reply, got {other:?}"),
    }
}

fn code_of(reply: &Reply) -> ErrorCode {
    match &reply.outcome {
        Outcome::Error(e) => e.code,
        Outcome::Result(r) => panic!("expected an error, got {r:?}"),
    }
}

#[tokio::test]
async fn garbage_wrong_types_and_unknown_commands_get_typed_errors() {
    let gw = TestGateway::spawn().await;
    let mut client = gw.client("alice", Codec::Json).await;
    let cases: [(Message, u64, ErrorCode); 6] = [
        (Message::text("}{ not json"), 0, ErrorCode::BadRequest),
        (
            Message::text(r#"{"id":7,"type":"teleport"}"#),
            7,
            ErrorCode::UnknownCommand,
        ),
        (
            Message::text(r#"{"id":8,"type":"subscribe","channel":42}"#),
            8,
            ErrorCode::BadRequest,
        ),
        (
            Message::text(r#"{"id":9,"type":"subscribe","channel":"no spaces"}"#),
            9,
            ErrorCode::InvalidChannel,
        ),
        (
            Message::text(r#"{"id":10,"type":"send","to":"a/b","data":1}"#),
            10,
            ErrorCode::InvalidUser,
        ),
        (Message::binary(vec![0xc1, 0x00]), 0, ErrorCode::BadRequest),
    ];
    for (frame, id, code) in cases {
        client.send_raw(frame).await.unwrap();
        let reply = error_reply(&mut client).await;
        assert_eq!((reply.id, code_of(&reply)), (id, code));
    }
    client.ping().await.expect("connection still serves");
    assert_eq!(
        gw.metric("tokenim_command_errors_total{error=\"bad_request\"}"),
        3.0
    );
}

#[tokio::test]
async fn msgpack_garbage_gets_errors_too() {
    let gw = TestGateway::spawn().await;
    let mut client = gw.client("alice", Codec::MsgPack).await;
    for frame in [
        Message::binary(vec![0x93, 0x01]),
        Message::binary(vec![0xde, 0xff, 0xff]),
        Message::text("{}"),
    ] {
        client.send_raw(frame).await.unwrap();
        assert_eq!(
            code_of(&error_reply(&mut client).await),
            ErrorCode::BadRequest
        );
    }
    let other = gw.client("bob", Codec::Json).await;
    other.ping().await.unwrap();
    client.ping().await.unwrap();
}
