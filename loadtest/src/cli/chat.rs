//! The chat subcommands, `rooms` and `direct`: their flags ([`ChatArgs`]
//! shared by both) and how they become [`ChatParams`].

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::launch::{Step, check, count, fail, finish, start, usage};
use super::{Common, MAX_CONNECTIONS, parse_duration};
use crate::scenario::chat::{self, ChatParams};

/// Users, their sending rate and the run's bounds.
#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Users, one connection each.
    #[arg(short = 'n', long, default_value_t = 1000)]
    pub users: usize,
    /// Messages per second each active user sends, on average (Poisson).
    #[arg(long, default_value_t = 0.2)]
    pub rate_per_user: f64,
    /// Share of users who send (all of them receive).
    #[arg(long, default_value_t = 0.5)]
    pub active_fraction: f64,
    /// How long users send.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Largest payload filler in bytes (sizes are skewed: most messages
    /// short, a few long).
    #[arg(long, default_value_t = 200)]
    pub payload_max: usize,
    /// Bound on opening (and subscribing) everyone.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub setup_timeout: Duration,
    /// After sending, wait at most this long for deliveries in flight.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub drain: Duration,
}

/// `rooms` flags.
#[derive(Debug, Args)]
pub struct RoomsArgs {
    /// Rooms (channels) the users are spread over evenly.
    #[arg(long, default_value_t = 100)]
    pub rooms: usize,
    /// Users and rates.
    #[command(flatten)]
    pub chat: ChatArgs,
    /// Shared flags.
    #[command(flatten)]
    pub common: Common,
}

/// `direct` flags.
#[derive(Debug, Args)]
pub struct DirectArgs {
    /// Users and rates.
    #[command(flatten)]
    pub chat: ChatArgs,
    /// Shared flags.
    #[command(flatten)]
    pub common: Common,
}

/// Runs `rooms` (`rooms > 0`) or `direct`.
pub(super) async fn run_chat(
    chat_args: &ChatArgs,
    rooms: usize,
    common: &Common,
    threads: usize,
) -> Step<ExitCode> {
    let a = chat_args;
    check(count("--users", a.users, MAX_CONNECTIONS))?;
    if !(a.rate_per_user > 0.0 && a.rate_per_user <= 1000.0) {
        return usage("--rate-per-user must be above 0 and at most 1000");
    }
    if !(0.0..=1.0).contains(&a.active_fraction) {
        return usage("--active-fraction must be between 0 and 1");
    }
    if a.payload_max > 1 << 20 {
        return usage("--payload-max is above 1 MiB");
    }
    let params = ChatParams {
        rooms,
        active_fraction: a.active_fraction,
        payload_max: a.payload_max,
        setup_timeout: a.setup_timeout,
        drain: a.drain,
        gateway_pid: common.gateway_pid,
        threads,
        run_id: common.run_id.clone(),
        ..ChatParams::new(a.users, a.rate_per_user, a.duration)
    };
    let span = a.duration + a.setup_timeout + a.drain;
    let (setup, control) = start(common, span, a.users)?;
    match chat::run(setup, &params, &control).await {
        Ok(report) => finish(&report, common),
        Err(e) => fail(e),
    }
}
