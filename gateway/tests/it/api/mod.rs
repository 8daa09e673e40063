//! The server API (`/v1`) through real HTTP requests against a real
//! gateway: statuses, error codes and bodies, and what each call does to
//! live WebSocket sessions, the store across a restart, and a second node
//! on the same Redis.
//!
//! One module per topic; the helpers every topic shares are here.

mod audit;
mod auth;
mod bodies;
mod cluster;
mod groups;
mod idempotency;
mod jobs;
mod keys;
mod limits;
mod merge;
mod moderation;
mod policy;
mod publish;
mod restart;
mod scopes;
mod users_batch;
mod users_query;

use serde_json::{Value, json};
use tokenim_client::{Auth, Client, Error};
use tokenim_protocol::{ChannelName, Codec, ErrorCode};

use crate::support::TestGateway;
use crate::support::http::Api;

pub(crate) fn channel(name: &str) -> ChannelName {
    ChannelName::new(name).unwrap()
}

/// Creates users `ids` in one batch, asserting each is created.
pub(crate) async fn create_users(api: &Api, ids: &[&str]) {
    let items: Vec<Value> = ids.iter().map(|id| json!({ "id": id })).collect();
    let body = api.post_json("/v1/users", &json!(items)).await.expect(200);
    assert_eq!(body["created"], ids.len(), "{body}");
}

/// Defines roles `roles` (with no permissions).
pub(crate) async fn define_roles(api: &Api, roles: &[&str]) {
    for role in roles {
        api.put_json(&format!("/v1/roles/{role}"), &json!({"permissions": []}))
            .await
            .expect(200);
    }
}

/// Creates an API key with `scopes`; returns its id and secret.
pub(crate) async fn create_key(api: &Api, name: &str, scopes: &[&str]) -> (String, String) {
    let body = api
        .post_json("/v1/keys", &json!({ "name": name, "scopes": scopes }))
        .await
        .expect(201);
    (
        body["id"].as_str().unwrap().to_owned(),
        body["secret"].as_str().unwrap().to_owned(),
    )
}

/// Mints a token through the API with `request` (`user`, `ttl`, …).
pub(crate) async fn mint(api: &Api, request: Value) -> String {
    let body = api.post_json("/v1/tokens", &request).await.expect(200);
    body["token"].as_str().unwrap().to_owned()
}

/// Connects a WebSocket client with `token` in its `connect` frame.
pub(crate) async fn connect(gw: &TestGateway, token: String) -> Result<Client, Error> {
    Client::connect(gw.options(Codec::Json, Auth::Frame(token))).await
}

/// Asserts a WebSocket connect (or command) was answered with `code`.
#[track_caller]
pub(crate) fn assert_refused<T: std::fmt::Debug>(result: Result<T, Error>, code: ErrorCode) {
    match result {
        Err(Error::Server(body)) => assert_eq!(body.code, code, "{body:?}"),
        other => panic!("expected {code:?}, got {other:?}"),
    }
}

/// The `(status, error code)` of each item of a batch response, with its
/// index and id.
pub(crate) fn item_results(body: &Value) -> Vec<(u64, Option<String>, String, Option<u64>)> {
    body["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results in {body}"))
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().unwrap(),
                r["id"].as_str().map(str::to_owned),
                r["status"].as_str().unwrap().to_owned(),
                r["error"]["code"].as_u64(),
            )
        })
        .collect()
}

/// `(index, id, status, code)` as [`item_results`] gives it.
pub(crate) fn item(
    index: u64,
    id: Option<&str>,
    status: &str,
    code: Option<ErrorCode>,
) -> (u64, Option<String>, String, Option<u64>) {
    (
        index,
        id.map(str::to_owned),
        status.to_owned(),
        code.map(|c| u64::from(c.code())),
    )
}

/// The `items` of a listing as strings (ids of users, groups, members).
pub(crate) fn ids(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {body}"))
        .iter()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other["id"].as_str().unwrap().to_owned(),
        })
        .collect()
}
