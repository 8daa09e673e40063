//! [`Config`]: every setting of a gateway node, with its default.
//!
//! Loaded in layers, later ones winning: built-in defaults, an optional TOML
//! file (`--config`), environment variables prefixed `TOKENIM_` (nested
//! fields joined by `__`, e.g. `TOKENIM_LIMITS__MAX_CONNECTIONS=5000`), and
//! command-line flags. [`Config::validate`] names the first bad field.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

mod api;
mod audit;
mod history;
mod limits;
mod rate;
pub mod redact;
mod redis;
mod store;
mod tls;

pub use self::api::ApiConfig;
pub use self::audit::AuditConfig;
pub use self::history::HistoryConfig;
pub use self::limits::Limits;
pub use self::rate::RateLimits;
pub use self::redis::RedisConfig;
pub use self::store::{StoreBackend, StoreConfig};
pub use self::tls::TlsConfig;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use tokenim_auth::{Alg, KeyConfig, Permission, VerifierConfig};

/// Key id of the built-in development key.
pub const DEV_KID: &str = "dev";
/// The built-in development HMAC secret, used only when `dev_mode` is on and
/// no key is configured. Anyone can read it here: never use it in production.
pub const DEV_SECRET: &str = "tokenim-development-secret-do-not-use-in-production";

/// The whole configuration of a node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address for WebSocket and HTTP. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// TLS on `listen` (`wss://`, `https://`). Absent (the default):
    /// plaintext.
    pub tls: Option<TlsConfig>,
    /// Development mode: serves `/dev/token`, which mints a token for any
    /// user id, and the demo page, uses a built-in signing key when none
    /// is configured, and opens every channel to every user (see
    /// [`Config::user_role`]). Unset (the default): on only when no
    /// `auth.keys` are configured, so a node with real keys is in
    /// production unless `dev_mode = true` is written. See
    /// [`Config::dev_mode`].
    pub dev_mode: Option<bool>,
    /// Allow development mode on an address other than loopback. Off by
    /// default: a development node on `0.0.0.0` refuses to start, since
    /// anyone who reaches it can mint a token for any user.
    pub dev_mode_public: bool,
    /// The permissions of the built-in role `user`, held by every user
    /// without roles, until the role is redefined through the API
    /// (`PUT /v1/roles/user`). Unset: none in production (default-deny:
    /// a user may act only where its token's channel claims, its roles or
    /// grants allow), every permission but `manage_group` in development
    /// mode.
    pub user_role: Option<BTreeSet<Permission>>,
    /// Addresses (IPs or CIDRs, e.g. `["10.0.0.0/8"]`) of the load
    /// balancers or proxies in front of the node. A connection from one of
    /// them names its client in `Forwarded` / `X-Forwarded-For`, which then
    /// counts for per-IP connection caps, rate limits and the audit log's
    /// source; anyone else's such headers are ignored. Default: none.
    pub trusted_proxies: Vec<String>,
    /// Logging.
    pub log: LogConfig,
    /// User-token verification (keys, audience, issuer, leeway, size cap).
    pub auth: VerifierConfig,
    /// Which browser origins may open WebSockets.
    pub origins: OriginConfig,
    /// Bounds on connections, frames, queues and rates.
    pub limits: Limits,
    /// Channel history and recovery.
    pub history: HistoryConfig,
    /// Redis, to run several nodes as one cluster. Absent (the default):
    /// a single node with the in-process broker.
    pub redis: Option<RedisConfig>,
    /// Where users, groups, keys, policy and the audit log are kept.
    pub store: StoreConfig,
    /// The server API (keys, batches, imports, rate limits).
    pub api: ApiConfig,
    /// Retention of the audit log.
    pub audit: AuditConfig,
    /// This node's name in logs and in what it publishes to other nodes.
    /// Default: `<hostname>-<random>`, new at every start.
    pub node_id: Option<String>,
    /// How long a draining node (SIGTERM, Ctrl-C) waits for sessions to
    /// close before it exits anyway. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tls: None,
            dev_mode: None,
            dev_mode_public: false,
            user_role: None,
            trusted_proxies: Vec::new(),
            log: LogConfig::default(),
            auth: VerifierConfig::default(),
            origins: OriginConfig::default(),
            limits: Limits::default(),
            history: HistoryConfig::default(),
            redis: None,
            store: StoreConfig::default(),
            api: ApiConfig::default(),
            audit: AuditConfig::default(),
            node_id: None,
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// Logging settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `pretty` (default) or `json` (one JSON object per line).
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `tokenim_gateway=debug`; the
    /// `RUST_LOG` variable overrides it. Default `info`.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            filter: "info".into(),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable.
    Pretty,
    /// JSON lines, for log shippers.
    Json,
}

