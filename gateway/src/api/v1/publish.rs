//! `POST /v1/publish` (`messages:publish`): the application's backend
//! publishes to channels and sends to users, as the server (no sender).
//! Each target is checked against the policy for the key (the built-in
//! role `app` may publish and send) and published separately; the
//! response has a result per target, in order.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use tokenim_auth::{Permission, Principal, Scope};
use tokenim_protocol::{ChannelName, Data, ErrorBody, ErrorCode, Seq, UserId};

use super::JsonBody;
use super::caller::Caller;
use crate::api::error::ApiError;
use crate::state::AppState;

/// The request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishBody {
    /// Channels to publish to.
    #[serde(default)]
    channels: Vec<ChannelName>,
    /// Users to send to (their personal channels).
    #[serde(default)]
    users: Vec<UserId>,
    /// The message: any JSON value.
    data: serde_json::Value,
    /// Retries with the same id (per channel, within the history's
    /// idempotency window) are published once.
    msg_id: Option<String>,
}

/// The result for one target.
#[derive(Debug, Serialize)]
pub struct Delivery {
    /// The channel (a user's is `#<id>`).
    channel: ChannelName,
    /// Its sequence number, when published.
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<Seq>,
    /// A retry of an earlier publish (same `msg_id`): nothing new.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    duplicate: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorBody>,
}

/// The response.
#[derive(Debug, Serialize)]
pub struct Published {
    /// One per target: channels first, then users.
    results: Vec<Delivery>,
}

/// Publishes a message.
pub async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<PublishBody>,
) -> Result<Json<Published>, ApiError> {
    caller.require(&state, Scope::MessagesPublish).await?;
    let targets = body.channels.len() + body.users.len();
    let max = state.config.api.max_batch_items;
    if targets == 0 || targets > max {
        return Err(ApiError::bad_request(
            ErrorCode::TooManyItems,
            format!("1 to {max} channels and users per request"),
        ));
    }
    if let Some(id) = &body.msg_id
        && (id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidField,
            "msg_id: 1 to 64 visible ASCII characters",
        ));
    }
    let data = Data::from_value(&body.data)
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidBody, e.to_string()))?;
    let limit = state.config.limits.max_data_size;
    if data.len() > limit {
        return Err(ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::MessageTooLarge,
            format!("data is {} bytes; the limit is {limit}", data.len()),
        ));
    }
    let policy = state.access.policy();
    let app = Principal::app(caller.key.id.clone());
    let targets = body
        .channels
        .into_iter()
        .map(|c| (c, Permission::Publish))
        .chain(
            body.users
                .iter()
                .map(|u| (u.personal_channel(), Permission::Send)),
        );
    let mut results = Vec::new();
    for (channel, permission) in targets {
        let refused = if permission == Permission::Publish && channel.is_personal() {
            Some(ErrorBody::new(
                ErrorCode::PermissionDenied,
                "personal channels take direct messages: list the user in `users`",
            ))
        } else if !policy.allows(&app, permission, Some(&channel)) {
            Some(ErrorBody::new(
                ErrorCode::PermissionDenied,
                format!("permission '{permission}' is not granted to this key on {channel}"),
            ))
        } else {
            None
        };
        let delivery = match refused {
            Some(error) => Delivery {
                channel,
                seq: None,
                duplicate: false,
                error: Some(error),
            },
            None => match state
                .broker
                .publish(&channel, None, data.clone(), body.msg_id.as_deref())
                .await
            {
                Ok(p) => Delivery {
                    channel,
                    seq: Some(p.seq),
                    duplicate: p.duplicate,
                    error: None,
                },
                Err(e) => Delivery {
                    channel,
                    seq: None,
                    duplicate: false,
                    error: Some(ErrorBody::new(e.code(), e.to_string())),
                },
            },
        };
        results.push(delivery);
    }
    Ok(Json(Published { results }))
}
