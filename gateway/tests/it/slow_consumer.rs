//! A client that stops reading is disconnected as a slow consumer and
//! counted; the others receive everything.

use std::time::Duration;

use tokenim_client::{Auth, Client};
use tokenim_protocol::{ChannelName, Codec, Data, Push};

use crate::support::{TestGateway, WAIT};

#[tokio::test]
async fn a_slow_consumer_is_cut_off_without_slowing_the_others() {
    let gw = TestGateway::with(|c| {
        c.limits.outbound_queue_frames = 64;
        c.limits.write_timeout = Duration::from_secs(2);
    })
    .await;
    let room = ChannelName::new("rooms.firehose").unwrap();
    // The slow client queues at most one event, then stops reading its socket.
    let slow = Client::connect(
        gw.options(Codec::Json, Auth::Frame(gw.token("slow")))
            .push_buffer(1),
    )
    .await
    .unwrap();
    slow.subscribe(&room).await.unwrap();
    let mut fast = gw.client("fast", Codec::MsgPack).await;
    fast.subscribe(&room).await.unwrap();
    let publisher = gw.client("publisher", Codec::Json).await;

    let payload = Data::from_value(&"x".repeat(8 * 1024)).unwrap();
    let total = 1_500u64;
    let reader = tokio::spawn(async move {
        let mut next = 1;
        while next <= total {
            match tokio::time::timeout(WAIT, fast.next_push()).await {
                Ok(Some(Push::Message(m))) => {
                    assert_eq!(m.seq, next, "fast consumer sees every message in order");
                    next += 1;
                }
                Ok(Some(_)) => {}
                other => panic!("fast consumer stalled at {next}: {other:?}"),
            }
        }
        fast
    });
    for _ in 0..total {
        publisher.publish(&room, payload.clone()).await.unwrap();
    }
    let _fast = reader.await.unwrap();
    gw.wait_metric("tokenim_disconnects_total{reason=\"slow_consumer\"}", 1.0)
        .await;
    assert_eq!(
        gw.state.hub.subscriber_count(&room),
        1,
        "slow consumer left the channel"
    );
    drop(slow);
}
