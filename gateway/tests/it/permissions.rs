//! Roles, grants, group channels, bans and token revocations on live
//! sessions: each change is made in the store (as the HTTP API does) and
//! applies without reconnecting.

use std::fmt::Debug;
use std::time::Duration;

use tokenim_auth::{Grant, MintRequest, Permission, RoleName, Subject};
use tokenim_client::{Auth, Client, Error};
use tokenim_gateway::store::policy::Ban;
use tokenim_gateway::store::{Group, ItemStatus, NewGroup, OnExisting, User};
use tokenim_gateway::unix_secs;
use tokenim_protocol::{
    ChannelName, Codec, Command, Data, DisconnectCode, ErrorCode, Push, UserId,
};

use crate::support::redis::RedisServer;
use crate::support::{TestGateway, close_code, next_push};

fn channel(s: &str) -> ChannelName {
    ChannelName::new(s).unwrap()
}

fn user(s: &str) -> UserId {
    UserId::new(s).unwrap()
}

fn hi() -> Data {
    Data::from_value(&"hi").unwrap()
}

/// Asserts a command was refused with `code` and a message starting with `message`.
#[track_caller]
fn refused<T: Debug>(result: Result<T, Error>, code: ErrorCode, message: &str) {
    match result {
        Err(Error::Server(body)) => {
            assert_eq!(body.code, code, "{body:?}");
            assert!(body.message.starts_with(message), "{body:?}");
        }
        other => panic!("expected {code:?}, got {other:?}"),
    }
}

/// Defines `role` with `permissions`, and applies it at once.
async fn set_role(gw: &TestGateway, role: &str, permissions: &[Permission]) {
    let role = RoleName::new(role).unwrap();
    let permissions: std::collections::BTreeSet<_> = permissions.iter().copied().collect();
    gw.state
        .store
        .update_policy(|p| p.set_role(role.clone(), permissions.clone()))
        .await
        .unwrap();
    gw.state.access.refresh().await.unwrap();
}

/// Creates (or replaces) the user `id` holding `roles`, as the API does.
async fn put_user(gw: &TestGateway, id: &str, roles: &[&str]) {
    let record = User {
        id: user(id),
        name: id.into(),
        avatar_url: None,
        roles: roles.iter().map(|r| RoleName::new(r).unwrap()).collect(),
        metadata: Default::default(),
        created_at: 0,
        updated_at: 0,
    };
    let store = &gw.state.store;
    store
        .create_users(vec![record], OnExisting::Replace)
        .await
        .unwrap();
    store.bump_access().await.unwrap();
    gw.state.access.refresh().await.unwrap();
}

async fn ban(gw: &TestGateway, id: &str, until: Option<u64>) {
    let now = tokenim_gateway::unix_millis();
    let ban = Ban {
        since: now,
        until,
        reason: "spam".into(),
    };
    gw.state.store.ban(&user(id), &ban).await.unwrap();
    gw.state.access.refresh().await.unwrap();
}

/// A token for `id` issued `ago` seconds ago.
fn token_issued(gw: &TestGateway, id: &str, ago: u64) -> String {
    gw.token_with(&MintRequest::new(user(id), unix_secs() - ago, 3600))
}

/// The upgrade with `auth` is refused with `status` and error `code`.
async fn upgrade_refused(gw: &TestGateway, auth: Auth, status: u16, code: ErrorCode) {
    match Client::connect(gw.options(Codec::Json, auth)).await {
        Err(Error::Http { status: got, body }) => {
            assert_eq!(got, status, "{body}");
            assert!(
                body.contains(&format!("\"code\":{}", code.code())),
                "{body}"
            );
        }
        other => panic!("expected HTTP {status}, got {other:?}"),
    }
}

