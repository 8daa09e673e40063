//! Opening a connection: the [`DialSpec`] of connection `i` turned into
//! the client's [`ConnectOptions`] (source address, `Origin`, the token
//! in a header, the query or a first `connect` frame) and upgraded by
//! [`lean::upgrade`]; for Socket.IO the namespace handshake after it;
//! and failures classified for the report.

use std::io;
use std::net::IpAddr;

use tokenim_client::lean::{self, UpgradeError};
use tokenim_client::{Auth, ConnectOptions};
use tokenim_protocol::Codec;

use super::{AuthMode, Conn, ConnError, Reply, Target, TargetKind, eio, errno};

/// What one connection needs to dial.
#[derive(Debug, Clone, Copy)]
pub struct DialSpec<'a> {
    /// The gateway.
    pub target: &'a Target,
    /// Source address to bind before connecting; `None` lets the kernel
    /// choose.
    pub source: Option<IpAddr>,
    /// The codec (its subprotocol is requested).
    pub codec: Codec,
    /// How the token is presented.
    pub auth: AuthMode,
    /// The JWT.
    pub token: &'a str,
    /// Read buffer of the connection, bytes (allocated up front).
    pub read_buffer: usize,
    /// tokenim, or Socket.IO (no subprotocol, no token, the Engine.IO
    /// path and namespace handshake instead).
    pub kind: TargetKind,
    /// A CA certificate (PEM) to trust for `wss://`, besides the webpki
    /// roots.
    pub tls_ca: Option<&'a str>,
}

/// A failed dial, classified so the report can count failures by reason.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// The lean upgrade failed: a system call, an HTTP status, a bad
    /// handshake, or the connection closed before authentication finished.
    #[error(transparent)]
    Upgrade(UpgradeError),
    /// The gateway refused the `connect` command with this error code (or
    /// a Socket.IO server its namespace, `44`).
    #[error("connect refused with error {0}")]
    Refused(u16),
    /// Dial, upgrade and authentication together took longer than the
    /// connect timeout.
    #[error("timed out")]
    Timeout,
    /// No token could be had for this connection.
    #[error("token: {0}")]
    Token(String),
}

impl DialError {
    /// The connection closed before authentication finished.
    pub const CLOSED: DialError = DialError::Upgrade(UpgradeError::Closed);

    /// A short stable key for the failure table and the JSON report, e.g.
    /// `http_429`, `emfile`, `econnrefused`.
    pub fn reason(&self) -> String {
        match self {
            DialError::Upgrade(UpgradeError::Io { source, .. }) => io_reason(source),
            DialError::Upgrade(UpgradeError::Http { status }) => format!("http_{status}"),
            DialError::Upgrade(UpgradeError::Handshake(_)) => "websocket_handshake".into(),
            DialError::Upgrade(UpgradeError::Refused(code)) => {
                format!("connect_error_{}", code.code())
            }
            DialError::Refused(code) => format!("connect_error_{code}"),
            DialError::Upgrade(UpgradeError::Closed) => "closed_during_connect".into(),
            DialError::Timeout => "timeout".into(),
            DialError::Token(_) => "token".into(),
        }
    }

    /// Whether the generator ran out of file descriptors (EMFILE/ENFILE).
    pub fn is_out_of_files(&self) -> bool {
        let code = match self {
            DialError::Upgrade(UpgradeError::Io { source, .. }) => source.raw_os_error(),
            _ => None,
        };
        matches!(code, Some(errno::EMFILE | errno::ENFILE))
    }
}

impl From<UpgradeError> for DialError {
    fn from(e: UpgradeError) -> DialError {
        match e {
            UpgradeError::Refused(code) => DialError::Refused(code.code()),
            other => DialError::Upgrade(other),
        }
    }
}

impl From<ConnError> for DialError {
    fn from(e: ConnError) -> DialError {
        UpgradeError::from(e).into()
    }
}

