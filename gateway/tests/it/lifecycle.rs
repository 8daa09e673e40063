//! Pings, the idle timeout, token expiry and refresh on a live connection,
//! and drain.

use std::time::Duration;

use futures_util::StreamExt;
use tokenim_auth::MintRequest;
use tokenim_client::{Auth, Client};
use tokenim_protocol::{Codec, UserId};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::{TestGateway, WAIT, close_code, http_get};

fn short_pings(c: &mut tokenim_gateway::Config) {
    c.limits.ping_interval = Duration::from_millis(100);
    c.limits.idle_timeout = Duration::from_millis(400);
}

#[tokio::test]
async fn a_client_that_answers_pings_stays_connected() {
    let gw = TestGateway::with(short_pings).await;
    let client = gw.client("alice", Codec::Json).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    client
        .ping()
        .await
        .expect("still connected after three idle timeouts");
}

#[tokio::test]
async fn a_silent_client_is_closed_after_the_idle_timeout() {
    let gw = TestGateway::with(short_pings).await;
    let mut request = gw.ws_url().into_client_request().unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", gw.token("alice")).parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    // Read nothing (so no pong is sent) until the server gives up.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut pings = 0;
    let mut close = None;
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(WAIT, ws.next()).await {
        match msg {
            Message::Ping(_) => pings += 1,
            Message::Close(frame) => close = frame.map(|f| u16::from(f.code)),
            _ => {}
        }
    }
    assert!(pings >= 2, "server pinged ({pings})");
    assert_eq!(close, Some(4002));
    assert_eq!(
        gw.metric("tokenim_disconnects_total{reason=\"idle_timeout\"}"),
        1.0
    );
}

fn short_token(gw: &TestGateway, user: &str, ttl: u64) -> String {
    gw.token_with(&MintRequest::new(
        UserId::new(user).unwrap(),
        tokenim_gateway::unix_secs(),
        ttl,
    ))
}

#[tokio::test]
async fn an_expiring_token_ends_the_connection_unless_refreshed() {
    let gw = TestGateway::spawn().await;
    let mut expiring =
        Client::connect(gw.options(Codec::MsgPack, Auth::Frame(short_token(&gw, "alice", 1))))
            .await
            .unwrap();
    let refreshed =
        Client::connect(gw.options(Codec::Json, Auth::Frame(short_token(&gw, "bob", 1))))
            .await
            .unwrap();
    let new_expiry = refreshed
        .refresh(short_token(&gw, "bob", 3600))
        .await
        .unwrap();
    assert!(new_expiry.unwrap() > tokenim_gateway::unix_millis() + 3_000_000);
    assert_eq!(close_code(&mut expiring).await, Some(4003));
    refreshed
        .ping()
        .await
        .expect("refreshed connection survives");
    // A refresh for another user is refused.
    let err = refreshed.refresh(gw.token("mallory")).await.unwrap_err();
    assert!(
        matches!(err, tokenim_client::Error::Server(ref b) if b.code == tokenim_protocol::ErrorCode::PermissionDenied)
    );
}

#[tokio::test]
async fn drain_tells_every_client_to_reconnect_and_readiness_flips() {
    let gw = TestGateway::spawn().await;
    let mut clients = Vec::new();
    for (i, codec) in Codec::ALL.into_iter().enumerate() {
        clients.push(gw.client(&format!("u{i}"), codec).await);
    }
    assert_eq!(gw.get("/readyz", &[]).await.0, 200);
    let state = gw.state.clone();
    let addr = gw.addr;
    let stopping = tokio::spawn(gw.stop());
    for client in &mut clients {
        let info = tokio::time::timeout(WAIT, client.closed())
            .await
            .unwrap()
            .expect("close frame");
        assert_eq!(info.code, 4000);
    }
    stopping.await.unwrap();
    assert!(state.is_draining());
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener closed"
    );
}

#[tokio::test]
async fn a_draining_node_keeps_answering_readiness_upgrades_and_metrics_until_it_exits() {
    let gw = TestGateway::with(|c| c.drain_timeout = Duration::from_secs(3)).await;
    // A client that reads nothing does not answer the close: the drain
    // waits for it (about a second), and the node must answer meanwhile.
    let mut request = gw.ws_url().into_client_request().unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", gw.token("deaf")).parse().unwrap(),
    );
    let (deaf, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    gw.wait_metric("tokenim_sessions", 1.0).await;
    let (state, addr) = (gw.state.clone(), gw.addr);
    let started = std::time::Instant::now();
    let stopping = tokio::spawn(gw.stop());
    while !state.is_draining() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (status, body) = http_get(addr, "/readyz", &[]).await;
    assert_eq!((status, body.as_str()), (503, "draining"));
    let upgrade = [
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    let (status, body) = http_get(addr, "/ws", &upgrade).await;
    assert_eq!(status, 503, "{body}");
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["code"], 1900, "{body}");
    let (status, metrics) = http_get(addr, "/metrics", &[]).await;
    assert_eq!(status, 200);
    assert!(metrics.contains("tokenim_sessions "), "{metrics}");
    assert!(
        !stopping.is_finished(),
        "the drain was still waiting for the deaf client"
    );
    stopping.await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "within drain_timeout"
    );
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the listener closes when the process is done"
    );
    drop(deaf);
}

#[tokio::test]
async fn a_client_close_is_answered_with_a_close_frame() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    let gw = TestGateway::spawn().await;
    let mut request = gw.ws_url().into_client_request().unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", gw.token("alice")).parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    ws.send(Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    })))
    .await
    .unwrap();
    let mut answered = None;
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(WAIT, ws.next()).await {
        if let Message::Close(frame) = msg {
            answered = frame.map(|f| u16::from(f.code));
        }
    }
    assert_eq!(
        answered,
        Some(1000),
        "the server echoes the close (no 1006 in browsers)"
    );
}
