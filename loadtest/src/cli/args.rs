//! The flags: [`Common`] (shared by every scenario), those of `connect`,
//! `idle` and `compare`, and [`parse_duration`]. The traffic scenarios'
//! flags are in [`super::traffic`].

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use tokenim_protocol::Codec;

use super::MAX_DURATION;
use crate::token;
use crate::wire::{AuthMode, TargetKind};

/// Flags every scenario shares.
#[derive(Debug, Args)]
pub struct Common {
    /// Gateway WebSocket URL; repeat to spread connections over several
    /// nodes (connection i goes to URL i mod count).
    #[arg(long = "url", default_value = "ws://127.0.0.1:8080/ws")]
    pub urls: Vec<String>,
    /// A CA certificate (PEM file) to trust for `wss://` URLs besides the
    /// webpki roots, e.g. the one that signed a test certificate.
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// What the URLs are: tokenim gateways, or Socket.IO 4 servers for a
    /// side-by-side comparison (`connect`, `idle` and `broadcast` only;
    /// JSON text over Engine.IO 4, no tokens; a URL without the
    /// `/socket.io/?EIO=4&transport=websocket` path gets it).
    #[arg(long, value_enum, default_value_t = TargetKind::Tokenim)]
    pub target: TargetKind,
    /// Wire codec.
    #[arg(long, value_enum, default_value_t = CodecArg::Json)]
    pub codec: CodecArg,
    /// How tokens are presented: upgrade header, ?token= query, or a first
    /// `connect` frame (one more round trip, counted in connect time).
    #[arg(long, value_enum, default_value_t = AuthMode::Header)]
    pub auth: AuthMode,
    /// HS256 secret to mint user tokens with (default: the gateway's
    /// public development secret, accepted by a gateway in dev mode).
    #[arg(long, env = "TOKENIM_LOADTEST_HS256_SECRET", hide_env_values = true)]
    pub hs256_secret: Option<String>,
    /// `kid` header of minted tokens ("" for none).
    #[arg(long, default_value = token::DEV_KID)]
    pub kid: String,
    /// Use tokens from this file (one per line, used round robin) instead
    /// of minting.
    #[arg(long, conflicts_with = "hs256_secret")]
    pub token_file: Option<PathBuf>,
    /// Channel patterns for minted tokens' `channels` and `publish` claims,
    /// comma-separated (e.g. `*` or `rooms.*,bench`): a gateway in
    /// production lets a user without roles use only what they name.
    #[arg(long, value_delimiter = ',', conflicts_with = "token_file")]
    pub claim_channels: Option<Vec<String>>,
    /// Minted user ids are <PREFIX>-<connection index>.
    #[arg(long, default_value = "lt")]
    pub user_prefix: String,
    /// Source addresses to spread connections over, e.g.
    /// 127.0.0.1-127.0.0.20,127.0.1.1 (avoids ephemeral-port exhaustion
    /// and the gateway's per-IP cap). Default: the kernel picks.
    #[arg(long)]
    pub source_ips: Option<String>,
    /// Allow targets and source addresses outside loopback.
    #[arg(long)]
    pub allow_remote: bool,
    /// Most handshakes in flight at once.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Bound on TCP connect + upgrade + authentication (e.g. 10s, 500ms).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// WebSocket read buffer per connection, bytes (allocated up front:
    /// keep it small for many idle connections).
    #[arg(long, default_value_t = 8192)]
    pub read_buffer: usize,
    /// Tokio worker threads (default: the cores this process may use).
    #[arg(long)]
    pub threads: Option<usize>,
    /// The gateway's process id, to read its memory and CPU time from
    /// /proc (same machine only).
    #[arg(long)]
    pub gateway_pid: Option<u32>,
    /// Write the result as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// No live progress line.
    #[arg(long)]
    pub no_progress: bool,
    /// Run as this many worker processes, each with a share of the
    /// connections and of --source-ips, started together; their results
    /// are merged into one report (not for `ramp`).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Internal: this process is worker I of N.
    #[arg(long, hide = true)]
    pub worker: Option<String>,
    /// Internal: the run id the workers of one `rooms` or `direct` run
    /// share.
    #[arg(long, hide = true)]
    pub run_id: Option<String>,
}

/// The codecs, as a command-line value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CodecArg {
    /// JSON text frames.
    Json,
    /// MessagePack binary frames.
    Msgpack,
}

impl From<CodecArg> for Codec {
    fn from(c: CodecArg) -> Codec {
        match c {
            CodecArg::Json => Codec::Json,
            CodecArg::Msgpack => Codec::MsgPack,
        }
    }
}

/// `connect` flags.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Connections to open.
    #[arg(short = 'n', long, default_value_t = 1000)]
    pub connections: usize,
    /// New connections per second (0: as fast as --concurrency allows).
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// The whole run (storm + hold) ends this long after it started.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Shared flags.
    #[command(flatten)]
    pub common: Common,
}

/// `idle` flags.
#[derive(Debug, Args)]
pub struct IdleArgs {
    /// Connections to open and hold.
    #[arg(short = 'n', long, default_value_t = 1000)]
    pub connections: usize,
    /// New connections per second while opening (0: as fast as allowed).
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// The whole run ends this long after it started (hold past the
    /// gateway's ping interval, 25 s by default, to see pings answered).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// After the last connection opened, wait this long before reading
    /// the gateway's memory.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub settle: Duration,
    /// Shared flags.
    #[command(flatten)]
    pub common: Common,
}

/// `compare` arguments.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The baseline result (A).
    pub a: PathBuf,
    /// The result to judge against it (B).
    pub b: PathBuf,
}

/// Parses `250ms`, `10s`, `1.5s`, `2m`, `1h`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a duration such as 500ms, 10s, 2m"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("{text:?}: unknown unit {other:?} (ms, s, m, h)")),
    };
    let duration = Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))?;
    if duration > MAX_DURATION {
        return Err(format!("{text:?} is longer than the 24 h cap"));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_are_capped() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("25h").is_err());
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }
}
