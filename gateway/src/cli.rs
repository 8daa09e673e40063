//! The `tokenim` command line: serve (the default), mint a token, print
//! the effective configuration, or export, import and migrate the store.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde::Serialize;
use tokenim_auth::{MintRequest, TokenSigner};
use tokenim_protocol::UserId;

use crate::config::{Config, LogFormat};
use crate::server::Server;

/// tokenim: a realtime messaging gateway.
#[derive(Debug, Parser)]
#[command(name = "tokenim", version, about)]
pub struct Cli {
    /// TOML configuration file (settings not in it keep their defaults;
    /// `TOKENIM_*` variables and flags override it).
    #[arg(long, env = "TOKENIM_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, global = true)]
    pub listen: Option<SocketAddr>,
    /// Development mode: `/dev/token`, the demo page, open channels and a
    /// built-in key (default: on only when no `auth.keys` are configured).
    #[arg(long, global = true)]
    pub dev_mode: Option<bool>,
    /// Log format (default pretty).
    #[arg(long, global = true)]
    pub log_format: Option<LogFormat>,
    /// Print the secret of a bootstrap admin key created at first start on
    /// standard error too (it always goes to `api.bootstrap_key_file`).
    #[arg(long, global = true)]
    pub print_bootstrap_key: bool,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (the default).
    Serve,
    /// Print a user token signed with the configured (or development) key.
    Token {
        /// The user id.
        #[arg(long)]
        user: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// Channel patterns the token may subscribe to, and read the history
        /// and presence of (default: no claim; the user's roles decide).
        #[arg(long, value_delimiter = ',')]
        channels: Option<Vec<String>>,
        /// Channel patterns the token may publish to (default: no claim;
        /// the user's roles decide).
        #[arg(long, value_delimiter = ',')]
        publish: Option<Vec<String>>,
    },
    /// Print the effective configuration as TOML, every secret replaced
    /// by a fingerprint (`redacted:sha256:<12 hex digits>`).
    Config,
    /// Export, import or migrate the configured store.
    Store {
        /// What to do with it.
        #[command(subcommand)]
        action: StoreCommand,
    },
}

/// `tokenim store …`: operator tools for the configured store
/// (`store.backend`), run while no node writes to it.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Write every table as JSON lines (one stored key per line).
    Export {
        /// File to write (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Read an export into the store, which must be empty.
    Import {
        /// File to read (default: standard input).
        #[arg(long = "in")]
        input: Option<PathBuf>,
    },
    /// Apply the schema migrations this build has (PostgreSQL), then exit.
    Migrate,
}

/// Flags as a partial configuration layered over file and environment.
#[derive(Serialize)]
struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dev_mode: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log: Option<LogOverrides>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api: Option<ApiOverrides>,
}

#[derive(Serialize)]
struct ApiOverrides {
    print_bootstrap_key: bool,
}

#[derive(Serialize)]
struct LogOverrides {
    format: LogFormat,
}

impl Cli {
    /// Runs the chosen command.
    pub async fn run(self) -> ExitCode {
        let overrides = Overrides {
            listen: self.listen,
            dev_mode: self.dev_mode,
            log: self.log_format.map(|format| LogOverrides { format }),
            api: self.print_bootstrap_key.then_some(ApiOverrides {
                print_bootstrap_key: true,
            }),
        };
        let config = match Config::load(self.config.as_deref(), overrides) {
            Ok(config) => config,
            Err(e) => return fail(e),
        };
        match self.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(config).await,
            Command::Token {
                user,
                ttl,
                channels,
                publish,
            } => mint(&config, &user, ttl, channels, publish),
            Command::Store { action } => store(&config, action).await,
            Command::Config => match crate::config::redact::redacted_toml(&config) {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            },
        }
    }
}

/// The WebSocket and HTTP URL schemes of the listener: with TLS or not.
fn schemes(config: &Config) -> (&'static str, &'static str) {
    match config.tls {
        Some(_) => ("wss", "https"),
        None => ("ws", "http"),
    }
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("tokenim: {e}");
    ExitCode::from(2)
}

