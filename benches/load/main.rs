//! Load benchmark (BENCHMARKS.md): `cargo bench --bench load -- [OPTIONS]`.
//!
//! Starts the release build of yihao on a free loopback port, on SQLite (the embedded defaults) or
//! PostgreSQL + Redis, registers its clients and a person through the CLI, and drives every endpoint
//! with keep-alive HTTP/1.1 connections from this process (one thread, so the server keeps at least
//! one of the machine's cores). For each scenario it prints operations per second, p50/p99 latency
//! and the server's CPU time per operation, read from /proc of the server process. With `--peer` it
//! starts node-oidc-provider (`benches/peer`, installed with `npm ci --prefix benches/peer`) and
//! measures it in the same run, printing the ratio per scenario. `scale` loads accounts into
//! PostgreSQL through `yihao account import` and measures the login look-up at that size.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod citizen;
mod http;
mod scale;
mod storm;
mod target;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use hyper::{Method, StatusCode, header};

use http::{Conn, Error, Jar, basic, form, local_target, query_param};
use target::{Backend, CALLBACK, ID_NUMBER, PASSWORD, PKCE_VERIFIER, Target};

#[derive(Parser, Debug)]
#[command(
    name = "load",
    about = "Load benchmark of yihao, optionally against node-oidc-provider"
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(clap::Args, Debug, Clone)]
struct RunArgs {
    /// sqlite (embedded defaults) or postgres (PostgreSQL + Redis).
    #[arg(long, default_value = "sqlite")]
    backend: String,
    /// PostgreSQL server for --backend postgres (a database is created for the run and dropped).
    #[arg(
        long,
        env = "YIHAO_TEST_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    database_url: String,
    /// Redis for --backend postgres (keys under a prefix of the run's own).
    #[arg(
        long,
        env = "YIHAO_TEST_REDIS_URL",
        default_value = "redis://127.0.0.1:6379/0"
    )]
    redis_url: String,
    /// Also start node-oidc-provider (benches/peer) and measure it in the same run.
    #[arg(long)]
    peer: bool,
    /// Instead of starting the peer, measure a provider already listening on this loopback port
    /// that has the peer's clients (see benches/peer/server.mjs); needs --other-pid.
    #[arg(long, requires = "other_pid")]
    other_port: Option<u16>,
    /// The process id of the provider on --other-port (its CPU and memory are read from /proc).
    #[arg(long)]
    other_pid: Option<u32>,
    /// Seconds each scenario is measured, after a warm-up of a quarter of that.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Concurrent connections per scenario (login flows use a quarter of them).
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Only these scenarios (comma-separated names as printed).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Also measure token-endpoint latency during a storm of password logins.
    #[arg(long)]
    storm: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Load accounts into PostgreSQL through `yihao account import` and measure the login look-up.
    Scale(scale::ScaleArgs),
}

/// What one scenario measured on one provider.
#[derive(Clone, Default)]
pub struct Measured {
    pub operations: u64,
    pub requests: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// Microseconds per operation, sorted.
    pub latencies: Vec<u32>,
    pub server_cpu: Duration,
    pub client_cpu: Duration,
}

