//! The `tokenim-loadtest` binary: parse flags, start a runtime with the
//! requested worker threads, run the scenario.

use std::process::ExitCode;

use clap::Parser;
use tokenim_loadtest::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads())
        .enable_all()
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(cli.run()),
        Err(e) => {
            eprintln!("tokenim-loadtest: cannot start the runtime: {e}");
            ExitCode::from(1)
        }
    }
}
