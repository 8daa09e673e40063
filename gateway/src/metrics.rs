//! [`Metrics`]: every Prometheus collector of a node, registered once, named
//! `tokenim_*`. Label values come from closed sets (reasons, command kinds,
//! codes), never from user input, so cardinality stays bounded.
//!
//! Hot paths do not touch label maps: per-reason children are resolved
//! once here, and fan-out adds its delivery count once per publication.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};
use tokenim_protocol::{DisconnectCode, ErrorCode};

/// Why a TCP connection or upgrade was refused before a session started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// The node holds `limits.max_connections` connections.
    MaxConnections,
    /// The client IP holds `limits.max_connections_per_ip` connections.
    PerIpLimit,
    /// The `Origin` header is missing or not allowed.
    Origin,
    /// The upgrade request is not a valid WebSocket handshake, or asks
    /// for a subprotocol we do not speak.
    BadHandshake,
    /// The HTTP request did not arrive within `limits.handshake_timeout`.
    HandshakeTimeout,
    /// The node is draining.
    Draining,
}

impl Rejection {
    const ALL: [Rejection; 6] = [
        Rejection::MaxConnections,
        Rejection::PerIpLimit,
        Rejection::Origin,
        Rejection::BadHandshake,
        Rejection::HandshakeTimeout,
        Rejection::Draining,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Rejection::MaxConnections => "max_connections",
            Rejection::PerIpLimit => "per_ip_limit",
            Rejection::Origin => "origin",
            Rejection::BadHandshake => "bad_handshake",
            Rejection::HandshakeTimeout => "handshake_timeout",
            Rejection::Draining => "draining",
        }
    }
}

/// The node's collectors.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// TCP connections accepted.
    pub connections_accepted: IntCounter,
    /// Open TCP connections (HTTP and WebSocket).
    pub connections_open: IntGauge,
    /// Authenticated WebSocket sessions now open.
    pub sessions: IntGauge,
    rejected: IntCounterVec,
    auth_failures: IntCounterVec,
    commands: IntCounterVec,
    errors: IntCounterVec,
    disconnects: IntCounterVec,
    tls_reloads: IntCounterVec,
    tls_handshake_failures: IntCounterVec,
    /// Messages published (channel publishes and direct messages).
    pub publications: IntCounter,
    /// Frames queued to sessions by fan-out (one per subscriber reached).
    pub deliveries: IntCounter,
    /// Frames written to sockets (pushes and replies).
    pub frames_out: IntCounter,
    /// Socket writes (flushes); `frames_out / writes` is the batching factor.
    pub writes: IntCounter,
    /// Replies waiting for the broker (publishes queued to Redis).
    pub commands_in_flight: IntGauge,
    /// Channels with at least one local subscriber.
    pub channels: IntGauge,
    /// Channel subscriptions held by local sessions.
    pub subscriptions: IntGauge,
    /// Time of a publish through Redis, from queueing to the answer.
    pub redis_publish_seconds: Histogram,
    /// Publishes sent to Redis in one pipeline.
    pub redis_publish_batch: Histogram,
    /// Publishes that failed because Redis was unreachable or slow.
    pub redis_publish_failures: IntCounter,
    /// Times the subscriber connection to Redis was re-established.
    pub redis_reconnects: IntCounter,
    /// Channels subscribed again after a reconnect or a slot move.
    pub redis_resubscribes: IntCounter,
    /// Messages received from Redis pub/sub.
    pub redis_messages_received: IntCounter,
    /// Messages from Redis dropped because the inbound queue was full.
    pub redis_inbound_dropped: IntCounter,
    /// 1 while the Redis subscriber connection is up and answering probes.
    pub redis_ready: IntGauge,
    /// Probes of the subscriber connection Redis did not answer in time.
    pub redis_probe_timeouts: IntCounter,
    /// Redis Cluster masters that did not answer the last probe (the node
    /// stays ready while any shard answers).
    pub redis_shards_down: IntGauge,
    /// Times the node found it had missed messages of a channel (a jump in
    /// `seq`, or the channel moved on while the subscription was down).
    pub redis_missed: IntCounter,
    /// Missed messages the node delivered from the channel's history.
    pub redis_refilled: IntCounter,
    /// Sessions sent a `gap` push: messages lost to them, or a new epoch.
    pub redis_gaps_told: IntCounter,
    /// Messages from Redis dropped as already delivered (at or below the
    /// channel's last delivered `seq`).
    pub redis_duplicates: IntCounter,
    /// `/v1` requests refused (429) by a rate limit, by limit (`key`,
    /// `ip`, `auth_failures`).
    pub api_rate_limited: IntCounterVec,
    /// Failed authentications counted into an audit record already written
    /// for their source, reason and minute (instead of a record each).
    pub audit_failures_folded: IntCounter,
    /// Audit records deleted by retention (`audit.max_records`,
    /// `audit.max_age`).
    pub audit_records_deleted: IntCounter,
}

