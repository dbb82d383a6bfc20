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
use crate::store::memory::MemoryEphemeral;
use crate::store::postgres::PostgresStore;
use crate::store::redis::RedisEphemeral;
use crate::store::sqlite::SqliteStore;
use crate::store::{Ephemeral, Store, StoreError};
use crate::telemetry::{ErrorChain, Metrics};

pub mod audit;
mod operations;
pub mod tls;
pub use audit::Auditor;

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
}

/// Fetches clients' JWK Sets over HTTP with a time limit and caches them for five minutes.
pub struct HttpClientKeys {
    http: reqwest::Client,
    cache:
        std::sync::Mutex<std::collections::HashMap<String, (Instant, jsonwebtoken::jwk::JwkSet)>>,
}

impl HttpClientKeys {
    const TTL: Duration = Duration::from_secs(300);

    /// The underlying client, shared with other outbound work.
    pub fn client(&self) -> reqwest::Client {
        self.http.clone()
    }

    pub fn new() -> Self {
        Self::with_client(outbound_client())
    }

    /// Uses an existing client (one per process: each loads the TLS root store).
    pub fn with_client(http: reqwest::Client) -> Self {
        Self {
            http,
            cache: std::sync::Mutex::default(),
        }
    }
}

/// The process's one HTTP client for outbound calls (client JWK Sets, logout deliveries): no
/// redirects followed, a 5-second default limit (callers may set their own per request).
pub fn outbound_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

