//! HTTP endpoints and upgrade refusals: health, readiness, metrics, the
//! demo page, development tokens, origin checks, bad handshakes, slow
//! handshakes.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::support::{TestGateway, http_get};

#[tokio::test]
async fn health_readiness_metrics_and_demo_page() {
    let gw = TestGateway::spawn().await;
    assert_eq!(gw.get("/healthz", &[]).await, (200, "ok".into()));
    assert_eq!(gw.get("/readyz", &[]).await, (200, "ready".into()));
    let (status, metrics) = gw.get("/metrics", &[]).await;
    assert_eq!(status, 200);
    for name in [
        "tokenim_sessions",
        "tokenim_auth_failures_total",
        "tokenim_disconnects_total",
        "tokenim_deliveries_total",
    ] {
        assert!(metrics.contains(name), "{name} missing");
    }
    let (status, page) = gw.get("/", &[]).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("tokenim.v1.json"),
        "demo page speaks the JSON subprotocol"
    );
}

#[tokio::test]
async fn dev_token_endpoint_mints_valid_tokens_only_in_dev_mode() {
    let gw = TestGateway::spawn().await;
    let (status, body) = gw.get("/dev/token?user=alice", &[]).await;
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let token = json["token"].as_str().unwrap();
    let claims = gw
        .state
        .verifier
        .verify(token, tokenim_gateway::unix_secs())
        .unwrap();
    assert_eq!(claims.user.as_str(), "alice");
    let (status, body) = gw.get("/dev/token?user=bad%20id", &[]).await;
    assert_eq!(status, 400);
    assert!(body.contains("\"code\":1003"), "{body}");
    assert_eq!(gw.get("/dev/token?user=a&ttl=999999", &[]).await.0, 400);

    // Real keys and no dev_mode line: production, whatever else is set.
    let prod = TestGateway::with(|c| {
        c.auth.keys.push(tokenim_gateway::config::dev_key());
    })
    .await;
    let (status, body) = prod.get("/dev/token?user=alice", &[]).await;
    assert_eq!(status, 404);
    assert!(body.contains("not in development mode"), "{body}");
}

const UPGRADE: [(&str, &str); 4] = [
    ("connection", "upgrade"),
    ("upgrade", "websocket"),
    ("sec-websocket-version", "13"),
    ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
];

#[tokio::test]
async fn cross_site_origins_and_missing_origins_are_refused_unless_configured() {
    let gw = TestGateway::with(|c| c.origins.allow_missing = false).await;
    let host = gw.addr.to_string();
    let mut headers = UPGRADE.to_vec();
    headers.push(("origin", "https://evil.example"));
    assert_eq!(gw.get("/ws", &headers).await.0, 403);
    assert_eq!(gw.get("/ws", &UPGRADE).await.0, 403, "no origin");
    let same = format!("http://{host}");
    let mut headers = UPGRADE.to_vec();
    headers.push(("origin", &same));
    assert_eq!(http_get(gw.addr, "/ws", &headers).await.0, 101);
    assert_eq!(
        gw.metric("tokenim_connections_rejected_total{reason=\"origin\"}"),
        2.0
    );
}

/// An `Authorization` header that holds no bearer token is refused at the
/// upgrade (401, 1102), not passed over for the query or a `connect` frame.
#[tokio::test]
async fn an_authorization_header_without_a_bearer_token_gets_401() {
    let gw = TestGateway::spawn().await;
    let token = gw.token("alice");
    let query = format!("/ws?token={token}");
    for value in ["Basic YWxpY2U6c2VjcmV0", "Bearer", "Bearer   ", "Token abc"] {
        let mut headers = UPGRADE.to_vec();
        headers.push(("authorization", value));
        for path in ["/ws", query.as_str()] {
            let (status, body) = gw.get(path, &headers).await;
            assert_eq!(status, 401, "{value:?} on {path}: {body}");
            assert!(body.contains("\"code\":1102"), "{value:?}: {body}");
        }
    }
    let mut headers = UPGRADE.to_vec();
    let bearer = format!("Bearer {token}");
    headers.push(("authorization", &bearer));
    assert_eq!(http_get(gw.addr, "/ws", &headers).await.0, 101);
    assert_eq!(
        gw.metric("tokenim_auth_failures_total{reason=\"malformed\"}"),
        8.0
    );
}

