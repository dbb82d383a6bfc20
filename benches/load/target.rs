//! The providers under load: yihao's release binary on a chosen backend, set up through its own CLI,
//! and node-oidc-provider (`benches/peer/server.mjs`), or any provider already running that has
//! the same clients. Both are child processes on free loopback ports; what they cost is read from
//! /proc of their process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::http::{Conn, Error};

/// The benchmark person and the relying party's callback (never contacted).
pub const ID_NUMBER: &str = "11010519491231002X";
pub const PASSWORD: &str = "Bench#2026pass";
pub const CALLBACK: &str = "http://127.0.0.1:9/cb";
/// RFC 7636 Appendix B.
pub const PKCE_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// People with a mobile number, for the SMS sign-in scenario.
pub const SMS_PEOPLE: u64 = 16;
pub const PKCE_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// A provider under test: where it listens, its process, and the clients it has.
pub struct Target {
    pub name: String,
    pub base: String,
    pub addr: SocketAddr,
    pub pid: u32,
    child: Option<Child>,
    /// From spawning the process to its first ready answer.
    pub start_to_ready: Duration,
    /// (alg, client_id, secret) of the client_credentials clients.
    pub machine: Vec<(&'static str, String, String)>,
    /// The relying party (code flow, refresh, introspection).
    pub rp: (String, String),
    /// The scope asked for in the code flow.
    pub scope: String,
    pub paths: Paths,
    /// yihao's development SMS outbox (its codes), and people with a mobile number for the SMS
    /// sign-in scenario, one per connection.
    pub outbox: Option<PathBuf>,
    pub sms_people: Vec<String>,
    _dir: Option<tempfile::TempDir>,
    cleanup: Option<Box<dyn FnOnce() + Send + Sync>>,
}

/// Endpoint paths, from the discovery document.
#[derive(Default, Clone)]
pub struct Paths {
    pub discovery: String,
    pub jwks: String,
    pub authorize: String,
    pub token: String,
    pub introspect: String,
    pub userinfo: String,
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
        if let Some(cleanup) = self.cleanup.take() {
            cleanup();
        }
    }
}

/// The backend yihao runs on.
#[derive(Clone, Debug)]
pub enum Backend {
    /// The embedded defaults: SQLite file + in-process store.
    Sqlite,
    /// PostgreSQL (a database created for the run) and Redis (a key prefix of its own).
    Postgres { database: String, redis: String },
}

