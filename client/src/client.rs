//! [`Client`]: one connection to a gateway. Connect, send commands and
//! await their replies, read pushes, close.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokenim_protocol::{
    ChannelName, ClientFrame, Codec, Command, CommandId, Data, Millis, PresenceEntry, Push,
    ReplyBody, Seq, SessionId, StreamPosition, UserId, reply::Outcome,
};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::Utf8Bytes;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::connection::Connection;
use crate::{Auth, CloseInfo, ConnectOptions, Error, Event, handshake};

/// What the server said when a `connect` command authenticated the
/// connection ([`Auth::Frame`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectInfo {
    /// Who the token says this connection is.
    pub user: UserId,
    /// The connection's id on the gateway.
    pub session: SessionId,
    /// When the token expires (ms since the epoch), if it does; refresh
    /// before then.
    pub expires_at: Option<Millis>,
    /// How often the server pings.
    pub ping_interval: Duration,
}

/// One connection to a tokenim gateway.
///
/// Requests take `&self`, so several may be in flight at once (for example
/// with `futures::future::join_all`); their replies are matched by id.
/// Everything else the server sends is read with [`Client::next_event`] or
/// [`Client::next_push`]. Dropping the client drops the connection without
/// a close handshake; [`Client::close`] closes it properly.
#[derive(Debug)]
pub struct Client {
    codec: Codec,
    request_timeout: Duration,
    /// Ids start at 1: the server uses 0 for frames whose id it could not
    /// read.
    next_id: AtomicU64,
    session: Option<ConnectInfo>,
    conn: Connection,
}

impl Client {
    /// Connects, upgrades to WebSocket with the codec's subprotocol and
    /// authenticates as [`ConnectOptions::auth`] says.
    ///
    /// With [`Auth::Frame`] this sends the `connect` command and waits for
    /// its reply, kept as [`Client::session`]. With [`Auth::Header`] or
    /// [`Auth::Query`] the server checks the token during the upgrade, so a
    /// returned client is already authenticated. The whole call is bounded
    /// by [`ConnectOptions::request_timeout`].
    ///
    /// # Errors
    ///
    /// [`Error::Http`] if the server refused the upgrade (401 for a refused
    /// header or query token), [`Error::Server`] if it refused the
    /// `connect` command, [`Error::WebSocket`] for network and handshake
    /// failures, [`Error::Timeout`].
    pub async fn connect(options: ConnectOptions) -> Result<Client, Error> {
        timeout(options.request_timeout, Self::establish(options))
            .await
            .map_err(|_| Error::Timeout)?
    }

    async fn establish(options: ConnectOptions) -> Result<Client, Error> {
        let ws = handshake::upgrade(&options).await?;
        let mut client = Client {
            codec: options.codec,
            request_timeout: options.request_timeout,
            next_id: AtomicU64::new(1),
            session: None,
            conn: Connection::start(ws, options.codec, options.push_buffer),
        };
        if let Auth::Frame(token) = options.auth {
            match client.request(Command::Connect { token }).await? {
                ReplyBody::Connect {
                    user,
                    session,
                    expires_at,
                    ping_interval_ms,
                } => {
                    client.session = Some(ConnectInfo {
                        user,
                        session,
                        expires_at,
                        ping_interval: Duration::from_millis(ping_interval_ms),
                    });
                }
                other => return Err(Error::UnexpectedReply(other)),
            }
        }
        Ok(client)
    }

    /// The `connect` reply, when the connection authenticated with
    /// [`Auth::Frame`]; `None` for header, query or no auth.
    pub fn session(&self) -> Option<&ConnectInfo> {
        self.session.as_ref()
    }

