//! A WebSocket session: one task per connection that owns the socket.
//!
//! [`run`] takes an upgraded socket through authentication (token from the
//! upgrade request, or a `connect` frame within the deadline), then serves
//! it: commands in, replies out, pushes from the [`Outbound`] queue written
//! in batches with one flush each, server pings, the idle timeout and the
//! token's expiry. Every way out closes with a [`DisconnectCode`] and leaves
//! the hub as it found it.
//!
//! * [`conn`]: frames in and out of the socket.
//! * [`auth`]: the wait for `connect`.
//! * [`commands`]: what each command does.
//! * [`outbound`]: the bounded queue fan-out writes into.
//! * [`handle`]: [`SessionHandle`], what the hub holds.
//! * [`rate`]: the publish rate limiter.

pub mod auth;
mod commands;
pub mod conn;
mod handle;
pub mod outbound;
pub mod rate;

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokenim_auth::UserClaims;
use tokenim_protocol::reply::Outcome;
use tokenim_protocol::{ChannelName, DisconnectCode, Reply, ReplyBody, SessionId};
use tokio::time::{Instant as TokioInstant, MissedTickBehavior};

pub use handle::SessionHandle;
pub use outbound::{Outbound, PushError};

use self::auth::AuthEnd;
use self::conn::{Conn, Incoming};
use self::rate::RateLimiter;
use crate::limiter::ConnPermit;
use crate::state::AppState;

/// Runs a session from the upgraded socket to its close. `claims` is set
/// when the upgrade request carried a valid token.
pub async fn run(
    mut conn: Conn,
    state: AppState,
    claims: Option<UserClaims>,
    permit: Arc<ConnPermit>,
) {
    let (connect_id, claims) = match claims {
        Some(claims) => (None, claims),
        None => match auth::await_connect(&mut conn, &state).await {
            Ok((id, claims)) => (Some(id), claims),
            Err(AuthEnd::Close(code)) => return conn.close(code).await,
            Err(AuthEnd::Gone) => return,
        },
    };
    let limits = &state.config.limits;
    let handle = Arc::new(SessionHandle {
        id: SessionId(state.next_session_id()),
        user: claims.user.clone(),
        codec: conn.codec(),
        outbound: Outbound::new(limits.outbound_queue_frames, limits.outbound_queue_bytes),
    });
    let mut session = Session {
        rate: RateLimiter::new(limits.publish_rate, limits.publish_burst),
        state: state.clone(),
        handle,
        claims,
        subscriptions: HashSet::new(),
        _permit: permit,
    };
    state.metrics.sessions.inc();
    let personal = session.handle.user.personal_channel();
    session.join_hub(&personal).await;
    tracing::debug!(session = %session.handle.id, user = %session.handle.user, "session open");

    let end = match connect_id {
        Some(id) => {
            let reply = Reply::ok(id, session.connect_body());
            match conn.send(&reply).await {
                Ok(()) => session.serve(&mut conn).await,
                Err(_) => End::Gone,
            }
        }
        None => session.serve(&mut conn).await,
    };

    session.leave_all(&personal).await;
    state.metrics.sessions.dec();
    tracing::debug!(session = %session.handle.id, ?end, "session closed");
    if let End::Close(code) = end {
        conn.close(code).await;
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

    /// When the token runs out, as a timer deadline.
    fn expiry(&self) -> Option<TokioInstant> {
        let exp = self.claims.expires_at?;
        let left = exp.saturating_sub(crate::unix_secs());
        Some(TokioInstant::now() + Duration::from_secs(left))
    }

    async fn serve(&mut self, conn: &mut Conn) -> End {
        let limits = self.state.config.limits.clone();
        let mut ping = tokio::time::interval_at(
            TokioInstant::now() + limits.ping_interval,
            limits.ping_interval,
        );
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let far_future = TokioInstant::now() + Duration::from_secs(86_400 * 365);
        let expiry = tokio::time::sleep_until(self.expiry().unwrap_or(far_future));
        tokio::pin!(expiry);
        let mut last_heard = Instant::now();
        let mut batch = VecDeque::new();
        let state = self.state.clone();
        loop {
            tokio::select! {
                biased;
                () = state.shutdown.cancelled() => return End::Close(DisconnectCode::Shutdown),
                () = self.handle.outbound.ready() => {
                    if let Some(code) = self.handle.outbound.take(&mut batch) {
                        // A closing session (e.g. a slow consumer) gets no backlog.
                        batch.clear();
                        return End::Close(code);
                    }
                    if conn.write_batch(&mut batch).await.is_err() {
                        return self.write_failed();
                    }
                }
                incoming = conn.recv() => {
                    last_heard = Instant::now();
                    let reply = match incoming {
                        Incoming::Command(frame) => {
                            self.state.metrics.command(frame.command.kind());
                            let refreshed = matches!(frame.command, tokenim_protocol::Command::Refresh { .. });
                            let reply = match self.handle(frame.command).await {
                                Ok(body) => Reply::ok(frame.id, body),
                                Err(e) => Reply::error(frame.id, e.code, e.message),
                            };
                            if refreshed && matches!(reply.outcome, Outcome::Result(_)) {
                                expiry.as_mut().reset(self.expiry().unwrap_or(far_future));
                            }
                            reply
                        }
                        Incoming::Invalid(id, e) => Reply::error(id, e.code(), e.to_string()),
                        Incoming::Control => {
                            if conn.flush().await.is_err() {
                                return End::Gone;
                            }
                            continue;
                        }
                        Incoming::Closed => return End::Gone,
                        Incoming::Violation(code) => return End::Close(code),
                    };
                    if let Outcome::Error(e) = &reply.outcome {
                        self.state.metrics.error(e.code);
                    }
                    if conn.send(&reply).await.is_err() {
                        return End::Gone;
                    }
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() >= limits.idle_timeout {
                        return End::Close(DisconnectCode::IdleTimeout);
                    }
                    if conn.ping().await.is_err() {
                        return End::Gone;
                    }
                }
                () = &mut expiry => return End::Close(DisconnectCode::TokenExpired),
            }
        }
    }

    /// A write blocked past the timeout or failed: the client is not
    /// reading. Counted as a slow consumer; the socket cannot carry a close.
    fn write_failed(&self) -> End {
        self.state.metrics.disconnect(DisconnectCode::SlowConsumer);
        End::Gone
    }

    /// Adds this session to a channel in the hub, and the node to the
    /// channel in the broker if it is the first local subscriber.
    async fn join_hub(&self, channel: &ChannelName) {
        if self.state.hub.subscribe(channel, &self.handle) {
            if let Err(e) = self.state.broker.subscribe(channel).await {
                tracing::warn!(channel = %channel, error = %e, "broker subscribe failed");
            }
        }
    }

    /// Removes this session from a channel in the hub (and the node from
    /// the broker if it was the last local subscriber).
    async fn leave_hub(&self, channel: &ChannelName) {
        if self.state.hub.unsubscribe(channel, self.handle.id) {
            if let Err(e) = self.state.broker.unsubscribe(channel).await {
                tracing::warn!(channel = %channel, error = %e, "broker unsubscribe failed");
            }
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
