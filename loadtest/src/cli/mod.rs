//! The `tokenim-loadtest` command line: one subcommand per scenario plus
//! `compare`, the flags they share ([`Common`]), validation, and running
//! the chosen scenario with Ctrl-C handling, the summary table and the
//! JSON file. The flags themselves are in [`args`].

mod args;

pub use args::{
    BroadcastArgs, CodecArg, Common, CompareArgs, ConnectArgs, IdleArgs, parse_duration,
};

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::progress::{Control, Progress};
use crate::report::{RunReport, compare, table};
use crate::runner::{self, Setup};
use crate::scenario::broadcast::{self, BroadcastParams};
use crate::scenario::{connect, idle};
use crate::sys;
use crate::token::{self, TokenSource};
use crate::wire::Target;

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
    /// Compare two --json results: every shared figure with its change.
    Compare(CompareArgs),
}

impl Cli {
    /// Worker threads the runtime should have.
    pub fn threads(&self) -> usize {
        let common = match &self.command {
            Command::Connect(a) => Some(&a.common),
            Command::Idle(a) => Some(&a.common),
            Command::Broadcast(a) => Some(&a.common),
            Command::Compare(_) => None,
        };
        common
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
            Command::Broadcast(args) => {
                check(count("--subscribers", args.subscribers, MAX_CONNECTIONS))?;
                check(count("--publishers", args.publishers, MAX_PUBLISHERS))?;
                check(rate("--rate", args.rate, false))?;
                check(rate("--subscribe-rate", args.subscribe_rate, true))?;
                if args.publishers == 0 {
                    return usage("--publishers must be at least 1");
                }
                if args.drop_subscribers > args.subscribers {
                    return usage("--drop-subscribers exceeds --subscribers");
                }
                let params = BroadcastParams {
                    messages: args.messages,
                    payload_padding: args.payload_padding,
                    channel: args.channel.clone(),
                    subscribe_rate: args.subscribe_rate,
                    setup_timeout: args.setup_timeout,
                    drain: args.drain,
                    drop_subscribers: args.drop_subscribers,
                    drop_after: args.drop_after.unwrap_or(args.duration / 2),
                    gateway_pid: args.common.gateway_pid,
                    threads,
                    verify: args.verify,
                    ..BroadcastParams::new(
                        args.subscribers,
                        args.publishers,
                        args.rate,
                        args.duration,
                    )
                };
                let per_publisher = args.rate / args.publishers as f64;
                let total = args.subscribers + args.publishers;
                let span = args.duration + args.setup_timeout + args.drain;
                let (setup, control) = start(&args.common, span, total)?;
                if per_publisher > 50.0 {
                    control.progress.note(&format!(
                        "note: {per_publisher:.0} msg/s per publisher; a gateway with default limits allows 50/s (burst 100) per connection: start it with TOKENIM_LIMITS__PUBLISH_RATE and TOKENIM_LIMITS__PUBLISH_BURST raised, or add --publishers"
                    ));
                }
                match broadcast::run(setup, &params, &control).await {
                    Ok(report) => finish(&report, &args.common),
                    Err(e) => fail(e),
                }
            }
        }
    }
}

/// An early exit carrying its exit code.
type Step<T> = Result<T, ExitCode>;

fn check(result: Result<(), String>) -> Step<()> {
    result.or_else(|e| usage(&e))
}

fn count(flag: &str, n: usize, max: usize) -> Result<(), String> {
    if n > max {
        return Err(format!("{flag} {n} is above the cap of {max}"));
    }
    Ok(())
}

fn rate(flag: &str, r: f64, zero_ok: bool) -> Result<(), String> {
    let ok = r.is_finite() && r <= MAX_RATE && (r > 0.0 || (zero_ok && r == 0.0));
    if !ok {
        return Err(format!(
            "{flag} {r} must be {} and at most {MAX_RATE}",
            if zero_ok { "≥ 0" } else { "> 0" }
        ));
    }
    Ok(())
}

fn usage<T>(message: &str) -> Step<T> {
    eprintln!("tokenim-loadtest: {message}");
    Err(ExitCode::from(2))
}

