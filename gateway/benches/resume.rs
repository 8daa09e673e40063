//! Recovery cost: a client that missed 1,000 messages subscribes with its
//! last position and gets all of them in the reply. Measured end to end on
//! a real gateway over loopback (in-process broker), from sending
//! `subscribe` to holding the decoded reply.
//!
//! Run: `cargo bench -p tokenim-gateway --bench resume`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tokenim_auth::{MintRequest, TokenSigner};
use tokenim_client::{Auth, Client, ConnectOptions};
use tokenim_gateway::config::dev_key;
use tokenim_gateway::{Config, Server};
use tokenim_protocol::{ChannelName, Codec, Data, ReplyBody, StreamPosition, UserId};

const MISSED: u64 = 1_000;

fn resume(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let data = tempfile::tempdir().unwrap();
    let (url, epoch) = rt.block_on(async {
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..Config::default()
        };
        config.store.path = data.path().to_owned();
        config.origins.allow_missing = true;
        config.history.size = MISSED as usize;
        config.history.page = MISSED as usize;
        config.limits.publish_rate = 1e9;
        config.limits.publish_burst = 1e9;
        config.limits.max_write_buffer_size = 4 << 20;
        let server = Server::bind(config).await.unwrap();
        let url = format!("ws://{}/ws", server.local_addr());
        tokio::spawn(server.run(std::future::pending()));
        let publisher = connect(&url, "publisher").await;
        let channel = room();
        let ReplyBody::Subscribe { epoch, .. } =
            publisher.subscribe_from(&channel, None).await.unwrap()
        else {
            unreachable!()
        };
        for i in 0..MISSED {
            let data =
                Data::from_value(&serde_json::json!({ "text": "a typical chat message", "n": i }))
                    .unwrap();
            publisher.publish(&channel, data).await.unwrap();
        }
        (url, epoch)
    });
    let mut group = c.benchmark_group("resume");
    for codec in Codec::ALL {
        let client = rt.block_on(connect_codec(&url, "reader", codec));
        let channel = room();
        let since = StreamPosition {
            seq: 0,
            epoch: epoch.clone(),
        };
        group.bench_function(format!("1000_missed_{}", codec.name()), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let reply = client
                        .subscribe_from(&channel, Some(since.clone()))
                        .await
                        .unwrap();
                    let ReplyBody::Subscribe { publications, .. } = reply else {
                        unreachable!()
                    };
                    assert_eq!(publications.len() as u64, MISSED);
                    client.unsubscribe(&channel).await.unwrap();
                    black_box(publications)
                })
            })
        });
    }
    group.finish();
}

fn room() -> ChannelName {
    ChannelName::new("bench.resume").unwrap()
}

async fn connect(url: &str, user: &str) -> Client {
    connect_codec(url, user, Codec::Json).await
}

async fn connect_codec(url: &str, user: &str, codec: Codec) -> Client {
    let now = tokenim_gateway::unix_secs();
    let token = TokenSigner::new(&dev_key())
        .unwrap()
        .sign(&MintRequest::new(UserId::new(user).unwrap(), now, 3600))
        .unwrap();
    Client::connect(ConnectOptions::new(url, codec, Auth::Header(token)))
        .await
        .unwrap()
}

criterion_group!(benches, resume);
criterion_main!(benches);
