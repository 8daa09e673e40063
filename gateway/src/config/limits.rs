//! [`Limits`]: every bound a node enforces, each with its default and what
//! hitting it does.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Every bound the gateway enforces. Each has a default that suits a
/// public chat service; raise them deliberately.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Open TCP connections (HTTP and WebSocket) per node; more are answered
    /// `503` and closed. Default 100,000. The process's file limit also
    /// caps this: raise `ulimit -n` too.
    pub max_connections: usize,
    /// Open TCP connections per client IP; more are answered `429`
    /// (on a TLS listener, over either limit: closed without an answer).
    /// Default 1,000.
    pub max_connections_per_ip: usize,
    /// Time a new connection has to send its HTTP request headers (with
    /// `tls`, to finish the TLS handshake and then send them); a slow or
    /// silent socket is closed. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// Time a WebSocket has to authenticate (token in the upgrade request
    /// or a `connect` frame); then it is closed with 4004. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub auth_timeout: Duration,
    /// Largest WebSocket frame payload accepted from a client; larger ones
    /// close the connection with 4502. Default 64 KiB.
    pub max_frame_size: usize,
    /// Largest WebSocket message (all frames of one message) accepted from
    /// a client; larger ones close the connection with 4502. Default 64 KiB.
    pub max_message_size: usize,
    /// Largest `data` of a publish or send, in bytes of compact JSON; larger
    /// ones get error 1004. Default 16 KiB.
    pub max_data_size: usize,
    /// Bytes read from a socket at a time; this buffer is allocated per
    /// connection up front, so it is most of an idle connection's memory.
    /// Default 512 (tungstenite's own default is 128 KiB).
    pub read_buffer_size: usize,
    /// Bytes of outgoing frames gathered before a socket write, within one
    /// batch; every batch ends with a flush anyway. Default 16 KiB.
    pub write_buffer_size: usize,
    /// Bytes of outgoing frames a connection may hold unwritten (socket
    /// buffer full) before it is closed as a slow consumer. Default 512 KiB.
    pub max_write_buffer_size: usize,
    /// Frames waiting to be written to one connection; when full the
    /// connection is closed with 4001 (slow consumer). Default 1,024.
    pub outbound_queue_frames: usize,
    /// Bytes waiting to be written to one connection; when exceeded the
    /// connection is closed with 4001. Default 1 MiB.
    pub outbound_queue_bytes: usize,
    /// How long one write to a socket may block before the connection is
    /// dropped as a slow consumer. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub write_timeout: Duration,
    /// How long a session waits, once something is queued for it, before
    /// writing, so that more frames join the same write (one system call
    /// for several messages). Trades up to this much latency for CPU on
    /// busy channels. Default `0s` (write at once).
    #[serde(with = "humantime_serde")]
    pub write_delay: Duration,
    /// Channels one connection may subscribe to (its personal channel not
    /// counted); more get error 1202. Default 128.
    pub max_subscriptions: usize,
    /// Replies one connection may have waiting for the broker (publishes
    /// and sends through Redis are queued and answered later, in command
    /// order); at this many the connection's commands are not read until
    /// the oldest is answered. Default 64.
    pub max_commands_in_flight: usize,
    /// Sustained publishes (publish and send) per second per connection;
    /// more get error 1203. Default 50.
    pub publish_rate: f64,
    /// Publishes a connection may make in a burst above the rate. Default 100.
    pub publish_burst: f64,
    /// Channels with more local subscribers than this get no `join` /
    /// `leave` pushes on this node (each join would cost a push to every
    /// subscriber: quadratic in the channel's size); clients of large
    /// channels use the `presence` command instead. Default 100.
    pub max_join_leave_subscribers: usize,
    /// Interval of server WebSocket pings. Default `25s`.
    #[serde(with = "humantime_serde")]
    pub ping_interval: Duration,
    /// A connection that sends nothing (no frame, no pong) for this long
    /// is closed with 4002. Default `60s`; must exceed `ping_interval`.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 100_000,
            max_connections_per_ip: 1_000,
            handshake_timeout: Duration::from_secs(10),
            auth_timeout: Duration::from_secs(10),
            max_frame_size: 64 << 10,
            max_message_size: 64 << 10,
            max_data_size: 16 << 10,
            read_buffer_size: 512,
            write_buffer_size: 16 << 10,
            max_write_buffer_size: 512 << 10,
            outbound_queue_frames: 1_024,
            outbound_queue_bytes: 1 << 20,
            write_timeout: Duration::from_secs(10),
            write_delay: Duration::ZERO,
            max_subscriptions: 128,
            max_commands_in_flight: 64,
            publish_rate: 50.0,
            publish_burst: 100.0,
            max_join_leave_subscribers: 100,
            ping_interval: Duration::from_secs(25),
            idle_timeout: Duration::from_secs(60),
        }
    }
}
