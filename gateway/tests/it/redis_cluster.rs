//! Gateway nodes on a real three-master Redis Cluster: sharded pub/sub.

use tokenim_protocol::{ChannelName, Codec, Data, Push};

use crate::support::redis::RedisCluster;
use crate::support::{TestGateway, next_push};

#[tokio::test]
async fn sharded_pub_sub_fans_out_across_nodes_and_shards() {
    let cluster = RedisCluster::start();
    let (a, b) = TestGateway::pair(&cluster.url(), true).await;
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

#[tokio::test]
async fn a_channel_whose_slot_moves_is_resubscribed_on_the_new_owner() {
    let cluster = RedisCluster::start();
    let (a, b) = TestGateway::pair(&cluster.url(), true).await;
    let ch = ChannelName::new("rooms.moving").unwrap();
    let name = format!("tokenim:ch:{{{ch}}}");
    let mut listener = a.client("alice", Codec::Json).await;
    listener.subscribe(&ch).await.unwrap();
    let publisher = b.client("pub", Codec::Json).await;
    assert_eq!(
        publisher
            .publish(&ch, Data::from_json("1").unwrap())
            .await
            .unwrap(),
        1
    );
    assert!(matches!(next_push(&mut listener).await, Push::Message(m) if m.seq == 1));

    // Move the channel's slot (and its keys) to another master.
    let slot = cluster.slot_of(&name);
    let (src, src_id) = cluster.owner_of(slot);
    let dst = (src + 1) % cluster.nodes.len();
    let dst_id = cluster.nodes[dst]
        .cli(&["CLUSTER", "MYID"])
        .trim()
        .to_owned();
    let slot_arg = slot.to_string();
    cluster.nodes[dst].cli(&["CLUSTER", "SETSLOT", &slot_arg, "IMPORTING", &src_id]);
    cluster.nodes[src].cli(&["CLUSTER", "SETSLOT", &slot_arg, "MIGRATING", &dst_id]);
    let keys = cluster.nodes[src].cli(&["CLUSTER", "GETKEYSINSLOT", &slot_arg, "100"]);
    let dst_port = cluster.nodes[dst].port.to_string();
    for key in keys.lines().filter(|k| !k.is_empty()) {
        cluster.nodes[src].cli(&["MIGRATE", "127.0.0.1", &dst_port, key, "0", "5000"]);
    }
    for node in [dst, src, (src + 2) % 3] {
        cluster.nodes[node].cli(&["CLUSTER", "SETSLOT", &slot_arg, "NODE", &dst_id]);
    }
    assert_eq!(cluster.owner_of(slot).0, dst);

    // Redis told the old owner's subscribers to leave; the node must be
    // listening on the new owner now.
    let deadline = tokio::time::Instant::now() + crate::support::WAIT;
    while numsub_on(&cluster, dst, &name) != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "node a never resubscribed on the new owner"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(a.metric("tokenim_redis_resubscribes_total") >= 1.0);
    let seq = publisher
        .publish(&ch, Data::from_json("2").unwrap())
        .await
        .unwrap();
    assert_eq!(seq, 2, "the sequence counter moved with the slot");
    loop {
        if let Push::Message(m) = next_push(&mut listener).await {
            assert_eq!(m.seq, 2);
            break;
        }
    }
}

fn numsub_on(cluster: &RedisCluster, node: usize, channel: &str) -> u64 {
    crate::support::redis::numsub(&cluster.nodes[node].cli(&["PUBSUB", "SHARDNUMSUB", channel]))
}
