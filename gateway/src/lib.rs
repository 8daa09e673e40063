//! The tokenim gateway: WebSocket sessions, the local hub of
//! subscriptions, the broker between nodes, and the HTTP endpoints.
//!
//! # Layout
//!
//! From the top down; a module imports only modules listed below it
//! (never one above), so a reader knows what each one may touch.
//!
//! * [`cli`]: the `tokenim` command line.
//! * [`server`]: [`Server`], the accept loop and drain ([`shutdown_signal`]).
//! * [`tls`]: [`tls::Tls`], the listener's TLS acceptor, reloaded on SIGHUP
//!   or when the certificate files change.
//! * [`api`]: HTTP routes: `/ws` upgrade, health, metrics, demo page, dev
//!   tokens, and the server API `/v1` (its OpenAPI document included).
//! * [`session`]: one task per WebSocket: auth, commands, replies in order,
//!   the writer draining the session's outbound queue.
//! * [`state`]: [`state::AppState`], what the node's tasks share, built once.
//! * [`bootstrap`]: the first admin API key.
//! * [`guard`]: rate limits of the server API and failed authentications
//!   folded into the audit log.
//! * [`import`]: request bodies (JSON, CSV, JSON lines) → validated users and groups.
//! * [`access`]: access control in one place: the node's copy of roles and
//!   grants, each session's view of its user, the permission checks and the
//!   publish rules, for the socket and the server API alike.
//! * [`store`]: users, groups, keys, policy, audit, jobs: embedded,
//!   PostgreSQL or Redis.
//! * [`broker`]: how publications reach every node's hub (in-process or Redis).
//! * [`redis`]: Redis connections, the command timeout and every key name,
//!   for the broker and the store alike.
//! * [`hub`]: channel → local subscribers ([`hub::SessionHandle`]), each with
//!   its bounded outbound queue; encode once, queue everywhere.
//! * [`limiter`]: per-node and per-IP connection bounds, and
//!   [`limiter::ConnInfo`], what each request learns of its connection.
//! * [`proxy`]: trusted proxies, and so a request's client address.
//! * [`rate`]: token buckets, one or a bounded table of them by key.
//! * [`stream`]: [`stream::Stream`], plaintext TCP or TLS, under every
//!   connection.
//! * [`wire`]: frames → WebSocket messages, once per codec; what a
//!   connection frames within.
//! * [`schema`]: OpenAPI stand-ins for types of `tokenim-protocol` and
//!   `tokenim-auth`, named by stored records and API bodies alike.
//! * [`telemetry`]: structured logging.
//! * [`config`]: [`Config`], every setting with its default; file + env + flags.
//! * [`metrics`]: the `tokenim_*` Prometheus collectors.
//! * [`clock`]: wall-clock time as the store and the wire write it.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use tokenim_gateway::{Config, Server};
//! let config = Config { listen: "127.0.0.1:0".parse()?, ..Config::default() };
//! let server = Server::bind(config).await?;
//! println!("listening on {}", server.local_addr());
//! server.run(tokenim_gateway::shutdown_signal()).await;
//! # Ok(()) }
//! ```

pub mod access;
pub mod api;
pub mod bootstrap;
pub mod broker;
pub mod cli;
pub mod clock;
pub mod config;
pub mod guard;
pub mod hub;
pub mod import;
pub mod limiter;
pub mod metrics;
pub mod proxy;
pub mod rate;
pub mod redis;
pub mod schema;
pub mod server;
pub mod session;
pub mod state;
pub mod store;
pub mod stream;
pub mod telemetry;
pub mod tls;
pub mod wire;

pub use clock::{unix_millis, unix_secs};
pub use config::Config;
pub use server::{Server, shutdown_signal};
