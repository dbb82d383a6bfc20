//! Typed configuration: built-in defaults (`config/default.toml`, compiled in) < the file given by
//! `--config` < `YIHAO_*` environment variables (`__` separates levels: `YIHAO_DATABASE__URL`).
//!
//! [`Config::load`] parses and validates; every failure is one [`ConfigError`] line that names the key
//! and what is wrong with it. Secrets are [`Secret`]s, whose `Debug`, `Display` and `Serialize` redact.
//! This module reads files and the environment it is given; it never reads the clock or the network.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Serialize, Serializer};
use url::Url;

mod outside;
pub use outside::{
    Adapter, RegisterConfig, RegistrationConfig, SmsConfig, SmsHttpConfig, VerifyConfig,
};

/// The documented defaults, compiled into the binary: the file *is* the defaults.
pub const DEFAULTS: &str = include_str!("../../config/default.toml");

/// Values that appear in `config/production.example.toml`; a production server refuses them.
pub(crate) const EXAMPLE_SECRETS: &[&str] = &["CHANGE-ME", "change-me", "changeme"];

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub mode: Mode,
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub cache: CacheConfig,
    pub log: LogConfig,
    pub keys: KeysConfig,
    pub passwords: PasswordsConfig,
    pub tokens: TokensConfig,
    pub session: SessionConfig,
    pub logout: LogoutConfig,
    pub audit: AuditConfig,
    pub limits: LimitsConfig,
    pub sms: SmsConfig,
    pub verify: VerifyConfig,
    pub registration: RegistrationConfig,
    pub second_factor: SecondFactorConfig,
    pub admin: AdminConfig,
    pub cas: CasConfig,
}

/// The CAS 3.0 server (docs/integration/cas.md).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CasConfig {
    /// How long a service ticket waits for its validation: 5 to 300 seconds (CAS 3.0 §3.1.1).
    pub ticket_secs: u64,
}

/// Administration (docs/administration.md).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// The console's idle limit: 60 to 1800 seconds (classified protection level 3: at most 30
    /// minutes for administrators).
    pub console_idle_secs: u64,
}

/// Second factors (docs/assurance.md).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SecondFactorConfig {
    /// People may enrol authenticator apps (TOTP).
    pub totp: bool,
    /// People may register passkeys (WebAuthn) and sign in with them; needs an issuer whose host
    /// is a name (the relying party id), not an address.
    pub passkeys: bool,
    /// The name authenticator apps show beside the account.
    pub issuer_name: String,
    /// Every account must sign in with two factors (accounts can also be named one by one).
    pub required_for_all: bool,
}

/// Rate limits (0 turns one off).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    pub login_per_ip_per_min: u32,
    pub login_per_account_per_min: u32,
    pub login_global_per_sec: u32,
    pub token_per_client_per_sec: u32,
    pub interactions_per_ip_per_min: u32,
    pub client_auth_failures_per_ip_per_min: u32,
    pub register_per_ip_per_hour: u32,
    pub recover_per_ip_per_hour: u32,
    pub second_factor_per_account_per_hour: u32,
    pub face_checks_per_account_per_day: u32,
    pub device_user_codes_per_ip_per_min: u32,
}

/// The audit log.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    pub node: String,
    pub queue: usize,
    pub checkpoint_secs: u64,
    pub retention_days: u32,
}

/// Back-channel logout delivery.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogoutConfig {
    pub poll_ms: u64,
    pub timeout_secs: u64,
    pub retry_base_secs: u64,
    pub retry_max_secs: u64,
    pub max_attempts: u32,
}

/// Single sign-on sessions.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    pub idle_secs: u64,
    pub absolute_secs: u64,
    pub sweep_ms: u64,
    pub keep_ended_secs: u64,
    /// Sessions opened at a client of another channel than `web` (which uses the two limits above
    /// and never forces a login).
    pub app: ChannelSession,
    pub kiosk: ChannelSession,
    pub window: ChannelSession,
    pub system: ChannelSession,
}

/// The session policy of a channel (docs/design.md, channels).
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSession {
    pub idle_secs: u64,
    pub absolute_secs: u64,
    /// Every authorization request of a client on this channel asks the person to sign in: no
    /// silent single sign-on into a session that someone else may have left on a shared device.
    pub force_login: bool,
}

impl SessionConfig {
    /// The policy of sessions opened at a client of `channel`.
    pub fn channel(&self, channel: crate::domain::client::Channel) -> ChannelSession {
        use crate::domain::client::Channel;
        match channel {
            Channel::Web => ChannelSession {
                idle_secs: self.idle_secs,
                absolute_secs: self.absolute_secs,
                force_login: false,
            },
            Channel::App => self.app,
            Channel::Kiosk => self.kiosk,
            Channel::Window => self.window,
            Channel::System => self.system,
        }
    }

