//! Cost of the codecs on the hot path, per codec:
//!
//! * encoding a typical `message` push (what the hub does once per codec per
//!   published message),
//! * decoding it (what every client does for every message),
//! * decoding a typical `publish` command (what a session does per publish).
//!
//! The payload is a ~100-byte JSON object, as a chat message would carry.
//!
//! ```text
//! cargo bench -p tokenim-protocol
//! ```

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokenim_protocol::{ChannelName, ClientFrame, Codec, Command, Data, Publication, Push, UserId};

/// A ~100-byte chat payload.
const PAYLOAD: &str = r#"{"text":"Hello everyone, the standup moves to 3pm today.","id":"m-84121","mentions":["bob","carol"],"urgent":false}"#;

fn message_push() -> Push {
    Push::Message(Publication {
        channel: ChannelName::new("rooms.lobby").expect("valid channel"),
        seq: 18_342,
        from: Some(UserId::new("alice").expect("valid user")),
        data: Data::from_json(PAYLOAD).expect("valid JSON"),
        time: 1_700_000_000_000,
    })
}

fn publish_frame() -> ClientFrame {
    ClientFrame {
        id: 4_711,
        command: Command::Publish {
            channel: ChannelName::new("rooms.lobby").expect("valid channel"),
            data: Data::from_json(PAYLOAD).expect("valid JSON"),
            msg_id: None,
        },
    }
}

fn encode_message_push(c: &mut Criterion) {
    let push = message_push();
    let mut group = c.benchmark_group("encode_message_push");
    for codec in Codec::ALL {
        let size = codec.encode(&push).expect("encode").len();
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(codec.name(), |b| {
            b.iter(|| black_box(codec).encode(black_box(&push)).expect("encode"));
        });
    }
    group.finish();
}

fn decode_message_push(c: &mut Criterion) {
    let push = message_push();
    let mut group = c.benchmark_group("decode_message_push");
    for codec in Codec::ALL {
        let bytes = codec.encode(&push).expect("encode");
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(codec.name(), |b| {
            b.iter(|| {
                black_box(codec)
                    .decode_server(black_box(&bytes))
                    .expect("decode")
            });
        });
    }
    group.finish();
}

fn decode_publish_command(c: &mut Criterion) {
    let frame = publish_frame();
    let mut group = c.benchmark_group("decode_publish_command");
    for codec in Codec::ALL {
        let bytes = codec.encode(&frame).expect("encode");
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(codec.name(), |b| {
            b.iter(|| {
                black_box(codec)
                    .decode_client(black_box(&bytes))
                    .expect("decode")
            });
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    encode_message_push,
    decode_message_push,
    decode_publish_command
);
criterion_main!(benches);