/// `connect` with `token` is answered with `code`, then the server pushes
/// `disconnect` and closes with `close`.
async fn connect_refused(
    gw: &TestGateway,
    codec: Codec,
    token: String,
    code: ErrorCode,
    close: u16,
) {
    let mut client = Client::connect(gw.options(codec, Auth::None))
        .await
        .unwrap();
    refused(client.request(Command::Connect { token }).await, code, "");
    assert!(matches!(next_push(&mut client).await, Push::Disconnect(d) if d.code == close));
    assert_eq!(close_code(&mut client).await, Some(close));
}

/// The server closes `client` with `code` when it sends its next command.
async fn closed_on_next_command(client: &mut Client, code: u16) {
    assert!(matches!(client.ping().await, Err(Error::Closed(_))));
    assert_eq!(close_code(client).await, Some(code));
}

#[tokio::test]
async fn a_role_without_send_gets_permission_denied_while_publish_still_works() {
    let gw = TestGateway::spawn().await;
    set_role(&gw, "muted", &[Permission::Publish, Permission::Subscribe]).await;
    put_user(&gw, "alice", &["muted"]).await;
    for codec in Codec::ALL {
        let alice = gw.client("alice", codec).await;
        refused(
            alice.send(&user("bob"), hi()).await,
            ErrorCode::PermissionDenied,
            "permission 'send' is not granted",
        );
        alice.subscribe(&channel("rooms.a")).await.unwrap();
        alice.publish(&channel("rooms.a"), hi()).await.unwrap();
        let history = alice.history(&channel("rooms.a"), None, None).await;
        refused(
            history,
            ErrorCode::PermissionDenied,
            "permission 'history' is not granted on rooms.a",
        );
        let presence = alice.presence(&channel("rooms.a")).await;
        refused(
            presence,
            ErrorCode::PermissionDenied,
            "permission 'presence' is not granted",
        );
    }
    // Users without roles hold the default role, which may send.
    let bob = gw.client("bob", Codec::Json).await;
    bob.send(&user("alice"), hi()).await.unwrap();
}

#[tokio::test]
async fn role_changes_apply_to_live_connections() {
    let gw = TestGateway::spawn().await;
    set_role(&gw, "writer", &[Permission::Send]).await;
    put_user(&gw, "alice", &["writer"]).await;
    let clients = [
        gw.client("alice", Codec::Json).await,
        gw.client("alice", Codec::MsgPack).await,
    ];
    for alice in &clients {
        alice.send(&user("bob"), hi()).await.unwrap();
    }
    // The role loses `send`: refused at once, on the same connections.
    set_role(&gw, "writer", &[Permission::Publish]).await;
    for alice in &clients {
        refused(
            alice.send(&user("bob"), hi()).await,
            ErrorCode::PermissionDenied,
            "permission 'send'",
        );
        alice.publish(&channel("rooms.a"), hi()).await.unwrap();
    }
    // The user is given another role that has it.
    set_role(&gw, "talker", &[Permission::Send]).await;
    put_user(&gw, "alice", &["writer", "talker"]).await;
    for alice in &clients {
        alice.send(&user("bob"), hi()).await.unwrap();
    }
}