    /// The shortest idle limit of any channel: how long the sweeper lets a session go unseen
    /// before it looks whether its live entry is still there.
    pub fn shortest_idle_secs(&self) -> u64 {
        [
            self.idle_secs,
            self.app.idle_secs,
            self.kiosk.idle_secs,
            self.window.idle_secs,
            self.system.idle_secs,
        ]
        .into_iter()
        .min()
        .unwrap_or(self.idle_secs)
    }
}

/// Token lifetimes and algorithms.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokensConfig {
    pub code_secs: u64,
    pub id_token_secs: u64,
    pub access_token_secs: u64,
    pub id_token_alg: String,
    pub access_token_alg: String,
    pub require_pkce: bool,
    pub refresh_idle_secs: u64,
    pub refresh_absolute_secs: u64,
    /// RFC 8628: how long a device code lives (`expires_in`)...
    pub device_code_secs: u64,
    /// ...and the polling interval a device starts with (`interval`).
    pub device_poll_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Development,
    Production,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub bind: SocketAddr,
    /// Kept exactly as written: it must equal the `iss` of every token (OIDC Core §2).
    pub issuer: String,
    pub request_timeout_secs: u64,
    pub body_limit_bytes: usize,
    pub shutdown_grace_secs: u64,
    /// Proxies (addresses or CIDR blocks) whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<String>,
    pub outbound_private_networks: Vec<String>,
    /// When set, `/metrics` answers only `Authorization: Bearer` with this token.
    pub metrics_token: Secret,
    /// Longest parameter name or value (query string or form body), in bytes once decoded.
    pub param_limit_bytes: usize,
    /// Most parameters in one query string or form body.
    pub param_limit_count: usize,
    pub tls: TlsConfig,
}

/// HTTPS served directly (`app::tls`). Both paths empty: plain HTTP, for a TLS-terminating proxy.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// `Strict-Transport-Security: max-age` on every response over TLS; 0 sends none.
    pub hsts_max_age_secs: u64,
}

impl TlsConfig {
    pub fn enabled(&self) -> bool {
        !self.cert.as_os_str().is_empty()
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    #[serde(serialize_with = "serialize_url_redacted")]
    pub url: String,
    pub max_connections: u32,
    pub min_connections: u32,
    pub acquire_timeout_secs: u64,
    pub migrate_on_start: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    #[serde(serialize_with = "serialize_url_redacted")]
    pub url: String,
    pub key_prefix: String,
    pub connect_timeout_ms: u64,
    pub response_timeout_ms: u64,
    pub sweep_interval_ms: u64,
    /// How often each node reloads the client registry it holds in memory.
    pub clients_reload_ms: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Auto,
    Human,
    Json,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    pub dev_dir: PathBuf,
    pub master_key: Secret,
    /// Master keys replaced by `master_key`, still accepted to open the key root until
    /// `yihao keys rotate-master` has re-wrapped it (docs/privacy.md).
    #[serde(default)]
    pub previous_master_keys: Vec<Secret>,
    pub pii_version: u32,
    pub publish_before_use_secs: u64,
    pub reload_secs: u64,
}

/// Password hashing, policy and lockout (docs/security.md).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordsConfig {
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    pub workers: usize,
    pub max_waiting: usize,
    pub min_length: usize,
    pub min_classes: usize,
    pub history: usize,
    pub lockout_threshold: u32,
    pub lockout_secs: u64,
    pub lockout_account_threshold: u32,
}

impl Default for PasswordsConfig {
    /// The documented defaults (config/default.toml); for tests and tools that build a config by hand.
    fn default() -> Self {
        Self {
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            workers: 0,
            max_waiting: 1024,
            min_length: 8,
            min_classes: 3,
            history: 5,
            lockout_threshold: 5,
            lockout_secs: 900,
            lockout_account_threshold: 20,
        }
    }
}

/// A secret string. `Debug`, `Display` and `Serialize` print `[redacted]` (or nothing when unset), so a
/// secret cannot reach a log line or `config check` by accident; [`Secret::expose`] is the one way in.
/// Its text is overwritten with zeros when dropped (security review 20).
#[derive(Clone, Default, Deserialize, PartialEq, Eq, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    fn shown(&self) -> &'static str {
        if self.0.is_empty() { "" } else { "[redacted]" }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({:?})", self.shown())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.shown())
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.shown())
    }
}

/// A configuration that could not be loaded: one line naming the key and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {key}: {problem}")]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
}

