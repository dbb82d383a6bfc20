//! Scale: `cargo bench --bench load -- scale --accounts 1000000`.
//!
//! Creates a PostgreSQL database, streams N legacy accounts (distinct resident ID numbers and mobile
//! numbers, an argon2id hash each) through `yihao account import -` (the real import path: validation,
//! blind indexes, sealing, batching), then measures the look-up a login starts with (identifier ->
//! blind index -> account row, its sealed fields opened, and the stored hash) for random people,
//! one at a time and 16 at a time. The database and its keys are kept (`--database-name`), so a
//! later run can measure again with `--skip-import`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::http::Error;
use crate::target::{psql, replace_database};

#[derive(clap::Args, Debug)]
pub struct ScaleArgs {
    /// How many accounts to import.
    #[arg(long, default_value_t = 1_000_000)]
    accounts: u32,
    /// PostgreSQL server (the database below is created on it).
    #[arg(
        long,
        env = "YIHAO_TEST_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    database_url: String,
    /// The database to load (dropped and created again unless --skip-import).
    #[arg(long, default_value = "yihao_scale")]
    database_name: String,
    /// Measure an already loaded database (same --database-name and --accounts).
    #[arg(long)]
    skip_import: bool,
    /// Look-ups to measure in each pass.
    #[arg(long, default_value_t = 20_000)]
    lookups: u32,
}

/// Region codes for the ID numbers: 3 650 000 people per region before birth dates repeat.
const REGIONS: [&str; 10] = [
    "110101", "110102", "110105", "310101", "310104", "440103", "440106", "320102", "330102",
    "510104",
];
const PER_REGION: u32 = 3_650_000;

/// A valid resident ID number for person `i` (unique for i < 36 500 000).
pub fn resident_id(i: u32) -> String {
    let region = REGIONS[(i / PER_REGION) as usize % REGIONS.len()];
    let i = i % PER_REGION;
    let day = i64::from(i / 1000);
    // Born from 1950-01-01 on, one day per thousand people.
    let (y, m, d) = civil_from_days(DAYS_1950_01_01 + day);
    let first17 = format!("{region}{y:04}{m:02}{d:02}{:03}", i % 1000);
    let check = yihao::domain::identifiers::mod11_2_check(first17.as_bytes()) as char;
    format!("{first17}{check}")
}

/// 1950-01-01 in days since 1970-01-01.
const DAYS_1950_01_01: i64 = -7305;

fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // H. Hinnant's algorithm (days since 1970-01-01).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn workdir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/bench-scale")
        .join(name)
}

pub async fn run(args: ScaleArgs) -> Result<(), Error> {
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_yihao"));
    let dir = workdir(&args.database_name);
    let url = replace_database(&args.database_url, &args.database_name);
    let env = [
        ("YIHAO_DATABASE__URL", url.as_str()),
        ("YIHAO_LOG__LEVEL", "warn"),
    ];
    if !args.skip_import {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        psql(
            &args.database_url,
            &format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                args.database_name
            ),
        )?;
        psql(
            &args.database_url,
            &format!("CREATE DATABASE {}", args.database_name),
        )?;
        import(&binary, &dir, &env, args.accounts).await?;
    }
    lookups(&dir, &url, &args).await?;
    admin_searches(&binary, &dir, &env, &args).await
}

