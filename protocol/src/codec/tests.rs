use super::*;
use crate::{
    ChannelName, Command, Data, DisconnectCode, ErrorCode, Publication, Push, Reply, ReplyBody,
    SessionId, UserId,
};

fn publication() -> Push {
    Push::Message(Publication {
        channel: ChannelName::new("rooms.lobby").unwrap(),
        seq: 17,
        from: Some(UserId::new("alice").unwrap()),
        data: Data::from_json(r#"{"text":"hi","n":[1,2,{"x":null}]}"#).unwrap(),
        time: 1_700_000_000_000,
    })
}

#[test]
fn json_push_has_documented_shape() {
    let bytes = Codec::Json.encode(&publication()).unwrap();
    assert_eq!(
        std::str::from_utf8(&bytes).unwrap(),
        r#"{"push":"message","channel":"rooms.lobby","seq":17,"from":"alice","data":{"text":"hi","n":[1,2,{"x":null}]},"time":1700000000000}"#
    );
}

#[test]
fn every_server_frame_round_trips_in_both_codecs() {
    let frames = [
        ServerFrame::Push(publication()),
        ServerFrame::Push(Push::Disconnect(DisconnectCode::SlowConsumer.into())),
        ServerFrame::Reply(Reply::ok(
            9,
            ReplyBody::Connect {
                user: UserId::new("bob").unwrap(),
                session: SessionId(3),
                expires_at: None,
                ping_interval_ms: 25_000,
            },
        )),
        ServerFrame::Reply(Reply::ok(10, ReplyBody::Ping {})),
        ServerFrame::Reply(Reply::error(11, ErrorCode::RateLimited, "slow down")),
    ];
    for codec in Codec::ALL {
        for frame in &frames {
            let bytes = codec.encode(frame).unwrap();
            assert_eq!(&codec.decode_server(&bytes).unwrap(), frame, "{codec:?}");
        }
    }
}

#[test]
fn msgpack_data_is_native_msgpack_not_json_text() {
    let bytes = Codec::MsgPack.encode(&publication()).unwrap();
    // The text "hi" appears as a msgpack fixstr (0xa2 'h' 'i'), not inside a JSON string.
    assert!(bytes.windows(3).any(|w| w == [0xa2, b'h', b'i']));
    assert!(!bytes.windows(4).any(|w| w == br#""hi""#));
}

#[test]
fn client_frames_decode() {
    let f = Codec::Json
        .decode_client(br#"{"id":3,"type":"publish","channel":"rooms.lobby","data":{"text":"hi"}}"#)
        .unwrap();
    assert_eq!(f.id, 3);
    match f.command {
        Command::Publish { channel, data, .. } => {
            assert_eq!(channel.as_str(), "rooms.lobby");
            assert_eq!(data.as_json(), r#"{"text":"hi"}"#);
        }
        other => panic!("{other:?}"),
    }
    let ping = Codec::Json
        .decode_client(br#"{"id":1,"type":"ping"}"#)
        .unwrap();
    assert_eq!(ping.command, Command::Ping {});
}

#[test]
fn bad_input_gives_typed_errors() {
    let cases: &[(&[u8], ErrorCode)] = &[
        (b"\xff\x00garbage", ErrorCode::BadRequest),
        (b"{\"id\":1,", ErrorCode::BadRequest),
        (br#"{"id":1,"type":"fly"}"#, ErrorCode::UnknownCommand),
        (br#"{"id":"one","type":"ping"}"#, ErrorCode::BadRequest),
        (br#"{"id":1,"type":"subscribe"}"#, ErrorCode::BadRequest),
        (
            br#"{"id":1,"type":"subscribe","channel":7}"#,
            ErrorCode::BadRequest,
        ),
        (
            br#"{"id":1,"type":"subscribe","channel":"bad name"}"#,
            ErrorCode::InvalidChannel,
        ),
        (
            br#"{"id":1,"type":"send","to":"bad/user","data":1}"#,
            ErrorCode::InvalidUser,
        ),
        (br#"[1,2,3]"#, ErrorCode::BadRequest),
        (b"", ErrorCode::BadRequest),
    ];
    for (bytes, code) in cases {
        let err = Codec::Json.decode_client(bytes).unwrap_err();
        assert_eq!(
            err.code(),
            *code,
            "{:?}: {err}",
            String::from_utf8_lossy(bytes)
        );
    }
    for garbage in [&b"\xc1"[..], b"\x93\x01", b"\xde\xff\xff", b"\xa5abc", b""] {
        let err = Codec::MsgPack.decode_client(garbage).unwrap_err();
        assert_eq!(err.code(), ErrorCode::BadRequest, "{garbage:?}: {err}");
    }
}

#[test]
fn msgpack_unknown_command_and_invalid_channel_are_classified() {
    #[derive(serde::Serialize)]
    struct Raw<'a> {
        id: u64,
        r#type: &'a str,
        channel: &'a str,
    }
    let unknown = Codec::MsgPack
        .encode(&Raw {
            id: 1,
            r#type: "fly",
            channel: "a",
        })
        .unwrap();
    assert_eq!(
        Codec::MsgPack.decode_client(&unknown).unwrap_err().code(),
        ErrorCode::UnknownCommand
    );
    let bad = Codec::MsgPack
        .encode(&Raw {
            id: 1,
            r#type: "subscribe",
            channel: "a b",
        })
        .unwrap();
    assert_eq!(
        Codec::MsgPack.decode_client(&bad).unwrap_err().code(),
        ErrorCode::InvalidChannel
    );
    assert_eq!(Codec::MsgPack.peek_id(&bad), Some(1));
}

#[test]
fn oversized_and_deeply_nested_frames_are_refused() {
    let big = format!(r#"{{"id":1,"type":"ping","pad":"{}"}}"#, "x".repeat(100));
    let err = Codec::Json
        .decode::<crate::ClientFrame>(big.as_bytes(), 64)
        .unwrap_err();
    assert_eq!(
        err,
        DecodeError::TooLarge {
            size: big.len(),
            max: 64
        }
    );

    let deep_json = format!(
        r#"{{"id":1,"type":"publish","channel":"a","data":{}1{}}}"#,
        "[".repeat(500),
        "]".repeat(500)
    );
    assert_eq!(
        Codec::Json
            .decode_client(deep_json.as_bytes())
            .unwrap_err()
            .code(),
        ErrorCode::BadRequest
    );

    // msgpack: {"id":1,"type":"publish","channel":"a","data":[[[[...]]]]} 10k deep
    let mut deep = vec![
        0x84, 0xa2, b'i', b'd', 0x01, 0xa4, b't', b'y', b'p', b'e', 0xa7,
    ];
    deep.extend_from_slice(b"publish");
    deep.extend_from_slice(&[0xa7]);
    deep.extend_from_slice(b"channel");
    deep.extend_from_slice(&[0xa1, b'a', 0xa4]);
    deep.extend_from_slice(b"data");
    deep.extend(std::iter::repeat_n(0x91, 10_000));
    deep.push(0x01);
    assert_eq!(
        Codec::MsgPack.decode_client(&deep).unwrap_err().code(),
        ErrorCode::BadRequest
    );
}

#[test]
fn peek_id_reads_the_id_of_a_bad_frame() {
    assert_eq!(Codec::Json.peek_id(br#"{"id":42,"type":"fly"}"#), Some(42));
    assert_eq!(Codec::Json.peek_id(b"nonsense"), None);
}

#[test]
fn data_crosses_codecs_unchanged() {
    let json = r#"{"a":[1,-2,true,null,"s"],"b":{"c":"d"}}"#;
    let frame = crate::ClientFrame {
        id: 5,
        command: Command::Send {
            to: UserId::new("bob").unwrap(),
            data: Data::from_json(json).unwrap(),
        },
    };
    let packed = Codec::MsgPack.encode(&frame).unwrap();
    let back = Codec::MsgPack.decode_client(&packed).unwrap();
    assert_eq!(back, frame);
}

#[test]
fn msgpack_trailing_bytes_are_refused_like_json() {
    let mut bytes = Codec::MsgPack
        .encode(&crate::ClientFrame {
            id: 1,
            command: Command::Ping {},
        })
        .unwrap()
        .to_vec();
    assert!(Codec::MsgPack.decode_client(&bytes).is_ok());
    bytes.push(0xc0);
    assert_eq!(
        Codec::MsgPack.decode_client(&bytes).unwrap_err().code(),
        ErrorCode::BadRequest
    );
    assert_eq!(
        Codec::Json
            .decode_client(br#"{"id":1,"type":"ping"} x"#)
            .unwrap_err()
            .code(),
        ErrorCode::BadRequest
    );
}

#[test]
fn an_integer_type_is_an_unknown_command_not_a_variant_position() {
    #[derive(serde::Serialize)]
    struct Raw {
        id: u64,
        r#type: u64,
        token: &'static str,
    }
    for json in [
        &br#"{"id":106,"type":6}"#[..],
        br#"{"id":1,"type":0,"token":"x"}"#,
        br#"{"id":1,"token":"x","type":0}"#,
        br#"{"id":1,"type":-1}"#,
        br#"{"id":1,"type":true}"#,
    ] {
        let err = Codec::Json.decode_client(json).unwrap_err();
        assert_eq!(
            err.code(),
            ErrorCode::UnknownCommand,
            "{}: {err}",
            String::from_utf8_lossy(json)
        );
    }
    let msgpack = Codec::MsgPack
        .encode(&Raw {
            id: 1,
            r#type: 0,
            token: "x",
        })
        .unwrap();
    assert_eq!(
        Codec::MsgPack.decode_client(&msgpack).unwrap_err().code(),
        ErrorCode::UnknownCommand
    );
}

#[test]
fn every_listed_command_type_is_a_command() {
    for name in crate::command::COMMAND_TYPES {
        let json = format!(r#"{{"id":1,"type":"{name}"}}"#);
        let code = match Codec::Json.decode_client(json.as_bytes()) {
            Ok(frame) => {
                assert_eq!(frame.command.kind(), name);
                continue;
            }
            Err(e) => e.code(),
        };
        // Known, but missing its fields.
        assert_ne!(code, ErrorCode::UnknownCommand, "{name}");
    }
}
