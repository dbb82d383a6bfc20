//! The command line (clap): `serve`, `migrate`, `config check`, and the administrative groups
//! (`client` now; `account`, `org`, `keys`, `audit` as their capabilities land). Every command has
//! `--help`, exits 0 on success, and on failure prints one line on stderr and exits non-zero.
//! Output meant for programs (`--output json`) goes to stdout; logs go to stderr.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};

use crate::app::{open_ephemeral, open_store};
use crate::config::Config;
use crate::crypto::{hash_secret, random_token};
use crate::domain::client::{
    AuthMethod, Client, ClientId, ClientSecrets, ClientSpec, GrantType, RedirectUri, Scope,
};
use crate::store::{Ephemeral, Store};

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
    /// Manage citizen accounts (keyed by resident ID number). Not available in this version yet.
    Account(Pending),
    /// Manage organisations (keyed by unified social credit code) and mandates. Not available in this version yet.
    Org(Pending),
    /// List, rotate and retire signing keys; rotate PII keys. Not available in this version yet.
    Keys(Pending),
    /// Verify and export the tamper-evident audit log. Not available in this version yet.
    Audit(Pending),
}

/// A command group whose commands arrive with a later capability.
#[derive(Debug, Args)]
pub struct Pending {
    #[arg(hide = true, trailing_var_arg = true, allow_hyphen_values = true)]
    rest: Vec<String>,
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
    /// Delete a client.
    Delete {
        /// The client_id.
        id: String,
    },
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
    /// Grant type: authorization_code, refresh_token, client_credentials (repeat for several).
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
        Command::Client(command) => client_command(&config, command).await,
        Command::Account(_) => not_yet("account"),
        Command::Org(_) => not_yet("org"),
        Command::Keys(_) => not_yet("keys"),
        Command::Audit(_) => not_yet("audit"),
    }
}

fn not_yet(group: &str) -> anyhow::Result<()> {
    bail!("`yihao {group}` has no commands in this version of yihao")
}

/// The stores an administrative command works on.
async fn admin_stores(config: &Config) -> anyhow::Result<(Arc<dyn Store>, Arc<dyn Ephemeral>)> {
    let store = open_store(&config.database).await.context("database")?;
    if config.database.migrate_on_start {
        store.migrate().await.context("database")?;
    }
    let ephemeral = open_ephemeral(&config.cache).context("cache")?;
    Ok((store, ephemeral))
}

/// Channel on which running nodes hear that a client changed (payload: the client_id).
pub const CLIENTS_CHANNEL: &str = "clients";

async fn client_command(config: &Config, command: ClientCommand) -> anyhow::Result<()> {
    let (store, ephemeral) = admin_stores(config).await?;
    let now = now();
    let changed = match command {
        ClientCommand::Create(args) => {
            let output = args.output;
            let (client, secret) = register_client(args, now)?;
            store.insert_client(&client).await?;
            print_client(&client, secret.as_deref(), output);
            Some(client.id().clone())
        }
        ClientCommand::List { output } => {
            let clients = store.clients().await?;
            match output {
                Output::Json => {
                    let list: Vec<Value> = clients.iter().map(|c| client_json(c, None)).collect();
                    println!("{}", Value::Array(list));
                }
                Output::Text => {
                    for c in &clients {
                        println!(
                            "{}\t{}\t{}\t{}",
                            c.id(),
                            c.auth_method().as_str(),
                            c.grant_types()
                                .iter()
                                .map(|g| g.as_str())
                                .collect::<Vec<_>>()
                                .join(","),
                            c.name()
                        );
                    }
                }
            }
            None
        }
        ClientCommand::Show { id, output } => {
            let client = find_client(store.as_ref(), &id).await?;
            print_client(&client, None, output);
            None
        }
        ClientCommand::RotateSecret {
            id,
            previous_valid_secs,
            output,
        } => {
            let client = find_client(store.as_ref(), &id).await?;
            let Some(old) = client.secrets() else {
                bail!(
                    "client {id} uses {} and has no secret",
                    client.auth_method().as_str()
                );
            };
            let secret = random_token();
            let secrets = ClientSecrets {
                current: hash_secret(&secret),
                previous: Some((old.current, now + i64::from(previous_valid_secs))),
            };
            let rotated = Client::restore(client.spec(), Some(secrets), client.created_at(), now)?;
            store.update_client(&rotated).await?;
            print_client(&rotated, Some(&secret), output);
            Some(rotated.id().clone())
        }
        ClientCommand::Delete { id } => {
            let id = ClientId::parse(&id)?;
            if !store.delete_client(&id).await? {
                bail!("client {id} not found");
            }
            eprintln!("deleted client {id}");
            Some(id)
        }
    };
    if let Some(id) = changed {
        // Running nodes drop what they cached about this client. Best effort: with the in-process
        // cache there is no other node to tell.
        if let Err(e) = ephemeral
            .publish(CLIENTS_CHANNEL, id.as_str().as_bytes())
            .await
        {
            eprintln!("warning: client saved, but running nodes were not notified: {e}");
        }
    }
    store.close().await;
    Ok(())
}

