//! The generator's side of the wire, on the client crate's lean
//! transport ([`tokenim_client::lean`]: one raw WebSocket per simulated
//! user, dialled from a chosen source address, read into a reused buffer
//! and decoded only as far as the measurements need).
//!
//! * [`Target`]: one gateway URL, resolved once, with the `Origin` header
//!   the gateway accepts for it.
//! * [`dial`](dial::dial): connection `i`'s [`DialSpec`] as the client's
//!   `ConnectOptions` (source address, `Origin`, token as [`AuthMode`]
//!   says), upgraded by `lean::upgrade`; [`DialError`], failures
//!   classified for the report.
//! * [`Conn`], [`ConnError`], [`scan`]: the lean transport's connection
//!   and its `message` scanner, re-exported.
//! * [`eio`]: Socket.IO 4 / Engine.IO 4 for `--target socketio`, on the
//!   same transport: the namespace handshake, subscribe and publish
//!   packets, and the scan of a room message's `seq` and stamp.
//! * [`frame`]: commands out (`tokenim_protocol::Command` through the
//!   codec), [`Reply`] read from the protocol's decode of a reply,
//!   [`Stamp`], the payload that carries its intended send time.

pub mod dial;
pub mod eio;
pub mod frame;

pub use dial::{DialError, DialSpec, dial, next_reply};
pub use frame::{Reply, Stamp, ack, publish, reply, send, subscribe};
pub use tokenim_client::lean::{Conn, ConnError, scan};

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use serde::{Deserialize, Serialize};
use tokenim_client::tungstenite::client::IntoClientRequest;

/// `errno` values the generator names in its failure table.
mod errno {
    pub(super) const ENFILE: i32 = 23;
    pub(super) const EMFILE: i32 = 24;
    pub(super) const EADDRINUSE: i32 = 98;
    pub(super) const EADDRNOTAVAIL: i32 = 99;
    pub(super) const ECONNRESET: i32 = 104;
    pub(super) const ETIMEDOUT: i32 = 110;
    pub(super) const ECONNREFUSED: i32 = 111;
}

/// How a connection presents its token (see `docs/PROTOCOL.md`,
/// Authentication).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// `Authorization: Bearer` on the upgrade request: checked before the
    /// `101`, no extra round trip. The default.
    Header,
    /// `?token=` in the URL.
    Query,
    /// A first `connect` command after the upgrade: one more round trip,
    /// counted in the connect time.
    Frame,
}

/// What kind of server the generator talks to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// A tokenim gateway: its protocol, codecs and tokens. The default.
    #[default]
    Tokenim,
    /// A Socket.IO 4 server (Engine.IO 4 over WebSocket, no tokens), for
    /// side-by-side comparisons; see [`eio`]. `connect`, `idle` and
    /// `broadcast` only.
    Socketio,
}

impl TargetKind {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            TargetKind::Tokenim => "tokenim",
            TargetKind::Socketio => "socketio",
        }
    }
}

/// One gateway endpoint, resolved once at start.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL as given, e.g. `ws://127.0.0.1:8080/ws` (or `wss://`).
    pub url: String,
    /// Whether the URL is `wss://` (TLS).
    pub tls: bool,
    /// The address dialled.
    pub addr: SocketAddr,
    /// The `Host` header: the URL's `host[:port]`.
    pub host: String,
    /// Path and query of the upgrade request, e.g. `/ws`.
    pub path: String,
    /// `http://<host:port>`: the gateway accepts its own host as origin.
    origin: String,
}

/// Why a target or source address was refused before any traffic.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The URL is not `ws[s]://host[:port]/path`.
    #[error("{url}: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The host resolves to an address outside loopback and
    /// `--allow-remote` was not given.
    #[error(
        "{url} resolves to {addr}, which is not a loopback address; load is only sent to 127.0.0.0/8 or ::1 unless --allow-remote is given"
    )]
    NotLoopback {
        /// The URL as given.
        url: String,
        /// The address it resolved to.
        addr: IpAddr,
    },
}

impl Target {
    /// Parses and resolves a `ws://` or `wss://` URL. Unless `allow_remote`, every
    /// address it resolves to must be loopback.
    pub fn parse(url: &str, allow_remote: bool) -> Result<Target, TargetError> {
        let bad = |reason: &str| TargetError::BadUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let request = url.into_client_request().map_err(|e| bad(&e.to_string()))?;
        let uri = request.uri();
        let tls = match uri.scheme_str() {
            Some("ws") => false,
            Some("wss") => true,
            _ => return Err(bad("only ws:// and wss:// URLs are supported")),
        };
        let host = uri.host().ok_or_else(|| bad("no host"))?;
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .ok_or_else(|| bad("no host"))?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = (bare, port)
            .to_socket_addrs()
            .map_err(|e| bad(&format!("cannot resolve: {e}")))?
            .collect();
        let addr = *addrs.first().ok_or_else(|| bad("resolves to nothing"))?;
        if !allow_remote {
            if let Some(remote) = addrs.iter().find(|a| !a.ip().is_loopback()) {
                return Err(TargetError::NotLoopback {
                    url: url.to_owned(),
                    addr: remote.ip(),
                });
            }
        }
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let scheme = if tls { "https" } else { "http" };
        Ok(Target {
            url: url.to_owned(),
            tls,
            addr,
            host: authority.clone(),
            path,
            origin: format!("{scheme}://{authority}"),
        })
    }

    /// The `Origin` header sent with every upgrade.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_only_unless_allowed() {
        let t = Target::parse("ws://127.0.0.1:18080/ws", false).unwrap();
        assert_eq!(t.origin(), "http://127.0.0.1:18080");
        assert_eq!(
            (t.host.as_str(), t.path.as_str()),
            ("127.0.0.1:18080", "/ws")
        );
        assert_eq!(t.addr, "127.0.0.1:18080".parse().unwrap());
        assert!(Target::parse("ws://[::1]:9/ws", false).is_ok());
        let e = Target::parse("ws://10.1.2.3:8080/ws", false).unwrap_err();
        assert!(matches!(e, TargetError::NotLoopback { .. }), "{e}");
        assert!(Target::parse("ws://10.1.2.3:8080/ws", true).is_ok());
        let t = Target::parse("wss://127.0.0.1/ws", false).unwrap();
        assert!(t.tls);
        assert_eq!(t.addr, "127.0.0.1:443".parse().unwrap());
        assert_eq!(t.origin(), "https://127.0.0.1");
        assert!(!Target::parse("ws://127.0.0.1/ws", false).unwrap().tls);
        assert!(Target::parse("http://127.0.0.1/ws", false).is_err());
    }
}
