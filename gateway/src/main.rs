//! The `tokenim` binary: parse flags, load configuration, run.

use std::process::ExitCode;

use clap::Parser;
use tokenim_gateway::cli::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    Cli::parse().run().await
}