/// The stable key for an OS error.
pub(super) fn io_reason(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(errno::EMFILE) => "emfile".into(),
        Some(errno::ENFILE) => "enfile".into(),
        Some(errno::EADDRNOTAVAIL) => "eaddrnotavail".into(),
        Some(errno::EADDRINUSE) => "eaddrinuse".into(),
        Some(errno::ECONNREFUSED) => "econnrefused".into(),
        Some(errno::ECONNRESET) => "econnreset".into(),
        Some(errno::ETIMEDOUT) => "etimedout".into(),
        Some(n) => format!("errno_{n}"),
        None => format!("io_{:?}", e.kind()).to_lowercase(),
    }
}

/// Opens one authenticated connection. The caller bounds the time.
pub async fn dial(spec: DialSpec<'_>) -> Result<Conn, DialError> {
    let mut conn = lean::upgrade(&options(&spec), spec.read_buffer).await?;
    if spec.kind == TargetKind::Socketio {
        conn.set_text_heartbeat(eio::PING, eio::PONG);
        eio::handshake(&mut conn).await?;
    }
    Ok(conn)
}

/// What the client crate needs to open connection `spec`: the target's
/// resolved address, the source address, `Origin`, and the token as the
/// auth mode says (Socket.IO: the Engine.IO path, no subprotocol, no
/// token).
fn options(spec: &DialSpec<'_>) -> ConnectOptions {
    let target = spec.target;
    let token = spec.token.to_owned();
    let (url, auth) = match spec.kind {
        TargetKind::Socketio => (
            format!("ws://{}{}", target.host, eio::upgrade_path(&target.path)),
            Auth::None,
        ),
        TargetKind::Tokenim => (
            target.url.clone(),
            match spec.auth {
                AuthMode::Header => Auth::Header(token),
                AuthMode::Query => Auth::Query(token),
                AuthMode::Frame => Auth::Frame(token),
            },
        ),
    };
    let options = ConnectOptions::new(url, spec.codec, auth)
        .addr(target.addr)
        .source(spec.source)
        .origin(target.origin())
        .subprotocol(spec.kind == TargetKind::Tokenim);
    match spec.tls_ca {
        Some(pem) => options.tls_ca_pem(pem.to_owned()),
        None => options,
    }
}

/// Reads messages until the reply to command `id`, skipping pushes (join
/// events arrive while a channel fills up). Messages after the reply stay
/// buffered in the connection.
pub async fn next_reply(conn: &mut Conn, id: u64) -> Result<Reply, DialError> {
    Ok(Reply::of(&lean::next_reply(conn, id).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_have_stable_reasons() {
        let emfile = DialError::Upgrade(UpgradeError::Io {
            stage: "socket",
            source: io::Error::from_raw_os_error(24),
        });
        assert_eq!(emfile.reason(), "emfile");
        assert!(emfile.is_out_of_files());
        let refused = DialError::Upgrade(UpgradeError::Http { status: 429 });
        assert_eq!(refused.reason(), "http_429");
    }

    #[test]
    fn options_follow_the_spec() {
        let target = Target::parse("ws://127.0.0.1:18080/ws", false).unwrap();
        let spec = DialSpec {
            target: &target,
            source: Some("127.0.0.3".parse().unwrap()),
            codec: Codec::MsgPack,
            auth: AuthMode::Query,
            token: "t",
            read_buffer: 1024,
            kind: TargetKind::Tokenim,
            tls_ca: None,
        };
        let o = options(&spec);
        assert_eq!(
            (o.url.as_str(), &o.auth),
            ("ws://127.0.0.1:18080/ws", &Auth::Query("t".into()))
        );
        assert_eq!(
            (o.addr, o.source, o.subprotocol),
            (Some(target.addr), spec.source, true)
        );
        assert_eq!(
            o.extra_headers,
            [("Origin".into(), "http://127.0.0.1:18080".into())]
        );
        let o = options(&DialSpec {
            kind: TargetKind::Socketio,
            ..spec
        });
        assert_eq!(o.url, format!("ws://127.0.0.1:18080{}", eio::PATH));
        assert_eq!((&o.auth, o.subprotocol), (&Auth::None, false));
    }
}