impl Default for HttpClientKeys {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl crate::protocol::client_auth::ClientKeys for HttpClientKeys {
    async fn fetch(&self, uri: &str, fresh: bool) -> Result<jsonwebtoken::jwk::JwkSet, String> {
        if !fresh {
            let cache = self
                .cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((_, set)) = cache.get(uri).filter(|(at, _)| at.elapsed() < Self::TTL) {
                return Ok(set.clone());
            }
        }
        let response = self
            .http
            .get(uri)
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if !response.status().is_success() {
            return Err(format!("{} answered {}", uri, response.status()));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if body.len() > 256 * 1024 {
            return Err("the JWK Set is larger than 256 KiB".into());
        }
        let set: jsonwebtoken::jwk::JwkSet =
            serde_json::from_slice(&body).map_err(|e| format!("not a JWK Set: {e}"))?;
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(uri.to_owned(), (Instant::now(), set.clone()));
        Ok(set)
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
        store,
        ephemeral,
        pii: Arc::new(Pii::new(master_key, config.keys.pii_version)),
        hasher: Arc::new(PasswordHasher::new(&config.passwords).map_err(anyhow::Error::msg)?),
        passwords: config.passwords.clone(),
    })
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

/// Starts the background work of a serving node: the key reloader, the logout deliverer and the
/// session sweeper. Returns their handles (tests stop a "node" by aborting them).
pub fn spawn_background(app: Arc<App>) -> Vec<tokio::task::AbortHandle> {
    vec![
        spawn_key_reloader(app.clone()),
        spawn_client_reloader(app.clone()),
        spawn_logout_deliverer(app.clone()),
        spawn_session_sweeper(app.clone()),
        spawn_audit_checkpointer(app),
    ]
}

/// Every `audit.checkpoint_secs`, signs the audit chain's head when it moved since the last
/// checkpoint (any node's: two nodes signing the same head store one).
pub fn spawn_audit_checkpointer(app: Arc<App>) -> tokio::task::AbortHandle {
    tokio::spawn(async move {
        let alg = crate::crypto::signing::Alg::parse(&app.config.tokens.id_token_alg)
            .unwrap_or(crate::crypto::signing::Alg::RS256);
        let mut tick = tokio::time::interval(Duration::from_secs(app.config.audit.checkpoint_secs));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut signed = 0;
        loop {
            tick.tick().await;
            if let Err(e) = checkpoint_once(&app, alg, &mut signed).await {
                tracing::warn!(error = %ErrorChain(&e), "audit checkpoint not written; retrying");
            }
        }
    })
    .abort_handle()
}

/// Signs the head if it moved past `signed`.
async fn checkpoint_once(
    app: &App,
    alg: crate::crypto::signing::Alg,
    signed: &mut i64,
) -> Result<(), crate::protocol::audit::CheckpointError> {
    let ring = app.keys.ring();
    let issuer = &app.config.server.issuer;
    let store = app.store.as_ref();
    if let Some(seq) = crate::protocol::audit::checkpoint_head(
        store,
        &ring,
        alg,
        issuer,
        *signed,
        app.clock.now_ms(),
    )
    .await?
    {
        *signed = seq;
    }
    Ok(())
}

/// Every `session.sweep_ms`: drops sessions ended elsewhere from this node's live store and ends
/// expired ones (fanning out back-channel logout); hourly, prunes rows ended more than
/// `session.keep_ended_secs` ago.
pub fn spawn_session_sweeper(app: Arc<App>) -> tokio::task::AbortHandle {
    // Sessions ended by another node or the CLI within this margin are dropped again on each pass,
    // which absorbs clock differences between machines.
    const MARGIN_SECS: i64 = 30;
    const PRUNE_EVERY_SECS: i64 = 3600;
    tokio::spawn(async move {
        let policy = app.session_policy();
        let mut tick = tokio::time::interval(Duration::from_millis(app.config.session.sweep_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut since = app.now() - MARGIN_SECS;
        let mut pruned_at = 0;
        loop {
            tick.tick().await;
            let now = app.now();
            match app.sessions().sweep(policy, since, now).await {
                Ok(0) => since = now - MARGIN_SECS,
                Ok(expired) => {
                    since = now - MARGIN_SECS;
                    tracing::info!(expired, "sessions expired");
                }
                Err(e) => tracing::warn!(error = %e, "session sweep failed; retrying"),
            }
            if now - pruned_at >= PRUNE_EVERY_SECS {
                pruned_at = now;
                let before = now.saturating_sub(app.config.session.keep_ended_secs as i64);
                if let Err(e) = app.store.prune_sessions(before).await {
                    tracing::warn!(error = %e, "cannot prune ended sessions");
                }
            }
        }
    })
    .abort_handle()
}

/// Delivers due back-channel logouts from the shared outbox, forever.
pub fn spawn_logout_deliverer(app: Arc<App>) -> tokio::task::AbortHandle {
    use crate::protocol::backchannel::{self, DeliveryError, Retry};
    tokio::spawn(async move {
        let cfg = app.config.logout.clone();
        let http = app.client_keys.client();
        let timeout = Duration::from_secs(cfg.timeout_secs);
        let retry = Retry {
            base_secs: cfg.retry_base_secs as i64,
            max_secs: cfg.retry_max_secs as i64,
            max_attempts: i64::from(cfg.max_attempts),
        };
        let default_alg = crate::crypto::signing::Alg::parse(&app.config.tokens.id_token_alg).unwrap_or(crate::crypto::signing::Alg::RS256);
        let mut tick = tokio::time::interval(Duration::from_millis(cfg.poll_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = app.now();
            let due = match app.store.claim_logouts(now, cfg.timeout_secs as i64 * 2 + 5, 20).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the logout outbox");
                    continue;
                }
            };
            for record in due {
                let client = match crate::domain::client::ClientId::parse(&record.client_id) {
                    Ok(id) => app.store.client(&id).await.ok().flatten(),
                    Err(_) => None,
                };
                let outcome = match &client {
                    None => Err(DeliveryError::ClientGone),
                    Some(client) => deliver(&http, timeout, &app, default_alg, client, &record, now).await,
                };
                let failed = outcome.is_err();
                let settled = backchannel::settle(record, outcome, retry, app.now());
                if failed {
                    tracing::info!(client = %settled.client_id, attempts = settled.attempts, status = %settled.status, error = ?settled.last_error, "back-channel logout not delivered yet");
                }
                if let Err(e) = app.store.settle_logout(&settled).await {
                    tracing::warn!(error = %e, "cannot record a logout delivery");
                }
            }
        }
    })
    .abort_handle()
}

/// One back-channel logout attempt (OIDC Back-Channel Logout 1.0 §2.5: the token POSTed as
/// `logout_token`; §2.8: "If the logout succeeded, the RP MUST respond with HTTP 200 OK").
async fn deliver(
    http: &reqwest::Client,
    timeout: Duration,
    app: &App,
    default_alg: crate::crypto::signing::Alg,
    client: &crate::domain::client::Client,
    record: &crate::store::OutboxRecord,
    now: i64,
) -> Result<(), crate::protocol::backchannel::DeliveryError> {
    use crate::protocol::backchannel::{DeliveryError, logout_token};
    let token = logout_token(
        &app.config.server.issuer,
        &app.keys.ring(),
        default_alg,
        client,
        record,
        now,
    )?;
    let sent = http
        .post(&record.uri)
        .timeout(timeout)
        .form(&[("logout_token", token.as_str())])
        .send()
        .await
        .map_err(|e| DeliveryError::Transport(Box::new(e.without_url())))?;
    if sent.status().is_success() {
        Ok(())
    } else {
        Err(DeliveryError::Status(sent.status().as_u16()))
    }
}

/// What a reloader wakes up for: its period, or a notice on its channel. A lost subscription (the
/// store shut down) leaves the timer alone, and is reported once as `Resync`.
struct Watch {
    subscription: Option<crate::store::Subscription>,
    tick: tokio::time::Interval,
}

impl Watch {
    async fn start(app: &App, channel: &str, what: &str, period: Duration) -> Self {
        let subscription = match app.ephemeral.subscribe(channel).await {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot subscribe to {what} changes; reloading on the timer only");
                None
            }
        };
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        Self { subscription, tick }
    }

    /// The next reason to look again: `None` for the timer, else the notice heard.
    async fn next(&mut self) -> Option<crate::store::Notice> {
        let heard = async {
            match self.subscription.as_mut() {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = self.tick.tick() => None,
            notice = heard => Some(notice.unwrap_or_else(|| {
                self.subscription = None;
                crate::store::Notice::Resync
            })),
        }
    }
}

/// Keeps the key ring fresh: reloads every `keys.reload_secs`, and at once when another node (or
/// the CLI) says the keys changed. Runs until the process ends.
pub fn spawn_key_reloader(app: Arc<App>) -> tokio::task::AbortHandle {
    tokio::spawn(async move {
        let period = Duration::from_secs(app.config.keys.reload_secs);
        let mut watch = Watch::start(&app, crate::protocol::keys::KEYS_CHANNEL, "key", period).await;
        loop {
            watch.next().await;
            if let Err(e) = app.keys.reload(app.now()).await {
                tracing::warn!(error = %e, "could not reload signing keys; keeping the current ones");
            }
        }
    })
    .abort_handle()
}

/// Keeps the clients held in memory fresh: reloads them every `cache.clients_reload_ms`, drops one
/// at once when the clients channel names it, and reloads all after messages may have been missed.
pub fn spawn_client_reloader(app: Arc<App>) -> tokio::task::AbortHandle {
    use crate::store::client_cache::CLIENTS_CHANNEL;
    tokio::spawn(async move {
        let period = Duration::from_millis(app.config.cache.clients_reload_ms);
        let mut watch = Watch::start(&app, CLIENTS_CHANNEL, "client", period).await;
        loop {
            if let Some(crate::store::Notice::Message(id)) = watch.next().await {
                app.clients.forget(&String::from_utf8_lossy(&id));
            } else if let Err(e) = app.clients.reload().await {
                tracing::warn!(error = %e, "could not reload clients; keeping the ones held");
            }
        }
    })
    .abort_handle()
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
        let master_key = MasterKey::load(&config.keys).map_err(anyhow::Error::msg)?;
        let identities = identities(&config, &master_key, store.clone(), ephemeral.clone())?;
        let keys = start_keys(&config, &master_key, store.clone(), clock.now()).await?;
        let subjects = SubjectCodec::new(&master_key);
        let client_secrets = ClientSecretBox::new(&master_key, config.keys.pii_version);
        let discovery = crate::protocol::discovery::document(&config.server.issuer).to_string();
        let metrics = Metrics::default();
        let audit = Auditor::start(
            store.clone(),
            node_name(&config.audit.node),
            config.audit.queue,
            metrics.audit_queue_full.clone(),
            clock.clone(),
        );
        let trusted_proxies = crate::web::client_ip::parse_proxies(&config.server.trusted_proxies)
            .map_err(anyhow::Error::msg)?;
        let clients = crate::store::client_cache::ClientCache::new(store.clone());
        clients.reload().await.context("database")?;
        let assertion_audiences = operations::assertion_audiences(&config.server.issuer);
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
            client_keys: HttpClientKeys::new(),
            client_secrets,
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
