//! The tokenim Rust client: connect to a gateway over WebSocket,
//! authenticate, send commands and receive pushes. The gateway's
//! integration tests and the load generator both use it, so there is one
//! client.
//!
//! A [`Client`] owns one connection. Commands are sent with
//! [`Client::request`] (or a typed helper such as [`Client::publish`]) and
//! resolve to the server's reply; several requests may be in flight at once.
//! Everything the server sends unasked arrives, in order, through
//! [`Client::next_event`] (or [`Client::next_push`], which yields pushes
//! only).
//!
//! ```no_run
//! use tokenim_client::{Auth, Client, ConnectOptions};
//! use tokenim_client::protocol::{ChannelName, Codec, Data, Push};
//!
//! # async fn run() -> Result<(), tokenim_client::Error> {
//! let options = ConnectOptions::new(
//!     "ws://127.0.0.1:8080/ws",
//!     Codec::Json,
//!     Auth::Frame("<jwt>".into()),
//! );
//! let mut client = Client::connect(options).await?;
//! let lobby = ChannelName::new("rooms.lobby").unwrap();
//! client.subscribe(&lobby).await?;
//! let seq = client.publish(&lobby, Data::from_json(r#"{"text":"hi"}"#).unwrap()).await?;
//! if let Some(Push::Message(message)) = client.next_push().await {
//!     assert_eq!(message.seq, seq);
//! }
//! client.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Backpressure
//!
//! One background task reads the socket. It hands replies to the requests
//! waiting for them and queues everything else in a bounded queue of
//! [`ConnectOptions::push_buffer`] events. When that queue is full the task
//! waits, so a client that stops calling [`Client::next_event`] stops
//! reading its socket and looks like a slow consumer to the server. Replies
//! queued behind those unread frames wait too: keep draining events while
//! requests are in flight.
//!
//! # Closing
//!
//! When the server ends the connection it usually sends a
//! `disconnect` push and then a close frame with a code in 4000–4999.
//! Once every event has been read, [`Client::next_event`] returns `None` and
//! [`Client::close_info`] holds the close frame's code and reason;
//! [`Client::closed`] does both in one call.
//!
//! # Layout
//!
//! * [`options`]: [`ConnectOptions`] and [`Auth`], what to connect to and how
//!   to authenticate.
//! * [`client`]: [`Client`], the public handle: connect, request, events,
//!   close.
//! * [`resume`]: [`Resuming`], a client that reconnects with backoff and
//!   jitter and resumes every channel from its last position.
//! * [`event`]: [`Event`] (a push or an unclaimed reply) and [`CloseInfo`].
//! * [`lean`]: the lean transport the load generator drives: one raw
//!   socket per connection, a reused read buffer, framing on tungstenite's
//!   frame types, and a scan of `message` pushes that decodes nothing
//!   else; it upgrades with the same request as [`Client`].
//! * `handshake`: the HTTP upgrade. `handshake::request` builds the
//!   request and opens the TCP connection (source address, resolved
//!   address) for both upgrades; the full client's speaks TLS first for
//!   `wss://` (rustls, webpki roots plus [`ConnectOptions::tls_ca_pem`])
//!   and keeps the body of a refused one. The lean upgrade is `ws://`
//!   only.
//! * `connection`: the reader and writer tasks and the table of waiting
//!   requests.
//! * [`error`]: [`Error`], one enum for every failure.

pub mod client;
mod connection;
pub mod error;
pub mod event;
mod handshake;
pub mod lean;
pub mod options;
pub mod resume;

pub use client::{Client, ConnectInfo};
pub use error::Error;
pub use event::{CloseInfo, Event};
pub use options::{Auth, ConnectOptions};
pub use resume::{Resumed, Resuming};

/// The wire protocol this client speaks, re-exported so callers need no
/// separate dependency.
pub use tokenim_protocol as protocol;
/// The WebSocket library underneath, re-exported for
/// [`Client::send_raw`], [`Error::WebSocket`] and
/// [`ConnectOptions::websocket`].
pub use tokio_tungstenite::tungstenite;
