//! The serving loop of an authenticated session: one `select!` over
//! shutdown, the outbound queue, the replies waiting for the broker
//! ([`super::inflight`]), the socket, and one timer that covers both the
//! ping schedule and the token's expiry. Before each command, and at
//! each ping, the session catches up with access changes
//! ([`super::access`]), which may close it (4503, 4504).

use std::collections::VecDeque;
use std::time::Duration;

use tokenim_protocol::reply::Outcome;
use tokenim_protocol::{Command, DisconnectCode, Reply};
use tokio::time::Instant;

use super::conn::{Conn, Incoming, WriteFailed};
use super::inflight::{Answer, InFlight};
use super::{End, Session};

/// A deadline far enough away to mean "never".
const NEVER: Duration = Duration::from_secs(86_400 * 365);

/// What handling one incoming frame asks of the loop.
enum Flow {
    /// Keep serving.
    Continue,
    /// The token was replaced: recompute the expiry.
    Refreshed,
    /// Stop.
    End(End),
}

impl Session {
    /// When the token runs out.
    fn expiry(&self) -> Instant {
        match self.claims.expires_at {
            Some(exp) => {
                Instant::now() + Duration::from_secs(exp.saturating_sub(crate::clock::unix_secs()))
            }
            None => Instant::now() + NEVER,
        }
    }

    /// Serves until the connection ends.
    pub(super) async fn serve(&mut self, conn: &mut Conn) -> End {
        let state = self.state.clone();
        let limits = &state.config.limits;
        let mut expiry = self.expiry();
        let mut next_ping = Instant::now() + limits.ping_interval;
        let timer = tokio::time::sleep_until(next_ping.min(expiry));
        tokio::pin!(timer);
        let mut last_heard = Instant::now();
        let mut batch = VecDeque::new();
        let mut in_flight = InFlight::default();
        loop {
            tokio::select! {
                biased;
                () = state.shutdown.cancelled() => return End::Close(DisconnectCode::Shutdown),
                () = self.handle.outbound.ready() => {
                    if !limits.write_delay.is_zero() {
                        // Let more frames gather for this write.
                        tokio::time::sleep(limits.write_delay).await;
                    }
                    if let Some(code) = self.handle.outbound.take(&mut batch) {
                        // A closing session (e.g. a slow consumer) gets no backlog.
                        batch.clear();
                        return End::Close(code);
                    }
                    let write = Box::pin(conn.write_batch(&mut batch));
                    if write.await.is_err() {
                        return self.write_failed();
                    }
                }
                reply = in_flight.next(), if !in_flight.is_empty() => {
                    // Boxed with the reply in it: this loop's own state
                    // (kept by every connection) holds one pointer.
                    let write = Box::pin(self.reply(conn, reply));
                    if write.await.is_err() {
                        return End::Gone;
                    }
                }
                incoming = conn.recv(), if in_flight.len() < limits.max_commands_in_flight => {
                    last_heard = Instant::now();
                    let handling = Box::pin(self.on_incoming(conn, incoming, &mut in_flight));
                    match handling.await {
                        Flow::Continue => {}
                        Flow::Refreshed => {
                            expiry = self.expiry();
                            timer.as_mut().reset(next_ping.min(expiry));
                        }
                        Flow::End(end) => return end,
                    }
                }
                () = &mut timer => {
                    let now = Instant::now();
                    if now >= expiry {
                        return End::Close(DisconnectCode::TokenExpired);
                    }
                    if now >= next_ping {
                        if now.duration_since(last_heard) >= limits.idle_timeout {
                            return End::Close(DisconnectCode::IdleTimeout);
                        }
                        let ping = Box::pin(conn.ping());
                        if ping.await.is_err() {
                            return End::Gone;
                        }
                        next_ping = now + limits.ping_interval;
                        // An idle session learns of a ban or revocation too.
                        if let Err(code) = Box::pin(self.sync_access(true)).await {
                            return End::Close(code);
                        }
                    }
                    timer.as_mut().reset(next_ping.min(expiry));
                }
            }
        }
    }

    /// Handles one frame from the client: runs a command and replies (or
    /// queues the reply behind those still waiting), or answers a bad
    /// frame, or notes a close.
    async fn on_incoming(
        &mut self,
        conn: &mut Conn,
        incoming: Incoming,
        in_flight: &mut InFlight,
    ) -> Flow {
        let mut flow = Flow::Continue;
        let reply = match incoming {
            Incoming::Command(frame) => {
                self.state.metrics.command(frame.command.kind());
                if let Err(code) = self.sync_access(false).await {
                    return Flow::End(End::Close(code));
                }
                let refresh = matches!(frame.command, Command::Refresh { .. });
                match self.handle(frame.command).await {
                    Ok(Answer::Now(body)) => {
                        if refresh {
                            flow = Flow::Refreshed;
                        }
                        Reply::ok(frame.id, body)
                    }
                    Ok(Answer::Later(later)) => {
                        in_flight.push_later(
                            frame.id,
                            later,
                            &self.state.metrics.commands_in_flight,
                        );
                        return flow;
                    }
                    Err(e) => Reply::error(frame.id, e.code, e.message),
                }
            }
            Incoming::Invalid(id, e) => Reply::error(id, e.code(), e.to_string()),
            Incoming::Control => {
                // tungstenite queued a pong; send it now.
                return match conn.flush().await {
                    Ok(()) => Flow::Continue,
                    Err(_) => Flow::End(End::Gone),
                };
            }
            Incoming::Closed => return Flow::End(End::Gone),
            Incoming::Violation(code) => return Flow::End(End::Close(code)),
        };
        if !in_flight.is_empty() {
            // Replies leave in command order.
            in_flight.push_ready(reply, &self.state.metrics.commands_in_flight);
            return flow;
        }
        match self.reply(conn, reply).await {
            Ok(()) => flow,
            Err(_) => Flow::End(End::Gone),
        }
    }

    /// Writes a reply, counting it if it is an error.
    async fn reply(&self, conn: &mut Conn, reply: Reply) -> Result<(), WriteFailed> {
        if let Outcome::Error(e) = &reply.outcome {
            self.state.metrics.error(e.code);
        }
        conn.send(&reply).await
    }
}
