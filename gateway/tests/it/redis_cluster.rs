//! Gateway nodes on a real three-master Redis Cluster: sharded pub/sub.

use tokenim_protocol::{ChannelName, Codec, Data, Push};

use crate::support::redis::RedisCluster;
use crate::support::{TestGateway, next_push};

#[tokio::test]
async fn sharded_pub_sub_fans_out_across_nodes_and_shards() {
    let cluster = RedisCluster::start();
    let a = TestGateway::with_redis(&cluster.url(), true, |_| {}).await;
    let b = TestGateway::with_redis(&cluster.url(), true, |_| {}).await;
    a.wait_ready(200).await;
    b.wait_ready(200).await;
    // Enough channels to land on every shard.
    let channels: Vec<_> = (0..12)
        .map(|i| ChannelName::new(&format!("rooms.{i}")).unwrap())
        .collect();
    let mut on_a = a.client("alice", Codec::Json).await;
    let mut on_b = b.client("bob", Codec::MsgPack).await;
    for ch in &channels {
        on_a.subscribe(ch).await.unwrap();
        on_b.subscribe(ch).await.unwrap();
    }
    for ch in &channels {
        assert_eq!(
            cluster.shard_subscribers(&format!("tokenim:ch:{{{ch}}}")),
            2,
            "{ch}: one subscription per node"
        );
    }
    let publisher = b.client("pub", Codec::Json).await;
    for (i, ch) in channels.iter().enumerate() {
        let data = Data::from_value(&i).unwrap();
        assert_eq!(publisher.publish(ch, data).await.unwrap(), 1);
    }
    for client in [&mut on_a, &mut on_b] {
        let mut seen = Vec::new();
        while seen.len() < channels.len() {
            match next_push(client).await {
                Push::Message(m) => {
                    assert_eq!(m.seq, 1);
                    seen.push(m.channel);
                }
                Push::Join(_) | Push::Leave(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        seen.sort();
        let mut expected = channels.clone();
        expected.sort();
        assert_eq!(seen, expected);
    }
    on_a.unsubscribe(&channels[0]).await.unwrap();
    let name = format!("tokenim:ch:{{{}}}", channels[0]);
    let deadline = tokio::time::Instant::now() + crate::support::WAIT;
    while cluster.shard_subscribers(&name) != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "node a never left {name}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}
