//! What TLS costs on the listener: the connect rate (TCP, TLS handshake,
//! upgrade, `connect` frame, close) and one publish's round trip on an
//! open connection, plaintext (`ws`) against TLS (`wss`, a test
//! certificate made here by rcgen, ECDSA P-256), each against its own
//! gateway in this process over loopback (in-process broker).
//!
//! Run: `cargo bench -p tokenim-gateway --bench tls` (about 40 s).

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokenim_auth::{MintRequest, TokenSigner};
use tokenim_client::{Auth, Client, ConnectOptions};
use tokenim_gateway::config::{TlsConfig, dev_key};
use tokenim_gateway::{Config, Server};
use tokenim_protocol::{ChannelName, Codec, Data, Push, UserId};

/// A gateway on a free loopback port, with TLS when `tls` is given; its
/// WebSocket URL.
async fn gateway(dir: &std::path::Path, tls: Option<TlsConfig>) -> String {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls,
        ..Config::default()
    };
    config.store.path = dir.to_owned();
    config.origins.allow_missing = true;
    config.limits.publish_rate = 1e9;
    config.limits.publish_burst = 1e9;
    config.limits.max_connections_per_ip = 100_000;
    let scheme = if config.tls.is_some() { "wss" } else { "ws" };
    let server = Server::bind(config).await.unwrap();
    let url = format!("{scheme}://{}/ws", server.local_addr());
    tokio::spawn(server.run(std::future::pending()));
    url
}

/// A CA and a certificate it signs for 127.0.0.1, written into `dir`: the
/// listener's configuration and the CA's PEM.
fn certificate(dir: &std::path::Path) -> (TlsConfig, String) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca =
        rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    (TlsConfig::new(cert_file, key_file), ca.pem())
}

fn tls(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (plain_dir, tls_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (tls_config, ca_pem) = certificate(tls_dir.path());
    let token = TokenSigner::new(&dev_key())
        .unwrap()
        .sign(&MintRequest::new(
            UserId::new("bench").unwrap(),
            tokenim_gateway::unix_secs(),
            3600,
        ))
        .unwrap();
    let targets = rt.block_on(async {
        let ws = gateway(plain_dir.path(), None).await;
        let wss = gateway(&tls_dir.path().join("data"), Some(tls_config)).await;
        [("ws", ws), ("wss", wss)].map(|(name, url)| {
            let options = ConnectOptions::new(url, Codec::Json, Auth::Frame(token.clone()))
                .tls_ca_pem(ca_pem.clone());
            (name, options)
        })
    });

    let mut connect = c.benchmark_group("connect");
    connect.throughput(Throughput::Elements(1));
    connect.measurement_time(Duration::from_secs(5));
    for (name, options) in &targets {
        connect.bench_function(*name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let client = Client::connect(options.clone()).await.unwrap();
                    client.close().await.unwrap();
                })
            })
        });
    }
    connect.finish();

    let channel = ChannelName::new("bench.tls").unwrap();
    let data = Data::from_json(r#"{"text":"a typical chat message"}"#).unwrap();
    let mut round_trip = c.benchmark_group("publish_round_trip");
    round_trip.throughput(Throughput::Elements(1));
    for (name, options) in &targets {
        let mut client = rt.block_on(async {
            let client = Client::connect(options.clone()).await.unwrap();
            client.subscribe(&channel).await.unwrap();
            client
        });
        round_trip.bench_function(*name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    client.publish(&channel, data.clone()).await.unwrap();
                    let Some(Push::Message(_)) = client.next_push().await else {
                        panic!("expected the message back");
                    };
                })
            })
        });
    }
    round_trip.finish();
}

criterion_group!(benches, tls);
criterion_main!(benches);
