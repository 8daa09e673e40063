//! Property tests of the codecs: every frame survives a round trip in both
//! codecs and a crossing from one codec to the other, and no input, however
//! broken, makes a decoder panic.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use tokenim_protocol::{
    ChannelName, ClientFrame, Codec, Command, Data, Disconnect, DisconnectCode, ErrorCode, Gap,
    Presence, PresenceEntry, Publication, Push, Reply, ReplyBody, ServerFrame, SessionId,
    StreamPosition, UserId,
};

// ---------------------------------------------------------------- names

fn user_id() -> impl Strategy<Value = UserId> {
    "[A-Za-z0-9_.@-]{1,64}".prop_map(|s| UserId::new(&s).expect("grammar"))
}

fn channel() -> impl Strategy<Value = ChannelName> {
    prop_oneof![
        3 => "[A-Za-z0-9_.:@=/-]{1,128}".prop_map(|s| ChannelName::new(&s).expect("grammar")),
        1 => user_id().prop_map(|u| u.personal_channel()),
    ]
}

/// Any text, control characters and non-ASCII included (escaping is part of
/// what is tested).
fn text(max: usize) -> impl Strategy<Value = String> {
    vec(any::<char>(), 0..max).prop_map(String::from_iter)
}

// ---------------------------------------------------------------- data

/// A JSON value, kept as a tree so that objects keep the member order they
/// were generated in (the server keeps it, so the round trip must too).
///
/// Floats are covered on their own by `floats_in_data_survive_a_round_trip`
/// (they need serde_json's `float_roundtrip` feature, which the workspace
/// enables); everything else a JSON value can hold is generated here.
#[derive(Debug, Clone)]
enum Json {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Str(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn write(&self, out: &mut String) {
        let quote = |s: &str| serde_json::to_string(s).expect("string");
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(i) => out.push_str(&i.to_string()),
            Json::UInt(u) => out.push_str(&u.to_string()),
            Json::Str(s) => out.push_str(&quote(s)),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Object(members) => {
                out.push('{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&quote(key));
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }
}

/// Values up to 4 levels deep, at most ~48 nodes, at most 6 items per
/// array or object; object keys are unique.
fn data() -> impl Strategy<Value = Data> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(Json::Int),
        any::<u64>().prop_map(Json::UInt),
        text(12).prop_map(Json::Str),
    ];
    let tree = leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Json::Array),
            vec((text(8), inner), 0..6).prop_map(|mut members| {
                let mut seen = std::collections::HashSet::new();
                members.retain(|(k, _)| seen.insert(k.clone()));
                Json::Object(members)
            }),
        ]
    });
    tree.prop_map(|json| {
        let mut s = String::new();
        json.write(&mut s);
        Data::from_json(&s).expect("generated JSON is valid")
    })
}

// ---------------------------------------------------------------- frames

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        text(64).prop_map(|token| Command::Connect { token }),
        text(64).prop_map(|token| Command::Refresh { token }),
        (channel(), option::of((any::<u64>(), text(20)))).prop_map(|(channel, since)| {
            Command::Subscribe {
                channel,
                since: since.map(|(seq, epoch)| StreamPosition { seq, epoch }),
            }
        }),
        channel().prop_map(|channel| Command::Unsubscribe { channel }),
        (channel(), data(), option::of(text(20))).prop_map(|(channel, data, msg_id)| {
            Command::Publish {
                channel,
                data,
                msg_id,
            }
        }),
        (
            channel(),
            option::of(any::<u64>()),
            option::of(any::<u32>())
        )
            .prop_map(|(channel, since, limit)| Command::History {
                channel,
                since,
                limit
            }),
        any::<u64>().prop_map(|seq| Command::Ack { seq }),
        (user_id(), data()).prop_map(|(to, data)| Command::Send { to, data }),
        Just(Command::Ping {}),
        channel().prop_map(|channel| Command::Presence { channel }),
    ]
}

fn client_frame() -> impl Strategy<Value = ClientFrame> {
    (any::<u64>(), command()).prop_map(|(id, command)| ClientFrame { id, command })
}

