//! Running a scenario from the command line: validation helpers, the
//! setup every scenario shares ([`start`]: targets, source addresses,
//! tokens, open-file limit, Ctrl-C), and the end ([`finish`]: table and
//! JSON file), plus `compare`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use super::{Common, CompareArgs, MAX_RATE};
use crate::progress::{Control, Progress};
use crate::report::{RunReport, compare, merge, table};
use crate::runner::{self, Setup};
use crate::sys;
use crate::token::{self, TokenSource};
use crate::wire::{Target, TargetKind};
use crate::worker;

/// An early exit carrying its exit code.
pub(super) type Step<T> = Result<T, ExitCode>;

pub(super) fn check(result: Result<(), String>) -> Step<()> {
    result.or_else(|e| usage(&e))
}

pub(super) fn count(flag: &str, n: usize, max: usize) -> Result<(), String> {
    if n > max {
        return Err(format!("{flag} {n} is above the cap of {max}"));
    }
    Ok(())
}

pub(super) fn rate(flag: &str, r: f64, zero_ok: bool) -> Result<(), String> {
    let ok = r.is_finite() && r <= MAX_RATE && (r > 0.0 || (zero_ok && r == 0.0));
    if !ok {
        return Err(format!(
            "{flag} {r} must be {} and at most {MAX_RATE}",
            if zero_ok { "≥ 0" } else { "> 0" }
        ));
    }
    Ok(())
}

pub(super) fn usage<T>(message: &str) -> Step<T> {
    eprintln!("tokenim-loadtest: {message}");
    Err(ExitCode::from(2))
}

pub(super) fn fail<T>(e: impl std::fmt::Display) -> Step<T> {
    eprintln!("tokenim-loadtest: {e}");
    Err(ExitCode::from(1))
}

/// Everything before the first connection: limits, targets, tokens,
/// Ctrl-C handling.
pub(super) fn start(
    common: &Common,
    span: Duration,
    connections: usize,
) -> Step<(Arc<Setup>, Control)> {
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
            TokenSource::hs256(secret, kid, &common.user_prefix, ttl).map(|source| {
                match &common.claim_channels {
                    Some(patterns) => source.with_claims(patterns.clone()),
                    None => source,
                }
            })
        }
    }
    .or_else(fail)?;
    if common.target == TargetKind::Socketio && common.codec != super::CodecArg::Json {
        return usage("--target socketio speaks JSON text only (no --codec msgpack)");
    }
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
    let tls_ca = match &common.tls_ca {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(pem) => Some(std::sync::Arc::from(pem)),
            Err(e) => return usage(&format!("--tls-ca {}: {e}", path.display())),
        },
        None => None,
    };
    if common.target == TargetKind::Socketio && targets.iter().any(|t| t.tls) {
        return usage("--target socketio speaks ws:// only");
    }
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
        kind: common.target,
        tls_ca,
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

/// Prints the summary (not in a worker: its stdout talks to the parent)
/// and writes the JSON file.
pub(super) fn finish(report: &RunReport, common: &Common) -> Step<ExitCode> {
    if worker::role().is_none() {
        print!("{}", table::render(report));
    }
    if let Some(path) = &common.json {
        report.write_json(path).or_else(fail)?;
        eprintln!("tokenim-loadtest: result written to {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Most worker processes one run may start.
const MAX_WORKERS: usize = 64;

/// `--workers N`: starts N copies of this command as workers, starts
/// their measured phases together (when `barrier` bounds their setup),
/// and merges their results.
pub(super) async fn run_workers(common: &Common, barrier: Option<Duration>) -> Step<ExitCode> {
    let count = common.workers;
    if count > MAX_WORKERS {
        return usage(&format!(
            "--workers {count} is above the cap of {MAX_WORKERS}"
        ));
    }
    let sources = match &common.source_ips {
        Some(text) => runner::parse_sources(text, common.allow_remote).or_else(|e| usage(&e))?,
        None => Vec::new(),
    };
    let sources: Vec<String> = sources.iter().map(ToString::to_string).collect();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut args = ["--workers", "--json", "--source-ips", "--run-id"]
        .iter()
        .fold(argv, |a, flag| worker::strip(&a, flag));
    args.retain(|a| a != "--no-progress");
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let run_id = format!("{}.{ms}", std::process::id());
    if args.first().is_some_and(|a| a == "broadcast")
        && !args.iter().any(|a| a.starts_with("--channel"))
    {
        args.extend(["--channel".into(), format!("loadtest.{run_id}")]);
    }
    args.extend(["--run-id".into(), run_id]);
    let mut workers = worker::spawn(&args, count, &sources).or_else(fail)?;
    eprintln!("tokenim-loadtest: {count} workers started");
    tokio::spawn(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("tokenim-loadtest: the workers are stopping");
        }
    });
    let workers = tokio::task::spawn_blocking(move || {
        if let Some(bound) = barrier {
            worker::start_together(&mut workers, bound);
        }
        for w in &mut workers {
            let _ = w.child.wait();
        }
        workers
    })
    .await
    .or_else(fail)?;
    let mut parts = Vec::new();
    for w in &workers {
        match RunReport::read_json(&w.json) {
            Ok(report) => parts.push(report),
            Err(e) => eprintln!("tokenim-loadtest: a worker left no result: {e}"),
        }
        let _ = std::fs::remove_file(&w.json);
    }
    if parts.is_empty() {
        return fail("no worker produced a result");
    }
    let mut report = merge::merge(&parts);
    if parts.len() < count {
        report.warnings.push(format!(
            "only {} of {count} workers produced a result",
            parts.len()
        ));
    }
    finish(&report, common)
}

pub(super) fn compare_files(args: &CompareArgs) -> Step<ExitCode> {
    let a = RunReport::read_json(&args.a).or_else(fail)?;
    let b = RunReport::read_json(&args.b).or_else(fail)?;
    let name = |p: &PathBuf| p.display().to_string();
    print!(
        "{}",
        compare::render(&a, &b, &name(&args.a), &name(&args.b))
    );
    Ok(ExitCode::SUCCESS)
}