impl ConfigError {
    pub(crate) fn new(key: &str, problem: impl Into<String>) -> Self {
        Self {
            key: key.to_owned(),
            problem: problem.into(),
        }
    }
}

impl Config {
    /// Loads defaults < `file` < the process environment, then validates.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, EnvVars::new(std::env::vars()))
    }

    /// Loads defaults < `file` < the given `(name, value)` variables (names with the `YIHAO_` prefix);
    /// tests use this instead of mutating the process environment.
    pub fn load_with_env<'a>(
        file: Option<&Path>,
        vars: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        Self::load_from(
            file,
            EnvVars::new(vars.into_iter().map(|(k, v)| (k.into(), v.into()))),
        )
    }

    fn load_from(file: Option<&Path>, env: EnvVars) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULTS));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::new(
                    "--config",
                    format!("{} is not a readable file", path.display()),
                ));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        // Lossy: environment values are strings, "3" must become a number where one is expected.
        let config: Config = figment.merge(env).extract_lossy().map_err(from_figment)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what types alone cannot: URL schemes, ranges, and the production rules.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let issuer = self.issuer_url()?;
        if !matches!(issuer.scheme(), "https" | "http") {
            return Err(ConfigError::new(
                "server.issuer",
                "must be an https (or loopback http) URL",
            ));
        }
        // OIDC Discovery §3 / RFC 8414 §2: "a URL that uses the "https" scheme and has no query or
        // fragment components".
        if issuer.query().is_some() || issuer.fragment().is_some() {
            return Err(ConfigError::new(
                "server.issuer",
                "must have no query or fragment",
            ));
        }
        if issuer.host_str().is_none() {
            return Err(ConfigError::new("server.issuer", "must name a host"));
        }
        if !(5..=300).contains(&self.cas.ticket_secs) {
            return Err(ConfigError::new(
                "cas.ticket_secs",
                "must be 5 to 300 (CAS 3.0 §3.1.1: service tickets live no longer than five minutes)",
            ));
        }
        if !(60..=1800).contains(&self.admin.console_idle_secs) {
            return Err(ConfigError::new(
                "admin.console_idle_secs",
                "must be 60 to 1800 (administrators' sessions end after at most 30 idle minutes)",
            ));
        }
        if self.server.request_timeout_secs == 0 {
            return Err(ConfigError::new(
                "server.request_timeout_secs",
                "must be at least 1",
            ));
        }
        if self.server.body_limit_bytes < 1024 {
            return Err(ConfigError::new(
                "server.body_limit_bytes",
                "must be at least 1024",
            ));
        }
        if self.server.param_limit_bytes < 256 {
            return Err(ConfigError::new(
                "server.param_limit_bytes",
                "must be at least 256",
            ));
        }
        if self.server.param_limit_count < 16 {
            return Err(ConfigError::new(
                "server.param_limit_count",
                "must be at least 16",
            ));
        }
        let tls = &self.server.tls;
        if tls.cert.as_os_str().is_empty() != tls.key.as_os_str().is_empty() {
            return Err(ConfigError::new(
                if tls.enabled() {
                    "server.tls.key"
                } else {
                    "server.tls.cert"
                },
                "server.tls.cert and server.tls.key are set together or not at all",
            ));
        }
        if tls.enabled() && issuer.scheme() != "https" {
            return Err(ConfigError::new(
                "server.issuer",
                "must be an https URL when the server serves TLS (server.tls.cert is set)",
            ));
        }
        database_kind(&self.database.url)?;
        if self.database.max_connections == 0 {
            return Err(ConfigError::new(
                "database.max_connections",
                "must be at least 1",
            ));
        }
        if self.database.min_connections > self.database.max_connections {
            return Err(ConfigError::new(
                "database.min_connections",
                "must not exceed database.max_connections",
            ));
        }
        if self.database.acquire_timeout_secs == 0 {
            return Err(ConfigError::new(
                "database.acquire_timeout_secs",
                "must be at least 1",
            ));
        }
        if !self.cache.url.is_empty() {
            let scheme = self.cache.url.split_once("://").map(|(s, _)| s);
            if !matches!(scheme, Some("redis" | "rediss")) {
                return Err(ConfigError::new(
                    "cache.url",
                    "must be empty (in-process) or a redis:// or rediss:// URL",
                ));
            }
            if let Err(e) = Url::parse(&self.cache.url) {
                return Err(ConfigError::new("cache.url", format!("not a URL: {e}")));
            }
        }
        for (key, ms) in [
            ("cache.connect_timeout_ms", self.cache.connect_timeout_ms),
            ("cache.response_timeout_ms", self.cache.response_timeout_ms),
            ("cache.sweep_interval_ms", self.cache.sweep_interval_ms),
            ("cache.clients_reload_ms", self.cache.clients_reload_ms),
        ] {
            if ms == 0 {
                return Err(ConfigError::new(key, "must be at least 1"));
            }
        }
        if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&self.log.level) {
            return Err(ConfigError::new(
                "log.level",
                format!("not a tracing filter: {e}"),
            ));
        }
        let pw = &self.passwords;
        if argon2::Params::new(
            pw.argon2_memory_kib,
            pw.argon2_iterations,
            pw.argon2_parallelism,
            None,
        )
        .is_err()
        {
            return Err(ConfigError::new(
                "passwords.argon2_memory_kib",
                "argon2 parameters out of range (memory >= 8 x parallelism KiB, iterations >= 1, parallelism >= 1)",
            ));
        }
        if pw.min_length < 8 || pw.min_classes < 3 || pw.min_classes > 4 {
            return Err(ConfigError::new(
                "passwords.min_length",
                "level-3 protection needs at least 8 characters from at least 3 of 4 classes",
            ));
        }
        if pw.lockout_threshold == 0 || pw.lockout_threshold > 5 {
            return Err(ConfigError::new(
                "passwords.lockout_threshold",
                "must be 1 to 5 (docs/security.md)",
            ));
        }
        if pw.lockout_account_threshold < pw.lockout_threshold || pw.lockout_account_threshold > 50
        {
            return Err(ConfigError::new(
                "passwords.lockout_account_threshold",
                "must be from passwords.lockout_threshold to 50",
            ));
        }
        if pw.lockout_secs < 900 {
            return Err(ConfigError::new(
                "passwords.lockout_secs",
                "must be at least 900 (15 minutes)",
            ));
        }
        let t = &self.tokens;
        for (key, alg) in [
            ("tokens.id_token_alg", &t.id_token_alg),
            ("tokens.access_token_alg", &t.access_token_alg),
        ] {
            if let Err(e) = crate::crypto::signing::Alg::parse(alg) {
                return Err(ConfigError::new(key, e.to_string()));
            }
        }
        if !(10..=600).contains(&t.code_secs) {
            return Err(ConfigError::new(
                "tokens.code_secs",
                "must be 10 to 600 (RFC 6749 §4.1.2: short-lived)",
            ));
        }
        // RFC 9700 §4.10.3: short-lived access tokens limit what a leaked one is worth; the same
        // bounds as a client's own lifetimes.
        let lifetimes = 60..=86_400;
        if !lifetimes.contains(&t.id_token_secs) || !lifetimes.contains(&t.access_token_secs) {
            return Err(ConfigError::new(
                "tokens.access_token_secs",
                "token lifetimes are 60 to 86400 seconds",
            ));
        }
        if t.refresh_idle_secs < 60 || t.refresh_absolute_secs < t.refresh_idle_secs {
            return Err(ConfigError::new(
                "tokens.refresh_idle_secs",
                "must be at least 60 and at most tokens.refresh_absolute_secs",
            ));
        }
        if self.session.idle_secs < 60 || self.session.absolute_secs < self.session.idle_secs {
            return Err(ConfigError::new(
                "session.idle_secs",
                "must be at least 60 and at most session.absolute_secs",
            ));
        }
        if let Err(e) = crate::web::client_ip::parse_proxies(&self.server.trusted_proxies) {
            return Err(ConfigError::new("server.trusted_proxies", e.to_string()));
        }
        if let Err(e) = crate::web::client_ip::parse_proxies(&self.server.outbound_private_networks)
        {
            return Err(ConfigError::new(
                "server.outbound_private_networks",
                e.to_string(),
            ));
        }
        if self.audit.retention_days < 180 {
            return Err(ConfigError::new(
                "audit.retention_days",
                "must be at least 180 (classified protection keeps audit records six months)",
            ));
        }
        if self.audit.queue == 0 || self.audit.checkpoint_secs == 0 {
            return Err(ConfigError::new(
                "audit.queue",
                "audit.queue and audit.checkpoint_secs must be at least 1",
            ));
        }
        for (name, c) in [
            ("app", self.session.app),
            ("kiosk", self.session.kiosk),
            ("window", self.session.window),
            ("system", self.session.system),
        ] {
            if c.idle_secs < 30 || c.absolute_secs < c.idle_secs {
                return Err(ConfigError::new(
                    &format!("session.{name}.idle_secs"),
                    "at least 30 s, and absolute_secs at least idle_secs",
                ));
            }
        }
        if self.session.sweep_ms == 0 {
            return Err(ConfigError::new(
                "session.sweep_ms",
                "must be at least 1 (tokio intervals cannot be zero)",
            ));
        }
        let l = &self.logout;
        if l.poll_ms == 0
            || l.timeout_secs == 0
            || l.retry_base_secs == 0
            || l.max_attempts == 0
            || l.retry_max_secs < l.retry_base_secs
        {
            return Err(ConfigError::new(
                "logout.retry_base_secs",
                "logout delivery settings must be positive, retry_max_secs >= retry_base_secs",
            ));
        }
        if self.keys.reload_secs == 0 {
            return Err(ConfigError::new("keys.reload_secs", "must be at least 1"));
        }
        if self.keys.pii_version == 0 {
            return Err(ConfigError::new("keys.pii_version", "must be at least 1"));
        }
        if self.registration.closed_erase_after_days == 0 {
            return Err(ConfigError::new(
                "registration.closed_erase_after_days",
                "must be at least 1 (a mistaken closure can be undone until then)",
            ));
        }
        let production = self.mode == Mode::Production;
        if production {
            self.validate_production()?;
        }
        self.sms.validate(production)?;
        self.verify.person.validate("person", production)?;
        self.verify.enterprise.validate("enterprise", production)?;
        self.verify.face.validate("face", production)?;
        if self.verify.face_consent_version.trim().is_empty() {
            return Err(ConfigError::new(
                "verify.face_consent_version",
                "name the version of the face-verification consent",
            ));
        }
        if self.second_factor.issuer_name.trim().is_empty()
            || self.second_factor.issuer_name.contains(':')
        {
            return Err(ConfigError::new(
                "second_factor.issuer_name",
                "authenticator apps show this name: set one, without ':'",
            ));
        }
        Ok(())
    }

    /// The issuer as a parsed URL.
    pub fn issuer_url(&self) -> Result<Url, ConfigError> {
        Url::parse(&self.server.issuer)
            .map_err(|e| ConfigError::new("server.issuer", format!("not an absolute URL: {e}")))
    }

    fn validate_production(&self) -> Result<(), ConfigError> {
        let issuer = self.issuer_url()?;
        if issuer.scheme() == "http" && !is_loopback_host(&issuer) {
            return Err(ConfigError::new(
                "server.issuer",
                "production requires an https issuer (plain http only on loopback)",
            ));
        }
        let key = self.keys.master_key.expose();
        if key.is_empty() {
            return Err(ConfigError::new(
                "keys.master_key",
                "production refuses development keys: set a master key (YIHAO_KEYS__MASTER_KEY)",
            ));
        }
        if EXAMPLE_SECRETS.iter().any(|s| key.contains(s)) {
            return Err(ConfigError::new(
                "keys.master_key",
                "is still the example value; generate one with `openssl rand -base64 32`",
            ));
        }
        let metrics = self.server.metrics_token.expose();
        if EXAMPLE_SECRETS.iter().any(|s| metrics.contains(s)) {
            return Err(ConfigError::new(
                "server.metrics_token",
                "is still the example value; generate one with `openssl rand -base64 32`",
            ));
        }
        Ok(())
    }

    /// The effective configuration as TOML, secrets and URL passwords redacted.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot print: {e}\n"))
    }
}

