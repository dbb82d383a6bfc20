//! Composition root: reads the [`Config`], picks the adapters by URL (the only place that names
//! one), builds the shared [`App`], serves HTTP and shuts down gracefully.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;

use crate::clock::{Clock, SystemClock};
use crate::config::{CacheConfig, Config, DatabaseConfig, DatabaseKind, database_kind};
use crate::crypto::MasterKey;
use crate::crypto::client_secret::ClientSecretBox;
use crate::crypto::password::PasswordHasher;
use crate::crypto::pii::Pii;
use crate::crypto::subject::SubjectCodec;
use crate::protocol::accounts::Identities;
use crate::protocol::keys::Keys;
use crate::protocol::outside::{EnterpriseRegister, PersonRegister, SmsGateway};
use crate::store::memory::MemoryEphemeral;
use crate::store::postgres::PostgresStore;
use crate::store::redis::RedisEphemeral;
use crate::store::sqlite::SqliteStore;
use crate::store::{Ephemeral, Store, StoreError};
use crate::telemetry::Metrics;

pub mod audit;
pub mod client_check;
mod client_keys;
mod operations;
pub mod outbound;
mod tasks;
pub mod tls;
pub use audit::Auditor;
pub use client_keys::HttpClientKeys;
pub use operations::AdminParts;
pub use tasks::{
    spawn_audit_checkpointer, spawn_background, spawn_client_reloader, spawn_key_reloader,
    spawn_logout_deliverer, spawn_session_sweeper,
};

/// The node name recorded in audit records: the configured one, else the host name.
pub fn node_name(configured: &str) -> String {
    if !configured.is_empty() {
        return configured.to_owned();
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "yihao".to_owned())
}

/// Everything a request may need, built once at start-up and shared as `Arc<App>`.
pub struct App {
    pub config: Config,
    /// The one clock handlers and background tasks read (the system's, or a test's).
    pub clock: Arc<dyn Clock>,
    pub store: Arc<dyn Store>,
    pub ephemeral: Arc<dyn Ephemeral>,
    pub metrics: Metrics,
    pub master_key: MasterKey,
    pub identities: Identities,
    pub keys: Keys,
    pub subjects: SubjectCodec,
    /// The discovery document, rendered once.
    pub discovery: String,
    /// The effective configuration as the administrators' settings view shows it (secrets redact
    /// themselves when serialised), rendered once.
    pub settings: serde_json::Value,
    /// Clients' public keys fetched from their jwks_uri.
    pub client_keys: HttpClientKeys,
    /// Seals and opens the secrets of client_secret_jwt clients.
    pub client_secrets: ClientSecretBox,
    /// The audit writer of this process.
    pub audit: Auditor,
    /// The registered clients, held in memory (reloaded by `spawn_client_reloader`).
    pub clients: crate::store::client_cache::ClientCache,
    /// `server.trusted_proxies`, parsed.
    pub trusted_proxies: Vec<crate::web::client_ip::Block>,
    /// The `aud` values a client assertion may name (RFC 7523 §3): the issuer and the endpoints
    /// that authenticate clients.
    pub assertion_audiences: Vec<String>,
    /// The services outside yihao (docs/gateways.md), as `sms`, `verify.person` and
    /// `verify.enterprise` name them.
    pub outside: Outside,
    /// The key SMS codes and the numbers they go to are hashed with.
    pub sms_key: crate::protocol::sms_code::CodeKey,
    /// Seals what the ephemeral store keeps of registrations and recoveries in progress.
    pub draft_sealer: crate::crypto::pii::Sealer,
    /// The key of the CSRF tokens of forms that belong to no interaction (`web::cookies::form_token`).
    pub form_key: zeroize::Zeroizing<[u8; 32]>,
    /// Seals second-factor secrets (TOTP secrets, passkeys).
    pub factor_sealer: crate::crypto::pii::Sealer,
    /// Seals the CAS service tickets kept in the database for single logout.
    pub cas_sealer: crate::crypto::pii::Sealer,
    /// The key recovery codes are hashed with.
    pub recovery_key: zeroize::Zeroizing<[u8; 32]>,
    /// The WebAuthn relying party (the issuer's host), when passkeys are offered.
    pub webauthn: Option<webauthn_rs::Webauthn>,
    /// The key passkey user handles are derived with.
    pub handle_key: zeroize::Zeroizing<[u8; 32]>,
}