#[tokio::test]
async fn a_channel_pattern_grant_allows_exactly_its_channels() {
    let gw = TestGateway::spawn().await;
    set_role(&gw, "reader", &[Permission::Subscribe]).await;
    put_user(&gw, "alice", &["reader"]).await;
    put_user(&gw, "bob", &["reader"]).await;
    for codec in Codec::ALL {
        let alice = gw.client("alice", codec).await;
        let bob = gw.client("bob", codec).await;
        refused(
            alice.publish(&channel("news.a"), hi()).await,
            ErrorCode::PermissionDenied,
            "permission 'publish' is not granted on news.a",
        );
        let grant = Grant {
            subject: Subject::User(user("alice")),
            permission: Permission::Publish,
            channels: Some("news.*".parse().unwrap()),
        };
        gw.state
            .store
            .update_policy(|p| p.grant(grant.clone()))
            .await
            .unwrap();
        gw.state.access.refresh().await.unwrap();
        alice.publish(&channel("news.a"), hi()).await.unwrap();
        alice.publish(&channel("news.b.c"), hi()).await.unwrap();
        refused(
            alice.publish(&channel("rooms.a"), hi()).await,
            ErrorCode::PermissionDenied,
            "permission 'publish' is not granted on rooms.a",
        );
        refused(
            alice.publish(&channel("news"), hi()).await,
            ErrorCode::PermissionDenied,
            "permission 'publish'",
        );
        refused(
            bob.publish(&channel("news.a"), hi()).await,
            ErrorCode::PermissionDenied,
            "permission 'publish'",
        );
        gw.state
            .store
            .update_policy(|p| p.revoke(&grant))
            .await
            .unwrap();
        gw.state.access.refresh().await.unwrap();
        refused(
            alice.publish(&channel("news.a"), hi()).await,
            ErrorCode::PermissionDenied,
            "permission 'publish'",
        );
    }
}

#[tokio::test]
async fn only_group_members_may_use_a_group_channel() {
    let gw = TestGateway::spawn().await;
    for id in ["alice", "bob", "carol", "mod"] {
        put_user(&gw, id, &[]).await;
    }
    let team = Group {
        id: user("team"),
        name: "Team".into(),
        owner: None,
        metadata: Default::default(),
        created_at: 0,
        updated_at: 0,
    };
    let store = &gw.state.store;
    let new = NewGroup {
        group: team,
        members: vec![user("alice")],
    };
    let created = store
        .create_groups(vec![new], OnExisting::Keep, 0)
        .await
        .unwrap();
    assert_eq!(created, vec![Ok(ItemStatus::Created)]);
    let grant = Grant {
        subject: Subject::User(user("mod")),
        permission: Permission::ManageGroup,
        channels: Some("groups.*".parse().unwrap()),
    };
    store
        .update_policy(|p| p.grant(grant.clone()))
        .await
        .unwrap();
    gw.state.access.refresh().await.unwrap();
    let ch = channel("groups.team");
    for (codec, outsider) in [(Codec::Json, "bob"), (Codec::MsgPack, "carol")] {
        let alice = gw.client("alice", codec).await;
        alice.subscribe(&ch).await.unwrap();
        alice.publish(&ch, hi()).await.unwrap();
        let moderator = gw.client("mod", codec).await;
        moderator.subscribe(&ch).await.unwrap();
        moderator.publish(&ch, hi()).await.unwrap();
        let other = gw.client(outsider, codec).await;
        refused(
            other.subscribe(&ch).await,
            ErrorCode::PermissionDenied,
            "only members of group team may subscribe to it",
        );
        refused(
            other.publish(&ch, hi()).await,
            ErrorCode::PermissionDenied,
            "only members of group team may publish to it",
        );
        refused(
            other.history(&ch, None, None).await,
            ErrorCode::PermissionDenied,
            "only members of group team may read its history",
        );
        // Added while connected: allowed without reconnecting.
        store
            .add_members(&user("team"), &[user(outsider)], 0)
            .await
            .unwrap();
        store.bump_access().await.unwrap();
        gw.state.access.refresh().await.unwrap();
        other.subscribe(&ch).await.unwrap();
        other.publish(&ch, hi()).await.unwrap();
    }
}