fn reply_body() -> impl Strategy<Value = ReplyBody> {
    prop_oneof![
        (
            user_id(),
            any::<u64>(),
            option::of(any::<u64>()),
            any::<u64>()
        )
            .prop_map(
                |(user, session, expires_at, ping_interval_ms)| ReplyBody::Connect {
                    user,
                    session: SessionId(session),
                    expires_at,
                    ping_interval_ms,
                }
            ),
        option::of(any::<u64>()).prop_map(|expires_at| ReplyBody::Refresh { expires_at }),
        (
            channel(),
            any::<u64>(),
            text(20),
            option::of(any::<bool>()),
            option::of(select(ErrorCode::ALL)),
            vec(publication(), 0..3)
        )
            .prop_map(|(channel, seq, epoch, recovered, gap, publications)| {
                ReplyBody::Subscribe {
                    channel,
                    seq,
                    epoch,
                    recovered,
                    gap,
                    publications,
                }
            }),
        (
            channel(),
            any::<u64>(),
            text(20),
            vec(publication(), 0..3),
            any::<bool>()
        )
            .prop_map(
                |(channel, seq, epoch, publications, more)| ReplyBody::History {
                    channel,
                    seq,
                    epoch,
                    publications,
                    more
                }
            ),
        any::<u64>().prop_map(|seq| ReplyBody::Ack { seq }),
        channel().prop_map(|channel| ReplyBody::Unsubscribe { channel }),
        (channel(), any::<u64>(), any::<bool>()).prop_map(|(channel, seq, duplicate)| {
            ReplyBody::Publish {
                channel,
                seq,
                duplicate,
            }
        }),
        (user_id(), any::<u64>()).prop_map(|(to, seq)| ReplyBody::Send { to, seq }),
        Just(ReplyBody::Ping {}),
        (channel(), vec((user_id(), any::<u32>()), 0..4)).prop_map(|(channel, users)| {
            ReplyBody::Presence {
                channel,
                users: users
                    .into_iter()
                    .map(|(user, connections)| PresenceEntry { user, connections })
                    .collect(),
            }
        }),
    ]
}

fn reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        (any::<u64>(), reply_body()).prop_map(|(id, body)| Reply::ok(id, body)),
        (any::<u64>(), select(ErrorCode::ALL), text(40))
            .prop_map(|(id, code, message)| Reply::error(id, code, message)),
    ]
}

fn presence() -> impl Strategy<Value = Presence> {
    (channel(), user_id(), any::<u64>()).prop_map(|(channel, user, session)| Presence {
        channel,
        user,
        session: SessionId(session),
    })
}

fn publication() -> impl Strategy<Value = Publication> {
    (
        channel(),
        any::<u64>(),
        option::of(user_id()),
        data(),
        any::<u64>(),
    )
        .prop_map(|(channel, seq, from, data, time)| Publication {
            channel,
            seq,
            from,
            data,
            time,
        })
}

fn push() -> impl Strategy<Value = Push> {
    prop_oneof![
        (
            channel(),
            any::<u64>(),
            option::of(user_id()),
            data(),
            any::<u64>()
        )
            .prop_map(
                |(channel, seq, from, data, time)| Push::Message(Publication {
                    channel,
                    seq,
                    from,
                    data,
                    time,
                })
            ),
        presence().prop_map(Push::Join),
        presence().prop_map(Push::Leave),
        select(DisconnectCode::ALL).prop_map(|c| Push::Disconnect(c.into())),
        (
            channel(),
            text(40),
            any::<u64>(),
            select(&[ErrorCode::HistoryGap, ErrorCode::EpochChanged][..])
        )
            .prop_map(|(channel, epoch, seq, code)| Push::Gap(Gap {
                channel,
                epoch,
                seq,
                code
            })),
        (any::<u16>(), text(40), any::<bool>()).prop_map(|(code, reason, reconnect)| {
            Push::Disconnect(Disconnect {
                code,
                reason,
                reconnect,
            })
        }),
    ]
}

fn server_frame() -> impl Strategy<Value = ServerFrame> {
    prop_oneof![
        reply().prop_map(ServerFrame::Reply),
        push().prop_map(ServerFrame::Push),
    ]
}

/// Applies byte overwrites and an optional truncation to a valid encoding.
fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
    if !bytes.is_empty() {
        for &(at, byte) in edits {
            let len = bytes.len();
            bytes[at % len] = byte;
        }
    }
    if let Some(cut) = cut {
        bytes.truncate(cut % (bytes.len() + 1));
    }
    bytes
}

// ---------------------------------------------------------------- properties

