//! The command line (clap): `serve`, `migrate`, `config check`, and the administrative groups
//! (`client` now; `account`, `org`, `keys`, `audit` as their capabilities land). Every command has
//! `--help`, exits 0 on success, and on failure prints one line on stderr and exits non-zero.
//! Output meant for programs (`--output json`) goes to stdout; logs go to stderr.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::app::{open_ephemeral, open_store};
use crate::config::Config;
use crate::domain::password::Password;
use crate::protocol::accounts::Identities;
use crate::store::{Ephemeral, Store};

mod account;
mod admin;
mod audit;
mod client;
mod import;
mod keys;
mod org;
mod sandbox;
mod session;
mod sms;

pub use account::AccountCommand;
pub use keys::KeysCommand;
pub use org::OrgCommand;

#[derive(Debug, Parser)]
#[command(
    name = "yihao",
    version,
    about = "Unified identity authentication server (OpenID Connect / OAuth 2.0 provider)",
    long_about = "Unified identity authentication server: an OpenID Connect / OAuth 2.0 provider keyed by \
                  the resident ID number and the unified social credit code.\n\nConfiguration: built-in \
                  defaults < --config FILE < YIHAO_* environment variables (YIHAO_SERVER__BIND, \
                  YIHAO_DATABASE__URL, YIHAO_CACHE__URL, ...). See config/default.toml."
)]
pub struct Cli {
    /// Configuration file (TOML) layered over the built-in defaults.
    #[arg(long, global = true, env = "YIHAO_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
// Parsed once per process: the size of the largest variant (a client's flags) costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Run the server (applies pending migrations first unless database.migrate_on_start = false).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Register and manage OAuth 2.0 / OpenID Connect clients (relying services).
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage person accounts (keyed by resident ID number or another identity document).
    #[command(subcommand)]
    Account(AccountCommand),
    /// Manage organisations (keyed by unified social credit code) and the people who act for them.
    #[command(subcommand)]
    Org(OrgCommand),
    /// List and end single sign-on sessions (ending one sends back-channel logout to its services).
    #[command(subcommand)]
    Session(session::SessionCommand),
    /// Key management: signing keys (list, rotate, retire) and re-sealing personal data.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Verify and export the tamper-evident audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Administrator roles: system, security, audit and department administrators.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// A development server's test people, enterprise and clients, for integrating on a laptop.
    #[command(subcommand)]
    Sandbox(sandbox::SandboxCommand),
    /// The development SMS gateway's outbox.
    #[command(subcommand)]
    Sms(sms::SmsCommand),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and print the effective values, secrets redacted.
    Check,
}