/// The WebAuthn relying party of the issuer, when `second_factor.passkeys` is on and the issuer's
/// host is a name: the relying party id is that name, the one origin the issuer's.
pub fn webauthn(config: &Config) -> anyhow::Result<Option<webauthn_rs::Webauthn>> {
    if !config.second_factor.passkeys {
        return Ok(None);
    }
    let issuer = config.issuer_url()?;
    let Some(host) = issuer.domain() else {
        tracing::warn!("passkeys need an issuer whose host is a name, not an address: not offered");
        return Ok(None);
    };
    let origin = url::Url::parse(&issuer.origin().ascii_serialization())?;
    let webauthn = webauthn_rs::WebauthnBuilder::new(host, &origin)
        .map_err(|e| anyhow::anyhow!("second_factor.passkeys: {e}"))?
        .rp_name(&config.second_factor.issuer_name)
        .timeout(crate::protocol::passkeys::CEREMONY_TTL)
        .build()
        .map_err(|e| anyhow::anyhow!("second_factor.passkeys: {e}"))?;
    Ok(Some(webauthn))
}

/// The ports to the services outside yihao.
pub struct Outside {
    pub sms: Arc<dyn SmsGateway>,
    pub people: Arc<dyn PersonRegister>,
    pub enterprises: Arc<dyn EnterpriseRegister>,
    pub faces: Arc<dyn crate::protocol::outside::FaceVerifier>,
}

impl Outside {
    /// The adapters `config` names, reporting their calls to `metrics`.
    pub fn build(config: &Config, metrics: &Metrics) -> anyhow::Result<Self> {
        use crate::outside::{register, sms};
        Ok(Self {
            sms: sms::gateway(&config.sms, metrics.outside.clone())?,
            people: register::person_register(&config.verify.person, metrics.outside.clone())?,
            enterprises: register::enterprise_register(
                &config.verify.enterprise,
                metrics.outside.clone(),
            )?,
            faces: register::face_verifier(&config.verify.face, metrics.outside.clone())?,
        })
    }
}

/// The highest level a session of this deployment can reach (docs/assurance.md): 3 needs a second
/// factor and a way to proof an account at 3 (face verification); no method reaches 4.
pub fn highest_level(config: &Config, passkeys: bool) -> u8 {
    let second_factor = config.second_factor.totp || passkeys;
    if second_factor && config.verify.face.adapter != crate::config::Adapter::Off {
        crate::protocol::assurance::TWO_FACTOR_CEILING
    } else {
        crate::protocol::assurance::ONE_FACTOR_CEILING
    }
}

/// Opens the durable store named by `database.url`.
pub async fn open_store(config: &DatabaseConfig) -> Result<Arc<dyn Store>, StoreError> {
    let kind = database_kind(&config.url).map_err(|e| StoreError::backend("database.url", e))?;
    Ok(match kind {
        DatabaseKind::Sqlite => Arc::new(SqliteStore::open(config).await?),
        DatabaseKind::Postgres => Arc::new(PostgresStore::open(config).await?),
    })
}

/// Opens the ephemeral store: in-process when `cache.url` is empty, Redis otherwise.
pub fn open_ephemeral(config: &CacheConfig) -> Result<Arc<dyn Ephemeral>, StoreError> {
    if config.url.is_empty() {
        Ok(MemoryEphemeral::new(Duration::from_millis(
            config.sweep_interval_ms,
        )))
    } else {
        Ok(Arc::new(RedisEphemeral::open(config)?))
    }
}