proptest! {
    #[test]
    fn client_frames_round_trip_in_both_codecs(frame in client_frame()) {
        for codec in Codec::ALL {
            let bytes = codec.encode(&frame).unwrap();
            prop_assert_eq!(codec.decode_client(&bytes).unwrap(), frame.clone(), "{:?}", codec);
        }
        let json = Codec::Json.encode(&frame).unwrap();
        prop_assert!(serde_json::from_slice::<serde_json::Value>(&json).is_ok());
    }

    #[test]
    fn server_frames_round_trip_in_both_codecs(frame in server_frame()) {
        for codec in Codec::ALL {
            let bytes = codec.encode(&frame).unwrap();
            prop_assert_eq!(codec.decode_server(&bytes).unwrap(), frame.clone(), "{:?}", codec);
        }
        let json = Codec::Json.encode(&frame).unwrap();
        prop_assert!(serde_json::from_slice::<serde_json::Value>(&json).is_ok());
    }

    /// What one client sends in one codec reaches a client of the other
    /// codec unchanged, in both directions (the gateway re-encodes frames
    /// per subscriber codec).
    #[test]
    fn client_frames_cross_codecs_unchanged(frame in client_frame()) {
        for (from, to) in [(Codec::MsgPack, Codec::Json), (Codec::Json, Codec::MsgPack)] {
            let first = from.decode_client(&from.encode(&frame).unwrap()).unwrap();
            let second = to.decode_client(&to.encode(&first).unwrap()).unwrap();
            prop_assert_eq!(&second, &frame, "{:?} -> {:?}", from, to);
        }
    }

    #[test]
    fn server_frames_cross_codecs_unchanged(frame in server_frame()) {
        for (from, to) in [(Codec::MsgPack, Codec::Json), (Codec::Json, Codec::MsgPack)] {
            let first = from.decode_server(&from.encode(&frame).unwrap()).unwrap();
            let second = to.decode_server(&to.encode(&first).unwrap()).unwrap();
            prop_assert_eq!(&second, &frame, "{:?} -> {:?}", from, to);
        }
    }

    /// Garbage gets an error, never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        for codec in Codec::ALL {
            let _ = codec.decode_client(&bytes);
            let _ = codec.decode_server(&bytes);
            let _ = codec.peek_id(&bytes);
        }
    }

    /// Near-valid input (a real frame with bytes overwritten or cut off)
    /// reaches far deeper into the decoders than random bytes. Whatever
    /// such input decodes to must itself round trip in both codecs.
    #[test]
    fn damaged_frames_never_panic_and_what_decodes_is_stable(
        frame in client_frame(),
        edits in vec((any::<usize>(), any::<u8>()), 0..4),
        cut in option::of(any::<usize>()),
    ) {
        for codec in Codec::ALL {
            let bytes = mutate(codec.encode(&frame).unwrap().to_vec(), &edits, cut);
            let _ = codec.peek_id(&bytes);
            if let Ok(decoded) = codec.decode_client(&bytes) {
                for other in Codec::ALL {
                    let again = other.decode_client(&other.encode(&decoded).unwrap()).unwrap();
                    prop_assert_eq!(&again, &decoded, "{:?} then {:?}", codec, other);
                }
            }
        }
    }

    #[test]
    fn damaged_server_frames_never_panic(
        frame in server_frame(),
        edits in vec((any::<usize>(), any::<u8>()), 0..4),
        cut in option::of(any::<usize>()),
    ) {
        for codec in Codec::ALL {
            let bytes = mutate(codec.encode(&frame).unwrap().to_vec(), &edits, cut);
            let _ = codec.decode_server(&bytes);
        }
    }

    /// A float crosses both codecs exactly (this needs serde_json's
    /// `float_roundtrip` feature; without it a float can move by one ULP).
    #[test]
    fn floats_in_data_survive_a_round_trip(f in any::<f64>().prop_filter("JSON has no NaN or infinity", |f| f.is_finite())) {
        let frame = ClientFrame {
            id: 1,
            command: Command::Publish {
                msg_id: None,
                channel: ChannelName::new("a").unwrap(),
                data: Data::from_value(&f).unwrap(),
            },
        };
        for codec in Codec::ALL {
            let bytes = codec.encode(&frame).unwrap();
            prop_assert_eq!(codec.decode_client(&bytes).unwrap(), frame.clone(), "{:?}", codec);
        }
    }
}

/// `-0` stays `-0` through both codecs (serde_json alone reads it as the
/// float `-0.0` and writes that).
#[test]
fn negative_zero_in_data_is_kept_as_sent() {
    for sent in ["-0", r#"{"x":-0,"y":[-0]}"#, "-0.0"] {
        let data = Data::from_json(sent).unwrap();
        let kept = sent.replace("-0.0", "-0");
        assert_eq!(data.as_json(), kept);
        let frame = ClientFrame {
            id: 1,
            command: Command::Publish {
                msg_id: None,
                channel: ChannelName::new("a").unwrap(),
                data,
            },
        };
        for codec in Codec::ALL {
            let bytes = codec.encode(&frame).unwrap();
            assert_eq!(codec.decode_client(&bytes).unwrap(), frame, "{codec:?}");
        }
    }
    assert_eq!(Data::from_value(&-0.0_f64).unwrap().as_json(), "-0");
}