impl Measured {
    pub fn per_sec(&self) -> f64 {
        self.operations as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
    pub fn percentile(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        f64::from(self.latencies[i]) / 1000.0
    }
    /// Server CPU µs per operation.
    pub fn cpu_per_op(&self) -> f64 {
        self.server_cpu.as_secs_f64() * 1e6 / self.operations.max(1) as f64
    }
}

/// What a worker does once per operation.
#[derive(Clone)]
enum Kind {
    Get {
        path: String,
        bearer: Option<String>,
    },
    Post {
        path: String,
        auth: String,
        body: String,
    },
    /// A signed-in browser asks for a code (single sign-on); the codes are kept for `Exchange`.
    Authorize {
        session: Jar,
        codes: Arc<Mutex<Vec<String>>>,
    },
    /// The same browser's CAS login (`/cas/login`, single sign-on); the tickets are kept for
    /// `CasValidate`.
    CasLogin {
        session: Jar,
        tickets: Arc<Mutex<Vec<String>>>,
    },
    /// A CAS service validates the tickets `CasLogin` collected (`/cas/p3/serviceValidate`).
    CasValidate { tickets: Arc<Mutex<Vec<String>>> },
    /// Exchanges the codes `Authorize` collected (until they run out), keeping refresh tokens.
    Exchange {
        codes: Arc<Mutex<Vec<String>>>,
        refresh: Arc<Mutex<Vec<String>>>,
    },
    /// Each worker refreshes its own token family, following rotation.
    Refresh { tokens: Arc<Mutex<Vec<String>>> },
    /// A new browser: authorize, login form, consent, code, token; each worker as its own person
    /// (by mobile number) when the target has several, else as the benchmark person.
    Login { people: Arc<Mutex<Vec<String>>> },
    /// A new browser signs in by SMS code (each worker as its own person), then the token exchange.
    SmsLogin { phones: Arc<Mutex<Vec<String>>> },
    /// A self-service registration, each with a new document and mobile number.
    Register {
        next: Arc<std::sync::atomic::AtomicU64>,
    },
    /// A kiosk polling the token endpoint for its device code while nobody has approved it (RFC
    /// 8628 §3.4): answered `authorization_pending` or `slow_down`.
    DevicePoll { auth: String, body: String },
}

/// Per-worker state that lives across operations.
#[derive(Default)]
struct Worker {
    refresh_token: Option<String>,
    phone: Option<String>,
}

async fn operation(
    target: &Target,
    kind: &Kind,
    conn: &mut Conn,
    worker: &mut Worker,
) -> Result<Option<u64>, Error> {
    match kind {
        Kind::Get { path, bearer } => {
            let auth = bearer.as_ref().map(|b| format!("Bearer {b}"));
            let headers: Vec<_> = auth
                .iter()
                .map(|a| (header::AUTHORIZATION, a.as_str()))
                .collect();
            let answer = conn.send(Method::GET, path, &headers, None).await?;
            expect_ok(&answer, path)?;
            Ok(Some(1))
        }
        Kind::DevicePoll { auth, body } => {
            let answer = conn
                .send(
                    Method::POST,
                    &target.paths.token,
                    &[(header::AUTHORIZATION, auth)],
                    Some(body),
                )
                .await?;
            let pending = answer.status == StatusCode::BAD_REQUEST
                && (answer
                    .body
                    .windows(21)
                    .any(|w| w == b"authorization_pending")
                    || answer.body.windows(9).any(|w| w == b"slow_down"));
            if !pending {
                return Err(answer.unexpected("device poll"));
            }
            Ok(Some(1))
        }
        Kind::Post { path, auth, body } => {
            let answer = conn
                .send(
                    Method::POST,
                    path,
                    &[(header::AUTHORIZATION, auth)],
                    Some(body),
                )
                .await?;
            expect_ok(&answer, path)?;
            if answer.body.windows(6).any(|w| w == b"active")
                && !answer.body.windows(13).any(|w| w == b"\"active\":true")
            {
                return Err(answer.unexpected("token not active"));
            }
            Ok(Some(1))
        }
        Kind::Authorize { session, codes } => {
            let mut jar = session.clone();
            let (code, requests) =
                follow(target, conn, &mut jar, &target.authorize_url(), ID_NUMBER).await?;
            lock(codes).push(code);
            Ok(Some(requests))
        }
        Kind::CasLogin { session, tickets } => {
            let mut jar = session.clone();
            let (ticket, requests) =
                follow(target, conn, &mut jar, &cas_login_path(), ID_NUMBER).await?;
            lock(tickets).push(ticket);
            Ok(Some(requests))
        }
        Kind::CasValidate { tickets } => {
            let Some(ticket) = lock(tickets).pop() else {
                return Ok(None);
            };
            let path = url::form_urlencoded::Serializer::new("/cas/p3/serviceValidate?".to_owned())
                .extend_pairs([("service", CALLBACK), ("ticket", &ticket)])
                .finish();
            let answer = conn.send(Method::GET, &path, &[], None).await?;
            expect_ok(&answer, "CAS validation")?;
            if !answer
                .body
                .windows(21)
                .any(|w| w == b"authenticationSuccess")
            {
                return Err(answer.unexpected("CAS validation failed"));
            }
            Ok(Some(1))
        }
        Kind::Exchange { codes, refresh } => {
            let Some(code) = lock(codes).pop() else {
                return Ok(None);
            };
            let tokens = exchange(target, conn, &code).await?;
            if let Some(r) = tokens["refresh_token"].as_str() {
                lock(refresh).push(r.to_owned());
            }
            Ok(Some(1))
        }
        Kind::Refresh { tokens } => {
            if worker.refresh_token.is_none() {
                worker.refresh_token = lock(tokens).pop();
            }
            let Some(current) = worker.refresh_token.clone() else {
                return Err("no refresh token left for this worker".into());
            };
            let tokens = token_request(
                target,
                conn,
                &[("grant_type", "refresh_token"), ("refresh_token", &current)],
                "refresh",
            )
            .await?;
            if let Some(next) = tokens["refresh_token"].as_str() {
                worker.refresh_token = Some(next.to_owned());
            }
            Ok(Some(1))
        }
        Kind::Login { people } => {
            // Each worker signs in as its own person: concurrent logins of one person from one
            // address count against that address's lockout (security review 4), as an attack would.
            if worker.phone.is_none() {
                worker.phone = lock(people).pop();
            }
            let who = worker.phone.clone().unwrap_or_else(|| ID_NUMBER.to_owned());
            let mut jar = Jar::default();
            let (code, requests) =
                follow(target, conn, &mut jar, &target.authorize_url(), &who).await?;
            exchange(target, conn, &code).await?;
            Ok(Some(requests + 1))
        }
        Kind::SmsLogin { phones } => {
            if worker.phone.is_none() {
                worker.phone = lock(phones).pop();
            }
            let (Some(phone), Some(outbox)) = (worker.phone.clone(), target.outbox.as_deref())
            else {
                return Err("no person with a mobile number for this worker".into());
            };
            let (code, requests) = citizen::sms_login(target, conn, outbox, &phone).await?;
            exchange(target, conn, &code).await?;
            Ok(Some(requests + 1))
        }
        Kind::Register { next } => {
            let Some(outbox) = target.outbox.as_deref() else {
                return Err("registration needs yihao's development SMS outbox".into());
            };
            let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(Some(citizen::register(conn, outbox, PASSWORD, n).await?))
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn expect_ok(answer: &http::Answer, what: &str) -> Result<(), Error> {
    if answer.status == StatusCode::OK {
        Ok(())
    } else {
        Err(answer.unexpected(what))
    }
}

/// Follows an authorization request as a browser would (redirects, the login form, the consent
/// form) until the redirect to the client's callback; returns the code and the requests it took.
async fn follow(
    target: &Target,
    conn: &mut Conn,
    jar: &mut Jar,
    start: &str,
    identifier: &str,
) -> Result<(String, u64), Error> {
    let (mut method, mut path, mut body) = (Method::GET, start.to_owned(), None::<String>);
    let mut trail = Vec::new();
    for requests in 1..=12 {
        trail.push(path.split('?').next().unwrap_or_default().to_owned());
        let cookie = jar.header();
        let headers = [(header::COOKIE, cookie.as_str())];
        let answer = conn
            .send(
                method.clone(),
                &path,
                if cookie.is_empty() { &[] } else { &headers },
                body.as_deref(),
            )
            .await?;
        jar.take(&answer);
        if answer.status.is_redirection() {
            let location = answer
                .location()
                .ok_or_else(|| answer.unexpected("redirect without Location"))?;
            if location.starts_with(CALLBACK) {
                // A code, or a CAS service ticket.
                if let Some(code) =
                    query_param(location, "code").or_else(|| query_param(location, "ticket"))
                {
                    return Ok((code, requests));
                }
                return Err(format!("callback without a code: {location}"));
            }
            path = local_target(&target.base, location)
                .ok_or_else(|| format!("redirect away: {location}"))?;
            (method, body) = (Method::GET, None);
        } else if answer.status == StatusCode::OK {
            let page = String::from_utf8_lossy(&answer.body);
            let (action, fields) = form(&page, identifier, PASSWORD)
                .ok_or_else(|| answer.unexpected("page without a form"))?;
            path = local_target(&target.base, &action)
                .ok_or_else(|| format!("form posts away: {action}"))?;
            (method, body) = (Method::POST, Some(fields));
        } else {
            return Err(answer.unexpected(&path));
        }
    }
    Err(format!("no code after 12 requests: {}", trail.join(" -> ")))
}

/// yihao's CAS login for the benchmark's CAS service (registered at the callback).
fn cas_login_path() -> String {
    url::form_urlencoded::Serializer::new("/cas/login?".to_owned())
        .append_pair("service", CALLBACK)
        .finish()
}

/// The code exchange (RFC 6749 §4.1.3, with the PKCE verifier).
async fn exchange(
    target: &Target,
    conn: &mut Conn,
    code: &str,
) -> Result<serde_json::Value, Error> {
    token_request(
        target,
        conn,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", PKCE_VERIFIER),
        ],
        "code exchange",
    )
    .await
}

/// A token request of the relying party (HTTP Basic): the JSON of a 200 answer.
async fn token_request(
    target: &Target,
    conn: &mut Conn,
    form: &[(&str, &str)],
    what: &str,
) -> Result<serde_json::Value, Error> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let auth = basic(&target.rp.0, &target.rp.1);
    let answer = conn
        .send(
            Method::POST,
            &target.paths.token,
            &[(header::AUTHORIZATION, &auth)],
            Some(&body),
        )
        .await?;
    expect_ok(&answer, what)?;
    answer.json()
}

/// Runs `connections` workers doing `kind` for `duration` (or until a pool runs dry) and measures.
pub(crate) async fn measure(
    target: &Arc<Target>,
    kind: Kind,
    connections: usize,
    duration: Duration,
    pace: Option<Duration>,
) -> Measured {
    let kind = Arc::new(kind);
    let server0 = target.cpu().unwrap_or_default();
    let client0 = target::cpu_time(std::process::id()).unwrap_or_default();
    let started = Instant::now();
    let deadline = started + duration;
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (target, kind) = (target.clone(), kind.clone());
            tokio::spawn(async move {
                let mut conn = Conn::new(target.addr);
                let mut worker = Worker::default();
                let mut out = Measured::default();
                let mut next = Instant::now();
                while Instant::now() < deadline {
                    if let Some(period) = pace {
                        tokio::time::sleep_until(next.into()).await;
                        next += period;
                    }
                    let t = Instant::now();
                    match operation(&target, &kind, &mut conn, &mut worker).await {
                        Ok(Some(requests)) => {
                            out.operations += 1;
                            out.requests += requests;
                            out.latencies
                                .push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                        }
                        Ok(None) => break,
                        Err(e) => {
                            out.errors += 1;
                            out.first_error.get_or_insert(e);
                            // A broken connection is replaced; errors never spin the loop hot.
                            conn = Conn::new(target.addr);
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    }
                }
                out
            })
        })
        .collect();
    let mut total = Measured::default();
    for worker in workers {
        let Ok(out) = worker.await else { continue };
        total.operations += out.operations;
        total.requests += out.requests;
        total.errors += out.errors;
        if total.first_error.is_none() {
            total.first_error = out.first_error;
        }
        total.latencies.extend(out.latencies);
    }
    total.elapsed = started.elapsed();
    total.server_cpu = target.cpu().unwrap_or_default().saturating_sub(server0);
    total.client_cpu = target::cpu_time(std::process::id())
        .unwrap_or_default()
        .saturating_sub(client0);
    total.latencies.sort_unstable();
    total
}

/// One provider's results, scenario by scenario.
struct Report {
    name: String,
    start_to_ready: Duration,
    idle_rss_kib: u64,
    peak_rss_kib: u64,
    rows: Vec<(String, Measured)>,
}

async fn bench_target(target: Arc<Target>, args: &RunArgs) -> Result<Report, Error> {
    let duration = Duration::from_secs_f64(args.duration);
    let warmup = duration / 4;
    let n = args.connections;
    let wanted = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);
    let idle_rss_kib = target.rss_kib().0;
    let mut rows = Vec::new();
    let mut run = async |name: &str, kind: Kind, connections: usize, warm: bool| -> Measured {
        if warm {
            measure(&target, kind.clone(), connections, warmup, None).await;
        }
        let m = measure(&target, kind, connections, duration, None).await;
        eprintln!(
            "{:<26} {:<20} {:>9.0}/s p50 {:>7.2} ms p99 {:>7.2} ms server {:>8.1} µs/op, client {:.0} % of a core ({} requests, {} errors){}",
            target.name,
            name,
            m.per_sec(),
            m.percentile(0.5),
            m.percentile(0.99),
            m.cpu_per_op(),
            m.client_cpu.as_secs_f64() * 100.0 / m.elapsed.as_secs_f64().max(1e-9),
            m.requests,
            m.errors,
            m.first_error
                .as_ref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
        rows.push((name.to_owned(), m.clone()));
        m
    };
    let p = target.paths.clone();
    if wanted("discovery") {
        run(
            "discovery",
            Kind::Get {
                path: p.discovery.clone(),
                bearer: None,
            },
            n,
            true,
        )
        .await;
    }
    if wanted("jwks") {
        run(
            "jwks",
            Kind::Get {
                path: p.jwks.clone(),
                bearer: None,
            },
            n,
            true,
        )
        .await;
    }
    for (alg, id, secret) in &target.machine {
        let name = format!("client_credentials {alg}");
        if wanted(&name) || wanted("client_credentials") {
            let kind = Kind::Post {
                path: p.token.clone(),
                auth: basic(id, secret),
                body: "grant_type=client_credentials&scope=records.read".into(),
            };
            run(&name, kind, n, true).await;
        }
    }
    // A signed-in browser that has consented once, for single sign-on.
    let mut session = Jar::default();
    let mut conn = Conn::new(target.addr);
    let (code, _) = follow(
        &target,
        &mut conn,
        &mut session,
        &target.authorize_url(),
        ID_NUMBER,
    )
    .await?;
    let tokens = exchange(&target, &mut conn, &code).await?;
    let access = tokens["access_token"]
        .as_str()
        .ok_or("no access token")?
        .to_owned();
    let codes = Arc::new(Mutex::new(Vec::new()));
    let refresh = Arc::new(Mutex::new(Vec::new()));
    if wanted("authorize (SSO)") || wanted("code exchange") || wanted("refresh") {
        run(
            "authorize (SSO)",
            Kind::Authorize {
                session: session.clone(),
                codes: codes.clone(),
            },
            n,
            false,
        )
        .await;
        run(
            "code exchange",
            Kind::Exchange {
                codes: codes.clone(),
                refresh: refresh.clone(),
            },
            n,
            false,
        )
        .await;
        let kept = {
            let mut all = lock(&refresh);
            let keep = all.len().min(n);
            all.drain(..).take(keep).collect::<Vec<_>>()
        };
        if kept.len() < n {
            return Err(format!(
                "{}: only {} refresh tokens for {n} workers",
                target.name,
                kept.len()
            ));
        }
        run(
            "refresh",
            Kind::Refresh {
                tokens: Arc::new(Mutex::new(kept)),
            },
            n,
            false,
        )
        .await;
    }
    if target.outbox.is_some() && (wanted("CAS login (SSO)") || wanted("CAS validation")) {
        let tickets = Arc::new(Mutex::new(Vec::new()));
        let kind = Kind::CasLogin {
            session: session.clone(),
            tickets: tickets.clone(),
        };
        run("CAS login (SSO)", kind, n, false).await;
        run("CAS validation", Kind::CasValidate { tickets }, n, false).await;
    }
    if wanted("introspection") {
        let kind = Kind::Post {
            path: p.introspect.clone(),
            auth: basic(&target.rp.0, &target.rp.1),
            body: format!("token={access}"),
        };
        run("introspection", kind, n, true).await;
    }
    if wanted("userinfo") {
        run(
            "userinfo",
            Kind::Get {
                path: p.userinfo.clone(),
                bearer: Some(access.clone()),
            },
            n,
            true,
        )
        .await;
    }
    if wanted("login flow") {
        let people = Arc::new(Mutex::new(target.sms_people.clone()));
        run("login flow", Kind::Login { people }, (n / 4).max(1), false).await;
    }
    if target.outbox.is_some() && wanted("sms login flow") {
        let people = target.sms_people.clone();
        let connections = (n / 4).max(1).min(people.len());
        let phones = Arc::new(Mutex::new(people));
        run(
            "sms login flow",
            Kind::SmsLogin { phones },
            connections,
            false,
        )
        .await;
    }
    if target.outbox.is_some() && wanted("registration") {
        let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
        run(
            "registration",
            Kind::Register { next },
            (n / 4).max(1),
            false,
        )
        .await;
    }
    if target.outbox.is_some() && wanted("device poll") {
        let auth = basic(&target.rp.0, &target.rp.1);
        let mut conn = Conn::new(target.addr);
        let started = conn
            .send(
                Method::POST,
                "/device_authorization",
                &[(header::AUTHORIZATION, &auth)],
                Some("scope=openid"),
            )
            .await?;
        expect_ok(&started, "device authorization")?;
        let started = started.json()?;
        let code = started["device_code"].as_str().ok_or("no device code")?;
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", code),
            ])
            .finish();
        run("device poll", Kind::DevicePoll { auth, body }, n, true).await;
    }
    if args.storm {
        rows.extend(storm::run(&target, duration).await);
    }
    Ok(Report {
        name: target.name.clone(),
        start_to_ready: target.start_to_ready,
        idle_rss_kib,
        peak_rss_kib: target.rss_kib().1,
        rows,
    })
}