/// Cross-site WebSocket hijacking protection.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OriginConfig {
    /// Origins (e.g. `https://chat.example.com`) allowed besides the
    /// gateway's own host, which is always allowed. `*` allows any origin.
    /// Default: none.
    pub allowed: Vec<String>,
    /// Accept upgrade requests without an `Origin` header (native and
    /// server clients send none; browsers always do). Default `false`.
    pub allow_missing: bool,
}

/// A configuration that cannot be used; the message names the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or an environment variable could not be parsed.
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    /// A field has a value the gateway cannot work with.
    #[error("configuration field `{field}`: {problem}")]
    Invalid {
        /// Dotted path of the field, e.g. `limits.max_frame_size`.
        field: &'static str,
        /// What is wrong and what is expected.
        problem: String,
    },
    /// A `TOKENIM_*` environment variable names no setting (a typo would
    /// otherwise be ignored without a word).
    #[error(
        "environment variable {0} is not a setting: settings are TOKENIM_<SETTING>[__<FIELD>...] with SETTING one of {settings}",
        settings = SETTINGS.join(", ")
    )]
    UnknownVariable(String),
}

/// The first of `durations` that is zero, as an error naming its field.
pub(crate) fn nonzero(
    durations: &[(&'static str, std::time::Duration)],
) -> Result<(), ConfigError> {
    match durations.iter().find(|(_, d)| d.is_zero()) {
        Some((field, _)) => Err(invalid(field, "must be greater than 0")),
        None => Ok(()),
    }
}

/// The first of `counts` that is zero, as an error naming its field.
pub(crate) fn positive(counts: &[(&'static str, usize)]) -> Result<(), ConfigError> {
    match counts.iter().find(|(_, v)| *v == 0) {
        Some((field, _)) => Err(invalid(field, "must be greater than 0")),
        None => Ok(()),
    }
}

pub(crate) fn invalid(field: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        problem: problem.into(),
    }
}

impl Config {
    /// Loads defaults, then `file` (if given), then `TOKENIM_*` variables,
    /// then `overrides` (command-line flags, as a partial config), and
    /// validates the result.
    pub fn load(file: Option<&Path>, overrides: impl Serialize) -> Result<Self, ConfigError> {
        if let Some(name) = unknown_variable(std::env::vars_os().map(|(k, _)| k)) {
            return Err(ConfigError::UnknownVariable(name));
        }
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        let config: Config = figment
            .merge(settings_from_env())
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    /// Whether development mode is on: as written, or, when `dev_mode` is
    /// not set, exactly when no `auth.keys` are configured.
    pub fn dev_mode(&self) -> bool {
        self.dev_mode.unwrap_or(self.auth.keys.is_empty())
    }

    /// Why [`Config::dev_mode`] is what it is, for the start-up banner.
    pub fn dev_mode_reason(&self) -> &'static str {
        match (self.dev_mode, self.auth.keys.is_empty()) {
            (Some(true), _) => "dev_mode = true is set",
            (Some(false), _) => "dev_mode = false is set",
            (None, true) => "no auth.keys are configured and dev_mode is not set",
            (None, false) => "auth.keys are configured and dev_mode is not set",
        }
    }

    /// The permissions of the built-in role `user` in effect
    /// ([`Config::user_role`]).
    pub fn user_role(&self) -> BTreeSet<Permission> {
        match &self.user_role {
            Some(permissions) => permissions.clone(),
            None if self.dev_mode() => tokenim_auth::Policy::development_user_role(),
            None => BTreeSet::new(),
        }
    }

    /// The verifier configuration in effect: the configured keys, or in
    /// development mode with none configured, the built-in dev key.
    pub fn effective_auth(&self) -> VerifierConfig {
        let mut auth = self.auth.clone();
        if auth.keys.is_empty() && self.dev_mode() {
            auth.keys.push(dev_key());
        }
        auth
    }

    /// Checks every field that has a constraint beyond its type.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        if !self.dev_mode() && self.auth.keys.is_empty() {
            return Err(invalid(
                "auth.keys",
                "at least one key is required when dev_mode is off",
            ));
        }
        if self.dev_mode() && !self.listen.ip().is_loopback() && !self.dev_mode_public {
            return Err(invalid(
                "dev_mode",
                format!(
                    "development mode is on ({}) and listen is {}, not a loopback address: anyone who reaches it can mint a token for any user. Configure auth.keys (and leave dev_mode unset or false), listen on 127.0.0.1, or force it with dev_mode_public = true",
                    self.dev_mode_reason(),
                    self.listen
                ),
            ));
        }
        positive(&[
            ("limits.max_connections", l.max_connections),
            ("limits.max_connections_per_ip", l.max_connections_per_ip),
            ("limits.max_frame_size", l.max_frame_size),
            ("limits.max_message_size", l.max_message_size),
            ("limits.max_data_size", l.max_data_size),
            ("limits.read_buffer_size", l.read_buffer_size),
            ("limits.outbound_queue_frames", l.outbound_queue_frames),
            ("limits.outbound_queue_bytes", l.outbound_queue_bytes),
            ("limits.max_commands_in_flight", l.max_commands_in_flight),
        ])?;
        if l.max_frame_size > l.max_message_size {
            return Err(invalid(
                "limits.max_frame_size",
                "must not exceed limits.max_message_size",
            ));
        }
        if l.max_data_size > l.max_message_size {
            return Err(invalid(
                "limits.max_data_size",
                "must not exceed limits.max_message_size",
            ));
        }
        if l.max_write_buffer_size <= l.write_buffer_size + l.max_message_size {
            return Err(invalid(
                "limits.max_write_buffer_size",
                "must exceed limits.write_buffer_size + limits.max_message_size",
            ));
        }
        if !(l.publish_rate > 0.0 && l.publish_rate.is_finite()) {
            return Err(invalid("limits.publish_rate", "must be a positive number"));
        }
        if !(l.publish_burst >= 1.0 && l.publish_burst.is_finite()) {
            return Err(invalid("limits.publish_burst", "must be at least 1"));
        }
        if l.ping_interval.is_zero() || l.idle_timeout <= l.ping_interval {
            return Err(invalid(
                "limits.idle_timeout",
                "must exceed limits.ping_interval (> 0)",
            ));
        }
        nonzero(&[
            ("limits.handshake_timeout", l.handshake_timeout),
            ("limits.auth_timeout", l.auth_timeout),
            ("limits.write_timeout", l.write_timeout),
        ])?;
        if l.write_delay >= l.write_timeout {
            return Err(invalid(
                "limits.write_delay",
                "must be shorter than limits.write_timeout",
            ));
        }
        self.history.validate()?;
        self.store.validate(self.redis.is_some())?;
        self.api.validate()?;
        if self.api.listen == Some(self.listen) && self.listen.port() != 0 {
            return Err(invalid(
                "api.listen",
                "must differ from listen (leave it unset to serve everything on listen)",
            ));
        }
        self.audit.validate()?;
        crate::proxy::TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|e| invalid("trusted_proxies", e.to_string()))?;
        if let Some(redis) = &self.redis {
            redis.validate()?;
        }
        if let Some(tls) = &self.tls {
            tls.validate()?;
        }
        tokenim_auth::TokenVerifier::new(&self.effective_auth())
            .map_err(|e| invalid("auth.keys", e.to_string()))?;
        Ok(())
    }
}

