//! A WebSocket session: one task per connection that owns the socket.
//!
//! [`run`] takes an upgraded socket through authentication (token from the
//! upgrade request, or a `connect` frame within the deadline), then serves
//! it: commands in, replies out, pushes from the [`Outbound`](crate::hub::Outbound) queue written
//! in batches with one flush each, server pings, the idle timeout and the
//! token's expiry. Every way out closes with a [`DisconnectCode`] and leaves
//! the hub as it found it.
//!
//! * [`conn`]: frames in and out of the socket.
//! * [`auth`]: the wait for `connect`.
//! * [`commands`]: what each command does, asking
//!   [`access`](crate::access) for the checks of roles, grants, group
//!   membership and the publish rules; [`inflight`]: replies that wait for
//!   the broker, in command order.
//! * the session's [`SessionHandle`](crate::hub::SessionHandle) and its
//!   bounded outbound queue live in [`hub`](crate::hub), which holds them.
//! * [`rate`]: the publish rate limiter.

pub mod auth;
mod commands;
pub mod conn;
mod error;
mod history;
mod inflight;
mod serve;

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use tokenim_auth::{Permission, UserClaims};
use tokenim_protocol::{ChannelName, DisconnectCode, Reply, ReplyBody, SessionId};

use crate::hub::{Outbound, SessionHandle};

use self::auth::AuthEnd;
use self::conn::Conn;
use self::error::CommandError;
use std::net::IpAddr;

use crate::access::{self, Admitted, UserView};
use crate::limiter::ConnPermit;
use crate::rate::RateLimiter;
use crate::state::AppState;

/// Runs a session from the upgraded socket to its close. `admitted` is set
/// when the upgrade request carried a token that was verified and admitted
/// ([`crate::access::admit`]).
///
/// Memory matters here: every open connection keeps this future alive. So
/// the arguments are consumed into a boxed opening step before the returned
/// future exists, the connection and session state sit in one heap block,
/// and rarely taken steps (authentication, commands, closing) run in boxed
/// futures that exist only while they run.
pub fn run(
    conn: Conn,
    state: AppState,
    admitted: Option<Box<Admitted>>,
    client: IpAddr,
    permit: Arc<ConnPermit>,
) -> impl Future<Output = ()> + Send {
    let opening = Box::pin(open(conn, state, admitted, client, permit));
    async move {
        let Some(mut live) = opening.await else {
            return;
        };
        let Live { conn, session, .. } = &mut *live;
        let serving = Box::pin(session.serve(conn));
        let end = serving.await;
        let closing = Box::pin(live.finish(end));
        closing.await;
    }
}

/// An authenticated connection: the socket and the session state.
#[derive(Debug)]
struct Live {
    conn: Conn,
    session: Session,
    personal: ChannelName,
}

/// Authenticates (unless the upgrade request already did), registers the
/// session and greets the client. `None` if the connection ended.
async fn open(
    mut conn: Conn,
    state: AppState,
    admitted: Option<Box<Admitted>>,
    client: IpAddr,
    permit: Arc<ConnPermit>,
) -> Option<Box<Live>> {
    let (connect_id, Admitted { claims, view }) = match admitted {
        Some(admitted) => (None, *admitted),
        None => match auth::await_connect(&mut conn, &state, client).await {
            Ok((id, admitted)) => (Some(id), admitted),
            Err(AuthEnd::Close(code)) => {
                conn.close(code).await;
                return None;
            }
            Err(AuthEnd::Gone) => return None,
        },
    };
    let limits = &state.config.limits;
    let handle = Arc::new(SessionHandle {
        id: SessionId(state.next_session_id()),
        user: claims.user.clone(),
        codec: conn.codec(),
        outbound: Outbound::new(limits.outbound_queue_frames, limits.outbound_queue_bytes),
    });
    let session = Session {
        rate: RateLimiter::new(limits.publish_rate, limits.publish_burst),
        state: state.clone(),
        handle,
        claims,
        view,
        subscriptions: HashSet::new(),
        _permit: permit,
    };
    state.metrics.sessions.inc();
    let personal = session.handle.user.personal_channel();
    session.join_hub(&personal).await;
    tracing::debug!(session = %session.handle.id, user = %session.handle.user, "session open");
    let mut live = Box::new(Live {
        conn,
        session,
        personal,
    });
    let greeted = match connect_id {
        Some(id) => {
            let reply = Reply::ok(id, live.session.connect_body());
            live.conn.send(&reply).await.is_ok()
        }
        None => true,
    };
    let Live { conn, session, .. } = &mut *live;
    if !greeted || session.deliver_backlog(conn).await.is_err() {
        live.finish(End::Gone).await;
        return None;
    }
    Some(live)
}

