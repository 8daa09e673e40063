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
    /// `users`). A name that is not a channel's gets its own error result
    /// (`invalid_channel`); the other targets are published.
    #[serde(default)]
    channels: Vec<String>,
    /// Users to send to (their personal channels). An id that is not a
    /// user's gets its own error result (`invalid_user`).
    #[serde(default)]
    users: Vec<String>,
    /// The message: any JSON value (at most `limits.max_data_size` bytes).
    #[schema(value_type = Value)]
    data: serde_json::Value,
    /// Retries with the same id (per channel, within the history's
    /// idempotency window) are published once. 1 to 64 visible ASCII
    /// characters.
    #[schema(value_type = Option<schemas::MsgId>)]
    msg_id: Option<String>,
}

/// The result for one target.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    /// The channel (a user's is `#<id>`), as given when it is not a valid
    /// name.
    #[schema(value_type = String)]
    channel: String,
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
target, channels first, then users; a refused target (a bad name, a personal channel, no \
permission, the broker down) does not stop the others.",
    request_body = PublishBody,
    responses(
        (status = 200, description = "A result per target.", body = Published),
        (status = 400, description = "Malformed JSON (`invalid_body`), no targets (`invalid_field`), or a bad `msg_id` (`bad_request`, as on the socket).", body = schemas::ErrorBody),
        (status = 413, description = "`data` is larger than `limits.max_data_size` (`message_too_large`), or more than `api.max_batch_items` targets (`too_many_items`).", body = schemas::ErrorBody),
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
    if targets == 0 {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidField,
            "no targets: give `channels`, `users` or both",
        ));
    }
    if targets > max {
        return Err(ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::TooManyItems,
            format!("at most {max} channels and users per request"),
        ));
    }
    publish::check_msg_id(body.msg_id.as_deref())?;
    let data = Data::from_value(&body.data)
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidBody, e.to_string()))?;
    publish::check_size(&data, state.config.limits.max_data_size)?;
    let policy = state.access.policy();
    let app = Principal::app(caller.key.id.clone());
    let channels = body.channels.iter().map(|name| {
        let channel = ChannelName::new(name)
            .map_err(|e| ErrorBody::new(ErrorCode::InvalidChannel, format!("{name:?}: {e}")));
        (name.clone(), channel, Permission::Publish)
    });
    let users = body.users.iter().map(|id| {
        let channel = UserId::new(id)
            .map(|u| u.personal_channel())
            .map_err(|e| ErrorBody::new(ErrorCode::InvalidUser, format!("{id:?}: {e}")));
        (format!("#{id}"), channel, Permission::Send)
    });
    let mut results = Vec::new();
    for (name, channel, permission) in channels.chain(users) {
        let checked = channel.and_then(|channel| {
            match permission {
                Permission::Publish => publish::check_channel(&channel),
                _ => Ok(()),
            }
            .and_then(|()| access::require(&policy, &app, permission, Some(&channel)))
            .map(|()| channel)
        });
        let outcome = match checked {
            Err(error) => Err(error),
            Ok(channel) => state
                .broker
                .publish(&channel, None, data.clone(), body.msg_id.as_deref())
                .await
                .map_err(|e| ErrorBody::new(e.code(), e.to_string())),
        };
        results.push(match outcome {
            Ok(p) => Delivery {
                channel: name,
                seq: Some(p.seq),
                duplicate: p.duplicate,
                error: None,
            },
            Err(error) => Delivery {
                channel: name,
                seq: None,
                duplicate: false,
                error: Some(error),
            },
        });
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
