//! History on a live session: recovery when subscribing with `since`, the
//! `history` command, acknowledging direct messages, and delivering the
//! direct messages a user has not acknowledged when they connect.
//!
//! Everything recovered goes out before the live messages queued since the
//! session started listening (in the reply, or written straight to the
//! socket before the queue is drained), so a client sees one ascending
//! order; it ignores anything at or below the last sequence it saw.

use tokenim_auth::Permission;
use tokenim_protocol::{ChannelName, ErrorCode, Publication, Push, ReplyBody, Seq, StreamPosition};

use super::Session;
use super::conn::{Conn, WriteFailed};
use super::error::{CommandError, fail};

impl Session {
    /// The most bytes of messages one reply may carry: half the write
    /// buffer, so a reply always fits.
    fn reply_budget(&self) -> usize {
        self.state.config.limits.max_write_buffer_size / 2
    }

    /// The `subscribe` result, with recovery when `since` is given.
    pub(super) async fn subscribe_body(
        &self,
        channel: &ChannelName,
        since: Option<StreamPosition>,
    ) -> Result<ReplyBody, CommandError> {
        let broker = &self.state.broker;
        let Some(since) = since else {
            let (seq, epoch) = broker.position(channel).await?;
            return Ok(ReplyBody::subscribed(channel.clone(), seq, epoch));
        };
        let mut recovery = broker
            .recover(channel, &since, self.state.config.history.page)
            .await?;
        let mut gap = recovery.gap;
        if truncate(&mut recovery.page.publications, self.reply_budget()) && gap.is_none() {
            gap = Some(ErrorCode::HistoryGap);
        }
        Ok(ReplyBody::Subscribe {
            channel: channel.clone(),
            seq: recovery.page.seq,
            epoch: recovery.page.epoch,
            recovered: Some(gap.is_none()),
            gap,
            publications: recovery.page.publications,
        })
    }

    /// The `history` command.
    pub(super) async fn history(
        &mut self,
        channel: ChannelName,
        since: Option<Seq>,
        limit: Option<u32>,
    ) -> Result<ReplyBody, CommandError> {
        let own = channel == self.handle.user.personal_channel();
        if !own && (channel.is_personal() || !self.claims.subscribe.allows(&channel)) {
            return fail(
                ErrorCode::PermissionDenied,
                format!("token may not read the history of {channel}"),
            );
        }
        // A user's own personal channel is its inbox: always readable.
        if !own {
            self.require_channel(Permission::History, &channel, "read its history")
                .await?;
        }
        if limit == Some(0) {
            return fail(
                ErrorCode::BadRequest,
                "limit must be at least 1 (leave it out for a full page)",
            );
        }
        let max = self.state.config.history.page;
        let limit = limit.map_or(max, |l| (l as usize).min(max));
        let mut page = self.state.broker.history(&channel, since, limit).await?;
        if truncate(&mut page.publications, self.reply_budget()) {
            page.more = true;
        }
        Ok(ReplyBody::History {
            channel,
            seq: page.seq,
            epoch: page.epoch,
            publications: page.publications,
            more: page.more,
        })
    }

    /// The `ack` command: direct messages up to `seq` were received.
    pub(super) async fn ack(&self, seq: Seq) -> Result<ReplyBody, CommandError> {
        let personal = self.handle.user.personal_channel();
        let (latest, epoch) = self.state.broker.position(&personal).await?;
        if seq > latest {
            return fail(
                ErrorCode::BadRequest,
                format!("seq {seq} is beyond the latest direct message ({latest})"),
            );
        }
        let acked = self
            .state
            .broker
            .ack(&self.handle.user, StreamPosition { seq, epoch })
            .await?;
        Ok(ReplyBody::Ack { seq: acked.seq })
    }

    /// Writes the direct messages the user has not acknowledged, oldest
    /// first, straight to the socket.
    pub(super) async fn deliver_backlog(&self, conn: &mut Conn) -> Result<(), WriteFailed> {
        let broker = &self.state.broker;
        let user = &self.handle.user;
        let personal = user.personal_channel();
        let backlog = async {
            let acked = broker.acked(user).await?;
            let (_, epoch) = broker.position(&personal).await?;
            let since = acked.filter(|a| a.epoch == epoch).map_or(0, |a| a.seq);
            broker
                .history(&personal, Some(since), self.state.config.history.page)
                .await
        };
        let page = match backlog.await {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(user = %user, error = %e, "direct-message backlog not delivered");
                return Ok(());
            }
        };
        for publication in page.publications {
            conn.send(&Push::Message(publication)).await?;
        }
        Ok(())
    }
}

/// Keeps the oldest messages that fit in `budget` bytes of data; returns
/// whether any were dropped.
fn truncate(publications: &mut Vec<Publication>, budget: usize) -> bool {
    let mut used = 0;
    let fits = publications
        .iter()
        .take_while(|p| {
            used += p.data.len() + 128;
            used <= budget
        })
        .count();
    let dropped = fits < publications.len();
    publications.truncate(fits);
    dropped
}
