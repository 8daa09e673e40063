//! The `tokenim-loadtest` command line: one subcommand per scenario plus
//! `compare`, and dispatch to the chosen scenario. The flags are in
//! `args` (shared ones, `connect`, `idle`, `compare`) and [`traffic`]
//! (`broadcast`, `ramp`) and [`chat`] (`rooms`, `direct`); setup, Ctrl-C, the summary table and the JSON
//! file in `launch`.

mod args;
pub mod chat;
mod launch;
pub mod traffic;

pub use args::{CodecArg, Common, CompareArgs, ConnectArgs, IdleArgs, parse_duration};
pub use chat::{ChatArgs, DirectArgs, RoomsArgs};
pub use traffic::{BroadcastArgs, FanoutArgs, RampArgs};

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use self::launch::{Step, check, compare_files, count, finish, rate, start};
use crate::scenario::{connect, idle};
use crate::sys;

/// Longest `--duration` accepted: every run is bounded.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// Most connections (or subscribers) one run may ask for.
pub const MAX_CONNECTIONS: usize = 1_000_000;
/// Most publishers one broadcast may ask for.
pub const MAX_PUBLISHERS: usize = 10_000;
/// Highest total rate accepted (messages or connections per second).
pub const MAX_RATE: f64 = 10_000_000.0;

/// tokenim-loadtest: drive a tokenim gateway with realistic load and report
/// what its users would feel.
///
/// Every run is bounded by --duration and its counts, sends traffic only to
/// loopback addresses unless --allow-remote is given, and prints a summary
/// (also on Ctrl-C). Add --json FILE for a machine-readable result that
/// `compare` reads.
#[derive(Debug, Parser)]
#[command(name = "tokenim-loadtest", version, about, long_about)]
pub struct Cli {
    /// The scenario to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Connection storm: open N connections at rate R, authenticate, hold
    /// them until --duration; connect-time percentiles and failures by
    /// reason.
    Connect(ConnectArgs),
    /// Hold N idle connections (answering the gateway's pings) for
    /// --duration; with --gateway-pid, the gateway's memory per connection.
    Idle(IdleArgs),
    /// S subscribers on one channel, P publishers at a total rate R;
    /// deliveries/s, loss, duplicates, order, and publish-to-delivery
    /// latency from the intended send time.
    Broadcast(BroadcastArgs),
    /// Broadcast at a rising rate (×--factor per --step) until delivery
    /// p99 exceeds --p99-ms or messages are lost; every step and the knee
    /// (the highest rate that passed).
    Ramp(RampArgs),
    /// Many small rooms: users spread over --rooms channels, each active
    /// user publishing to its room at --rate-per-user (Poisson, skewed
    /// sizes); delivery latency, loss and rates.
    Rooms(RoomsArgs),
    /// Users sending each other direct messages (`send`) at
    /// --rate-per-user, to random recipients; delivery latency, loss and
    /// rates.
    Direct(DirectArgs),
    /// Compare two --json results: every shared figure with its change.
    Compare(CompareArgs),
}

impl Cli {
    /// The flags shared by every scenario (`None` for `compare`).
    pub fn common(&self) -> Option<&Common> {
        match &self.command {
            Command::Connect(a) => Some(&a.common),
            Command::Idle(a) => Some(&a.common),
            Command::Broadcast(a) => Some(&a.common),
            Command::Ramp(a) => Some(&a.common),
            Command::Rooms(a) => Some(&a.common),
            Command::Direct(a) => Some(&a.common),
            Command::Compare(_) => None,
        }
    }

    /// How long the workers of this run may take to be ready (`None`:
    /// no start barrier).
    fn setup_bound(&self) -> Option<Duration> {
        match &self.command {
            Command::Broadcast(a) => Some(a.fanout.setup_timeout + a.common.connect_timeout),
            Command::Rooms(a) => Some(a.chat.setup_timeout + a.common.connect_timeout),
            Command::Direct(a) => Some(a.chat.setup_timeout + a.common.connect_timeout),
            _ => None,
        }
    }

