//! `POST /v1/publish` (`messages:publish`): the application's backend
//! publishes to channels and sends to users, as the server (no sender).
//! Each target is checked against the policy for the key (the built-in
//! role `app` may publish and send) and published separately; the
//! response has a result per target, in order.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use tokenim_auth::{AuditAction, Permission, Principal, Scope};
use tokenim_protocol::{ChannelName, Data, ErrorBody, ErrorCode, Seq, UserId};

use super::caller::Caller;
use super::{JsonBody, schemas};
use crate::access::{self, publish};
use crate::api::error::ApiError;
use crate::state::AppState;

/// The request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishBody {
    /// Channels to publish to (not personal ones: list those users in
    /// `users`).
    #[serde(default)]
    #[schema(value_type = Vec<schemas::ChannelName>)]
    channels: Vec<ChannelName>,
    /// Users to send to (their personal channels).
    #[serde(default)]
    #[schema(value_type = Vec<schemas::UserId>)]
    users: Vec<UserId>,
    /// The message: any JSON value (at most `limits.max_data_size` bytes).
    #[schema(value_type = Value)]
    data: serde_json::Value,
    /// Retries with the same id (per channel, within the history's
    /// idempotency window) are published once. 1 to 64 visible ASCII
    /// characters.
    #[schema(min_length = 1, max_length = 64)]
    msg_id: Option<String>,
}

/// The result for one target.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    /// The channel (a user's is `#<id>`).
    #[schema(value_type = schemas::ChannelName)]
    channel: ChannelName,
    /// Its sequence number, when published.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<u64>, nullable = false)]
    seq: Option<Seq>,
    /// A retry of an earlier publish (same `msg_id`): nothing new.
    /// Absent: `false`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    duplicate: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<schemas::ErrorBody>, nullable = false)]
    error: Option<ErrorBody>,
}

/// The response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Published {
    /// One per target: channels first, then users.
    results: Vec<Delivery>,
}

/// Publishes a message.
#[utoipa::path(
    post,
    path = "/v1/publish",
    operation_id = "publish",
    tag = "publish",
    description = "Scope: `messages:publish`. Publishes `data` to each channel and sends it to each \
user, as the server (no sender). Each target is checked against the policy for the key (the \
built-in role `app` may publish and send) and published on its own: the answer has a result per \
target, channels first, then users.",
    request_body = PublishBody,
    responses(
        (status = 200, description = "A result per target.", body = Published),
        (status = 400, description = "Malformed JSON (`invalid_body`), no targets or more than `api.max_batch_items` (`too_many_items`), or a bad `msg_id` (`bad_request`, as on the socket).", body = schemas::ErrorBody),
        (status = 413, description = "`data` is larger than `limits.max_data_size` (`message_too_large`).", body = schemas::ErrorBody),
        schemas::JsonBodyErrors,
        schemas::ApiKeyErrors,
    ),
    security(("api_key" = [])),
)]
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
    publish::check_msg_id(body.msg_id.as_deref())?;
    let data = Data::from_value(&body.data)
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidBody, e.to_string()))?;
    publish::check_size(&data, state.config.limits.max_data_size)?;
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
        let refused = match permission {
            Permission::Publish => publish::check_channel(&channel),
            _ => Ok(()),
        }
        .and_then(|()| access::require(&policy, &app, permission, Some(&channel)))
        .err();
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
    let delivered: Vec<&str> = results
        .iter()
        .filter(|d| d.error.is_none())
        .map(|d| d.channel.as_str())
        .collect();
    let detail = serde_json::json!({
        "targets": results.len(),
        "delivered": delivered,
        "failed": results.len() - delivered.len(),
        "msg_id": body.msg_id,
    });
    caller
        .audit(&state, AuditAction::MessagePublished, "publish", detail)
        .await?;
    Ok(Json(Published { results }))
}