/// The `YIHAO_*` variables as a figment provider: `YIHAO_A__B=v` sets key `a.b` to the string `v`.
/// `YIHAO_TEST_*` belong to the test suite and `YIHAO_CONFIG` to the command line, not to this tree.
struct EnvVars(Vec<(String, String)>);

impl EnvVars {
    const PREFIX: &'static str = "YIHAO_";
    /// Keys whose value is a list: in the environment, comma-separated (`10.0.0.1, 10.0.0.0/8`),
    /// or a TOML array (`["10.0.0.1", "10.0.0.0/8"]`); empty is the empty list.
    const LIST_KEYS: [&'static str; 3] = [
        "server.trusted_proxies",
        "server.outbound_private_networks",
        "keys.previous_master_keys",
    ];

    fn list(raw: &str) -> Vec<String> {
        let raw = raw.trim();
        let inner = raw
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or(raw);
        inner
            .split(',')
            .map(|item| item.trim().trim_matches(['"', '\'']).trim().to_owned())
            .filter(|item| !item.is_empty())
            .collect()
    }

    fn new(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let wanted = vars
            .into_iter()
            .filter_map(|(name, value)| {
                let rest = name.strip_prefix(Self::PREFIX)?;
                if rest.is_empty() || rest.starts_with("TEST_") || rest == "CONFIG" {
                    return None;
                }
                Some((rest.to_ascii_lowercase().replace("__", "."), value))
            })
            .collect();
        Self(wanted)
    }
}