/// The top-level settings, the only `TOKENIM_*` variables read as
/// configuration.
const SETTINGS: [&str; 17] = [
    "listen",
    "tls",
    "dev_mode",
    "dev_mode_public",
    "user_role",
    "trusted_proxies",
    "log",
    "auth",
    "origins",
    "limits",
    "history",
    "redis",
    "store",
    "api",
    "audit",
    "node_id",
    "drain_timeout",
];

/// `TOKENIM_<SETTING>[__<FIELD>...]` variables. Any other `TOKENIM_*`
/// variable stops the start ([`unknown_variable`]), except
/// `TOKENIM_CONFIG` (the file flag), the load generator's, and those
/// Kubernetes derives from a Service named `tokenim-…`.
fn settings_from_env() -> Env {
    Env::prefixed("TOKENIM_")
        .filter(|key| is_setting(key.as_str()))
        .split("__")
}

/// `TOKENIM_*` variables that are not settings and are left alone.
const NOT_SETTINGS: [&str; 2] = ["CONFIG", "WRITE_OPENAPI"];

/// The first `TOKENIM_*` variable of `names` that is neither a setting
/// nor one of the known others: `TOKENIM_CONFIG`, the load generator's
/// `TOKENIM_LOADTEST_*`, and the service links Kubernetes derives from a
/// Service named `tokenim` or `tokenim-…` (`TOKENIM_SERVICE_HOST`,
/// `TOKENIM_PORT_8080_TCP`, `TOKENIM_REDIS_SERVICE_PORT`, …).
fn unknown_variable(names: impl Iterator<Item = std::ffi::OsString>) -> Option<String> {
    names.filter_map(|n| n.into_string().ok()).find(|name| {
        let Some(key) = name.strip_prefix("TOKENIM_") else {
            return false;
        };
        !(is_setting(key)
            || NOT_SETTINGS.contains(&key)
            || key.starts_with("LOADTEST_")
            || is_service_link(key))
    })
}

/// Whether `key` is one of Kubernetes' service-link variables (no `__`,
/// `…SERVICE_HOST`, `…SERVICE_PORT[_…]`, `…PORT`, `…PORT_<n>_<proto>…`).
fn is_service_link(key: &str) -> bool {
    if key.contains("__") {
        return false;
    }
    key == "SERVICE_HOST"
        || key == "PORT"
        || key.ends_with("_SERVICE_HOST")
        || key.starts_with("SERVICE_PORT")
        || key.contains("_SERVICE_PORT")
        || key.ends_with("_PORT")
        || key
            .split("PORT_")
            .nth(1)
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
}

