//! Fan-out cost: `Hub::deliver` of one message push to 1,000 local
//! subscribers (encode once per codec, queue the shared bytes on each),
//! followed by each session taking its batch as the write loop does.
//!
//! Run: `cargo bench -p tokenim-gateway --bench fanout`

use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokenim_gateway::hub::Hub;
use tokenim_gateway::hub::{Outbound, SessionHandle};
use tokenim_gateway::metrics::Metrics;
use tokenim_protocol::{ChannelName, Codec, Data, Publication, Push, SessionId, UserId};

const SUBSCRIBERS: usize = 1_000;

fn setup(codecs: &[Codec]) -> (Hub, Vec<Arc<SessionHandle>>, ChannelName) {
    let hub = Hub::new(Metrics::new(), 0);
    let channel = ChannelName::new("rooms.lobby").unwrap();
    let sessions: Vec<_> = (0..SUBSCRIBERS)
        .map(|i| {
            let handle = Arc::new(SessionHandle {
                id: SessionId(i as u64),
                user: UserId::new(&format!("user{i}")).unwrap(),
                codec: codecs[i % codecs.len()],
                outbound: Outbound::new(1_024, 1 << 20),
            });
            hub.subscribe(&channel, &handle);
            handle
        })
        .collect();
    (hub, sessions, channel)
}

fn push(channel: &ChannelName) -> Push {
    Push::Message(Publication {
        channel: channel.clone(),
        seq: 42,
        from: Some(UserId::new("alice").unwrap()),
        data: Data::from_json(r#"{"text":"hello everyone, this is a typical chat message of modest length","mentions":["bob"]}"#).unwrap(),
        time: 1_700_000_000_000,
    })
}

fn fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout_1000");
    group.throughput(Throughput::Elements(SUBSCRIBERS as u64));
    for (name, codecs) in [
        ("json", &[Codec::Json][..]),
        ("msgpack", &[Codec::MsgPack][..]),
        ("mixed", &[Codec::Json, Codec::MsgPack][..]),
    ] {
        let (hub, sessions, channel) = setup(codecs);
        let push = push(&channel);
        let mut batch = VecDeque::new();
        group.bench_function(name, |b| {
            b.iter(|| {
                black_box(hub.deliver(&channel, &push, None));
                for s in &sessions {
                    s.outbound.take(&mut batch);
                    batch.clear();
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