impl Live {
    /// Leaves every channel, then closes the socket if there is a code.
    async fn finish(self: Box<Self>, end: End) {
        let Live {
            conn,
            mut session,
            personal,
        } = *self;
        session.leave_all(&personal).await;
        session.state.metrics.sessions.dec();
        tracing::debug!(session = %session.handle.id, ?end, "session closed");
        if let End::Close(code) = end {
            conn.close(code).await;
        }
    }
}

/// How the serving loop ended.
#[derive(Debug)]
enum End {
    /// Close the socket with this code.
    Close(DisconnectCode),
    /// The peer is gone or the socket failed.
    Gone,
}

/// An authenticated session's state.
#[derive(Debug)]
struct Session {
    state: AppState,
    handle: Arc<SessionHandle>,
    claims: UserClaims,
    /// Roles, revocation and memberships, as of an access version.
    view: UserView,
    subscriptions: HashSet<ChannelName>,
    rate: RateLimiter,
    /// Released (one connection fewer for this IP) when the session ends.
    _permit: Arc<ConnPermit>,
}

impl Session {
    fn connect_body(&self) -> ReplyBody {
        ReplyBody::Connect {
            user: self.handle.user.clone(),
            session: self.handle.id,
            expires_at: self.claims.expires_at.map(|s| s * 1000),
            ping_interval_ms: self.state.config.limits.ping_interval.as_millis() as u64,
        }
    }

    /// A write blocked past the timeout or failed: the client is not
    /// reading. Counted as a slow consumer; the socket cannot carry a close.
    fn write_failed(&self) -> End {
        self.state.metrics.disconnect(DisconnectCode::SlowConsumer);
        End::Gone
    }

    /// Fails with `1104 permission_denied` unless the user's roles or
    /// grants allow `permission` (on `channel`; for `send`, the target's
    /// personal channel).
    fn require(
        &self,
        permission: Permission,
        channel: Option<&ChannelName>,
    ) -> Result<(), CommandError> {
        let principal = self.view.principal(&self.handle.user);
        Ok(access::require(
            &self.state.access.policy(),
            &principal,
            permission,
            channel,
        )?)
    }

    /// [`Session::require`] on `channel` unless the token's claim names it
    /// (`channels` for everything but publish, `publish` for publish), and
    /// membership on a group channel ([`UserView::require_channel`]).
    async fn require_channel(
        &mut self,
        permission: Permission,
        channel: &ChannelName,
        action: &str,
    ) -> Result<(), CommandError> {
        let claim = match permission {
            Permission::Publish => &self.claims.publish,
            _ => &self.claims.subscribe,
        };
        let claimed = claim.grants(channel);
        let policy = self.state.access.policy();
        let (store, user) = (&self.state.store, &self.handle.user);
        Ok(self
            .view
            .require_channel(&policy, store, user, permission, channel, claimed, action)
            .await?)
    }

    /// Reloads the user's access when the access version moved (or, at a
    /// ping, when the last read failed). `Err` holds the code to close with.
    async fn sync_access(&mut self, retry: bool) -> Result<(), DisconnectCode> {
        let state = &self.state;
        let synced = self
            .view
            .sync(&state.access, &state.store, &self.claims, retry)
            .await;
        synced.map_err(|refusal| {
            tracing::debug!(session = %self.handle.id, user = %self.handle.user, ?refusal, "closing: access withdrawn");
            refusal.close_code()
        })
    }

    /// Adds this session to a channel in the hub, and the node to the
    /// channel in the broker if it is the first local subscriber.
    async fn join_hub(&self, channel: &ChannelName) {
        if self.state.hub.subscribe(channel, &self.handle) {
            self.state.broker.subscribe(channel).await;
        }
    }

    /// Removes this session from a channel in the hub (and the node from
    /// the broker if it was the last local subscriber).
    async fn leave_hub(&self, channel: &ChannelName) {
        if self.state.hub.unsubscribe(channel, self.handle.id) {
            self.state.broker.unsubscribe(channel).await;
        }
    }

    /// Leaves every channel, telling the others in each.
    async fn leave_all(&mut self, personal: &ChannelName) {
        for channel in std::mem::take(&mut self.subscriptions) {
            self.leave_channel(&channel).await;
        }
        self.leave_hub(personal).await;
    }
}