#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum Output {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client. The secret of a confidential client is printed once and stored only as a hash.
    Create(CreateClient),
    /// Change a client: each flag given replaces that setting (list flags replace the whole list).
    Update(UpdateClient),
    /// List registered clients.
    List {
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Show one client.
    Show {
        /// The client_id.
        id: String,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Issue a new secret; the previous one stays valid for --previous-valid-secs.
    RotateSecret {
        /// The client_id.
        id: String,
        /// How long the previous secret keeps working, so relying services can switch without downtime.
        #[arg(long, default_value_t = 86_400)]
        previous_valid_secs: u32,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Issue a one-time initial access token for Dynamic Client Registration (RFC 7591): a
    /// department registers one client with it at /connect/register; the client waits for
    /// `yihao client approve` (docs/integration/registration.md).
    RegistrationToken {
        /// The department the client will belong to (its unified social credit code).
        #[arg(long)]
        department: Option<String>,
        /// Seconds the token stays usable (60 to 2592000; default 7 days).
        #[arg(long)]
        expires_in: Option<i64>,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Approve a client registered at the registration endpoint: it may sign people in from now on.
    Approve {
        /// The client_id.
        id: String,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Delete a client.
    Delete {
        /// The client_id.
        id: String,
    },
}

/// Per-client token settings (RFC 7591 / OIDC Dynamic Registration names).
#[derive(Debug, Args)]
pub struct TokenSettings {
    /// RS256, ES256 or EdDSA (default: tokens.id_token_alg).
    #[arg(long, value_name = "ALG")]
    pub id_token_signed_response_alg: Option<String>,
    /// RS256, ES256 or EdDSA for the JWT access tokens (default: tokens.access_token_alg).
    #[arg(long, value_name = "ALG")]
    pub access_token_signed_response_alg: Option<String>,
    /// Access-token lifetime in seconds, 60 to 86400 (default: tokens.access_token_secs).
    #[arg(long, value_name = "SECONDS")]
    pub access_token_lifetime: Option<u32>,
    /// ID-token lifetime in seconds, 60 to 86400 (default: tokens.id_token_secs).
    #[arg(long, value_name = "SECONDS")]
    pub id_token_lifetime: Option<u32>,
    /// true: the client receives the full mobile number with the phone scope (masked otherwise).
    #[arg(long, value_name = "BOOL")]
    pub full_phone: Option<bool>,
    /// true: this confidential client may leave out PKCE, although the server requires it
    /// (tokens.require_pkce) — for a relying party that cannot send it yet.
    #[arg(long, value_name = "BOOL")]
    pub pkce_optional: Option<bool>,
    /// The lowest real-name level (1-4) this client's users must reach (docs/assurance.md); a
    /// request that cannot reach it is refused with unmet_authentication_requirements.
    #[arg(long, value_name = "LEVEL")]
    pub min_level: Option<u8>,
    /// Where the device stands (a kiosk's hall and number), shown when a person approves it.
    #[arg(long, value_name = "TEXT")]
    pub location: Option<String>,
    /// private_key_jwt: the client's public keys as a JWK Set (JSON, or @FILE).
    #[arg(long, value_name = "JSON|@FILE")]
    pub jwks: Option<String>,
    /// private_key_jwt: where the client publishes its JWK Set.
    #[arg(long, value_name = "URL")]
    pub jwks_uri: Option<String>,
    /// Where back-channel logout tokens are POSTed when a session with this client ends.
    #[arg(long, value_name = "URL")]
    pub backchannel_logout_uri: Option<String>,
    /// true: logout tokens for this client must carry sid.
    #[arg(long, value_name = "BOOL")]
    pub backchannel_logout_session_required: Option<bool>,
    /// A page the logout page loads in an iframe so the client can end its own session.
    #[arg(long, value_name = "URL")]
    pub frontchannel_logout_uri: Option<String>,
    /// true: add iss and sid to the front-channel logout URL.
    #[arg(long, value_name = "BOOL")]
    pub frontchannel_logout_session_required: Option<bool>,
    /// The channel the client serves people through: web (default), app, kiosk, window, system.
    #[arg(long, value_name = "CHANNEL")]
    pub channel: Option<String>,
    /// The owning department's unified social credit code (its department administrators manage
    /// the client); empty clears it.
    #[arg(long, value_name = "CODE")]
    pub department: Option<String>,
    /// A resource (RFC 8707) the client may ask machine tokens for (repeat for several).
    #[arg(long = "resource", value_name = "URI")]
    pub resources: Vec<String>,
    /// A CAS service URL the client is known by (repeat for several; a final `*` makes it a prefix:
    /// docs/integration/cas.md). A client created with CAS services and no redirect URI gets no
    /// OAuth grant unless --grant-type says otherwise.
    #[arg(long = "cas-service", value_name = "URL")]
    pub cas_services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct UpdateClient {
    /// The client_id.
    pub id: String,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long = "redirect-uri", value_name = "URI")]
    pub redirect_uris: Vec<String>,
    #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
    pub post_logout_redirect_uris: Vec<String>,
    #[arg(long = "grant-type", value_name = "GRANT")]
    pub grant_types: Vec<String>,
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// true: skip the consent page; false: ask.
    #[arg(long, value_name = "BOOL")]
    pub first_party: Option<bool>,
    #[command(flatten)]
    pub settings: TokenSettings,
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct CreateClient {
    /// Human-readable name shown on the consent page.
    #[arg(long)]
    pub name: String,
    /// client_id to use (letters, digits, - . _ ~); a random UUID when omitted.
    #[arg(long)]
    pub id: Option<String>,
    /// Redirect URI (repeat for several); compared exactly.
    #[arg(long = "redirect-uri", value_name = "URI")]
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the browser afterwards (repeat for several).
    #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
    pub post_logout_redirect_uris: Vec<String>,
    /// Grant type: authorization_code, refresh_token, client_credentials,
    /// urn:ietf:params:oauth:grant-type:device_code (repeat for several).
    #[arg(long = "grant-type", value_name = "GRANT", default_values_t = ["authorization_code".to_owned()])]
    pub grant_types: Vec<String>,
    /// Scope the client may request (repeat for several).
    #[arg(long = "scope", value_name = "SCOPE", default_values_t = ["openid".to_owned()])]
    pub scopes: Vec<String>,
    /// A public client (native or browser app): no secret, token_endpoint_auth_method none, PKCE required.
    #[arg(long)]
    pub public: bool,
    /// client_secret_basic (default), client_secret_post, client_secret_jwt, private_key_jwt, none.
    #[arg(long, value_name = "METHOD")]
    pub token_endpoint_auth_method: Option<String>,
    /// First-party service: the consent page is skipped.
    #[arg(long)]
    pub first_party: bool,
    #[command(flatten)]
    pub settings: TokenSettings,
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

/// Runs a parsed command line.
pub async fn run(cli: Cli, started: Instant) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    if matches!(cli.command, Command::Serve | Command::Migrate) {
        crate::telemetry::init(&config.log);
    }
    match cli.command {
        Command::Serve => crate::app::run(config, started).await,
        Command::Migrate => {
            let store = open_store(&config.database).await.context("database")?;
            store.migrate().await.context("database")?;
            store.close().await;
            tracing::info!(backend = store.backend(), "migrations applied");
            Ok(())
        }
        Command::Config(ConfigCommand::Check) => {
            print!("{}", config.to_redacted_toml());
            Ok(())
        }
        Command::Client(command) => {
            let admin = Admin::open(&config).await?;
            let result = client::run(&admin, command).await;
            admin.close().await;
            result
        }
        Command::Account(command) => {
            let admin = Admin::open(&config).await?;
            let result = account::run(&admin, command).await;
            admin.close().await;
            result
        }
        Command::Org(command) => {
            let admin = Admin::open(&config).await?;
            let result = org::run(&admin, command).await;
            admin.close().await;
            result
        }
        Command::Session(command) => {
            let admin = Admin::open(&config).await?;
            let result = session::run(&admin, command).await;
            admin.close().await;
            result
        }
        Command::Keys(command) => {
            let admin = Admin::open(&config).await?;
            let result = keys::run(&admin, &config, command).await;
            admin.close().await;
            result
        }
        Command::Audit(command) => {
            let admin = Admin::open(&config).await?;
            let result = audit::run(&admin, &config, command).await;
            admin.close().await;
            result
        }
        Command::Admin(command) => {
            let admin = Admin::open(&config).await?;
            let result = admin::run(&admin, command).await;
            admin.close().await;
            result
        }
        Command::Sandbox(command) => {
            // Before the database is even opened.
            sandbox::refuse_production(&config)?;
            let admin = Admin::open(&config).await?;
            let result = sandbox::run(&admin, &config, command).await;
            admin.close().await;
            result
        }
        Command::Sms(command) => sms::run(&config, command),
    }
}

/// What an administrative command works on: the stores (migrated when
/// `database.migrate_on_start`), and accounts over them.
pub struct Admin {
    pub store: Arc<dyn Store>,
    pub ephemeral: Arc<dyn Ephemeral>,
    pub identities: Identities,
    pub keys: crate::protocol::keys::Keys,
    pub client_secrets: crate::crypto::client_secret::ClientSecretBox,
    pub subjects: crate::crypto::subject::SubjectCodec,
    /// Administrative changes are audited like requests (actor `admin`).
    pub audit: crate::app::Auditor,
}

impl Admin {
    async fn open(config: &Config) -> anyhow::Result<Self> {
        let store = open_store(&config.database).await.context("database")?;
        if config.database.migrate_on_start {
            store.migrate().await.context("database")?;
        }
        let ephemeral = open_ephemeral(&config.cache).context("cache")?;
        let master_key = crate::app::key_root(config, store.as_ref(), now()).await?;
        let identities =
            crate::app::identities(config, &master_key, store.clone(), ephemeral.clone())?;
        let keys = crate::app::start_keys(config, &master_key, store.clone(), now()).await?;
        let client_secrets = crate::crypto::client_secret::ClientSecretBox::new(
            &master_key,
            config.keys.pii_version,
        );
        let audit = crate::app::Auditor::start(
            store.clone(),
            format!("cli@{}", crate::app::node_name(&config.audit.node)),
            64,
            prometheus_client::metrics::counter::Counter::default(),
            std::sync::Arc::new(crate::clock::SystemClock),
        );
        Ok(Self {
            audit,
            subjects: crate::crypto::subject::SubjectCodec::new(&master_key),
            store,
            ephemeral,
            identities,
            keys,
            client_secrets,
        })
    }

    /// The administrative operations, as the operator (every action; audited as `admin`).
    pub(crate) fn administration<'a>(
        &'a self,
        context: &'a crate::protocol::audit::RequestContext,
    ) -> crate::protocol::admin::Administration<'a> {
        crate::app::AdminParts {
            store: self.store.as_ref(),
            ephemeral: self.ephemeral.as_ref(),
            client_secrets: &self.client_secrets,
            identities: &self.identities,
            keys: &self.keys,
            subjects: &self.subjects,
            audit: &self.audit,
            // The operator's shell holds no SMS gateway.
            sms: None,
        }
        .administration(&crate::protocol::admin::Actor::Operator, context)
    }

    /// Session ending over the administrator's ports.
    fn sessions(&self) -> crate::protocol::session::Sessions<'_> {
        crate::protocol::session::Sessions {
            rows: self.store.as_ref(),
            clients: self.store.as_ref(),
            outbox: self.store.as_ref(),
            ephemeral: self.ephemeral.as_ref(),
            subjects: &self.subjects,
            audit: &self.audit,
        }
    }

    async fn close(&self) {
        self.store.close().await;
    }
}

/// Reads a password from the first line of standard input.
/// Records an administrative change in the audit log (actor `admin`; the change in `details`).
pub(crate) async fn audit_admin(
    admin: &Admin,
    event: crate::protocol::audit::EventType,
    target: &str,
    change: &str,
) -> anyhow::Result<()> {
    use crate::protocol::audit::{AuditEvent, AuditSink};
    let event = AuditEvent::success(event)
        .actor("admin")
        .target(target)
        .details(serde_json::json!({ "change": change }));
    admin.audit.record(event).await.context("audit log")?;
    Ok(())
}

pub(crate) fn read_password_stdin() -> anyhow::Result<Password> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        bail!("no password on standard input");
    }
    Ok(Password::new(password))
}

/// The operator's commands run on the system clock (they are not handlers: nothing to test them
/// against but the real time).
pub(crate) fn now() -> i64 {
    crate::clock::Clock::now(&crate::clock::SystemClock)
}

pub(crate) fn now_ms() -> i64 {
    crate::clock::system_ms()
}

/// Prints a JSON object as aligned `key value` lines.
pub(crate) fn print_text(value: &serde_json::Value) {
    use serde_json::Value;
    if let Value::Object(map) = value {
        for (k, v) in map {
            let shown = match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(" "),
                other => other.to_string(),
            };
            println!("{k:28}{shown}");
        }
    }
}
