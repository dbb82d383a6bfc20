//! Test support: backends for the contract suites, the in-process [`TestApp`] (requests through
//! `tower::ServiceExt::oneshot`), [`spawn_app`] and [`spawn_issuer`] on a real port, and a [`Proxy`]
//! that can cut a backend off and bring it back. In modules: the person's [`browser`], the [`people`]
//! to sign in as, the [`clients`] to register and their requests, and the `yihao` binary as a
//! [`process`].
//!
//! SQLite and the in-process cache are always used. PostgreSQL and Redis are used when
//! `YIHAO_TEST_DATABASE_URL` / `YIHAO_TEST_REDIS_URL` are set; a set URL whose server does not answer
//! fails the test (it never silently skips). Each PostgreSQL test gets its own schema and each Redis
//! test its own key prefix, so tests run in parallel.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod browser;
pub mod clients;
pub mod gateway;
pub mod people;
pub mod process;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};
use tower::ServiceExt;
use yihao::app::App;
use yihao::clock::ManualClock;
use yihao::config::{CacheConfig, Config, DatabaseConfig};
use yihao::web::AppState;

pub const PG_URL_VAR: &str = "YIHAO_TEST_DATABASE_URL";
pub const REDIS_URL_VAR: &str = "YIHAO_TEST_REDIS_URL";

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// The default configuration with per-test paths: nothing written to the working directory.
pub struct TestConfig {
    pub config: Config,
    dir: tempfile::TempDir,
}

pub fn test_config() -> TestConfig {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::load_with_env(None, []).unwrap();
    config.database.url = format!("sqlite://{}", dir.path().join("yihao.db").display());
    config.database.acquire_timeout_secs = 2;
    config.keys.dev_dir = dir.path().join("keys");
    config.sms.dev_outbox = dir.path().join("sms-outbox.jsonl");
    config.cache.sweep_interval_ms = 10;
    TestConfig { config, dir }
}

/// A PostgreSQL database config with its own fresh schema, dropped when this value is dropped.
pub struct TestDatabase {
    pub config: DatabaseConfig,
    base: String,
    schema: String,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (base, schema) = (self.base.clone(), self.schema.clone());
        // Drop runs inside the test's runtime, which cannot block on async work: use a thread of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let admin = sqlx::PgPool::connect(&base).await?;
                let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&admin)
                    .await?;
                admin.close().await;
                Ok::<_, sqlx::Error>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test schema {}", self.schema);
        }
    }
}

/// A fresh PostgreSQL schema, or `None` when YIHAO_TEST_DATABASE_URL is not set. Panics when the URL
/// is set and PostgreSQL does not answer.
pub async fn postgres_database() -> Option<TestDatabase> {
    let base = std::env::var(PG_URL_VAR).ok()?;
    let schema = unique("yihao_t_");
    let admin = sqlx::PgPool::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("{PG_URL_VAR} is set but PostgreSQL does not answer: {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    let mut config = test_config().config.database;
    config.url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    config.max_connections = 4;
    config.min_connections = 0;
    config.acquire_timeout_secs = 2;
    Some(TestDatabase {
        config,
        base,
        schema,
    })
}

/// A Redis cache config with its own key prefix, or `None` when the URL is not set. Panics when the
/// URL is set and Redis does not answer.
pub async fn redis_cache() -> Option<CacheConfig> {
    let url = std::env::var(REDIS_URL_VAR).ok()?;
    let mut cache = test_config().config.cache;
    cache.url = url.clone();
    cache.key_prefix = unique("yihao-test:") + ":";
    cache.connect_timeout_ms = 500;
    cache.response_timeout_ms = 500;
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = tokio::time::timeout(
        Duration::from_secs(5),
        client.get_multiplexed_async_connection(),
    )
    .await
    .unwrap_or_else(|_| panic!("{REDIS_URL_VAR} is set but Redis does not answer"))
    .unwrap_or_else(|e| panic!("{REDIS_URL_VAR} is set but Redis does not answer: {e}"));
    let _: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
    Some(cache)
}

/// Says on stderr that a backend's tests did not run because its URL is not set.
/// Without the variable a backend's tests return early, so `cargo test` works on a machine without
/// PostgreSQL or Redis. CI sets `YIHAO_TEST_REQUIRE_BACKENDS=1`: there a missing URL fails the test
/// instead of letting it pass without its backend.
pub fn not_configured(var: &str) {
    assert!(
        std::env::var_os("YIHAO_TEST_REQUIRE_BACKENDS").is_none(),
        "{var} is not set but YIHAO_TEST_REQUIRE_BACKENDS is: this backend must be exercised"
    );
    eprintln!("{var} is not set: this backend was not exercised");
}

/// Builds an [`App`] on chosen backends, with optional extra routes.
pub struct TestAppBuilder {
    config: TestConfig,
    extra: Option<Router<AppState>>,
    clock: Option<Arc<ManualClock>>,
}

pub struct TestApp {
    pub app: Arc<App>,
    pub router: Router,
    _config: TestConfig,
}

impl TestApp {
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            config: test_config(),
            extra: None,
            clock: None,
        }
    }

    pub async fn new() -> Self {
        Self::builder().build().await
    }

    pub async fn request(&self, request: Request<Body>) -> Response<Body> {
        self.router.clone().oneshot(request).await.unwrap()
    }

    pub async fn get(&self, path: &str) -> Response<Body> {
        self.request(Request::get(path).body(Body::empty()).unwrap())
            .await
    }
}

