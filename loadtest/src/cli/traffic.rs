//! The fan-out subcommands: `broadcast` and `ramp`, their flags
//! ([`FanoutArgs`] shared by both) and how each becomes its scenario's
//! parameters.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::launch::{Step, check, count, fail, finish, rate, start, usage};
use super::{Common, MAX_CONNECTIONS, MAX_PUBLISHERS, parse_duration};
use crate::scenario::broadcast::{self, BroadcastParams};
use crate::scenario::ramp::{self, RampParams};

/// Subscribers, publishers and setup bounds, shared by `broadcast` and
/// `ramp`.
#[derive(Debug, Args)]
pub struct FanoutArgs {
    /// Subscriber connections, all on one channel.
    #[arg(short = 's', long, default_value_t = 100)]
    pub subscribers: usize,
    /// Publisher connections (the gateway limits each to
    /// limits.publish_rate msg/s, 50 by default).
    #[arg(short = 'p', long, default_value_t = 1)]
    pub publishers: usize,
    /// Filler bytes added to each payload (the stamp itself is ~40 bytes).
    #[arg(long, default_value_t = 0)]
    pub payload_padding: usize,
    /// New subscriber connections per second during setup (0: as fast as
    /// --concurrency allows).
    #[arg(long, default_value_t = 0.0)]
    pub subscribe_rate: f64,
    /// Bound on opening and subscribing everyone.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub setup_timeout: Duration,
    /// After publishing, wait at most this long for replies and
    /// deliveries still in flight.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub drain: Duration,
    /// Self-check: also decode every delivery in full and compare it with
    /// the fast scan (`verify_mismatches` must be 0; costs several times
    /// the CPU per message).
    #[arg(long)]
    pub verify: bool,
}

impl FanoutArgs {
    fn check(&self) -> Step<()> {
        check(count("--subscribers", self.subscribers, MAX_CONNECTIONS))?;
        check(count("--publishers", self.publishers, MAX_PUBLISHERS))?;
        check(rate("--subscribe-rate", self.subscribe_rate, true))?;
        if self.publishers == 0 {
            return usage("--publishers must be at least 1");
        }
        Ok(())
    }

    /// Broadcast parameters at `rate` for `duration`.
    fn params(
        &self,
        rate: f64,
        duration: Duration,
        common: &Common,
        threads: usize,
    ) -> BroadcastParams {
        BroadcastParams {
            payload_padding: self.payload_padding,
            subscribe_rate: self.subscribe_rate,
            setup_timeout: self.setup_timeout,
            drain: self.drain,
            gateway_pid: common.gateway_pid,
            threads,
            verify: self.verify,
            ..BroadcastParams::new(self.subscribers, self.publishers, rate, duration)
        }
    }
}

/// `broadcast` flags.
#[derive(Debug, Args)]
pub struct BroadcastArgs {
    /// Total messages per second over all publishers.
    #[arg(short = 'r', long, default_value_t = 100.0)]
    pub rate: f64,
    /// How long to publish.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Stop after this many messages in all (default: rate × duration).
    #[arg(long)]
    pub messages: Option<u64>,
    /// Channel name (default: a fresh loadtest.<pid>.<ms>).
    #[arg(long)]
    pub channel: Option<String>,
    /// Self-check: close this many subscribers mid-run; their missed
    /// messages must be reported as loss.
    #[arg(long, default_value_t = 0)]
    pub drop_subscribers: usize,
    /// When, after publishing starts, --drop-subscribers close (default:
    /// half of --duration).
    #[arg(long, value_parser = parse_duration)]
    pub drop_after: Option<Duration>,
    /// Subscribers, publishers, setup.
    #[command(flatten)]
    pub fanout: FanoutArgs,
    /// Shared flags.
    #[command(flatten)]
    pub common: Common,
}

