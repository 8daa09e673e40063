//! What each command does once a session is authenticated. Every check
//! that can fail answers with a stable [`ErrorCode`] and changes nothing.
//! The token's claims are checked first, then the user's permissions
//! (roles, grants and group membership) and the publish rules, both from
//! [`crate::access`].

use std::time::Instant;

use tokenim_auth::Permission;
use tokenim_protocol::{
    ChannelName, Command, Data, ErrorCode, Presence, Push, ReplyBody, StreamPosition, UserId,
};

use super::Session;
use super::auth::verify;
use super::error::{CommandError, fail};
use super::inflight::{Answer, Later};
use crate::access::publish;
use crate::broker::{PendingPublish, PresenceMember};

impl Session {
    pub(super) async fn handle(&mut self, command: Command) -> Result<Answer, CommandError> {
        let now = match command {
            Command::Publish {
                channel,
                data,
                msg_id,
            } => return self.publish(channel, data, msg_id).await.map(Answer::Later),
            Command::Send { to, data } => return self.send(to, data).await.map(Answer::Later),
            Command::Connect { .. } => fail(
                ErrorCode::AlreadyConnected,
                "this connection is already authenticated",
            ),
            Command::Refresh { token } => self.refresh(&token),
            Command::Subscribe { channel, since } => self.subscribe(channel, since).await,
            Command::Unsubscribe { channel } => self.unsubscribe(channel).await,
            Command::Ping {} => Ok(ReplyBody::Ping {}),
            Command::History {
                channel,
                since,
                limit,
            } => self.history(channel, since, limit).await,
            Command::Ack { seq } => self.ack(seq).await,
            Command::Presence { channel } => {
                if channel.is_personal() || !self.claims.subscribe.allows(&channel) {
                    return fail(
                        ErrorCode::PermissionDenied,
                        format!("token may not see presence in {channel}"),
                    );
                }
                self.require_channel(Permission::Presence, &channel, "see who is in it")
                    .await?;
                let users = self.state.broker.presence(&channel).await?;
                Ok(ReplyBody::Presence { channel, users })
            }
        };
        now.map(Answer::Now)
    }

    /// Checks a channel publish and queues it; the reply follows its outcome.
    async fn publish(
        &mut self,
        channel: ChannelName,
        data: Data,
        msg_id: Option<String>,
    ) -> Result<Later, CommandError> {
        publish::check_channel(&channel)?;
        if !self.claims.publish.allows(&channel) {
            return fail(
                ErrorCode::PermissionDenied,
                format!("token may not publish to {channel}"),
            );
        }
        self.require_channel(Permission::Publish, &channel, "publish to it")
            .await?;
        publish::check_msg_id(msg_id.as_deref())?;
        let pending = self.queue(&channel, data, msg_id.as_deref()).await?;
        Ok(Later::publish(channel, pending))
    }

    /// Checks a direct message and queues it; the reply follows its outcome.
    async fn send(&mut self, to: UserId, data: Data) -> Result<Later, CommandError> {
        let channel = to.personal_channel();
        self.require(Permission::Send, Some(&channel))?;
        let pending = self.queue(&channel, data, None).await?;
        Ok(Later::send(to, pending))
    }

    /// The size and rate checks of publish and send, then the message
    /// queued on the broker as from this session's user.
    async fn queue(
        &mut self,
        channel: &ChannelName,
        data: Data,
        msg_id: Option<&str>,
    ) -> Result<PendingPublish, CommandError> {
        self.check_publish(&data)?;
        let user = Some(self.handle.user.clone());
        Ok(self
            .state
            .broker
            .queue_publish(channel, user, data, msg_id)
            .await)
    }

    fn refresh(&mut self, token: &str) -> Result<ReplyBody, CommandError> {
        let claims =
            verify(&self.state.verifier, &self.state.metrics, token).map_err(|e| CommandError {
                code: e.code(),
                message: e.to_string(),
            })?;
        if claims.user != self.handle.user {
            return fail(
                ErrorCode::PermissionDenied,
                "the new token is for another user",
            );
        }
        if self.view.is_revoked(claims.issued_at) {
            self.state.metrics.auth_failure("revoked");
            return fail(
                ErrorCode::TokenRevoked,
                "the token was revoked; get a new one",
            );
        }
        self.claims = claims;
        Ok(ReplyBody::Refresh {
            expires_at: self.claims.expires_at.map(|s| s * 1000),
        })
    }