async fn serve(config: Config) -> ExitCode {
    crate::telemetry::init(&config.log);
    let server = match Server::bind(config).await {
        Ok(server) => server,
        Err(e) => return fail(e),
    };
    let addr = server.local_addr();
    let config = &server.state().config;
    let (ws, http) = schemes(config);
    let tls = config.tls.is_some();
    match server.internal_addr() {
        None => {
            tracing::info!(%addr, tls, "tokenim listening: WebSocket {ws}://{addr}/ws, server API {http}://{addr}/v1, metrics {http}://{addr}/metrics")
        }
        Some(api) => {
            tracing::info!(%addr, %api, tls, "tokenim listening: WebSocket {ws}://{addr}/ws; internal: server API {http}://{api}/v1, metrics {http}://{api}/metrics")
        }
    }
    if config.dev_mode() {
        tracing::warn!(
            reason = config.dev_mode_reason(),
            "DEVELOPMENT MODE: /dev/token mints a token for ANY user, every user may use every channel, and unless auth.keys is set the signing key is the public built-in one. Never expose this node; configure auth.keys (and leave dev_mode unset) in production."
        );
        tracing::info!(
            "demo chat: {http}://{addr}/   token: curl '{http}://{addr}/dev/token?user=alice'  or  tokenim token --user alice"
        );
    } else {
        tracing::info!(
            reason = config.dev_mode_reason(),
            user_role = ?config.user_role(),
            "production mode: no /dev/token, no demo page; users act only where their token's claims, roles or grants allow"
        );
    }
    server.run(crate::server::shutdown_signal()).await;
    ExitCode::SUCCESS
}

fn mint(
    config: &Config,
    user: &str,
    ttl: u64,
    channels: Option<Vec<String>>,
    publish: Option<Vec<String>>,
) -> ExitCode {
    let user = match UserId::new(user) {
        Ok(user) => user,
        Err(e) => return fail(e),
    };
    let auth = config.effective_auth();
    let Some(signer) = auth.keys.iter().find_map(|k| TokenSigner::new(k).ok()) else {
        return fail("no configured key can sign (HS256 needs `secret`, others `private_key_pem`)");
    };
    let request = MintRequest {
        user,
        issued_at: crate::clock::unix_secs(),
        ttl_secs: ttl,
        audience: auth.audience.clone(),
        issuer: auth.issuer,
        subscribe: channels,
        publish,
        token_id: None,
    };
    match signer.sign(&request) {
        Ok(token) => {
            println!("{token}");
            eprintln!(
                "connect: {}://{}/ws with header 'Authorization: Bearer <token>', ?token=<token>, or a first frame {{\"id\":1,\"type\":\"connect\",\"token\":\"<token>\"}}",
                schemes(config).0,
                config.listen
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// `tokenim store …`. Opening the store applies PostgreSQL's migrations.
async fn store(config: &Config, action: StoreCommand) -> ExitCode {
    use std::io::{BufReader, BufWriter};

    use crate::store::transfer;

    let kv = match crate::state::open_store(config).await {
        Ok(kv) => kv,
        Err(e) => return fail(format!("cannot open the store: {e}")),
    };
    let done = match action {
        StoreCommand::Export { out } => {
            let result = match out {
                Some(path) => match std::fs::File::create(&path) {
                    Ok(file) => transfer::export(&kv, &mut BufWriter::new(file)).await,
                    Err(e) => return fail(format!("{}: {e}", path.display())),
                },
                None => transfer::export(&kv, &mut BufWriter::new(std::io::stdout().lock())).await,
            };
            result.map(|n| format!("exported {n} keys"))
        }
        StoreCommand::Import { input } => {
            let result = match input {
                Some(path) => match std::fs::File::open(&path) {
                    Ok(file) => transfer::import(&kv, &mut BufReader::new(file)).await,
                    Err(e) => return fail(format!("{}: {e}", path.display())),
                },
                None => transfer::import(&kv, &mut std::io::stdin().lock()).await,
            };
            result.map(|n| format!("imported {n} keys"))
        }
        StoreCommand::Migrate => Ok(match kv {
            crate::store::Kv::Postgres(_) => format!(
                "the PostgreSQL schema is at version {}",
                crate::store::kv::PostgresKv::schema_version()
            ),
            _ => "this store backend has no schema to migrate".to_owned(),
        }),
    };
    match done {
        Ok(summary) => {
            eprintln!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}
