//! Cost of the lean receive path per delivery, per codec: a batch of 64
//! `message` pushes (a broadcast stamp as payload, as the load generator
//! receives them) written to a loopback socket, read back through
//! [`lean::Conn::read_some`] and scanned with [`lean::scan::message`].
//! The time per element includes the amortised `read`.
//!
//! ```text
//! cargo bench -p tokenim-client
//! ```
//!
//! For a figure immune to machine noise, run the bench binary under
//! `valgrind --tool=callgrind` with `--bench --profile-time 5` and divide
//! the instructions by the deliveries, or compare two batch counts.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokenim_client::lean::{self, Conn};
use tokenim_client::protocol::{ChannelName, Codec, Data, Publication, Push};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

/// Messages written per batch.
const BATCH: usize = 64;

/// `BATCH` server frames (unmasked) carrying `message` pushes.
fn batch(codec: Codec) -> Vec<u8> {
    let mut wire = Vec::new();
    for i in 0..BATCH as u64 {
        let stamp = format!(r#"{{"t":{},"p":0,"n":{i}}}"#, 1_700_000_000_000_000 + i);
        let push = Push::Message(Publication {
            channel: ChannelName::new("loadtest.bcast").expect("valid channel"),
            seq: 1000 + i,
            from: None,
            data: Data::from_json(&stamp).expect("valid JSON"),
            time: 1_700_000_000_000,
        });
        let payload = codec.encode(&push).expect("encodes");
        wire.push(0x80 | if codec.is_text() { 1 } else { 2 });
        match u8::try_from(payload.len()) {
            Ok(len) if len < 126 => wire.push(len),
            _ => {
                wire.push(126);
                wire.extend_from_slice(&(payload.len() as u16).to_be_bytes());
            }
        }
        wire.extend_from_slice(&payload);
    }
    wire
}

/// A connected pair: the lean connection and the server's end.
async fn pair(codec: Codec) -> (Conn, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("has an address");
    let client = TcpStream::connect(addr).await.expect("connects");
    let (server, _) = listener.accept().await.expect("accepts");
    let client = tokio_util::either::Either::Left(client);
    (Conn::new(client, codec, 8 * 1024, b""), server)
}

fn receive(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("lean_receive");
    group.throughput(Throughput::Elements(BATCH as u64));
    for codec in Codec::ALL {
        let wire = batch(codec);
        let (mut conn, mut server) = rt.block_on(pair(codec));
        group.bench_function(codec.name(), |b| {
            b.iter(|| one_batch(&rt, &mut conn, &mut server, &wire, codec));
        });
    }
    group.finish();
}

/// Writes one batch and reads and scans it back; the sum of what was
/// scanned, so nothing is optimised away.
fn one_batch(
    rt: &Runtime,
    conn: &mut Conn,
    server: &mut TcpStream,
    wire: &[u8],
    codec: Codec,
) -> u64 {
    rt.block_on(async {
        server.write_all(wire).await.expect("writes");
        let (mut got, mut sum) = (0, 0u64);
        while got < BATCH {
            got += conn
                .read_some(|m| {
                    if let Some(s) = lean::scan::message(codec, black_box(m)) {
                        sum = sum.wrapping_add(s.seq ^ s.t.unwrap_or(0));
                    }
                })
                .await
                .expect("reads");
        }
        sum
    })
}

criterion_group!(benches, receive);
criterion_main!(benches);