/// Accounts and organisations over the given stores, with keys and the hashing pool made once here.
pub fn identities(
    config: &Config,
    master_key: &MasterKey,
    store: Arc<dyn Store>,
    ephemeral: Arc<dyn Ephemeral>,
) -> anyhow::Result<Identities> {
    Ok(Identities {
        accounts: store.clone(),
        orgs: store,
        ephemeral,
        pii: Arc::new(Pii::new(master_key, config.keys.pii_version)),
        hasher: Arc::new(PasswordHasher::new(&config.passwords)?),
        passwords: config.passwords.clone(),
    })
}

/// The key root every key for data at rest is derived from, opened with `keys.master_key` (or a
/// previous master key, with a warning until `yihao keys rotate-master` has run).
pub async fn key_root(config: &Config, store: &dyn Store, now: i64) -> anyhow::Result<MasterKey> {
    use crate::protocol::key_root::{self, Opener};
    let current = MasterKey::load(&config.keys)?;
    let previous = MasterKey::load_previous(&config.keys)?;
    let (root, opener) = key_root::open(store, &current, &previous, now)
        .await
        .context("keys.master_key")?;
    match opener {
        Opener::Created => tracing::info!("stored the key root, wrapped under the master key"),
        Opener::Current => {}
        Opener::Previous(i) => tracing::warn!(
            previous = i,
            "the key root is wrapped under keys.previous_master_keys[{i}]; run `yihao keys rotate-master`"
        ),
    }
    Ok(root)
}

/// The id of yihao's own client: the personal page signs people in through it (like Keycloak's
/// `account` client). Defined in the protocol, which protects it from administrators' changes.
pub use crate::protocol::my_account::ACCOUNT_CLIENT;

/// Registers yihao's own first-party public clients (`none` authentication, PKCE, the
/// authorization-code grant, scope `openid`): the personal page's `yihao-account` (redirect URI
/// `{issuer}/account/callback`) and the console's `yihao-console` (`{issuer}/admin/callback`, minimum
/// level 3: administrators sign in with two factors). Each is an ordinary row of the client registry.
/// An operator's change to what the pages rely on (the redirect, first party, public with PKCE,
/// `openid`, the console's level) is put back; anything else is left as the operator set it; another
/// node having registered one first is not an error.
pub async fn ensure_account_client(
    config: &Config,
    store: &dyn Store,
    now: i64,
) -> anyhow::Result<()> {
    ensure_own_client(
        config,
        store,
        ACCOUNT_CLIENT,
        "个人中心 · My account",
        "/account/callback",
        None,
        now,
    )
    .await?;
    ensure_own_client(
        config,
        store,
        crate::protocol::admin::console::CONSOLE_CLIENT,
        "管理控制台 · Administration console",
        "/admin/callback",
        Some(crate::protocol::admin::console::CONSOLE_LEVEL),
        now,
    )
    .await
}

async fn ensure_own_client(
    config: &Config,
    store: &dyn Store,
    id: &str,
    name: &str,
    callback: &str,
    min_level: Option<u8>,
    now: i64,
) -> anyhow::Result<()> {
    use crate::domain::client::{
        AuthMethod, Client, ClientId, ClientSettings, ClientSpec, GrantType, RedirectUri, Scope,
    };
    let issuer = config.server.issuer.trim_end_matches('/');
    let spec = ClientSpec {
        id: ClientId::parse(id)?,
        name: name.into(),
        auth_method: AuthMethod::None,
        redirect_uris: vec![RedirectUri::parse(&format!("{issuer}{callback}"))?],
        post_logout_redirect_uris: vec![],
        grant_types: vec![GrantType::AuthorizationCode],
        scopes: vec![Scope::parse("openid")?],
        first_party: true,
        settings: ClientSettings {
            min_level,
            ..ClientSettings::default()
        },
    };
    let wanted = Client::register(spec, None, now)?;
    match store.client(wanted.id()).await? {
        Some(existing)
            if existing.redirect_uris() == wanted.redirect_uris()
                && existing.first_party()
                && existing.auth_method() == wanted.auth_method()
                && existing.scopes() == wanted.scopes()
                && existing.settings().min_level == min_level =>
        {
            Ok(())
        }
        Some(_) => Ok(store.update_client(&wanted).await?),
        None => match store.insert_client(&wanted).await {
            // Another node registered it first.
            Err(StoreError::Conflict(_)) => Ok(()),
            other => Ok(other?),
        },
    }
}