impl Provider for EnvVars {
    fn metadata(&self) -> Metadata {
        Metadata::named("environment variable").interpolater(|_, path| {
            format!(
                "{}{}",
                EnvVars::PREFIX,
                path.join("__").to_ascii_uppercase()
            )
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (key, value) in &self.0 {
            if key.split('.').any(str::is_empty) {
                return Err(figment::Error::from(format!(
                    "{}{} is not a configuration key",
                    Self::PREFIX,
                    key.replace('.', "__").to_ascii_uppercase()
                )));
            }
            let value = if Self::LIST_KEYS.contains(&key.as_str()) {
                Value::from(Self::list(value))
            } else {
                Value::from(value.clone())
            };
            let nested = figment::util::nest(key, value);
            if let Some(nested) = nested.into_dict() {
                merge_dict(&mut dict, nested);
            }
        }
        Ok(Profile::Default.collect(dict))
    }
}

fn merge_dict(into: &mut Dict, from: Dict) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(Value::Dict(_, existing)), Value::Dict(_, incoming)) => {
                merge_dict(existing, incoming)
            }
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// Which durable engine a database URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

/// The engine named by a `database.url`, or the error that names the key.
pub fn database_kind(url: &str) -> Result<DatabaseKind, ConfigError> {
    match url.split_once(':').map(|(s, _)| s) {
        Some("sqlite") => Ok(DatabaseKind::Sqlite),
        Some("postgres" | "postgresql") => Ok(DatabaseKind::Postgres),
        _ => Err(ConfigError::new(
            "database.url",
            "must start with sqlite:// or postgres://",
        )),
    }
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Replaces the password of a URL's userinfo with `[redacted]`.
pub fn redact_url(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            // Only fails for cannot-be-a-base URLs, which have no password to hide.
            let _ = url.set_password(Some("[redacted]"));
            url.to_string()
        }
        _ => raw.to_owned(),
    }
}