impl Metrics {
    /// Creates and registers every collector.
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            g
        };
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
                .expect("valid metric");
            registry
                .register(Box::new(h.clone()))
                .expect("unique metric");
            h
        };
        let vec = |name: &str, help: &str, label: &str| {
            let v = IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric");
            registry
                .register(Box::new(v.clone()))
                .expect("unique metric");
            v
        };
        let m = Self {
            connections_accepted: counter(
                "tokenim_connections_accepted_total",
                "TCP connections accepted",
            ),
            connections_open: gauge(
                "tokenim_connections_open",
                "Open TCP connections (HTTP and WebSocket)",
            ),
            sessions: gauge("tokenim_sessions", "Authenticated WebSocket sessions open"),
            rejected: vec(
                "tokenim_connections_rejected_total",
                "Connections or upgrades refused, by reason",
                "reason",
            ),
            auth_failures: vec(
                "tokenim_auth_failures_total",
                "Failed authentications, by reason",
                "reason",
            ),
            commands: vec(
                "tokenim_commands_total",
                "Client commands received, by type",
                "command",
            ),
            errors: vec(
                "tokenim_command_errors_total",
                "Error replies sent, by error name",
                "error",
            ),
            disconnects: vec(
                "tokenim_disconnects_total",
                "Sessions closed by the server, by reason",
                "reason",
            ),
            tls_reloads: vec(
                "tokenim_tls_reloads_total",
                "Loads of the listener's certificate and key after start, by result",
                "result",
            ),
            tls_handshake_failures: vec(
                "tokenim_tls_handshake_failures_total",
                "TLS handshakes on the listener that failed, by reason",
                "reason",
            ),
            publications: counter(
                "tokenim_publications_total",
                "Messages published (channels and direct)",
            ),
            deliveries: counter(
                "tokenim_deliveries_total",
                "Pushes queued to subscribers by fan-out",
            ),
            frames_out: counter("tokenim_frames_out_total", "Frames written to WebSockets"),
            writes: counter(
                "tokenim_socket_writes_total",
                "Batched socket writes (one flush each)",
            ),
            commands_in_flight: gauge(
                "tokenim_commands_in_flight",
                "Replies waiting for the broker (publishes queued to Redis)",
            ),
            channels: gauge("tokenim_channels", "Channels with local subscribers"),
            subscriptions: gauge(
                "tokenim_subscriptions",
                "Channel subscriptions held by local sessions",
            ),
            redis_publish_seconds: histogram(
                "tokenim_redis_publish_seconds",
                "Publish through Redis, from queueing to the answer",
                vec![
                    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
                    0.25, 1.0,
                ],
            ),
            redis_publish_batch: histogram(
                "tokenim_redis_publish_batch",
                "Publishes sent to Redis in one pipeline",
                vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
            ),
            redis_publish_failures: counter(
                "tokenim_redis_publish_failures_total",
                "Publishes that failed: Redis unreachable or slow",
            ),
            redis_reconnects: counter(
                "tokenim_redis_reconnects_total",
                "Redis subscriber connection re-established",
            ),
            redis_resubscribes: counter(
                "tokenim_redis_resubscribes_total",
                "Channels subscribed again after a reconnect or slot move",
            ),
            redis_messages_received: counter(
                "tokenim_redis_messages_received_total",
                "Messages received from Redis pub/sub",
            ),
            redis_inbound_dropped: counter(
                "tokenim_redis_inbound_dropped_total",
                "Messages from Redis dropped: inbound queue full",
            ),
            redis_ready: gauge(
                "tokenim_redis_ready",
                "1 while the Redis subscriber connection is up and answering probes",
            ),
            redis_probe_timeouts: counter(
                "tokenim_redis_probe_timeouts_total",
                "Probes of the Redis subscriber connection not answered in time",
            ),
            redis_shards_down: gauge(
                "tokenim_redis_shards_down",
                "Redis Cluster masters that did not answer the last probe",
            ),
            redis_missed: counter(
                "tokenim_redis_missed_total",
                "Times the node found it had missed messages of a channel",
            ),
            redis_refilled: counter(
                "tokenim_redis_refilled_total",
                "Missed messages delivered from the channel's history",
            ),
            redis_gaps_told: counter(
                "tokenim_redis_gaps_told_total",
                "Sessions sent a gap push (messages lost to them, or a new epoch)",
            ),
            redis_duplicates: counter(
                "tokenim_redis_duplicates_total",
                "Messages from Redis dropped as already delivered",
            ),
            api_rate_limited: vec(
                "tokenim_api_rate_limited_total",
                "Server API requests refused by a rate limit, by limit",
                "limit",
            ),
            audit_failures_folded: counter(
                "tokenim_audit_failures_folded_total",
                "Failed authentications counted into an existing audit record",
            ),
            audit_records_deleted: counter(
                "tokenim_audit_records_deleted_total",
                "Audit records deleted by retention",
            ),
            registry,
        };
        // Pre-create every known child so dashboards see zeros, not gaps.
        for r in Rejection::ALL {
            m.rejected.with_label_values(&[r.label()]);
        }
        for reason in tokenim_auth::TokenError::REASONS.iter().chain(&["timeout"]) {
            m.auth_failures.with_label_values(&[reason]);
        }
        for &c in DisconnectCode::ALL {
            m.disconnects.with_label_values(&[disconnect_label(c)]);
        }
        for limit in ["key", "ip", "auth_failures"] {
            m.api_rate_limited.with_label_values(&[limit]);
        }
        for result in ["ok", "error"] {
            m.tls_reloads.with_label_values(&[result]);
        }
        for reason in ["timeout", "error"] {
            m.tls_handshake_failures.with_label_values(&[reason]);
        }
        m
    }

    /// Counts a load of the TLS certificate after start: `ok` (now in
    /// service) or `error` (the previous one stays).
    pub fn tls_reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.tls_reloads.with_label_values(&[result]).inc();
    }

    /// Counts a failed TLS handshake: `timeout` (not done within
    /// `limits.handshake_timeout`) or `error` (the client hung up or
    /// rejected the certificate, or did not speak TLS).
    pub fn tls_handshake_failure(&self, timed_out: bool) {
        let reason = if timed_out { "timeout" } else { "error" };
        self.tls_handshake_failures
            .with_label_values(&[reason])
            .inc();
    }

    /// Counts a refused connection.
    pub fn rejected(&self, why: Rejection) {
        self.rejected.with_label_values(&[why.label()]).inc();
    }

    /// Counts a failed authentication (`reason` from a closed set).
    pub fn auth_failure(&self, reason: &'static str) {
        self.auth_failures.with_label_values(&[reason]).inc();
    }

    /// Counts a received command by its type.
    pub fn command(&self, kind: &'static str) {
        self.commands.with_label_values(&[kind]).inc();
    }

    /// Counts an error reply.
    pub fn error(&self, code: ErrorCode) {
        self.errors.with_label_values(&[code.name()]).inc();
    }

    /// Counts a server-initiated close.
    pub fn disconnect(&self, code: DisconnectCode) {
        self.disconnects
            .with_label_values(&[disconnect_label(code)])
            .inc();
    }

    /// The Prometheus text exposition of every collector.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding into a Vec cannot fail");
        String::from_utf8(buf).expect("Prometheus text is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The disconnect reason as a label: `slow consumer` → `slow_consumer`.
fn disconnect_label(code: DisconnectCode) -> &'static str {
    match code {
        DisconnectCode::Shutdown => "shutdown",
        DisconnectCode::SlowConsumer => "slow_consumer",
        DisconnectCode::IdleTimeout => "idle_timeout",
        DisconnectCode::TokenExpired => "token_expired",
        DisconnectCode::AuthTimeout => "auth_timeout",
        DisconnectCode::InvalidToken => "invalid_token",
        DisconnectCode::ProtocolViolation => "protocol_violation",
        DisconnectCode::MessageTooLarge => "message_too_large",
        DisconnectCode::TokenRevoked => "token_revoked",
        DisconnectCode::Banned => "banned",
        _ => "internal",
    }
}