/// The signing keys, loaded (and made where missing) once.
pub async fn start_keys(
    config: &Config,
    master_key: &MasterKey,
    store: Arc<dyn Store>,
    now: i64,
) -> anyhow::Result<Keys> {
    let t = &config.tokens;
    // A client may set its own lifetimes, up to a day (domain::client::ClientSettings).
    let longest = t.id_token_secs.max(t.access_token_secs).max(86_400);
    Keys::start(
        store,
        master_key,
        config.keys.publish_before_use_secs,
        longest,
        now,
    )
    .await
    .context("signing keys")
}

impl App {
    /// Opens both stores, applies migrations when `database.migrate_on_start` is set, loads keys;
    /// on the system clock.
    pub async fn build(config: Config) -> anyhow::Result<Arc<Self>> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// [`App::build`] on the given clock (tests pass a [`crate::clock::ManualClock`]).
    pub async fn build_with_clock(
        config: Config,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Arc<Self>> {
        let store = open_store(&config.database).await.context("database")?;
        if config.database.migrate_on_start {
            store.migrate().await.context("database")?;
        }
        let ephemeral = open_ephemeral(&config.cache).context("cache")?;
        let master_key = key_root(&config, store.as_ref(), clock.now()).await?;
        let identities = identities(&config, &master_key, store.clone(), ephemeral.clone())?;
        let keys = start_keys(&config, &master_key, store.clone(), clock.now()).await?;
        let subjects = SubjectCodec::new(&master_key);
        let client_secrets = ClientSecretBox::new(&master_key, config.keys.pii_version);
        let webauthn = webauthn(&config)?;
        let settings = serde_json::to_value(&config).unwrap_or_default();
        let discovery = crate::protocol::discovery::document(
            &config.server.issuer,
            highest_level(&config, webauthn.is_some()),
        )
        .to_string();
        let metrics = Metrics::default();
        let outside = Outside::build(&config, &metrics)?;
        let sms_key = crate::protocol::sms_code::CodeKey(master_key.derive("sms-code"));
        let draft_sealer = crate::crypto::pii::Sealer::new(&master_key, "drafts", 1);
        let form_key = master_key.derive("form-csrf");
        let factor_sealer = crate::crypto::pii::Sealer::new(&master_key, "factors", 1);
        let cas_sealer = crate::crypto::pii::Sealer::new(&master_key, "cas-tickets", 1);
        let recovery_key = master_key.derive("recovery-codes");
        let handle_key = master_key.derive("passkey-user-handle");
        let audit = Auditor::start(
            store.clone(),
            node_name(&config.audit.node),
            config.audit.queue,
            metrics.audit_queue_full.clone(),
            clock.clone(),
        );
        let trusted_proxies = crate::web::client_ip::parse_proxies(&config.server.trusted_proxies)
            .context("server.trusted_proxies")?;
        ensure_account_client(&config, store.as_ref(), clock.now())
            .await
            .context("the personal page's client")?;
        let clients = crate::store::client_cache::ClientCache::new(store.clone());
        clients.reload().await.context("database")?;
        let assertion_audiences = operations::assertion_audiences(&config.server.issuer);
        let client_keys = HttpClientKeys::with_destinations(outbound::Destinations {
            enforce: config.mode == crate::config::Mode::Production,
            allowed: crate::web::client_ip::parse_proxies(&config.server.outbound_private_networks)
                .context("server.outbound_private_networks")?,
        });
        Ok(Arc::new(Self {
            assertion_audiences,
            clock,
            clients,
            trusted_proxies,
            audit,
            config,
            store,
            ephemeral,
            metrics,
            master_key,
            identities,
            keys,
            subjects,
            discovery,
            settings,
            client_keys,
            client_secrets,
            outside,
            sms_key,
            draft_sealer,
            cas_sealer,
            form_key,
            factor_sealer,
            recovery_key,
            webauthn,
            handle_key,
        }))
    }
}

/// What [`serve_until`] serves on: plain TCP, or TLS over TCP ([`tls::TlsListener`]). Either way
/// Nagle's algorithm is off, so a response's last segment does not wait for an ACK.
pub trait Transport: axum::serve::Listener<Addr = SocketAddr> {
    fn no_delay(io: &mut Self::Io);
}

impl Transport for TcpListener {
    fn no_delay(io: &mut Self::Io) {
        let _ = io.set_nodelay(true);
    }
}

impl Transport for tls::TlsListener {
    fn no_delay(io: &mut Self::Io) {
        let _ = io.get_ref().0.set_nodelay(true);
    }
}

/// Serves `router` on `listener` until `shutdown` completes; then stops accepting, lets in-flight
/// requests finish for at most `grace`, and returns. HTTP/1.1 and HTTP/2 (by ALPN over TLS, by the
/// connection preface over plain TCP).
pub async fn serve_until<L: Transport>(
    listener: L,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(
        listener.tap_io(L::no_delay),
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections, finishing requests in flight");
        let _ = stopping_tx.send(());
    })
    .into_future();
    let deadline = async move {
        if stopping_rx.await.is_ok() {
            tokio::time::sleep(grace).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        served = server => served,
        () = deadline => {
            tracing::warn!(grace_secs = grace.as_secs(), "requests still in flight after the grace period; exiting");
            Ok(())
        }
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}

/// `yihao serve`: build, bind, serve until a signal, then close the stores.
pub async fn run(config: Config, started: Instant) -> anyhow::Result<()> {
    let bind = config.server.bind;
    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    // A certificate that does not load stops the server before anything else is opened.
    let tls = &config.server.tls;
    let certificates = if tls.enabled() {
        let (cert, key) = (tls.cert.clone(), tls.key.clone());
        Some(tokio::task::spawn_blocking(move || tls::CertStore::open(&cert, &key)).await??)
    } else {
        None
    };
    let app = App::build(config).await?;
    if app.master_key.is_development() {
        tracing::warn!("development master key in use: not for production");
    }
    if app.config.mode == crate::config::Mode::Production
        && app.config.server.metrics_token.is_empty()
    {
        tracing::warn!("server.metrics_token is not set: /metrics answers anyone");
    }
    let listener = TcpListener::bind(bind)
        .await
        .with_context(|| format!("server.bind: cannot listen on {bind}"))?;
    tracing::info!(
        address = %listener.local_addr()?,
        tls = certificates.as_ref().map(|c| c.fingerprint()),
        issuer = %app.config.server.issuer,
        database = app.store.backend(),
        cache = app.ephemeral.backend(),
        startup_ms = started.elapsed().as_millis() as u64,
        "yihao {} listening",
        env!("CARGO_PKG_VERSION"),
    );
    spawn_background(app.clone());
    let router = crate::web::router(app.clone());
    match certificates {
        Some(certificates) => {
            let config = certificates.server_config()?;
            tls::reload_on_sighup(certificates);
            let listener = tls::TlsListener::new(listener, config)?;
            serve_until(listener, router, shutdown_signal(), grace).await?;
        }
        None => serve_until(listener, router, shutdown_signal(), grace).await?,
    }
    app.store.close().await;
    tracing::info!("stopped");
    Ok(())
}