#[tokio::test]
async fn a_ban_closes_live_connections_and_refuses_new_ones() {
    let gw = TestGateway::spawn().await;
    let mut live = Vec::new();
    for codec in Codec::ALL {
        live.push((
            gw.client("alice", codec).await,
            gw.client("alice", codec).await,
        ));
    }
    ban(&gw, "alice", None).await;
    // The next command finds the access version moved, and the ban.
    for (by_command, _) in &mut live {
        closed_on_next_command(by_command, 4504).await;
    }
    // What the HTTP API also does: close every connection at once.
    let banned = DisconnectCode::Banned;
    gw.state
        .broker
        .disconnect_user(&user("alice"), banned)
        .await
        .unwrap();
    for (_, by_broker) in &mut live {
        assert!(matches!(next_push(by_broker).await, Push::Disconnect(d) if d.code == 4504));
        assert_eq!(close_code(by_broker).await, Some(4504));
    }
    let forbidden = (403, ErrorCode::UserBanned);
    upgrade_refused(
        &gw,
        Auth::Header(gw.token("alice")),
        forbidden.0,
        forbidden.1,
    )
    .await;
    upgrade_refused(
        &gw,
        Auth::Query(gw.token("alice")),
        forbidden.0,
        forbidden.1,
    )
    .await;
    for codec in Codec::ALL {
        connect_refused(&gw, codec, gw.token("alice"), ErrorCode::UserBanned, 4504).await;
    }
    assert_eq!(
        gw.metric("tokenim_auth_failures_total{reason=\"banned\"}"),
        4.0
    );
    // A ban that has ended refuses nothing.
    ban(&gw, "alice", Some(tokenim_gateway::unix_millis() - 1)).await;
    gw.client("alice", Codec::Json).await.ping().await.unwrap();
}

#[tokio::test]
async fn revoking_tokens_closes_sessions_and_refuses_only_older_tokens() {
    let gw = TestGateway::spawn().await;
    let old = token_issued(&gw, "alice", 60);
    let mut live = Vec::new();
    for codec in Codec::ALL {
        live.push(
            Client::connect(gw.options(codec, Auth::Frame(old.clone())))
                .await
                .unwrap(),
        );
    }
    gw.state
        .store
        .revoke_tokens(&user("alice"), unix_secs() - 30)
        .await
        .unwrap();
    gw.state.access.refresh().await.unwrap();
    for client in &mut live {
        closed_on_next_command(client, 4503).await;
    }
    upgrade_refused(&gw, Auth::Header(old.clone()), 401, ErrorCode::TokenRevoked).await;
    for codec in Codec::ALL {
        connect_refused(&gw, codec, old.clone(), ErrorCode::TokenRevoked, 4503).await;
        // A token issued after the revocation gets in, every way.
        let new = token_issued(&gw, "alice", 0);
        for auth in [Auth::Header(new.clone()), Auth::Frame(new.clone())] {
            let client = Client::connect(gw.options(codec, auth)).await.unwrap();
            refused(
                client.refresh(old.clone()).await,
                ErrorCode::TokenRevoked,
                "",
            );
            client.refresh(token_issued(&gw, "alice", 0)).await.unwrap();
            client.ping().await.unwrap();
        }
    }
}

#[tokio::test]
async fn an_idle_connection_learns_of_its_ban_at_the_next_ping() {
    let gw = TestGateway::with(|c| c.limits.ping_interval = Duration::from_millis(200)).await;
    let mut alice = gw.client("alice", Codec::MsgPack).await;
    ban(&gw, "alice", None).await;
    assert_eq!(close_code(&mut alice).await, Some(4504));
}

#[tokio::test]
async fn while_the_store_is_unreachable_verified_tokens_get_in_until_it_is_back() {
    let redis = RedisServer::start();
    let ping = Duration::from_millis(300);
    let gw = TestGateway::with_redis(&redis.url(), false, |c| c.limits.ping_interval = ping).await;
    gw.wait_ready(200).await;
    ban(&gw, "alice", None).await;
    upgrade_refused(
        &gw,
        Auth::Header(gw.token("alice")),
        403,
        ErrorCode::UserBanned,
    )
    .await;
    redis.signal("STOP");
    let connecting =
        Client::connect(gw.options(Codec::Json, Auth::Header(gw.token("alice")))).await;
    redis.signal("CONT");
    let mut alice = connecting.expect("admitted with the default role while Redis is down");
    // At its next ping the session reads its user again and finds the ban.
    assert_eq!(close_code(&mut alice).await, Some(4504));
}
