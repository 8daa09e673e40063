//! Authentication: header, query and connect frame succeed; every failure
//! gets its code and is counted by reason.

use std::time::Duration;

use tokenim_auth::MintRequest;
use tokenim_client::{Auth, Client, Error};
use tokenim_protocol::{ChannelName, Codec, ErrorCode, UserId};

use crate::support::{TestGateway, close_code};

#[tokio::test]
async fn header_query_and_connect_frame_all_authenticate() {
    let gw = TestGateway::spawn().await;
    for codec in Codec::ALL {
        let token = gw.token("alice");
        for auth in [
            Auth::Header(token.clone()),
            Auth::Query(token.clone()),
            Auth::Frame(token.clone()),
        ] {
            let client = Client::connect(gw.options(codec, auth)).await.unwrap();
            client.ping().await.unwrap();
            let lobby = ChannelName::new("rooms.lobby").unwrap();
            client.subscribe(&lobby).await.unwrap();
            client.close().await.unwrap();
        }
    }
    let client = gw.client("bob", Codec::Json).await;
    let info = client.session().expect("connect reply");
    assert_eq!(info.user, UserId::new("bob").unwrap());
    assert_eq!(info.ping_interval, std::time::Duration::from_secs(25));
    assert!(info.expires_at.is_some());
}

#[tokio::test]
async fn a_bad_token_in_the_upgrade_request_gets_401_with_a_code() {
    let gw = TestGateway::spawn().await;
    for auth in [
        Auth::Header("not.a.jwt".into()),
        Auth::Query("garbage".into()),
    ] {
        match Client::connect(gw.options(Codec::Json, auth)).await {
            Err(Error::Http { status, body }) => {
                assert_eq!(status, 401);
                assert!(body.contains("\"code\":1102"), "{body}");
            }
            other => panic!("expected 401, got {other:?}"),
        }
    }
    assert_eq!(
        gw.metric("tokenim_auth_failures_total{reason=\"malformed\"}"),
        2.0
    );
}

#[tokio::test]
async fn a_bad_token_in_the_connect_frame_is_answered_then_closed() {
    let gw = TestGateway::spawn().await;
    for codec in Codec::ALL {
        match Client::connect(gw.options(codec, Auth::Frame("x.y.z".into()))).await {
            Err(Error::Server(body)) => assert_eq!(body.code, ErrorCode::InvalidToken),
            other => panic!("expected invalid_token, got {other:?}"),
        }
    }
    // An expired token: its own code, and the close asks for a new token.
    let expired = gw.token_with(&MintRequest::new(
        UserId::new("alice").unwrap(),
        tokenim_gateway::unix_secs() - 7200,
        60,
    ));
    let mut client = Client::connect(gw.options(Codec::Json, Auth::None))
        .await
        .unwrap();
    let reply = client
        .request(tokenim_protocol::Command::Connect { token: expired })
        .await
        .unwrap_err();
    assert!(
        matches!(reply, Error::Server(ref b) if b.code == ErrorCode::TokenExpired),
        "{reply:?}"
    );
    assert_eq!(close_code(&mut client).await, Some(4003));
    assert_eq!(
        gw.metric("tokenim_auth_failures_total{reason=\"expired\"}"),
        1.0
    );
    assert_eq!(
        gw.metric("tokenim_disconnects_total{reason=\"invalid_token\"}"),
        2.0
    );
}

#[tokio::test]
async fn commands_before_connect_are_refused_and_silence_hits_the_deadline() {
    let gw = TestGateway::with(|c| c.limits.auth_timeout = Duration::from_millis(300)).await;
    let mut client = Client::connect(gw.options(Codec::MsgPack, Auth::None))
        .await
        .unwrap();
    let lobby = ChannelName::new("rooms.lobby").unwrap();
    match client.subscribe(&lobby).await {
        Err(Error::Server(body)) => assert_eq!(body.code, ErrorCode::NotConnected),
        other => panic!("expected not_connected, got {other:?}"),
    }
    assert_eq!(close_code(&mut client).await, Some(4004));
    assert_eq!(
        gw.metric("tokenim_auth_failures_total{reason=\"timeout\"}"),
        1.0
    );
}