pub fn free_port() -> Result<u16, Error> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// Starts yihao (`binary`) on `backend` with the clients and the person the scenarios use, all
/// registered through the CLI before the server starts.
pub async fn yihao(binary: &Path, backend: &Backend) -> Result<Target, Error> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let mut env: Vec<(String, String)> = vec![
        ("YIHAO_SERVER__BIND".into(), format!("127.0.0.1:{port}")),
        ("YIHAO_SERVER__ISSUER".into(), base.clone()),
        ("YIHAO_LOG__FORMAT".into(), "json".into()),
        // The limits protect a real deployment from one client or address; a load test is one
        // client on one address by design. They are raised out of reach, not switched off, so
        // every request still pays for counting.
        (
            "YIHAO_LIMITS__TOKEN_PER_CLIENT_PER_SEC".into(),
            "1000000000".into(),
        ),
        (
            "YIHAO_LIMITS__LOGIN_PER_IP_PER_MIN".into(),
            "1000000000".into(),
        ),
        (
            "YIHAO_LIMITS__LOGIN_PER_ACCOUNT_PER_MIN".into(),
            "1000000000".into(),
        ),
        (
            "YIHAO_LIMITS__INTERACTIONS_PER_IP_PER_MIN".into(),
            "1000000000".into(),
        ),
        (
            "YIHAO_LIMITS__REGISTER_PER_IP_PER_HOUR".into(),
            "1000000000".into(),
        ),
        ("YIHAO_SMS__PER_NUMBER_PER_DAY".into(), "1000000000".into()),
        ("YIHAO_SMS__PER_SOURCE_PER_DAY".into(), "1000000000".into()),
        // Each SMS sign-in asks its person's number for a new code at once.
        ("YIHAO_SMS__RESEND_SECS".into(), "0".into()),
        // CAS tickets collected in one scenario are validated in the next.
        ("YIHAO_CAS__TICKET_SECS".into(), "300".into()),
    ];
    let mut cleanup: Option<Box<dyn FnOnce() + Send + Sync>> = None;
    if let Backend::Postgres { database, redis } = backend {
        let name = format!("yihao_load_{}", uuid::Uuid::new_v4().simple());
        psql(database, &format!("CREATE DATABASE {name}"))?;
        let url = replace_database(database, &name);
        env.push(("YIHAO_DATABASE__URL".into(), url));
        env.push(("YIHAO_CACHE__URL".into(), redis.clone()));
        env.push(("YIHAO_CACHE__KEY_PREFIX".into(), format!("{name}:")));
        let admin = database.clone();
        cleanup = Some(Box::new(move || {
            let _ = psql(&admin, &format!("DROP DATABASE {name} WITH (FORCE)"));
        }));
    }
    let cli = |args: &[&str], stdin: Option<&str>| -> Result<serde_json::Value, Error> {
        use std::io::Write;
        let mut child = Command::new(binary)
            .args(args)
            .current_dir(dir.path())
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input.as_bytes())
                .map_err(|e| e.to_string())?;
        }
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "yihao {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        serde_json::from_slice(&out.stdout).or(Ok(serde_json::Value::Null))
    };
    cli(&["migrate"], None)?;
    let mut machine = Vec::new();
    for alg in ["ES256", "EdDSA", "RS256"] {
        let id = format!("cc-{}", alg.to_ascii_lowercase());
        let out = cli(
            &[
                "client",
                "create",
                "--name",
                &id,
                "--id",
                &id,
                "--grant-type",
                "client_credentials",
                "--scope",
                "records.read",
                "--access-token-signed-response-alg",
                alg,
                "--output",
                "json",
            ],
            None,
        )?;
        machine.push((alg, id, secret_of(&out)?));
    }
    let out = cli(
        &[
            "client",
            "create",
            "--name",
            "Bench RP",
            "--id",
            "rp",
            "--redirect-uri",
            CALLBACK,
            "--grant-type",
            "authorization_code",
            "--grant-type",
            "refresh_token",
            "--grant-type",
            "urn:ietf:params:oauth:grant-type:device_code",
            "--scope",
            "openid",
            "--scope",
            "profile",
            "--scope",
            "offline_access",
            "--output",
            "json",
        ],
        None,
    )?;
    let rp = ("rp".to_owned(), secret_of(&out)?);
    // A legacy system signing people in through CAS 3.0, at the same callback.
    cli(
        &[
            "client",
            "create",
            "--name",
            "Bench CAS",
            "--id",
            "cas",
            "--public",
            "--cas-service",
            CALLBACK,
            "--scope",
            "profile",
            "--first-party",
        ],
        None,
    )?;
    cli(
        &[
            "account",
            "create",
            "--id-number",
            ID_NUMBER,
            "--name",
            "压测用户",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    )?;
    // People with a mobile number for the SMS sign-in scenario (one per login-flow connection).
    let mut sms_people = Vec::new();
    for i in 0..SMS_PEOPLE {
        let phone = format!("1390000{i:04}");
        cli(
            &[
                "account",
                "create",
                "--id-number",
                &crate::citizen::id_number(i),
                "--name",
                "短信用户",
                "--phone",
                &phone,
                "--password-stdin",
            ],
            Some(&format!("{PASSWORD}\n")),
        )?;
        sms_people.push(phone);
    }
    let log = std::fs::File::create(dir.path().join("server.log")).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let child = Command::new(binary)
        .arg("serve")
        .current_dir(dir.path())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut target = Target {
        name: match backend {
            Backend::Sqlite => "yihao (SQLite)".into(),
            Backend::Postgres { .. } => "yihao (PostgreSQL+Redis)".into(),
        },
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        base,
        pid: child.id(),
        child: Some(child),
        start_to_ready: Duration::ZERO,
        machine,
        rp,
        scope: "openid profile offline_access".into(),
        paths: Paths::default(),
        outbox: Some(dir.path().join("data/sms-outbox.jsonl")),
        sms_people,
        _dir: Some(dir),
        cleanup,
    };
    target.start_to_ready = wait_ready(&mut target, "/readyz", started).await?;
    target.discover().await?;
    Ok(target)
}

/// Starts node-oidc-provider from `benches/peer` (see its server.mjs for the clients it has).
pub async fn node_peer(peer_dir: &Path) -> Result<Target, Error> {
    if !peer_dir.join("node_modules/oidc-provider").is_dir() {
        return Err(format!(
            "node-oidc-provider is not installed: run `npm ci --prefix {}` first",
            peer_dir.display()
        ));
    }
    let port = free_port()?;
    let started = Instant::now();
    let child = Command::new("node")
        .arg(peer_dir.join("server.mjs"))
        .env("PORT", port.to_string())
        .env("NODE_ENV", "production")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("node: {e}"))?;
    let mut target = external("node-oidc-provider", port, child.id())?;
    target.child = Some(child);
    target.start_to_ready =
        wait_ready(&mut target, "/.well-known/openid-configuration", started).await?;
    target.discover().await?;
    Ok(target)
}