/// The security administrator's account search through the admin API of a running server (release
/// build), as a client acting in the security role: by ID number or phone (the blind index, the
/// account opened, the role read, the look-up audited), and by the beginning of a name (a page of
/// 50 by an indexed range, each account opened).
async fn admin_searches(
    binary: &PathBuf,
    dir: &std::path::Path,
    env: &[(&str, &str)],
    args: &ScaleArgs,
) -> Result<(), Error> {
    let cli = |cli_args: &[&str]| {
        Command::new(binary)
            .args(cli_args)
            .current_dir(dir)
            .envs(env.iter().copied())
            .output()
            .map_err(|e| e.to_string())
    };
    let _ = cli(&["client", "delete", "scale-admin"])?;
    let created = cli(&[
        "client",
        "create",
        "--name",
        "scale admin",
        "--id",
        "scale-admin",
        "--grant-type",
        "client_credentials",
        "--scope",
        "admin:security",
        "--output",
        "json",
    ])?;
    let created: serde_json::Value =
        serde_json::from_slice(&created.stdout).map_err(|e| e.to_string())?;
    let secret = created["client_secret"]
        .as_str()
        .ok_or("no client secret")?
        .to_owned();
    let port = crate::target::free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let mut server = Command::new(binary)
        .arg("serve")
        .current_dir(dir)
        .envs(env.iter().copied())
        .env("YIHAO_SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("YIHAO_SERVER__ISSUER", &base)
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let result = async {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            if Instant::now() > deadline {
                return Err::<(), Error>("the server did not become ready".into());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let token: serde_json::Value = http
            .post(format!("{base}/token"))
            .basic_auth("scale-admin", Some(&secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let token = token["access_token"].as_str().ok_or("no token")?.to_owned();
        let search = |query: String| {
            let (http, token, base) = (http.clone(), token.clone(), base.clone());
            async move {
                let t = Instant::now();
                let r = http
                    .get(format!("{base}/admin/api/v1/accounts?{query}"))
                    .bearer_auth(token)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let status = r.status();
                let body: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
                if !status.is_success() || body["items"].as_array().is_none_or(Vec::is_empty) {
                    return Err::<(Duration, serde_json::Value), Error>(format!(
                        "{query}: {status} {body}"
                    ));
                }
                Ok((t.elapsed(), body))
            }
        };
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % u64::from(args.accounts)) as u32
        };
        let searches = (args.lookups / 4).max(100);
        for _ in 0..200 {
            search(format!("q={}", resident_id(next()))).await?;
        }
        let mut by_number = Vec::new();
        let started = Instant::now();
        for k in 0..searches {
            let i = next();
            let q = if k % 2 == 0 {
                resident_id(i)
            } else {
                format!("{}", 13_000_000_000u64 + u64::from(i))
            };
            by_number.push(search(format!("q={q}")).await?.0);
        }
        report_search(
            "admin search by ID number or phone",
            &mut by_number,
            started.elapsed(),
        );
        // Names are 压测<i>: the prefix 压测<k> matches every i starting with the digits of k (with
        // 1 M accounts and k < 100, 1 111 to 11 111 names).
        let pages = (searches / 10).max(50);
        let mut first = Vec::new();
        let mut third = Vec::new();
        let started = Instant::now();
        for _ in 0..pages {
            let k = 1 + next() % 99;
            let prefix: String =
                url::form_urlencoded::byte_serialize(format!("压测{k}").as_bytes()).collect();
            let (took, page) = search(format!("name={prefix}&limit=50")).await?;
            first.push(took);
            let Some(after) = page["next"].as_str() else {
                continue;
            };
            let (_, page) = search(format!("name={prefix}&limit=50&after={after}")).await?;
            if let Some(after) = page["next"].as_str() {
                third.push(
                    search(format!("name={prefix}&limit=50&after={after}"))
                        .await?
                        .0,
                );
            }
        }
        report_search(
            "admin search by name, first page of 50",
            &mut first,
            started.elapsed(),
        );
        if !third.is_empty() {
            report_search(
                "admin search by name, third page of 50",
                &mut third,
                started.elapsed(),
            );
        }
        Ok(())
    }
    .await;
    let _ = server.kill();
    let _ = server.wait();
    result
}

fn report_search(what: &str, latencies: &mut [Duration], elapsed: Duration) {
    latencies.sort_unstable();
    let at = |p: f64| {
        latencies[((latencies.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
    };
    println!(
        "{what}: {} requests in {:.1} s, p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        latencies.len(),
        elapsed.as_secs_f64(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
}

async fn import(
    binary: &PathBuf,
    dir: &PathBuf,
    env: &[(&str, &str)],
    accounts: u32,
) -> Result<(), Error> {
    let status = Command::new(binary)
        .arg("migrate")
        .current_dir(dir)
        .envs(env.iter().copied())
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("yihao migrate failed".into());
    }
    // One argon2id hash (the default OWASP parameters, made by yihao's own hasher) for everybody:
    // hashing a million passwords would measure argon2, not the import.
    let config = yihao::config::Config::load_with_env(None, []).map_err(|e| e.to_string())?;
    let hash = yihao::crypto::password::PasswordHasher::new(&config.passwords)
        .map_err(|e| e.to_string())?
        .hash(&yihao::domain::password::Password::new("Scale#2026pass"))
        .await
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut child = Command::new(binary)
        .args(["account", "import", "-", "--output", "json"])
        .current_dir(dir)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut stdin = std::io::BufWriter::new(child.stdin.take().ok_or("no stdin")?);
    for i in 0..accounts {
        let line = serde_json::json!({
            "source": "scale",
            "user_id": format!("u{i}"),
            "id_number": resident_id(i),
            "name": format!("压测{i}"),
            "phone": format!("{}", 13_000_000_000u64 + u64::from(i)),
            "password": {"format": "argon2id", "hash": hash},
        });
        writeln!(stdin, "{line}").map_err(|e| e.to_string())?;
    }
    drop(stdin);
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();
    if !out.status.success() {
        return Err("yihao account import failed".into());
    }
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    println!(
        "imported {accounts} accounts in {:.1} s ({:.0} lines/s): created {}, rejected {}",
        elapsed.as_secs_f64(),
        f64::from(accounts) / elapsed.as_secs_f64(),
        summary["created"],
        summary["rejected"]
    );
    if summary["created"].as_u64() != Some(u64::from(accounts)) {
        return Err(format!("import did not create every account: {summary}"));
    }
    Ok(())
}

async fn lookups(dir: &std::path::Path, url: &str, args: &ScaleArgs) -> Result<(), Error> {
    let keys = dir.join("keys");
    let keys = keys.to_string_lossy();
    let config = yihao::config::Config::load_with_env(
        None,
        [
            ("YIHAO_DATABASE__URL", url),
            ("YIHAO_KEYS__DEV_DIR", keys.as_ref()),
        ],
    )
    .map_err(|e| e.to_string())?;
    let master = yihao::crypto::MasterKey::load(&config.keys).map_err(|e| e.to_string())?;
    let store = yihao::app::open_store(&config.database)
        .await
        .map_err(|e| e.to_string())?;
    let ephemeral = yihao::app::open_ephemeral(&config.cache).map_err(|e| e.to_string())?;
    let ids = Arc::new(
        yihao::app::identities(&config, &master, store.clone(), ephemeral)
            .map_err(|e| e.to_string())?,
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    // A fixed pseudo-random order (xorshift), the same in every run.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut people = Vec::with_capacity(args.lookups as usize);
    for _ in 0..args.lookups {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        people.push((state % u64::from(args.accounts)) as u32);
    }
    let lookup = |ids: Arc<yihao::protocol::accounts::Identities>,
                  store: Arc<dyn yihao::store::Store>,
                  i: u32| async move {
        let t = Instant::now();
        let account = ids
            .find(&resident_id(i), now)
            .await
            .map_err(|e| e.to_string())?;
        let account = account.ok_or_else(|| format!("person {i} not found"))?;
        store
            .password_hash(account.id.as_str())
            .await
            .map_err(|e| e.to_string())?
            .ok_or("no password hash")?;
        Ok::<Duration, Error>(t.elapsed())
    };
    // Warm the pool's connections and the database's cache a little, as a running server would be.
    for &i in people.iter().take(1000) {
        lookup(ids.clone(), store.clone(), i).await?;
    }
    let mut one = Vec::with_capacity(people.len());
    let started = Instant::now();
    for &i in &people {
        one.push(lookup(ids.clone(), store.clone(), i).await?);
    }
    report("one at a time", &mut one, started.elapsed());
    let mut many = Vec::with_capacity(people.len());
    let started = Instant::now();
    for chunk in people.chunks(16) {
        let all = chunk.iter().map(|&i| lookup(ids.clone(), store.clone(), i));
        for d in futures::future::join_all(all).await {
            many.push(d?);
        }
    }
    report("16 at a time", &mut many, started.elapsed());
    Ok(())
}

fn report(what: &str, latencies: &mut [Duration], elapsed: Duration) {
    latencies.sort_unstable();
    let at = |p: f64| {
        latencies[((latencies.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
    };
    println!(
        "login look-up, {what}: {} look-ups, {:.0}/s, p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
}