impl TestAppBuilder {
    pub fn database(mut self, database: DatabaseConfig) -> Self {
        self.config.config.database = database;
        self
    }
    pub fn cache(mut self, cache: CacheConfig) -> Self {
        self.config.config.cache = cache;
        self
    }
    pub fn configure(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(&mut self.config.config);
        self
    }
    /// The app reads this clock instead of the system's: the test sets and advances it.
    pub fn clock(mut self, clock: Arc<ManualClock>) -> Self {
        self.clock = Some(clock);
        self
    }
    /// Routes merged into the server's own (e.g. a deliberately slow handler).
    pub fn routes(mut self, extra: Router<AppState>) -> Self {
        self.extra = Some(extra);
        self
    }

    pub async fn build(self) -> TestApp {
        let config = self.config.config.clone();
        let app = match self.clock {
            Some(clock) => App::build_with_clock(config, clock).await,
            None => App::build(config).await,
        }
        .unwrap();
        let mut routes = yihao::web::routes();
        if let Some(extra) = self.extra {
            routes = routes.merge(extra);
        }
        let router = yihao::web::with_middleware(routes, app.clone());
        TestApp {
            app,
            router,
            _config: self.config,
        }
    }
}

/// A server on a real loopback port. Dropping it without [`Spawned::shutdown`] aborts it.
pub struct Spawned {
    pub addr: SocketAddr,
    pub base: String,
    pub test_app: TestApp,
    /// The node's background tasks (key reloader, logout deliverer), to stop it as a crash would.
    pub background: Vec<AbortHandle>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: JoinHandle<std::io::Result<()>>,
}

pub async fn spawn_app(test_app: TestApp) -> Spawned {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let router = test_app.router.clone();
    let task = tokio::spawn(yihao::app::serve_until(
        listener,
        router,
        async move {
            let _ = stopped.await;
        },
        Duration::from_secs(10),
    ));
    Spawned {
        addr,
        base: format!("http://{addr}"),
        test_app,
        background: Vec::new(),
        stop: Some(stop),
        task,
    }
}

impl Spawned {
    /// Starts a graceful shutdown, as SIGTERM does.
    pub fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A TCP proxy in front of a backend: [`Proxy::cut`] closes the port and every connection, as a
/// stopped server would; [`Proxy::restore`] listens again on the same port.
pub struct Proxy {
    pub addr: SocketAddr,
    target: String,
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    pub async fn start(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Proxy {
            addr: listener.local_addr().unwrap(),
            target: target.to_owned(),
            tasks: Arc::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let target = self.target.clone();
        let tasks = self.tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                let conn = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap().push(conn.abort_handle());
            }
        });
        self.tasks.lock().unwrap().push(accept.abort_handle());
    }

    pub fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    pub async fn restore(&self) {
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    // Real time: the port may not be free again at once.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("cannot listen on {} again: {e}", self.addr),
            }
        };
        self.serve(listener);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}