/// `ramp` flags.
#[derive(Debug, Args)]
pub struct RampArgs {
    /// Rate of the first step, messages per second over all publishers.
    #[arg(long, default_value_t = 100.0)]
    pub start_rate: f64,
    /// Each step's rate is the previous one's times this.
    #[arg(long, default_value_t = 1.5)]
    pub factor: f64,
    /// How long each step publishes.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub step: Duration,
    /// A step fails when delivery p99 is above this (ms).
    #[arg(long, default_value_t = 50.0)]
    pub p99_ms: f64,
    /// No step above this rate.
    #[arg(long, default_value_t = 1_000_000.0)]
    pub max_rate: f64,
    /// At most this many steps.
    #[arg(long, default_value_t = 20)]
    pub max_steps: usize,
    /// Subscribers, publishers, setup.
    #[command(flatten)]
    pub fanout: FanoutArgs,
    /// Shared flags.
    #[command(flatten)]
    pub common: Common,
}

/// The per-connection publish limit note, when the rate needs it.
fn rate_note(control: &crate::progress::Control, rate: f64, publishers: usize) {
    let per_publisher = rate / publishers as f64;
    if per_publisher > 50.0 {
        control.progress.note(&format!(
            "note: up to {per_publisher:.0} msg/s per publisher; a gateway with default limits allows 50/s (burst 100) per connection: start it with TOKENIM_LIMITS__PUBLISH_RATE and TOKENIM_LIMITS__PUBLISH_BURST raised, or add --publishers"
        ));
    }
}

/// Runs `broadcast`.
pub(super) async fn run_broadcast(args: BroadcastArgs, threads: usize) -> Step<ExitCode> {
    let fan = &args.fanout;
    fan.check()?;
    check(rate("--rate", args.rate, false))?;
    if args.drop_subscribers > fan.subscribers {
        return usage("--drop-subscribers exceeds --subscribers");
    }
    let params = BroadcastParams {
        messages: args.messages,
        channel: args.channel.clone(),
        drop_subscribers: args.drop_subscribers,
        drop_after: args.drop_after.unwrap_or(args.duration / 2),
        ..fan.params(args.rate, args.duration, &args.common, threads)
    };
    let total = fan.subscribers + fan.publishers;
    let span = args.duration + fan.setup_timeout + fan.drain;
    let (setup, control) = start(&args.common, span, total)?;
    rate_note(&control, args.rate, fan.publishers);
    match broadcast::run(setup, &params, &control).await {
        Ok(report) => finish(&report, &args.common),
        Err(e) => fail(e),
    }
}

/// Runs `ramp`.
pub(super) async fn run_ramp(args: RampArgs, threads: usize) -> Step<ExitCode> {
    let fan = &args.fanout;
    fan.check()?;
    check(rate("--start-rate", args.start_rate, false))?;
    check(rate("--max-rate", args.max_rate, false))?;
    if !(args.factor > 1.0 && args.factor <= 100.0) {
        return usage("--factor must be above 1 (and at most 100)");
    }
    if !(args.p99_ms > 0.0 && args.p99_ms.is_finite()) {
        return usage("--p99-ms must be positive");
    }
    if args.max_steps == 0 || args.max_steps > 100 {
        return usage("--max-steps must be between 1 and 100");
    }
    let params = RampParams {
        broadcast: fan.params(args.start_rate, args.step, &args.common, threads),
        start_rate: args.start_rate,
        factor: args.factor,
        step: args.step,
        max_rate: args.max_rate,
        max_steps: args.max_steps,
        p99_limit: Duration::from_secs_f64(args.p99_ms / 1000.0),
    };
    let per_step = args.step + fan.setup_timeout + fan.drain;
    let span = per_step * u32::try_from(args.max_steps).unwrap_or(100);
    let (setup, control) = start(&args.common, span, fan.subscribers + fan.publishers)?;
    rate_note(
        &control,
        args.max_rate
            .min(args.start_rate * args.factor.powi(args.max_steps as i32)),
        fan.publishers,
    );
    match ramp::run(setup, &params, &control).await {
        Ok(report) => finish(&report, &args.common),
        Err(e) => fail(e),
    }
}