#[tokio::test]
async fn a_second_connect_is_refused() {
    let gw = TestGateway::spawn().await;
    let client = gw.client("alice", Codec::Json).await;
    let err = client
        .request(tokenim_protocol::Command::Connect {
            token: gw.token("alice"),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Server(ref b) if b.code == ErrorCode::AlreadyConnected),
        "{err:?}"
    );
}

#[tokio::test]
async fn token_scopes_narrow_subscribe_and_publish() {
    let gw = TestGateway::spawn().await;
    let mut request = MintRequest::new(
        UserId::new("alice").unwrap(),
        tokenim_gateway::unix_secs(),
        3600,
    );
    request.subscribe = Some(vec!["rooms.*".into()]);
    request.publish = Some(vec!["rooms.lobby".into()]);
    let client = Client::connect(gw.options(Codec::Json, Auth::Frame(gw.token_with(&request))))
        .await
        .unwrap();
    let lobby = ChannelName::new("rooms.lobby").unwrap();
    let other = ChannelName::new("rooms.other").unwrap();
    let vip = ChannelName::new("vip").unwrap();
    client.subscribe(&lobby).await.unwrap();
    client.subscribe(&other).await.unwrap();
    let data = tokenim_protocol::Data::from_json("1").unwrap();
    client.publish(&lobby, data.clone()).await.unwrap();
    for result in [
        client.subscribe(&vip).await.map(|_| ()),
        client.publish(&other, data).await.map(|_| ()),
    ] {
        assert!(
            matches!(result, Err(Error::Server(ref b)) if b.code == ErrorCode::PermissionDenied),
            "{result:?}"
        );
    }
}

#[tokio::test]
async fn websocket_auth_failures_are_folded_into_the_audit_log_without_the_token() {
    use std::time::Instant;

    use serde_json::{Value, json};

    use crate::support::http::Api;
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    // Three malformed tokens, one per way in: one record (two if a minute
    // turns meanwhile), counting three once written.
    for auth in [
        Auth::Header("garbage".into()),
        Auth::Query("garbage".into()),
        Auth::Frame("garbage".into()),
    ] {
        assert!(
            Client::connect(gw.options(Codec::Json, auth))
                .await
                .is_err()
        );
    }
    // A valid token of a banned user names the user.
    api.post_json("/v1/users", &json!([{"id": "bob"}]))
        .await
        .expect(200);
    api.post("/v1/users/bob/ban").await.expect(200);
    let bobs = gw.token("bob");
    assert!(
        Client::connect(gw.options(Codec::Json, Auth::Frame(bobs.clone())))
            .await
            .is_err()
    );

    let via_socket = |log: &Value, reason: &str| -> Vec<Value> {
        log["records"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["detail"]["via"] == "websocket" && r["detail"]["reason"] == reason)
            .cloned()
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let log = api.get("/v1/audit?action=auth.failed").await.expect(200);
        assert!(!log.to_string().contains(&bobs), "no token in {log}");
        let malformed = via_socket(&log, "malformed");
        let banned = via_socket(&log, "banned");
        assert!((1..=2).contains(&malformed.len()), "{log}");
        assert_eq!(banned.len(), 1, "{log}");
        assert_eq!(banned[0]["target"], "user:bob");
        assert_eq!(banned[0]["actor"], "anonymous");
        assert_eq!(banned[0]["source"], "127.0.0.1");
        assert!(
            malformed.iter().all(|r| r["target"] == "websocket"),
            "{log}"
        );
        let counted: u64 = malformed
            .iter()
            .map(|r| r["detail"]["count"].as_u64().unwrap())
            .sum();
        if counted == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "counted {counted} of 3: {log}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
