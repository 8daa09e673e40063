//! The tokenim wire protocol: every frame that crosses a WebSocket, the
//! stable error and close codes, and the two codecs that put frames on the
//! wire. This crate does no I/O; the gateway, the client and the load
//! generator all speak through it, so there is one definition of each frame.
//!
//! # Layout
//!
//! * [`ids`]: validated names ([`ChannelName`], [`UserId`]) and plain ids.
//! * [`command`]: what a client sends ([`ClientFrame`] = id + [`Command`]).
//! * [`reply`]: the one answer to each command ([`Reply`]: result or error).
//! * [`push`]: what the server sends unasked ([`Push`]: message, join,
//!   leave, disconnect).
//! * [`data`]: the application payload ([`Data`], any JSON value).
//! * [`error_code`]: [`ErrorCode`], the only place reply error codes live.
//! * [`disconnect`]: [`DisconnectCode`], the only place close codes live.
//! * [`codec`]: [`Codec`] (JSON text frames or MessagePack binary frames),
//!   chosen by WebSocket subprotocol.
//! * [`error`]: [`DecodeError`] and [`EncodeError`].
//! * [`envelope`]: [`Envelope`], what crosses Redis between gateway nodes.
//!
//! The wire format is specified, with an example of every frame in both
//! codecs, in `docs/PROTOCOL.md` at the root of the repository.
//!
//! ```
//! use tokenim_protocol::{ClientFrame, Codec, Command};
//!
//! let frame = Codec::Json
//!     .decode_client(br#"{"id":7,"type":"subscribe","channel":"rooms.lobby"}"#)
//!     .unwrap();
//! assert_eq!(frame.id, 7);
//! assert!(matches!(frame.command, Command::Subscribe { .. }));
//! ```

pub mod codec;
pub mod command;
pub mod data;
pub mod disconnect;
pub mod envelope;
pub mod error;
pub mod error_code;
pub mod ids;
pub mod push;
pub mod reply;

pub use codec::Codec;
pub use command::{ClientFrame, Command, StreamPosition};
pub use data::Data;
pub use disconnect::{Disconnect, DisconnectCode};
pub use envelope::{Envelope, EnvelopeBody};
pub use error::{DecodeError, EncodeError};
pub use error_code::ErrorCode;
pub use ids::{ChannelName, CommandId, Seq, SessionId, UserId};
pub use push::{Gap, Presence, Publication, Push};
pub use reply::{ErrorBody, Outcome, PresenceEntry, Reply, ReplyBody, ServerFrame};

/// Milliseconds since the Unix epoch, the unit of every timestamp on the wire.
pub type Millis = u64;