async fn find_client(store: &dyn Store, id: &str) -> anyhow::Result<Client> {
    let id = ClientId::parse(id)?;
    store
        .client(&id)
        .await?
        .with_context(|| format!("client {id} not found"))
}

/// Turns the flags into a checked registration and, for secret-based methods, a fresh secret.
fn register_client(args: CreateClient, now: i64) -> anyhow::Result<(Client, Option<String>)> {
    let auth_method = match (&args.token_endpoint_auth_method, args.public) {
        (Some(m), public) => {
            let m = AuthMethod::parse(m)?;
            if public && m != AuthMethod::None {
                bail!(
                    "--public clients authenticate with token_endpoint_auth_method none, not {}",
                    m.as_str()
                );
            }
            m
        }
        (None, true) => AuthMethod::None,
        (None, false) => AuthMethod::ClientSecretBasic,
    };
    let id = match &args.id {
        Some(id) => ClientId::parse(id)?,
        None => ClientId::parse(&uuid::Uuid::new_v4().to_string())?,
    };
    let spec = ClientSpec {
        id,
        name: args.name,
        auth_method,
        redirect_uris: args
            .redirect_uris
            .iter()
            .map(|u| RedirectUri::parse(u))
            .collect::<Result<_, _>>()?,
        post_logout_redirect_uris: args
            .post_logout_redirect_uris
            .iter()
            .map(|u| RedirectUri::parse_post_logout(u))
            .collect::<Result<_, _>>()?,
        grant_types: args
            .grant_types
            .iter()
            .map(|g| GrantType::parse(g))
            .collect::<Result<_, _>>()?,
        scopes: args
            .scopes
            .iter()
            .map(|s| Scope::parse(s))
            .collect::<Result<_, _>>()?,
        first_party: args.first_party,
    };
    let secret = auth_method.uses_secret().then(random_token);
    let secrets = secret.as_deref().map(|s| ClientSecrets {
        current: hash_secret(s),
        previous: None,
    });
    Ok((Client::register(spec, secrets, now)?, secret))
}

/// RFC 7591 §3.2.1 client information response fields (`first_party` is ours).
fn client_json(client: &Client, secret: Option<&str>) -> Value {
    let strs = |items: Vec<&str>| Value::from(items);
    let mut out = json!({
        "client_id": client.id().as_str(),
        "client_name": client.name(),
        "redirect_uris": strs(client.redirect_uris().iter().map(RedirectUri::as_str).collect()),
        "post_logout_redirect_uris":
            strs(client.post_logout_redirect_uris().iter().map(RedirectUri::as_str).collect()),
        "grant_types": strs(client.grant_types().iter().map(|g| g.as_str()).collect()),
        "response_types": if client.grant_types().contains(&GrantType::AuthorizationCode) { json!(["code"]) } else { json!([]) },
        "scope": client.scopes().iter().map(Scope::as_str).collect::<Vec<_>>().join(" "),
        "token_endpoint_auth_method": client.auth_method().as_str(),
        "client_id_issued_at": client.created_at(),
        "first_party": client.first_party(),
    });
    if let Some(secret) = secret {
        out["client_secret"] = Value::from(secret);
        out["client_secret_expires_at"] = Value::from(0);
    }
    out
}

fn print_client(client: &Client, secret: Option<&str>, output: Output) {
    let value = client_json(client, secret);
    match output {
        Output::Json => println!("{value}"),
        Output::Text => {
            if let Value::Object(map) = value {
                for (k, v) in map {
                    let shown = match v {
                        Value::String(s) => s,
                        Value::Array(items) => items
                            .iter()
                            .map(|i| i.as_str().unwrap_or_default())
                            .collect::<Vec<_>>()
                            .join(" "),
                        other => other.to_string(),
                    };
                    println!("{k:28}{shown}");
                }
            }
            if secret.is_some() {
                eprintln!("note: the client secret is shown only now; it is stored as a hash");
            }
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