/// Reads a response body as JSON.
pub async fn json_body(response: Response<Body>) -> serde_json::Value {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "body is not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    })
}

/// Accounts over the given stores, with cheap argon2 parameters (tests measure behaviour, not cost)
/// and a fixed master key.
pub fn identities(
    store: Arc<dyn yihao::store::Store>,
    ephemeral: Arc<dyn yihao::store::Ephemeral>,
    pii_version: u32,
) -> yihao::protocol::accounts::Identities {
    use base64::Engine;
    let mut config = test_config().config;
    config.passwords.argon2_memory_kib = 64;
    config.passwords.argon2_iterations = 1;
    config.keys.master_key =
        yihao::config::Secret::new(base64::engine::general_purpose::STANDARD.encode([42u8; 32]));
    config.keys.pii_version = pii_version;
    let master = yihao::crypto::MasterKey::load(&config.keys).unwrap();
    yihao::app::identities(&config, &master, store, ephemeral).unwrap()
}

/// A valid resident ID number for a test person `i` (unique for i < 3_650_000).
pub fn resident_id(i: u32) -> String {
    let days = i / 1000;
    let (mut y, mut m, mut d) = (1950u32, 1u32, 1u32);
    for _ in 0..days {
        d += 1;
        if d > yihao::domain::date::days_in_month(y as i32, m as u8) as u32 {
            d = 1;
            m += 1;
            if m > 12 {
                m = 1;
                y += 1;
            }
        }
    }
    let first17 = format!("110105{y:04}{m:02}{d:02}{:03}", i % 1000);
    let check = yihao::domain::identifiers::mod11_2_check(first17.as_bytes()) as char;
    format!("{first17}{check}")
}

/// A server on a real port whose issuer is its own address, configured by `configure`.
pub async fn spawn_issuer(configure: impl FnOnce(&mut Config)) -> Spawned {
    spawn_issuer_on(configure, None).await
}

/// [`spawn_issuer`] on `clock` (the system's when `None`).
pub async fn spawn_issuer_on(
    configure: impl FnOnce(&mut Config),
    clock: Option<Arc<ManualClock>>,
) -> Spawned {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let issuer = base.clone();
    let mut builder = TestApp::builder().configure(|c| {
        c.server.issuer = issuer;
        c.passwords.argon2_memory_kib = 64;
        c.passwords.argon2_iterations = 1;
        configure(c);
    });
    if let Some(clock) = clock {
        builder = builder.clock(clock);
    }
    let test_app = builder.build().await;
    let background = yihao::app::spawn_background(test_app.app.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(yihao::app::serve_until(
        listener,
        test_app.router.clone(),
        async move {
            let _ = stopped.await;
        },
        Duration::from_secs(10),
    ));
    Spawned {
        addr,
        base,
        test_app,
        background,
        stop: Some(stop),
        task,
    }
}

/// The time on a relying party's own machine, for the assertions it signs: the wall clock (the
/// servers these tests sign for run on the system clock unless a test gives them a `ManualClock`).
pub fn client_clock() -> i64 {
    yihao::clock::system_ms() / 1000
}

/// A loopback port free at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Verifies the app's audit chain from its first record: the last record verified, or what is wrong.
pub async fn verify_audit(app: &App) -> Result<i64, yihao::domain::audit::ChainError> {
    match yihao::protocol::audit::verify(app.store.as_ref(), &app.keys.ring(), 1).await {
        Ok(v) => Ok(v.last),
        Err(yihao::protocol::audit::VerifyError::Broken(e)) => Err(e),
        Err(e) => panic!("the audit log cannot be read: {e}"),
    }
}
