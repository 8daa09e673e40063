//! tokenim-loadtest: the load generator for tokenim gateways. It drives
//! one node or several with connection storms, idle connections and
//! broadcast traffic, and reports what users would feel: connect times,
//! deliveries per second, loss, order and publish-to-delivery latency
//! (HDR histograms, measured from the *intended* send time), next to the
//! generator's own CPU use so a saturated generator is not mistaken for a
//! slow server.
//!
//! The binary is a thin shell over [`cli::Cli`]; the scenarios are plain
//! async functions, so the crate's tests run them against a real gateway.
//!
//! ```no_run
//! # async fn run() {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use tokenim_loadtest::progress::Control;
//! use tokenim_loadtest::runner::Setup;
//! use tokenim_loadtest::scenario::broadcast::{self, BroadcastParams};
//!
//! let setup = Arc::new(Setup::local("ws://127.0.0.1:8080/ws").unwrap());
//! let params = BroadcastParams::new(100, 1, 50.0, Duration::from_secs(5));
//! let report = broadcast::run(setup, &params, &Control::quiet()).await.unwrap();
//! assert_eq!(report.get("lost"), 0.0);
//! # }
//! ```
//!
//! # Layout
//!
//! * [`cli`]: subcommands and flags, validation, Ctrl-C, output.
//! * [`scenario`]: one module per scenario ([`scenario::connect`],
//!   [`scenario::idle`], [`scenario::broadcast`], [`scenario::ramp`],
//!   [`scenario::chat`] for `rooms` and `direct`) and what they share.
//! * [`runner`]: [`runner::Setup`] (targets, source addresses, tokens),
//!   [`runner::storm`] (open N connections at a rate with bounded
//!   concurrency), connection counters, the stop signal.
//! * [`wire`]: connection `i` on the client crate's lean transport
//!   (`tokenim_client::lean`: dial from a source address, upgrade with
//!   Origin and token, decode only what is measured), failures classified
//!   for the report, commands built from `tokenim_protocol::Command`, and
//!   Socket.IO framing on the same transport.
//! * [`token`]: minted or file-provided JWTs.
//! * [`report`]: [`report::RunReport`] (its JSON schema), histograms,
//!   the summary table, `compare`.
//! * [`progress`]: the live line and [`progress::Control`].
//! * [`sys`]: open-file limit, CPU time, RSS from `/proc`.
//! * [`worker`]: `--workers N`: child processes, their start barrier,
//!   and the merge of their results.

pub mod cli;
pub mod progress;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod sys;
pub mod token;
pub mod wire;
pub mod worker;
