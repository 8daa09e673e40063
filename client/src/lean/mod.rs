//! The lean transport: one raw WebSocket per connection, owned by one
//! task, read into a reused buffer and decoded only as far as the caller
//! needs. The load generator drives thousands of these.
//!
//! [`crate::Client`] is the full client (a request table, an event queue,
//! two tasks per connection). A load generator holding 10,000 sockets and
//! receiving a million messages a second needs less: one task per
//! connection that owns its socket, a source address bound before
//! connecting (to spread over 127.0.0.x), and a receive path that costs a
//! `read` per batch of frames and a few hundred nanoseconds per message.
//! It connects with the same [`ConnectOptions`] and the same upgrade
//! request as the full client.
//!
//! * [`upgrade`](dial::upgrade): TCP (optionally from
//!   [`ConnectOptions::source`]), the upgrade with the codec's
//!   subprotocol, `Origin` and the token, and for [`crate::Auth::Frame`]
//!   the `connect` round trip; [`next_reply`] and [`encode`] for the
//!   commands that follow.
//! * [`conn`]: [`Conn`], the upgraded socket: raw reads, framing from
//!   [`ws`], pings (and a text heartbeat) answered, close codes, masked
//!   writes.
//! * [`ws`]: RFC 6455 framing on tungstenite's frame types, without I/O.
//! * [`scan`]: `channel`, `seq` and the payload's `t` read straight from a
//!   `message` push's bytes in either codec, checked against the full
//!   decode.
//!
//! ```no_run
//! use tokenim_client::{Auth, ConnectOptions, lean};
//! use tokenim_client::protocol::Codec;
//!
//! # async fn run() -> Result<(), lean::UpgradeError> {
//! let options = ConnectOptions::new("ws://127.0.0.1:8080/ws", Codec::Json, Auth::Header("<jwt>".into()))
//!     .source(Some("127.0.0.2".parse().unwrap()))
//!     .origin("http://127.0.0.1:8080");
//! let mut conn = lean::upgrade(&options, 8 * 1024).await?;
//! conn.read_some(|message| {
//!     if let Some(m) = lean::scan::message(Codec::Json, message) {
//!         println!("seq {}", m.seq);
//!     }
//! })
//! .await?;
//! # Ok(())
//! # }
//! ```

pub mod conn;
pub mod dial;
pub mod scan;
pub mod ws;

pub use conn::{Conn, ConnError, MAX_MESSAGE, Stream};
pub use dial::{UpgradeError, encode, next_reply, upgrade};