fn fail<T>(e: impl std::fmt::Display) -> Step<T> {
    eprintln!("tokenim-loadtest: {e}");
    Err(ExitCode::from(1))
}

/// Everything before the first connection: limits, targets, tokens,
/// Ctrl-C handling.
fn start(common: &Common, span: Duration, connections: usize) -> Step<(Arc<Setup>, Control)> {
    let mut targets = Vec::new();
    for url in &common.urls {
        targets.push(Target::parse(url, common.allow_remote).or_else(|e| usage(&e.to_string()))?);
    }
    let sources = match &common.source_ips {
        Some(text) => runner::parse_sources(text, common.allow_remote).or_else(|e| usage(&e))?,
        None => Vec::new(),
    };
    if let Some(ip) = sources
        .iter()
        .find(|ip| targets.iter().any(|t| t.addr.is_ipv4() != ip.is_ipv4()))
    {
        return usage(&format!(
            "source address {ip} and the target URLs are not all the same IP version"
        ));
    }
    let ttl = span.as_secs() + 3600;
    let tokens = match (&common.token_file, &common.hs256_secret) {
        (Some(path), _) => TokenSource::file(path),
        (None, secret) => {
            let kid = (!common.kid.is_empty()).then_some(common.kid.as_str());
            let secret = secret.as_deref().unwrap_or(token::DEV_SECRET);
            TokenSource::hs256(secret, kid, &common.user_prefix, ttl)
        }
    }
    .or_else(fail)?;
    if common.concurrency == 0 {
        return usage("--concurrency must be at least 1");
    }

    let progress = if common.no_progress {
        Progress::hidden()
    } else {
        Progress::stderr()
    };
    let file_limit = match sys::raise_nofile() {
        Ok(limit) => {
            let raised = if limit.soft_before < limit.soft {
                format!(" (raised from {})", limit.soft_before)
            } else {
                String::new()
            };
            progress.note(&format!(
                "tokenim-loadtest: open-file limit {}{raised}, hard {}: room for about {} sockets in this process",
                limit.soft,
                limit.hard,
                limit.socket_budget()
            ));
            if connections as u64 > limit.socket_budget() {
                progress.note(&format!(
                    "warning: {connections} connections asked for, but the open-file limit ({}) allows about {}; expect EMFILE failures",
                    limit.soft,
                    limit.socket_budget()
                ));
            }
            Some(limit)
        }
        Err(e) => {
            progress.note(&format!("warning: could not raise RLIMIT_NOFILE: {e}"));
            None
        }
    };
    let setup = Setup {
        targets,
        sources,
        codec: common.codec.into(),
        auth: common.auth,
        tokens,
        concurrency: common.concurrency,
        connect_timeout: common.connect_timeout,
        read_buffer: common.read_buffer.max(256),
        file_limit,
    };
    let control = Control {
        interrupt: tokio_util::sync::CancellationToken::new(),
        progress,
    };
    let (interrupt, progress) = (control.interrupt.clone(), control.progress.clone());
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            progress.note("tokenim-loadtest: stopping (Ctrl-C again to quit at once)");
            interrupt.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    Ok((Arc::new(setup), control))
}

/// Prints the summary and writes the JSON file.
fn finish(report: &RunReport, common: &Common) -> Step<ExitCode> {
    print!("{}", table::render(report));
    if let Some(path) = &common.json {
        report.write_json(path).or_else(fail)?;
        eprintln!("tokenim-loadtest: result written to {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn compare_files(args: &CompareArgs) -> Step<ExitCode> {
    let a = RunReport::read_json(&args.a).or_else(fail)?;
    let b = RunReport::read_json(&args.b).or_else(fail)?;
    let name = |p: &PathBuf| p.display().to_string();
    print!(
        "{}",
        compare::render(&a, &b, &name(&args.a), &name(&args.b))
    );
    Ok(ExitCode::SUCCESS)
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
        assert_eq!(Codec::from(args.common.codec), Codec::MsgPack);
        assert!(Cli::try_parse_from(["tokenim-loadtest", "connect", "--rate", "x"]).is_err());
    }
}