#[tokio::test]
async fn bad_handshakes_and_unknown_subprotocols_get_400() {
    let gw = TestGateway::spawn().await;
    assert_eq!(gw.get("/ws", &[]).await.0, 400);
    let mut headers = UPGRADE.to_vec();
    headers.push(("sec-websocket-protocol", "mqtt"));
    let (status, body) = gw.get("/ws", &headers).await;
    assert_eq!(status, 400);
    assert!(body.contains("tokenim.v1.msgpack"), "{body}");
    assert_eq!(
        gw.metric("tokenim_connections_rejected_total{reason=\"bad_handshake\"}"),
        2.0
    );
}

#[tokio::test]
async fn a_silent_socket_is_closed_after_the_handshake_timeout_without_blocking_accept() {
    let gw = TestGateway::with(|c| c.limits.handshake_timeout = Duration::from_millis(300)).await;
    let mut silent = TcpStream::connect(gw.addr).await.unwrap();
    // Meanwhile the node serves others.
    assert_eq!(gw.get("/healthz", &[]).await.0, 200);
    let mut buf = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(3), silent.read(&mut buf))
        .await
        .expect("closed in time");
    assert!(matches!(read, Ok(n) if n < buf.len()), "{read:?}");
    gw.wait_metric(
        "tokenim_connections_rejected_total{reason=\"handshake_timeout\"}",
        1.0,
    )
    .await;
}

/// A path no route serves and a method a route does not take are answered
/// with the error body every refusal carries, not an empty one.
#[tokio::test]
async fn unknown_routes_and_wrong_methods_get_the_error_body() {
    use crate::support::http::request;
    use tokenim_protocol::ErrorCode;

    let gw = TestGateway::spawn().await;
    for path in ["/nope", "/v1/nope", "/ws/extra"] {
        let response = request(gw.addr, "GET", path, &[], b"").await;
        let message = response.expect_error(404, ErrorCode::NotFound);
        assert!(message.contains(path), "{message}");
    }
    for (method, path, allowed) in [
        ("POST", "/ws", "GET"),
        ("DELETE", "/healthz", "GET"),
        ("PUT", "/v1/publish", "POST"),
    ] {
        let response = request(gw.addr, method, path, &[], b"").await;
        let message = response.expect_error(405, ErrorCode::BadRequest);
        assert!(
            message.contains(method) && message.contains(path),
            "{message}"
        );
        let allow = response.header("allow").unwrap_or_default().to_owned();
        assert!(allow.contains(allowed), "{method} {path}: allow {allow:?}");
    }
}

#[tokio::test]
async fn an_oversized_head_or_body_gets_the_error_body_and_connection_close() {
    use crate::support::http::{Api, request};
    let gw = TestGateway::with(|c| c.api.max_body_bytes = 1024).await;
    let big = "a".repeat(20 << 10);
    for path in ["/healthz", "/v1/keys", "/ws"] {
        let r = request(gw.addr, "GET", path, &[("x-big", &big)], b"").await;
        assert_eq!(r.status, 431, "{path}");
        assert_eq!(r.json()["code"], 1000, "{path}: {}", r.text());
        assert!(r.text().contains("16 KiB"), "{}", r.text());
        assert_eq!(r.header("connection"), Some("close"));
    }
    let body = format!("[{}]", vec![r#"{"id":"x"}"#; 200].join(","));
    let r = Api::new(&gw)
        .send("POST", "/v1/users", "application/json", body.as_bytes())
        .await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.json()["name"], "body_too_large", "{}", r.text());
    assert_eq!(r.header("connection"), Some("close"));
}
