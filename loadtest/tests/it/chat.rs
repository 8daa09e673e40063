//! Rooms and direct messages: every acknowledged message reaches every
//! member it is owed to, once, in both codecs.

use std::time::{Duration, Instant};

use tokenim_loadtest::progress::Control;
use tokenim_loadtest::report::RunReport;
use tokenim_loadtest::scenario::chat::{self, ChatParams};
use tokenim_protocol::Codec;

use crate::support::TestGateway;

fn params(users: usize, rooms: usize, rate: f64) -> ChatParams {
    let mut p = ChatParams::new(users, rate, Duration::from_millis(800));
    p.rooms = rooms;
    p.drain = Duration::from_secs(1);
    p.threads = 2;
    p
}

fn assert_delivered_once(report: &RunReport) {
    let acked = report.get("acked");
    assert!(acked > 0.0, "{report:#?}");
    assert_eq!(report.get("sent"), acked, "every send acknowledged");
    assert_eq!(report.get("send_errors"), 0.0);
    assert_eq!(report.get("delivered"), report.get("expected_deliveries"));
    assert_eq!(report.get("lost"), 0.0);
    assert_eq!(report.get("unexpected"), 0.0);
    assert_eq!(report.get("duplicates"), 0.0);
    assert_eq!(report.get("closed_users"), 0.0);
    assert_eq!(
        report.latency_us["delivery"].count as f64,
        report.get("delivered")
    );
    assert_eq!(report.latency_us["ack"].count as f64, acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_room_member_gets_every_message_of_its_room() {
    let gateway = TestGateway::spawn().await;
    for codec in Codec::ALL {
        let began = Instant::now();
        let report = chat::run(
            gateway.shared(|s| s.codec = codec),
            &params(12, 3, 20.0),
            &Control::quiet(),
        )
        .await
        .unwrap();
        assert!(began.elapsed() < Duration::from_secs(3), "bounded run");
        assert_eq!(report.scenario, "rooms");
        assert_eq!(report.get("users_ready"), 12.0, "{report:#?}");
        assert_delivered_once(&report);
        // Four members per room, the sender included.
        assert_eq!(report.get("delivered"), report.get("acked") * 4.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_active_share_sends_and_everyone_receives() {
    let gateway = TestGateway::spawn().await;
    let mut p = params(10, 2, 30.0);
    p.active_fraction = 0.5;
    let report = chat::run(gateway.shared(|_| {}), &p, &Control::quiet())
        .await
        .unwrap();
    assert_eq!(report.get("active_users"), 5.0, "{report:#?}");
    assert_delivered_once(&report);
    assert_eq!(report.get("delivered"), report.get("acked") * 5.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_messages_reach_their_recipient_once() {
    let gateway = TestGateway::spawn().await;
    for codec in Codec::ALL {
        let report = chat::run(
            gateway.shared(|s| s.codec = codec),
            &params(10, 0, 15.0),
            &Control::quiet(),
        )
        .await
        .unwrap();
        assert_eq!(report.scenario, "direct");
        assert_delivered_once(&report);
        assert_eq!(report.get("delivered"), report.get("acked"));
        // The second run reuses the first one's users: their `ack`s at
        // the end mean nothing of the first run is delivered again.
        assert_eq!(report.get("stale"), 0.0);
    }
}