    /// The connection's codec.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Sends a command and waits up to
    /// [`ConnectOptions::request_timeout`] for its reply.
    ///
    /// # Errors
    ///
    /// [`Error::Server`] for an error reply, [`Error::Closed`] if the
    /// connection is or becomes closed, [`Error::Timeout`],
    /// [`Error::Decode`] if the reply is unreadable.
    pub async fn request(&self, command: Command) -> Result<ReplyBody, Error> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let message = self.encode(id, command)?;
        let mut waiter = self.conn.register(id)?;
        let reply = timeout(self.request_timeout, async {
            self.conn.send(message).await?;
            waiter.reply().await
        })
        .await
        .map_err(|_| Error::Timeout)??;
        match reply.outcome {
            Outcome::Result(body) => Ok(body),
            Outcome::Error(error) => Err(Error::Server(error)),
        }
    }

    fn encode(&self, id: CommandId, command: Command) -> Result<Message, Error> {
        let bytes = self.codec.encode(&ClientFrame { id, command })?;
        Ok(if self.codec.is_text() {
            let text = Utf8Bytes::try_from(bytes)
                .map_err(|e| tokenim_protocol::EncodeError(e.to_string()))?;
            Message::Text(text)
        } else {
            Message::Binary(bytes)
        })
    }

    /// Subscribes to a channel; returns the channel's latest sequence
    /// (messages above it will be delivered).
    pub async fn subscribe(&self, channel: &ChannelName) -> Result<Seq, Error> {
        let command = Command::Subscribe {
            channel: channel.clone(),
            since: None,
        };
        match self.request(command).await? {
            ReplyBody::Subscribe { seq, .. } => Ok(seq),
            other => Err(Error::UnexpectedReply(other)),
        }
    }

    /// Subscribes, recovering what was missed since `since` (when given):
    /// the whole `subscribe` result, with the recovered messages in
    /// `publications`.
    pub async fn subscribe_from(
        &self,
        channel: &ChannelName,
        since: Option<StreamPosition>,
    ) -> Result<ReplyBody, Error> {
        let command = Command::Subscribe {
            channel: channel.clone(),
            since,
        };
        match self.request(command).await? {
            body @ ReplyBody::Subscribe { .. } => Ok(body),
            other => Err(Error::UnexpectedReply(other)),
        }
    }

    /// Reads a channel's history: the last `limit` messages, or the first
    /// `limit` after `since`. The whole `history` result.
    pub async fn history(
        &self,
        channel: &ChannelName,
        since: Option<Seq>,
        limit: Option<u32>,
    ) -> Result<ReplyBody, Error> {
        let command = Command::History {
            channel: channel.clone(),
            since,
            limit,
        };
        match self.request(command).await? {
            body @ ReplyBody::History { .. } => Ok(body),
            other => Err(Error::UnexpectedReply(other)),
        }
    }

    /// Confirms direct messages up to `seq` of the personal channel.
    pub async fn ack(&self, seq: Seq) -> Result<Seq, Error> {
        match self.request(Command::Ack { seq }).await? {
            ReplyBody::Ack { seq } => Ok(seq),
            other => Err(Error::UnexpectedReply(other)),
        }
    }

    /// Unsubscribes from a channel.
    pub async fn unsubscribe(&self, channel: &ChannelName) -> Result<(), Error> {
        let command = Command::Unsubscribe {
            channel: channel.clone(),
        };
        match self.request(command).await? {
            ReplyBody::Unsubscribe { .. } => Ok(()),
            other => Err(Error::UnexpectedReply(other)),
        }
    }

    /// Publishes to a channel; returns the sequence the message was given.
    pub async fn publish(&self, channel: &ChannelName, data: Data) -> Result<Seq, Error> {
        self.publish_with_id(channel, data, None).await
    }

    /// Publishes with a client message id: a retry with the same id within
    /// the server's idempotency window publishes nothing new and returns
    /// the first one's sequence.
    pub async fn publish_with_id(
        &self,
        channel: &ChannelName,
        data: Data,
        msg_id: Option<String>,
    ) -> Result<Seq, Error> {
        let command = Command::Publish {
            channel: channel.clone(),
            data,
            msg_id,
        };
        match self.request(command).await? {
            ReplyBody::Publish { seq, .. } => Ok(seq),
            other => Err(Error::UnexpectedReply(other)),
        }
    }

    /// Sends a direct message to a user; returns its sequence in the
    /// recipient's personal channel.
    pub async fn send(&self, to: &UserId, data: Data) -> Result<Seq, Error> {
        let command = Command::Send {
            to: to.clone(),
            data,
        };
        match self.request(command).await? {
            ReplyBody::Send { seq, .. } => Ok(seq),
            other => Err(Error::UnexpectedReply(other)),
        }
    }

    /// Application-level ping: a round trip through the server's command
    /// path.
    pub async fn ping(&self) -> Result<(), Error> {
        match self.request(Command::Ping {}).await? {
            ReplyBody::Ping {} => Ok(()),
            other => Err(Error::UnexpectedReply(other)),
        }
    }

    /// Who is subscribed to `channel` on every node: each user with its
    /// number of subscribed connections, sorted by user id.
    pub async fn presence(&self, channel: &ChannelName) -> Result<Vec<PresenceEntry>, Error> {
        let command = Command::Presence {
            channel: channel.clone(),
        };
        match self.request(command).await? {
            ReplyBody::Presence { users, .. } => Ok(users),
            other => Err(Error::UnexpectedReply(other)),
        }
    }

    /// Replaces the connection's token; returns the new expiry (ms since
    /// the epoch), if it has one.
    pub async fn refresh(&self, token: impl Into<String>) -> Result<Option<Millis>, Error> {
        let command = Command::Refresh {
            token: token.into(),
        };
        match self.request(command).await? {
            ReplyBody::Refresh { expires_at } => Ok(expires_at),
            other => Err(Error::UnexpectedReply(other)),
        }
    }

    /// Queues any WebSocket message as is, e.g. a malformed frame or a
    /// frame of the wrong type, for tests. The answer, if any, arrives as
    /// [`Event::Reply`] (no request waits for it).
    pub async fn send_raw(&self, message: Message) -> Result<(), Error> {
        self.conn.send(message).await
    }

    /// The next push or unclaimed reply, in the order the server sent
    /// them. `None` once the connection has ended and every event was read;
    /// [`Client::close_info`] then says how it ended.
    pub async fn next_event(&mut self) -> Option<Event> {
        self.conn.next_event().await
    }

    /// The next push, skipping (and logging) unclaimed replies; `None` as
    /// for [`Client::next_event`]. Use `next_event` after
    /// [`Client::send_raw`] to see the replies too.
    pub async fn next_push(&mut self) -> Option<Push> {
        loop {
            match self.next_event().await? {
                Event::Push(push) => return Some(push),
                Event::Reply(reply) => {
                    tracing::warn!(id = reply.id, "next_push skipped an unclaimed reply");
                }
            }
        }
    }

    /// Reads and drops events until the connection ends, then returns the
    /// server's close code and reason (`None` if it ended without a close
    /// frame). This is how a test waits for a close code; bound it with
    /// `tokio::time::timeout`.
    pub async fn closed(&mut self) -> Option<CloseInfo> {
        while self.next_event().await.is_some() {}
        self.close_info()
    }

    /// The code and reason of the server's close frame, once one arrived.
    /// Set before [`Client::next_event`] returns `None`.
    pub fn close_info(&self) -> Option<CloseInfo> {
        self.conn.close_info()
    }

    /// Closes the connection with a normal (1000) close frame and waits, up
    /// to [`ConnectOptions::request_timeout`], for the server to finish the
    /// close handshake. Unread events are dropped. Closing a connection the
    /// server already closed succeeds.
    pub async fn close(mut self) -> Result<(), Error> {
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: Utf8Bytes::default(),
        };
        if self.conn.send(Message::Close(Some(frame))).await.is_err() {
            return Ok(());
        }
        self.conn.stop_events();
        timeout(self.request_timeout, self.conn.reader_done())
            .await
            .map_err(|_| Error::Timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Callers spawn client futures on a multi-threaded runtime.
    #[allow(dead_code)]
    fn futures_are_send(client: &mut Client, lobby: &ChannelName) {
        fn send<T: Send>(_: T) {}
        send(client.publish(lobby, Data::from_json("1").unwrap()));
        send(client.next_event());
        send(Client::connect(ConnectOptions::new(
            "ws://h/ws",
            Codec::Json,
            Auth::None,
        )));
    }

    #[test]
    fn client_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Client>();
    }
}