/// Whether `TOKENIM_<key>` names a setting.
fn is_setting(key: &str) -> bool {
    let top = key.split("__").next().unwrap_or_default();
    SETTINGS.iter().any(|s| s.eq_ignore_ascii_case(top))
}

/// The built-in development key (HS256, kid `dev`).
pub fn dev_key() -> KeyConfig {
    KeyConfig {
        kid: Some(DEV_KID.into()),
        alg: Alg::HS256,
        secret: Some(DEV_SECRET.into()),
        public_key_pem: None,
        private_key_pem: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_setting_variables_are_read() {
        for key in [
            "LISTEN",
            "limits__max_connections",
            "REDIS__URL",
            "DRAIN_TIMEOUT",
        ] {
            assert!(is_setting(key), "{key}");
        }
        for key in [
            "CONFIG",
            "LOADTEST_HS256_SECRET",
            "GATEWAY_SERVICE_PORT",
            "LIMITSX",
        ] {
            assert!(!is_setting(key), "{key}");
        }
    }

    #[test]
    fn a_variable_that_names_no_setting_is_refused() {
        let vars = |names: &[&str]| unknown_variable(names.iter().map(std::ffi::OsString::from));
        assert_eq!(
            vars(&["PATH", "TOKENIM_LISTEN", "TOKENIM_LIMTS__MAX_CONNECTIONS"]),
            Some("TOKENIM_LIMTS__MAX_CONNECTIONS".into())
        );
        assert_eq!(vars(&["TOKENIM_DEVMODE"]), Some("TOKENIM_DEVMODE".into()));
        assert_eq!(
            vars(&[
                "TOKENIM_CONFIG",
                "TOKENIM_LOADTEST_HS256_SECRET",
                "TOKENIM_SERVICE_HOST",
                "TOKENIM_SERVICE_PORT_HTTP",
                "TOKENIM_PORT",
                "TOKENIM_PORT_8080_TCP_ADDR",
                "TOKENIM_REDIS_SERVICE_PORT",
                "TOKENIM_REDIS_PORT_6379_TCP",
                "TOKENIM_API__ADMIN_KEY",
            ]),
            None
        );
        let e = ConfigError::UnknownVariable("TOKENIM_X".into()).to_string();
        assert!(e.contains("TOKENIM_X") && e.contains("limits"), "{e}");
    }

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn validate_names_the_field() {
        let mut c = Config::default();
        c.limits.max_frame_size = c.limits.max_message_size + 1;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("limits.max_frame_size"), "{e}");

        let mut c = Config::default();
        c.limits.idle_timeout = c.limits.ping_interval;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("limits.idle_timeout")
        );

        let c = Config {
            dev_mode: Some(false),
            ..Config::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("auth.keys"));

        let c = Config {
            listen: "0.0.0.0:8080".parse().unwrap(),
            ..Config::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("dev_mode") && e.contains("0.0.0.0"), "{e}");
        let c = Config {
            dev_mode_public: true,
            ..c
        };
        c.validate().unwrap();
    }

    #[test]
    fn dev_mode_is_on_only_when_asked_or_nothing_is_configured() {
        let mut c = Config::default();
        assert!(c.dev_mode());
        assert!(!c.user_role().is_empty());
        c.auth.keys.push(KeyConfig {
            kid: Some("prod".into()),
            ..dev_key()
        });
        assert!(!c.dev_mode(), "real keys mean production");
        assert!(c.user_role().is_empty(), "production denies by default");
        assert_eq!(c.effective_auth().keys.len(), 1);
        c.dev_mode = Some(true);
        assert!(c.dev_mode());
        c.user_role = Some([Permission::Subscribe].into());
        assert_eq!(c.user_role(), [Permission::Subscribe].into());
    }

    #[test]
    fn file_env_and_flags_layer_in_order() {
        let dir = std::env::temp_dir().join(format!("tokenim-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("gateway.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9000\"\n[limits]\nmax_subscriptions = 7\nping_interval = \"5s\"\n").unwrap();
        #[derive(Serialize)]
        struct Flags {
            dev_mode: bool,
        }
        let c = Config::load(Some(&file), Flags { dev_mode: true }).unwrap();
        assert_eq!(c.dev_mode, Some(true));
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.limits.max_subscriptions, 7);
        assert_eq!(c.limits.ping_interval, Duration::from_secs(5));
        std::fs::write(&file, "[limits]\nno_such_knob = 1\n").unwrap();
        assert!(Config::load(Some(&file), Flags { dev_mode: true }).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