    /// Size and rate checks of publish and send.
    fn check_publish(&mut self, data: &Data) -> Result<(), CommandError> {
        publish::check_size(data, self.state.config.limits.max_data_size)?;
        if !self.rate.try_acquire(Instant::now()) {
            return fail(
                ErrorCode::RateLimited,
                "publish rate limit reached; slow down",
            );
        }
        Ok(())
    }

    async fn subscribe(
        &mut self,
        channel: ChannelName,
        since: Option<StreamPosition>,
    ) -> Result<ReplyBody, CommandError> {
        if channel.is_personal() {
            return fail(
                ErrorCode::PermissionDenied,
                "personal channels are subscribed automatically",
            );
        }
        if self.subscriptions.contains(&channel) {
            return fail(
                ErrorCode::AlreadySubscribed,
                format!("already subscribed to {channel}"),
            );
        }
        let max = self.state.config.limits.max_subscriptions;
        if self.subscriptions.len() >= max {
            return fail(
                ErrorCode::TooManySubscriptions,
                format!("at most {max} subscriptions per connection"),
            );
        }
        if !self.claims.subscribe.allows(&channel) {
            return fail(
                ErrorCode::PermissionDenied,
                format!("token may not subscribe to {channel}"),
            );
        }
        self.require_channel(Permission::Subscribe, &channel, "subscribe to it")
            .await?;
        // Listen first, then read the position (and what was missed): every
        // message above it is then certain to arrive live, and a message at
        // or below it may arrive too (clients ignore it).
        self.join_hub(&channel).await;
        let body = match self.subscribe_body(&channel, since).await {
            Ok(body) => body,
            Err(e) => {
                self.leave_hub(&channel).await;
                return Err(e);
            }
        };
        self.subscriptions.insert(channel.clone());
        if let Err(e) = self.state.broker.joined(&self.member(&channel)).await {
            tracing::warn!(channel = %channel, error = %e, "presence not recorded");
        }
        let join = Push::Join(self.presence(&channel));
        self.state
            .broker
            .publish_event(&channel, &join, Some(self.handle.id))
            .await?;
        Ok(body)
    }

    async fn unsubscribe(&mut self, channel: ChannelName) -> Result<ReplyBody, CommandError> {
        if channel.is_personal() {
            return fail(
                ErrorCode::PermissionDenied,
                "personal channels are subscribed automatically and cannot be left",
            );
        }
        if !self.subscriptions.remove(&channel) {
            return fail(
                ErrorCode::NotSubscribed,
                format!("not subscribed to {channel}"),
            );
        }
        self.leave_channel(&channel).await;
        Ok(ReplyBody::Unsubscribe { channel })
    }

    /// Leaves one channel and tells its other subscribers.
    pub(super) async fn leave_channel(&self, channel: &ChannelName) {
        self.leave_hub(channel).await;
        if let Err(e) = self.state.broker.left(&self.member(channel)).await {
            tracing::debug!(channel = %channel, error = %e, "presence not removed; it expires");
        }
        let leave = Push::Leave(self.presence(channel));
        if let Err(e) = self
            .state
            .broker
            .publish_event(channel, &leave, Some(self.handle.id))
            .await
        {
            tracing::warn!(channel = %channel, error = %e, "leave event not published");
        }
    }

    fn member(&self, channel: &ChannelName) -> PresenceMember {
        PresenceMember {
            channel: channel.clone(),
            session: self.handle.id,
            user: self.handle.user.clone(),
        }
    }

    fn presence(&self, channel: &ChannelName) -> Presence {
        Presence {
            channel: channel.clone(),
            user: self.handle.user.clone(),
            session: self.handle.id,
        }
    }
}