fn print_reports(reports: &[Report], args: &RunArgs) {
    println!();
    println!(
        "{} s per scenario, {} connections (login flows: {}), one client thread, {} CPUs",
        args.duration,
        args.connections,
        (args.connections / 4).max(1),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    let mut head = String::from("| scenario |");
    let mut rule = String::from("|---|");
    for r in reports {
        head += &format!(
            " {0} ops/s | {0} p50 ms | {0} p99 ms | {0} CPU µs/op |",
            r.name
        );
        rule += "---:|---:|---:|---:|";
    }
    if reports.len() == 2 {
        head += " ops/s ratio | CPU ratio |";
        rule += "---:|---:|";
    }
    println!("{head}\n{rule}");
    for (name, _) in &reports[0].rows {
        let mut line = format!("| {name} |");
        let mut cells = Vec::new();
        for r in reports {
            match r.rows.iter().find(|(n, _)| n == name).map(|(_, m)| m) {
                Some(m) => {
                    line += &format!(
                        " {:.0} | {:.2} | {:.2} | {:.1}{} |",
                        m.per_sec(),
                        m.percentile(0.5),
                        m.percentile(0.99),
                        m.cpu_per_op(),
                        if m.errors > 0 {
                            format!(" ({} errors)", m.errors)
                        } else {
                            String::new()
                        }
                    );
                    cells.push(m.clone());
                }
                None => line += " - | - | - | - |",
            }
        }
        if reports.len() == 2 {
            if let [a, b] = cells.as_slice() {
                line += &format!(
                    " {:.1}× | {:.1}× |",
                    a.per_sec() / b.per_sec(),
                    b.cpu_per_op() / a.cpu_per_op()
                );
            } else {
                line += " - | - |";
            }
        }
        println!("{line}");
    }
    println!();
    for r in reports {
        println!(
            "{}: start to ready {:.0} ms, idle RSS {:.1} MiB, peak RSS {:.1} MiB",
            r.name,
            r.start_to_ready.as_secs_f64() * 1000.0,
            r.idle_rss_kib as f64 / 1024.0,
            r.peak_rss_kib as f64 / 1024.0
        );
    }
}

fn main() {
    // `cargo bench` passes --bench to a harness-less bench; it means nothing here.
    let argv = std::env::args().filter(|a| a != "--bench");
    let args = Args::parse_from(argv);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(&e.to_string()));
    let result = runtime.block_on(async {
        match args.command {
            Some(Command::Scale(scale)) => scale::run(scale).await,
            None => run(args.run).await,
        }
    });
    if let Err(e) = result {
        fail(&e);
    }
}

fn fail(e: &str) -> ! {
    eprintln!("load: {e}");
    std::process::exit(1)
}

async fn run(args: RunArgs) -> Result<(), Error> {
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_yihao"));
    let backend = match args.backend.as_str() {
        "sqlite" => Backend::Sqlite,
        "postgres" => Backend::Postgres {
            database: args.database_url.clone(),
            redis: args.redis_url.clone(),
        },
        other => return Err(format!("--backend {other}: sqlite or postgres")),
    };
    let mut reports = Vec::new();
    // One provider at a time, so neither runs while the other is measured.
    let yihao = Arc::new(target::yihao(binary, &backend).await?);
    reports.push(bench_target(yihao, &args).await?);
    let other = match (args.other_port, args.other_pid, args.peer) {
        (Some(port), Some(pid), _) => {
            let mut t = target::external("other", port, pid)?;
            t.discover().await?;
            Some(t)
        }
        (_, _, true) => Some(target::node_peer(&target::peer_dir()).await?),
        _ => None,
    };
    if let Some(other) = other {
        reports.push(bench_target(Arc::new(other), &args).await?);
    }
    print_reports(&reports, &args);
    Ok(())
}