    /// Worker threads the runtime should have.
    pub fn threads(&self) -> usize {
        self.common()
            .and_then(|c| c.threads)
            .unwrap_or_else(sys::available_cores)
            .max(1)
    }

    /// Runs the command; the exit code is 0 on success, 1 when the run
    /// could not start or a file could not be read or written, 2 for bad
    /// arguments.
    pub async fn run(self) -> ExitCode {
        match self.execute().await {
            Ok(code) | Err(code) => code,
        }
    }

    async fn execute(self) -> Step<ExitCode> {
        let threads = self.threads();
        if let Some(common) = self.common() {
            let supported = matches!(
                self.command,
                Command::Connect(_) | Command::Idle(_) | Command::Broadcast(_)
            );
            if common.target == crate::wire::TargetKind::Socketio && !supported {
                return launch::usage(
                    "--target socketio supports connect, idle and broadcast only",
                );
            }
        }
        if let Some(common) = self.common() {
            if let Some(text) = &common.worker {
                crate::worker::set_role(
                    crate::worker::Role::parse(text).or_else(|e| launch::usage(&e))?,
                );
            } else if common.workers > 1 {
                if matches!(self.command, Command::Ramp(_)) {
                    return launch::usage(
                        "ramp does not run as --workers (each step would need its own barrier); run one generator per core instead",
                    );
                }
                return launch::run_workers(common, self.setup_bound()).await;
            }
        }
        match self.command {
            Command::Compare(args) => compare_files(&args),
            Command::Connect(args) => {
                check(count("--connections", args.connections, MAX_CONNECTIONS))?;
                check(rate("--rate", args.rate, true))?;
                let params = connect::ConnectParams {
                    connections: args.connections,
                    rate: args.rate,
                    duration: args.duration,
                    gateway_pid: args.common.gateway_pid,
                    threads,
                };
                let (setup, control) = start(&args.common, args.duration, args.connections)?;
                let report = connect::run(setup, &params, &control).await;
                finish(&report, &args.common)
            }
            Command::Idle(args) => {
                check(count("--connections", args.connections, MAX_CONNECTIONS))?;
                check(rate("--rate", args.rate, true))?;
                let params = idle::IdleParams {
                    connections: args.connections,
                    rate: args.rate,
                    duration: args.duration,
                    settle: args.settle,
                    gateway_pid: args.common.gateway_pid,
                    threads,
                };
                let (setup, control) = start(&args.common, args.duration, args.connections)?;
                let report = idle::run(setup, &params, &control).await;
                finish(&report, &args.common)
            }
            Command::Broadcast(args) => traffic::run_broadcast(args, threads).await,
            Command::Ramp(args) => traffic::run_ramp(args, threads).await,
            Command::Rooms(args) => {
                if args.rooms == 0 || args.rooms > args.chat.users {
                    return launch::usage("--rooms must be between 1 and --users");
                }
                chat::run_chat(&args.chat, args.rooms, &args.common, threads).await
            }
            Command::Direct(args) => chat::run_chat(&args.chat, 0, &args.common, threads).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenim_protocol::Codec;

    #[test]
    fn the_command_line_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "tokenim-loadtest",
            "broadcast",
            "-s",
            "10",
            "--rate",
            "500",
            "--url",
            "ws://127.0.0.1:1/ws",
            "--url",
            "ws://127.0.0.2:1/ws",
            "--codec",
            "msgpack",
            "--threads",
            "3",
        ])
        .unwrap();
        assert_eq!(cli.threads(), 3);
        let Command::Broadcast(args) = cli.command else {
            panic!("not broadcast");
        };
        assert_eq!(args.common.urls.len(), 2);
        assert_eq!(args.fanout.subscribers, 10);
        assert_eq!(Codec::from(args.common.codec), Codec::MsgPack);
        assert!(Cli::try_parse_from(["tokenim-loadtest", "connect", "--rate", "x"]).is_err());
    }
}