/// A provider someone else started, with the peer's clients and secret (benches/peer/server.mjs).
pub fn external(name: &str, port: u16, pid: u32) -> Result<Target, Error> {
    const SECRET: &str = "bench-secret-0123456789abcdef";
    Ok(Target {
        name: name.into(),
        base: format!("http://127.0.0.1:{port}"),
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        pid,
        child: None,
        start_to_ready: Duration::ZERO,
        machine: ["ES256", "EdDSA", "RS256"]
            .into_iter()
            .map(|alg| {
                let id = format!("cc-{}", alg.to_ascii_lowercase());
                (alg, id, SECRET.to_owned())
            })
            .collect(),
        rp: ("rp".into(), SECRET.into()),
        scope: "openid profile offline_access".into(),
        paths: Paths::default(),
        outbox: None,
        sms_people: Vec::new(),
        _dir: None,
        cleanup: None,
    })
}

impl Target {
    /// Reads the endpoint paths from the discovery document (RFC 8414 / OIDC Discovery).
    pub async fn discover(&mut self) -> Result<(), Error> {
        let mut conn = Conn::new(self.addr);
        let discovery = "/.well-known/openid-configuration";
        let answer = conn.send(hyper::Method::GET, discovery, &[], None).await?;
        let doc = answer.json()?;
        let path = |key: &str| -> Result<String, Error> {
            let url = doc[key]
                .as_str()
                .ok_or_else(|| format!("{}: discovery has no {key}", self.name))?;
            crate::http::local_target(&self.base, url)
                .ok_or_else(|| format!("{}: {key} {url} is not on {}", self.name, self.base))
        };
        self.paths = Paths {
            discovery: discovery.into(),
            jwks: path("jwks_uri")?,
            authorize: path("authorization_endpoint")?,
            token: path("token_endpoint")?,
            introspect: path("introspection_endpoint")?,
            userinfo: path("userinfo_endpoint")?,
        };
        Ok(())
    }

    /// Server CPU time (user + system, all threads) so far.
    pub fn cpu(&self) -> Result<Duration, Error> {
        cpu_time(self.pid).map_err(|e| format!("{}: {e}", self.name))
    }

    /// (current, peak) resident set size in KiB.
    pub fn rss_kib(&self) -> (u64, u64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// The authorization request of the code flow (PKCE S256, a fixed state and nonce).
    pub fn authorize_url(&self) -> String {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.rp.0)
            .append_pair("redirect_uri", CALLBACK)
            .append_pair("scope", &self.scope)
            .append_pair("state", "bench-state")
            .append_pair("nonce", "bench-nonce")
            .append_pair("code_challenge", PKCE_CHALLENGE)
            .append_pair("code_challenge_method", "S256")
            .finish();
        format!("{}?{query}", self.paths.authorize)
    }
}

async fn wait_ready(target: &mut Target, path: &str, started: Instant) -> Result<Duration, Error> {
    let deadline = started + Duration::from_secs(30);
    loop {
        let mut conn = Conn::new(target.addr);
        if let Ok(answer) = conn.send(hyper::Method::GET, path, &[], None).await
            && answer.status.is_success()
        {
            return Ok(started.elapsed());
        }
        if let Some(child) = target.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            return Err(format!("{} exited during start-up: {status}", target.name));
        }
        if Instant::now() > deadline {
            return Err(format!("{} not ready after 30 s", target.name));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// CPU time (user + system, all threads) of process `pid` so far, from /proc/PID/stat.
pub fn cpu_time(pid: u32) -> Result<Duration, Error> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
    // The command name may contain spaces: the fields after it start at field 3.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or("unreadable stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 (1-based); fields[0] is field 3.
    let total = ticks(11) + ticks(12);
    Ok(Duration::from_secs_f64(total as f64 / clock_ticks() as f64))
}

fn secret_of(out: &serde_json::Value) -> Result<String, Error> {
    out["client_secret"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no client_secret in {out}"))
}

fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100)
    })
}

/// Runs one SQL statement with psql against the server of `url`.
pub fn psql(url: &str, sql: &str) -> Result<(), Error> {
    let out = Command::new("psql")
        .args([url, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .map_err(|e| format!("psql: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// `url` with its database name replaced.
pub fn replace_database(url: &str, name: &str) -> String {
    let (head, query) = url
        .split_once('?')
        .map_or((url, None), |(h, q)| (h, Some(q)));
    let head = match head.rsplit_once('/') {
        Some((server, _)) if server.contains("//") && server.len() > "postgres://".len() => {
            format!("{server}/{name}")
        }
        _ => format!("{head}/{name}"),
    };
    match query {
        Some(q) => format!("{head}?{q}"),
        None => head,
    }
}

/// Where the peer lives in the repository.
pub fn peer_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peer")
}