fn serialize_url_redacted<S: Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact_url(url))
}

/// Turns figment's error into one line naming the dotted key and the source of the bad value.
fn from_figment(err: figment::Error) -> ConfigError {
    let key = if err.path.is_empty() {
        "configuration".to_owned()
    } else {
        err.path.join(".")
    };
    let source = err.metadata.as_ref().map(|m| match &m.source {
        Some(figment::Source::File(p)) => format!("file {}", p.display()),
        _ if m.name.contains("environment") => {
            format!(
                "environment variable {}{}",
                EnvVars::PREFIX,
                err.path.join("__").to_uppercase()
            )
        }
        _ => m.name.to_string(),
    });
    let problem = match source {
        Some(source) => format!("{} (from {source})", err.kind),
        None => err.kind.to_string(),
    };
    ConfigError { key, problem }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::load_with_env(None, vars.iter().copied())
    }

    #[test]
    fn defaults_are_the_documented_embedded_defaults() {
        let c = load(&[]).unwrap();
        assert_eq!(c.mode, Mode::Development);
        assert_eq!(c.server.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.server.issuer, "http://localhost:8080");
        assert_eq!(c.database.url, "sqlite://data/yihao.db");
        assert!(c.cache.url.is_empty());
    }

    #[test]
    fn environment_overrides_nested_keys() {
        let c = load(&[
            ("YIHAO_SERVER__BIND", "0.0.0.0:9000"),
            ("YIHAO_DATABASE__MAX_CONNECTIONS", "3"),
            ("YIHAO_CACHE__URL", "redis://127.0.0.1:6379/0"),
        ])
        .unwrap();
        assert_eq!(c.server.bind.port(), 9000);
        assert_eq!(c.database.max_connections, 3);
        assert_eq!(c.cache.url, "redis://127.0.0.1:6379/0");
    }

    /// Security review 22: `YIHAO_SERVER__TRUSTED_PROXIES` could not be set in any form ("expected a
    /// sequence"). Every list-valued key takes a comma-separated list or a TOML array.
    #[test]
    fn list_valued_keys_can_be_set_from_the_environment() {
        for key in EnvVars::LIST_KEYS {
            let var = format!("YIHAO_{}", key.replace('.', "__").to_ascii_uppercase());
            for (raw, want) in [
                ("10.0.0.1", vec!["10.0.0.1"]),
                ("10.0.0.1,10.0.0.0/8", vec!["10.0.0.1", "10.0.0.0/8"]),
                (" 10.0.0.1 , fd00::/8 ", vec!["10.0.0.1", "fd00::/8"]),
                (r#"["10.0.0.1", "10.0.0.2"]"#, vec!["10.0.0.1", "10.0.0.2"]),
                ("", vec![]),
            ] {
                let c = load(&[(var.as_str(), raw)]).unwrap_or_else(|e| panic!("{raw:?}: {e}"));
                let got = match key {
                    "server.trusted_proxies" => c.server.trusted_proxies,
                    "server.outbound_private_networks" => c.server.outbound_private_networks,
                    "keys.previous_master_keys" => c
                        .keys
                        .previous_master_keys
                        .iter()
                        .map(|k| k.expose().to_owned())
                        .collect(),
                    other => unreachable!("a test for the list key {other}"),
                };
                assert_eq!(got, want, "{var}={raw:?}");
            }
        }
        let e = load(&[("YIHAO_SERVER__TRUSTED_PROXIES", "10.0.0.1, not-an-address")]).unwrap_err();
        assert!(e.to_string().contains("server.trusted_proxies"), "{e}");
    }

    #[test]
    fn a_bad_bind_address_names_server_bind() {
        let e = load(&[("YIHAO_SERVER__BIND", "nonsense")]).unwrap_err();
        assert_eq!(e.key, "server.bind");
        assert!(e.to_string().contains("server.bind"), "{e}");
        assert!(e.to_string().contains("YIHAO_SERVER__BIND"), "{e}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = load(&[("YIHAO_SERVER__BINDD", "x")]).unwrap_err();
        assert!(e.to_string().contains("bindd"), "{e}");
    }

    #[test]
    fn test_variables_are_not_configuration() {
        load(&[
            ("YIHAO_TEST_DATABASE_URL", "postgres://x"),
            ("YIHAO_CONFIG", "x.toml"),
        ])
        .unwrap();
    }

    #[test]
    fn validation_names_the_key() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("YIHAO_DATABASE__URL", "mysql://x")], "database.url"),
            (&[("YIHAO_CACHE__URL", "memcached://x")], "cache.url"),
            (
                &[("YIHAO_SERVER__ISSUER", "https://id.example.cn/?a=b")],
                "server.issuer",
            ),
            (
                &[("YIHAO_SERVER__ISSUER", "ftp://id.example.cn")],
                "server.issuer",
            ),
            (
                &[("YIHAO_SERVER__ISSUER", "id.example.cn")],
                "server.issuer",
            ),
            (
                &[("YIHAO_DATABASE__MIN_CONNECTIONS", "99")],
                "database.min_connections",
            ),
            (&[("YIHAO_LOG__LEVEL", "yihao=loud")], "log.level"),
            (&[("YIHAO_LOG__FORMAT", "xml")], "log.format"),
            (&[("YIHAO_MODE", "staging")], "mode"),
        ];
        for (vars, key) in cases {
            let e = load(vars).unwrap_err();
            assert_eq!(&e.key, key, "{vars:?}: {e}");
        }
    }

    #[test]
    fn production_refuses_development_keys_plain_http_and_example_secrets() {
        let https = ("YIHAO_SERVER__ISSUER", "https://id.example.gov.cn");
        let key = (
            "YIHAO_KEYS__MASTER_KEY",
            "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=",
        );
        let prod = ("YIHAO_MODE", "production");
        let e = load(&[prod, https]).unwrap_err();
        assert_eq!(e.key, "keys.master_key");
        let e = load(&[
            prod,
            key,
            ("YIHAO_SERVER__ISSUER", "http://id.example.gov.cn"),
        ])
        .unwrap_err();
        assert_eq!(e.key, "server.issuer");
        let e = load(&[prod, https, ("YIHAO_KEYS__MASTER_KEY", "CHANGE-ME")]).unwrap_err();
        assert_eq!(e.key, "keys.master_key");
        let e = load(&[
            prod,
            https,
            key,
            ("YIHAO_SERVER__METRICS_TOKEN", "CHANGE-ME-x"),
        ])
        .unwrap_err();
        assert_eq!(e.key, "server.metrics_token");
        // The development adapters (codes in a file, fictitious identities) are refused.
        let e = load(&[prod, https, key]).unwrap_err();
        assert_eq!(e.key, "sms.adapter");
        let sms_off = ("YIHAO_SMS__ADAPTER", "off");
        let e = load(&[prod, https, key, sms_off]).unwrap_err();
        assert_eq!(e.key, "verify.person.adapter");
        let person_off = ("YIHAO_VERIFY__PERSON__ADAPTER", "off");
        let e = load(&[prod, https, key, sms_off, person_off]).unwrap_err();
        assert_eq!(e.key, "verify.enterprise.adapter");
        let enterprise_off = ("YIHAO_VERIFY__ENTERPRISE__ADAPTER", "off");
        let e = load(&[prod, https, key, sms_off, person_off, enterprise_off]).unwrap_err();
        assert_eq!(e.key, "verify.face.adapter");
        let face_off = ("YIHAO_VERIFY__FACE__ADAPTER", "off");
        load(&[
            prod,
            https,
            key,
            sms_off,
            person_off,
            enterprise_off,
            face_off,
        ])
        .unwrap();
        load(&[
            prod,
            key,
            sms_off,
            person_off,
            enterprise_off,
            face_off,
            ("YIHAO_SERVER__ISSUER", "http://127.0.0.1:8080"),
        ])
        .unwrap();
        // The http adapters need their URL (https in production) and, for SMS, a signing key.
        let sms_http = ("YIHAO_SMS__ADAPTER", "http");
        let e = load(&[prod, https, key, sms_http, person_off, enterprise_off]).unwrap_err();
        assert_eq!(e.key, "sms.http.url");
        let e = load(&[
            prod,
            https,
            key,
            sms_http,
            ("YIHAO_SMS__HTTP__URL", "http://sms.example.gov.cn/send"),
            person_off,
            enterprise_off,
        ])
        .unwrap_err();
        assert_eq!(e.key, "sms.http.url");
        let e = load(&[
            prod,
            https,
            key,
            sms_http,
            ("YIHAO_SMS__HTTP__URL", "https://sms.example.gov.cn/send"),
            person_off,
            enterprise_off,
        ])
        .unwrap_err();
        assert_eq!(e.key, "sms.http.signing_key");
    }

    #[test]
    fn the_production_example_is_refused_only_for_its_placeholders() {
        let file = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/production.example.toml"
        ));
        let e = Config::load_with_env(Some(file), []).unwrap_err();
        assert_eq!(e.key, "keys.master_key");
        let key = (
            "YIHAO_KEYS__MASTER_KEY",
            "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=",
        );
        let metrics = (
            "YIHAO_SERVER__METRICS_TOKEN",
            "scraper-token-of-this-deployment",
        );
        let e = Config::load_with_env(Some(file), [key, metrics]).unwrap_err();
        assert_eq!(e.key, "sms.http.signing_key");
        let sms = (
            "YIHAO_SMS__HTTP__SIGNING_KEY",
            "gateway-key-of-this-deployment",
        );
        let e = Config::load_with_env(Some(file), [key, metrics, sms]).unwrap_err();
        assert_eq!(e.key, "verify.person.token");
        let person = ("YIHAO_VERIFY__PERSON__TOKEN", "t1");
        let enterprise = ("YIHAO_VERIFY__ENTERPRISE__TOKEN", "t2");
        let e =
            Config::load_with_env(Some(file), [key, metrics, sms, person, enterprise]).unwrap_err();
        assert_eq!(e.key, "verify.face.token");
        let face = ("YIHAO_VERIFY__FACE__TOKEN", "t3");
        Config::load_with_env(Some(file), [key, metrics, sms, person, enterprise, face]).unwrap();
    }

    #[test]
    fn secrets_and_url_passwords_are_redacted() {
        let c = load(&[
            ("YIHAO_KEYS__MASTER_KEY", "top-secret-value"),
            (
                "YIHAO_DATABASE__URL",
                "postgres://app:hunter2@db:5432/yihao",
            ),
        ])
        .unwrap();
        let printed = c.to_redacted_toml();
        assert!(!printed.contains("top-secret-value"), "{printed}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(
            printed.contains("postgres://app:%5Bredacted%5D@db:5432/yihao"),
            "{printed}"
        );
        assert!(!format!("{c:?}").contains("top-secret-value"));
        assert_eq!(c.keys.master_key.to_string(), "[redacted]");
    }

    #[test]
    fn a_config_file_sits_between_defaults_and_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("y.toml");
        std::fs::write(
            &path,
            "[server]\nbind = \"127.0.0.1:7000\"\nrequest_timeout_secs = 7\n",
        )
        .unwrap();
        let c =
            Config::load_with_env(Some(&path), [("YIHAO_SERVER__BIND", "127.0.0.1:7001")]).unwrap();
        assert_eq!(c.server.bind.port(), 7001);
        assert_eq!(c.server.request_timeout_secs, 7);
        std::fs::write(&path, "[server]\nrequest_timeout_secs = \"soon\"\n").unwrap();
        let e = Config::load_with_env(Some(&path), []).unwrap_err();
        assert_eq!(e.key, "server.request_timeout_secs");
        assert!(e.problem.contains("y.toml"), "{e}");
    }
}
