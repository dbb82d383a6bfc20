//! The operator's interface (docs/design.md) through the real binary: exit codes, one-line errors,
//! JSON output, configuration layering, and `serve` stopping cleanly on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Run {
    dir: tempfile::TempDir,
}

impl Run {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = common::process::yihao_bin();
        cmd.args(args).current_dir(self.dir.path());
        for (name, _) in std::env::vars() {
            if name.starts_with("YIHAO_") {
                cmd.env_remove(name);
            }
        }
        cmd
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.cmd(args);
        cmd.envs(env.iter().copied());
        cmd.output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, &[]);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    /// Asserts failure with exactly one line on stderr, and returns it.
    fn fails(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.run(args, env);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
        err
    }
}

#[test]
fn every_command_has_help() {
    let run = Run::new();
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["migrate", "--help"],
        &["config", "check", "--help"],
        &["client", "--help"],
        &["client", "create", "--help"],
        &["client", "list", "--help"],
        &["client", "rotate-secret", "--help"],
        &["account", "--help"],
        &["org", "--help"],
        &["keys", "--help"],
        &["audit", "--help"],
        &["admin", "--help"],
        &["admin", "grant", "--help"],
        &["sandbox", "seed", "--help"],
        &["sms", "outbox", "--help"],
    ] {
        let out = run.ok(args);
        assert!(out.contains("Usage"), "{args:?}: {out}");
    }
}

#[test]
fn a_bad_setting_is_one_line_naming_the_key() {
    let run = Run::new();
    let err = run.fails(&["config", "check"], &[("YIHAO_SERVER__BIND", "nonsense")]);
    assert!(err.contains("server.bind"), "{err}");
    let err = run.fails(&["serve"], &[("YIHAO_DATABASE__URL", "mysql://x")]);
    assert!(err.contains("database.url"), "{err}");
    let err = run.fails(
        &["serve"],
        &[
            ("YIHAO_MODE", "production"),
            ("YIHAO_SERVER__ISSUER", "https://id.example.gov.cn"),
        ],
    );
    assert!(err.contains("keys.master_key"), "{err}");
    let err = run.fails(&["--config", "missing.toml", "config", "check"], &[]);
    assert!(err.contains("missing.toml"), "{err}");
    assert!(
        !run.dir.path().join("data").exists(),
        "a refused start wrote files"
    );
}

#[test]
fn config_check_prints_effective_values_with_secrets_redacted() {
    let run = Run::new();
    std::fs::write(
        run.dir.path().join("y.toml"),
        "[server]\nissuer = \"https://id.example.gov.cn\"\n",
    )
    .unwrap();
    let out = run.run(
        &["--config", "y.toml", "config", "check"],
        &[
            (
                "YIHAO_KEYS__MASTER_KEY",
                "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlYyE=",
            ),
            ("YIHAO_DATABASE__URL", "postgres://yihao:pa55word@db/yihao"),
        ],
    );
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let parsed: toml::Value = toml::from_str(&text).unwrap();
    assert_eq!(
        parsed["server"]["issuer"].as_str(),
        Some("https://id.example.gov.cn")
    );
    assert_eq!(parsed["keys"]["master_key"].as_str(), Some("[redacted]"));
    assert!(
        !text.contains("pa55word") && !text.contains("c2VjcmV0"),
        "{text}"
    );
}

impl Run {
    /// The SQLite database as stored: the main file and its write-ahead log.
    fn database_bytes(&self) -> Vec<u8> {
        ["data/yihao.db", "data/yihao.db-wal"]
            .iter()
            .filter_map(|f| std::fs::read(self.dir.path().join(f)).ok())
            .flatten()
            .collect()
    }
}

#[test]
fn client_commands_register_show_rotate_and_delete() {
    let run = Run::new();
    let created = run.json(&[
        "client",
        "create",
        "--name",
        "网上办事大厅",
        "--id",
        "hall",
        "--grant-type",
        "authorization_code",
        "--grant-type",
        "refresh_token",
        "--redirect-uri",
        "https://hall.example.gov.cn/cb",
        "--post-logout-redirect-uri",
        "https://hall.example.gov.cn/bye",
        "--scope",
        "openid",
        "--scope",
        "profile",
        "--output",
        "json",
    ]);
    assert_eq!(created["client_id"], "hall");
    assert_eq!(created["client_name"], "网上办事大厅");
    assert_eq!(created["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(
        created["redirect_uris"],
        serde_json::json!(["https://hall.example.gov.cn/cb"])
    );
    assert_eq!(
        created["grant_types"],
        serde_json::json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(created["scope"], "openid profile");
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 43);

    let shown = run.json(&["client", "show", "hall", "--output", "json"]);
    assert!(shown.get("client_secret").is_none(), "secret shown twice");
    assert_eq!(shown["client_id"], "hall");
    let db = run.database_bytes();
    assert!(
        !db.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "raw secret stored"
    );

    let updated = run.json(&[
        "client",
        "update",
        "hall",
        "--name",
        "网上大厅",
        "--id-token-signed-response-alg",
        "ES256",
        "--access-token-lifetime",
        "300",
        "--first-party",
        "true",
        "--min-level",
        "3",
        "--output",
        "json",
    ]);
    assert_eq!(updated["client_name"], "网上大厅");
    assert_eq!(
        updated["min_level"], 3,
        "docs/assurance.md: a client's minimum level"
    );
    let err = run.fails(&["client", "update", "hall", "--min-level", "5"], &[]);
    assert!(err.contains("min_level"), "{err}");
    assert_eq!(updated["id_token_signed_response_alg"], "ES256");
    assert_eq!(updated["access_token_lifetime"], 300);
    assert_eq!(updated["first_party"], true);
    assert_eq!(
        updated["redirect_uris"], created["redirect_uris"],
        "unchanged settings stay"
    );
    let err = run.fails(
        &["client", "update", "hall", "--access-token-lifetime", "5"],
        &[],
    );
    assert!(err.contains("60 to 86400"), "{err}");
    let rotated = run.json(&["client", "rotate-secret", "hall", "--output", "json"]);
    assert_ne!(rotated["client_secret"], secret.as_str());

    let public = run.json(&[
        "client",
        "create",
        "--name",
        "App",
        "--public",
        "--redirect-uri",
        "http://127.0.0.1/cb",
        "--token-endpoint-auth-method",
        "none",
        "--output",
        "json",
    ]);
    assert!(public.get("client_secret").is_none());
    assert_eq!(public["token_endpoint_auth_method"], "none");
    // client_secret_jwt keeps the secret sealed (recoverable as an HMAC key), never in the clear.
    let hmac = run.json(&[
        "client",
        "create",
        "--name",
        "Records",
        "--id",
        "records",
        "--grant-type",
        "client_credentials",
        "--scope",
        "records.read",
        "--token-endpoint-auth-method",
        "client_secret_jwt",
        "--output",
        "json",
    ]);
    assert_eq!(hmac["token_endpoint_auth_method"], "client_secret_jwt");
    let hmac_rotated = run.json(&["client", "rotate-secret", "records", "--output", "json"]);
    let db = run.database_bytes();
    for s in [&hmac["client_secret"], &hmac_rotated["client_secret"]] {
        let s = s.as_str().unwrap();
        assert!(
            !db.windows(s.len()).any(|w| w == s.as_bytes()),
            "raw secret stored"
        );
    }
    let listed = run.json(&["client", "list", "--output", "json"]);
    assert_eq!(listed.as_array().unwrap().len(), 3);

    let err = run.fails(
        &[
            "client",
            "create",
            "--name",
            "dup",
            "--id",
            "hall",
            "--redirect-uri",
            "https://x.example.cn/cb",
        ],
        &[],
    );
    assert!(err.contains("already exists"), "{err}");
    run.ok(&["client", "delete", "hall"]);
    run.fails(&["client", "show", "hall"], &[]);
    run.fails(&["client", "delete", "hall"], &[]);
}

#[test]
fn invalid_client_registrations_are_refused_and_store_nothing() {
    let run = Run::new();
    for (args, says) in [
        (
            &["--redirect-uri", "http://hall.example.gov.cn/cb"][..],
            "redirect_uris",
        ),
        (&["--redirect-uri", "https://x.example.cn/cb#f"], "fragment"),
        (
            &[
                "--grant-type",
                "password",
                "--redirect-uri",
                "https://x.example.cn/cb",
            ],
            "grant_types",
        ),
        (&["--grant-type", "authorization_code"], "redirect_uris"),
        (
            &["--public", "--grant-type", "client_credentials"],
            "client_credentials",
        ),
        (
            &[
                "--public",
                "--token-endpoint-auth-method",
                "client_secret_post",
                "--redirect-uri",
                "https://x.example.cn/cb",
            ],
            "none",
        ),
        (
            &[
                "--scope",
                "two words",
                "--redirect-uri",
                "https://x.example.cn/cb",
            ],
            "scope",
        ),
        (
            &[
                "--id",
                "bad id",
                "--redirect-uri",
                "https://x.example.cn/cb",
            ],
            "client_id",
        ),
    ] {
        let mut full = vec!["client", "create", "--name", "x"];
        full.extend_from_slice(args);
        let err = run.fails(&full, &[]);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(
        run.json(&["client", "list", "--output", "json"]),
        serde_json::json!([])
    );
}

#[test]
fn administrative_changes_are_audited_and_the_log_verifies() {
    let run = Run::new();
    let out = run.run(&["audit", "verify"], &[]);
    assert!(out.status.success(), "an empty log verifies");
    run.json(&[
        "client",
        "create",
        "--name",
        "Hall",
        "--id",
        "hall",
        "--redirect-uri",
        "https://hall.example.gov.cn/cb",
        "--output",
        "json",
    ]);
    run.ok(&["client", "delete", "hall"]);
    run.ok(&["audit", "checkpoint"]);
    let out = run.run(&["audit", "verify"], &[]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("records 1..2") && said.contains("1 signed checkpoint"),
        "{said}"
    );
    let out = run.run(&["audit", "export", "--since", "2000-01-01"], &[]);
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["event"], "admin_client");
    assert_eq!(lines[0]["actor"], "admin");
    assert_eq!(lines[0]["target"], "hall");
    assert_eq!(lines[1]["details"], r#"{"change":"delete"}"#);
    assert_eq!(lines[1]["hash"].as_str().unwrap().len(), 64);
    // Account changes and look-ups by ID number are audited with the account id, never the number.
    let out = run.run(
        &[
            "account",
            "create",
            "--id-number",
            "11010519491231002X",
            "--name",
            "张三",
            "--output",
            "json",
        ],
        &[],
    );
    assert!(out.status.success());
    run.ok(&["account", "lock", "11010519491231002X"]);
    let out = run.run(&["audit", "export", "--since", "0"], &[]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains("11010519491231002X") && !text.contains("19491231"),
        "{text}"
    );
    let events: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        events[2..],
        ["admin_account", "id_number_lookup", "admin_account"],
        "create, the look-up by number, the lock"
    );
    assert!(run.run(&["audit", "verify"], &[]).status.success());

    // Retention: nothing is older than the retention period yet; once the checkpoint at record 2
    // is (moved back in time here), records before it are exported, then deleted, and the chain
    // still verifies from the checkpointed record.
    let export = run.dir.path().join("pruned.jsonl");
    let export_arg = export.to_str().unwrap();
    run.ok(&["audit", "prune", "--export", export_arg]);
    assert!(!export.exists());
    let db = format!(
        "sqlite://{}",
        run.dir.path().join("data/yihao.db").display()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Moves every checkpoint back in time, past the retention period.
    let age_checkpoints = || {
        rt.block_on(async {
            let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
            sqlx::query("UPDATE audit_checkpoints SET at_ms = 0")
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        })
    };
    age_checkpoints();
    run.ok(&["audit", "prune", "--export", export_arg]);
    let exported = std::fs::read_to_string(&export).unwrap();
    assert_eq!(exported.lines().count(), 1, "record 1 only: {exported}");
    let out = run.run(&["audit", "verify"], &[]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success() && said.contains("records 2.."),
        "{said}"
    );
    run.ok(&["audit", "checkpoint"]);
    age_checkpoints();
    let err = run.fails(&["audit", "prune", "--export", export_arg], &[]);
    assert!(
        err.contains("pruned.jsonl"),
        "an export is never overwritten: {err}"
    );
    let second = run.dir.path().join("pruned-2.jsonl");
    run.ok(&["audit", "prune", "--export", second.to_str().unwrap()]);
    assert!(run.run(&["audit", "verify"], &[]).status.success());
    let err = run.fails(&["audit", "export", "--since", "yesterday"], &[]);
    assert!(err.contains("--since"), "{err}");
}

fn wait_healthy(port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if out.starts_with("HTTP/1.1 200") {
                return true;
            }
        }
        // Real time: waiting for another process to listen.
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[cfg(unix)]
#[test]
fn serve_runs_on_embedded_defaults_and_exits_zero_on_sigterm() {
    let run = Run::new();
    let port = common::free_port();
    let bind = format!("127.0.0.1:{port}");
    let child = run
        .cmd(&["serve"])
        .env("YIHAO_SERVER__BIND", &bind)
        .env("YIHAO_LOG__FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let healthy = wait_healthy(port);
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(healthy, "never healthy: {log}");
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(log.contains("shutting down"), "{log}");
    assert!(Path::new(&run.dir.path().join("data/yihao.db")).is_file());
    assert!(run.dir.path().join("keys/dev-master.key").is_file());
    for line in log.lines() {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
}

impl Run {
    /// Runs with `input` on standard input.
    fn with_stdin(&self, args: &[&str], env: &[(&str, &str)], input: &str) -> Output {
        let mut cmd = self.cmd(args);
        cmd.envs(env.iter().copied());
        common::process::output_with_input(cmd, Some(input))
    }

    fn json_stdin(&self, args: &[&str], input: &str) -> Value {
        let out = self.with_stdin(args, &[], input);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

#[test]
fn account_commands_create_find_mask_and_manage() {
    let run = Run::new();
    let created = run.json_stdin(
        &[
            "account",
            "create",
            "--id-number",
            "11010519491231002x",
            "--name",
            "张三",
            "--phone",
            "13812341234",
            "--password-stdin",
            "--output",
            "json",
        ],
        "Str0ng-pass!\n",
    );
    let id = created["account_id"].as_str().unwrap().to_owned();
    assert_eq!(created["documents"][0]["number"], "110***********002X");
    assert_eq!(created["documents"][0]["type"], "resident_id");
    assert_eq!(created["phone"], "138****1234");
    assert_eq!(created["level"], 1);
    assert_eq!(created["acr"], "urn:yihao:loa:1");
    for key in [
        id.as_str(),
        "11010519491231002X",
        "110105491231002",
        "13812341234",
    ] {
        assert_eq!(
            run.json(&["account", "show", key, "--output", "json"])["account_id"],
            id.as_str(),
            "{key}"
        );
    }
    let revealed = run.json(&["account", "show", &id, "--reveal", "--output", "json"]);
    assert_eq!(revealed["documents"][0]["number"], "11010519491231002X");
    assert_eq!(revealed["phone"], "13812341234");
    let text = run.ok(&["account", "show", "13812341234"]);
    assert!(
        !text.contains("13812341234") && !text.contains("11010519491231002X"),
        "{text}"
    );

    let err = run.fails(
        &[
            "account",
            "create",
            "--id-number",
            "110105194912310021",
            "--name",
            "x",
        ],
        &[],
    );
    assert!(err.contains("check character should be X"), "{err}");
    let err = run.fails(
        &[
            "account",
            "create",
            "--id-number",
            "110101199002300010",
            "--name",
            "x",
        ],
        &[],
    );
    assert!(err.contains("30 February"), "{err}");
    let weak = run.with_stdin(
        &[
            "account",
            "create",
            "--id-number",
            "440305200002290029",
            "--name",
            "李四",
            "--password-stdin",
        ],
        &[],
        "password\n",
    );
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("at least 3"));
    assert_eq!(
        run.json(&["account", "list", "--output", "json"])
            .as_array()
            .unwrap()
            .len(),
        1,
        "a refused account was written"
    );

    assert_eq!(
        run.json(&["account", "lock", &id, "--output", "json"])["status"],
        "locked"
    );
    assert_eq!(
        run.json(&["account", "unlock", &id, "--output", "json"])["status"],
        "active"
    );
    assert_eq!(
        run.json(&["account", "disable", &id, "--output", "json"])["status"],
        "disabled"
    );
    let level = run.json(&[
        "account",
        "set-level",
        &id,
        "--level",
        "3",
        "--proof-method",
        "face_check",
        "--proof-source",
        "kiosk 12",
        "--output",
        "json",
    ]);
    assert_eq!(level["acr"], "urn:yihao:loa:3");
    assert_eq!(level["proof"]["source"], "kiosk 12");
    let err = run.fails(
        &[
            "account",
            "set-level",
            &id,
            "--level",
            "3",
            "--proof-method",
            "register_check",
        ],
        &[],
    );
    assert!(err.contains("at most real-name level 2"), "{err}");
    // The two-factor rule, and the factors an operator lists and removes.
    run.ok(&["account", "second-factor", &id, "--required", "true"]);
    let factors = run.json(&["account", "factors", &id, "--output", "json"]);
    assert_eq!(factors["second_factor_required"], true);
    assert_eq!(factors["factors"], serde_json::json!([]));
    assert_eq!(factors["recovery_codes_left"], 0);
    let err = run.fails(&["account", "remove-factor", &id, "--factor", "nope"], &[]);
    assert!(err.contains("has no factor"), "{err}");
    run.ok(&["account", "remove-factor", &id, "--all"]);
    run.ok(&["account", "second-factor", &id, "--required", "false"]);
    assert_eq!(
        run.json(&["account", "factors", &id, "--output", "json"])["second_factor_required"],
        false
    );
    let same = run.with_stdin(
        &["account", "set-password", &id, "--password-stdin"],
        &[],
        "Str0ng-pass!\n",
    );
    assert!(
        String::from_utf8_lossy(&same.stderr).contains("last 5"),
        "{}",
        String::from_utf8_lossy(&same.stderr)
    );
    let changed = run.with_stdin(
        &["account", "set-password", &id, "--password-stdin"],
        &[],
        "An0ther-pass!\n",
    );
    assert!(
        changed.status.success(),
        "{}",
        String::from_utf8_lossy(&changed.stderr)
    );
}

#[test]
fn org_commands_register_people_acting_for_an_enterprise() {
    let run = Run::new();
    let lr = run.json(&[
        "account",
        "create",
        "--id-number",
        "11010519491231002X",
        "--name",
        "法人",
        "--output",
        "json",
    ]);
    run.json(&[
        "account",
        "create",
        "--id-number",
        "440305200002290029",
        "--name",
        "经办",
        "--phone",
        "13912345678",
        "--output",
        "json",
    ]);
    let org = run.json(&[
        "org",
        "create",
        "--credit-code",
        "91512081ma62k0260e",
        "--name",
        "测试有限公司",
        "--output",
        "json",
    ]);
    assert_eq!(org["credit_code"], "91512081MA62K0260E");
    assert_eq!(org["category"], "enterprise");
    let err = run.fails(
        &[
            "org",
            "create",
            "--credit-code",
            "91310115MA1G4L1WXK",
            "--name",
            "x",
        ],
        &[],
    );
    assert!(err.contains("check character should be 7"), "{err}");
    let m = run.json(&[
        "org",
        "add-member",
        "91512081MA62K0260E",
        "--account",
        "11010519491231002X",
        "--role",
        "legal_representative",
        "--output",
        "json",
    ]);
    assert_eq!(m["account_id"], lr["account_id"]);
    let err = run.fails(
        &[
            "org",
            "add-member",
            "91512081MA62K0260E",
            "--account",
            "13912345678",
            "--role",
            "agent",
            "--scope",
            "tax.declare",
        ],
        &[],
    );
    assert!(err.contains("expiry"), "{err}");
    let agent = run.json(&[
        "org",
        "add-member",
        "91512081MA62K0260E",
        "--account",
        "13912345678",
        "--role",
        "agent",
        "--scope",
        "tax.declare",
        "--expires",
        "2099-01-01",
        "--granted-by",
        "11010519491231002X",
        "--output",
        "json",
    ]);
    assert_eq!(agent["scope"], serde_json::json!(["tax.declare"]));
    assert_eq!(agent["granted_by"], lr["account_id"]);
    let shown = run.json(&[
        "org",
        "show",
        org["org_id"].as_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(shown["members"].as_array().unwrap().len(), 2);
    run.ok(&[
        "org",
        "revoke-member",
        "91512081MA62K0260E",
        "--account",
        "13912345678",
        "--role",
        "agent",
    ]);
    run.fails(
        &[
            "org",
            "revoke-member",
            "91512081MA62K0260E",
            "--account",
            "13912345678",
            "--role",
            "agent",
        ],
        &[],
    );
    // Suspending the organisation: nobody acts for it any more.
    run.ok(&["org", "suspend", "91512081MA62K0260E"]);
    let shown = run.json(&["org", "show", "91512081MA62K0260E", "--output", "json"]);
    assert_eq!(shown["status"], "suspended", "{shown}");
}

#[test]
fn import_reports_each_line_and_a_second_run_changes_nothing() {
    let run = Run::new();
    let lines = [
        r#"{"source":"hall","user_id":"u1","id_number":"11010519491231002X","name":"张三","phone":"13812341234","password":{"format":"sha256","hash":"5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"}}"#,
        r#"{"source":"tax","user_id":"t9","id_number":"110105491231002","name":"张三"}"#,
        r#"{"source":"tax","user_id":"t10","id_number":"11010519491231002X","name":"李四"}"#,
        r#"{"source":"tax","user_id":"t11","id_number":"110105194912310021","name":"王五"}"#,
        "not json",
        "",
        r#"{"kind":"enterprise","source":"tax","user_id":"e1","credit_code":"9144030071526726XG","org_name":"深圳某公司","administrator":{"id_number":"440305200002290029","name":"赵六"},"password":{"format":"md5","hash":"0d107d09f5bbe40cade3de5c71e9e9b7","salt":"","salt_position":"prefix"}}"#,
    ];
    std::fs::write(run.dir.path().join("legacy.jsonl"), lines.join("\n")).unwrap();
    let first = run.json(&["account", "import", "legacy.jsonl", "--output", "json"]);
    assert_eq!(first["lines"], 6, "{first}");
    assert_eq!(
        (first["created"].as_u64(), first["merged"].as_u64()),
        (Some(2), Some(1)),
        "{first}"
    );
    assert_eq!(
        (first["conflicts"].as_u64(), first["rejected"].as_u64()),
        (Some(1), Some(2)),
        "{first}"
    );
    assert_eq!(first["conflict_details"][0]["line"], 3);
    assert_eq!(first["rejected_details"][0]["line"], 4);
    assert!(
        first["rejected_details"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("check character")
    );
    assert_eq!(first["rejected_details"][1]["line"], 5);
    let shown = run.json(&[
        "account",
        "show",
        "110105491231002",
        "--reveal",
        "--output",
        "json",
    ]);
    assert_eq!(
        shown["legacy_ids"],
        serde_json::json!([{"source":"hall","user_id":"u1"},{"source":"tax","user_id":"t9"}])
    );
    let org = run.json(&["org", "show", "9144030071526726XG", "--output", "json"]);
    assert_eq!(org["members"][0]["role"], "administrator");
    let second = run.json(&["account", "import", "legacy.jsonl", "--output", "json"]);
    assert_eq!(
        (
            second["created"].as_u64(),
            second["merged"].as_u64(),
            second["unchanged"].as_u64()
        ),
        (Some(0), Some(0), Some(3)),
        "{second}"
    );
}

#[test]
fn rotate_pii_reseals_under_the_new_version() {
    let run = Run::new();
    for (n, phone) in [
        ("11010519491231002X", "13812341234"),
        ("440305200002290029", "13912345678"),
    ] {
        run.json(&[
            "account",
            "create",
            "--id-number",
            n,
            "--name",
            "某人",
            "--phone",
            phone,
            "--output",
            "json",
        ]);
    }
    let v2 = [("YIHAO_KEYS__PII_VERSION", "2")];
    let out = run.run(&["keys", "rotate-pii"], &v2);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report, serde_json::json!({"pii_version": 2, "resealed": 4}));
    let again: Value =
        serde_json::from_slice(&run.run(&["keys", "rotate-pii"], &v2).stdout).unwrap();
    assert_eq!(again["resealed"], 0);
    let shown = run.run(
        &[
            "account",
            "show",
            "13812341234",
            "--reveal",
            "--output",
            "json",
        ],
        &v2,
    );
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["documents"][0]["number"], "11010519491231002X");
}

/// Security review 20: the master key is rotated by listing the old one as previous, running
/// `keys rotate-master`, then dropping it; personal data sealed before stays readable and findable.
#[test]
fn rotate_master_rewraps_the_key_root_and_keeps_the_data() {
    let run = Run::new();
    let (a, b) = (
        "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE=",
        "YmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmI=",
    );
    let only_a = [("YIHAO_KEYS__MASTER_KEY", a)];
    let only_b = [("YIHAO_KEYS__MASTER_KEY", b)];
    let rotating = [
        ("YIHAO_KEYS__MASTER_KEY", b),
        ("YIHAO_KEYS__PREVIOUS_MASTER_KEYS", a),
    ];
    let created = run.run(
        &[
            "account",
            "create",
            "--id-number",
            "11010519491231002X",
            "--name",
            "某人",
            "--phone",
            "13812341234",
        ],
        &only_a,
    );
    assert!(created.status.success(), "{created:?}");
    let show = [
        "account",
        "show",
        "13812341234",
        "--reveal",
        "--output",
        "json",
    ];
    let number = |env: &[(&str, &str)]| {
        let out = run.run(&show, env);
        assert!(out.status.success(), "{out:?}");
        let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
        shown["documents"][0]["number"].as_str().unwrap().to_owned()
    };

    let err = run.fails(&show, &only_b);
    assert!(err.contains("keys.previous_master_keys"), "{err}");
    assert_eq!(number(&rotating), "11010519491231002X");
    let out = run.run(&["keys", "rotate-master"], &rotating);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("re-wrapped"));
    let again = run.run(&["keys", "rotate-master"], &rotating);
    assert!(String::from_utf8_lossy(&again.stderr).contains("nothing to do"));

    assert_eq!(number(&only_b), "11010519491231002X");
    let err = run.fails(&show, &only_a);
    assert!(err.contains("no configured master key opens"), "{err}");
    let err = run.fails(
        &show,
        &[
            ("YIHAO_KEYS__MASTER_KEY", b),
            ("YIHAO_KEYS__PREVIOUS_MASTER_KEYS", "short"),
        ],
    );
    assert!(err.contains("keys.previous_master_keys[0]"), "{err}");
}

/// docs/design.md / issue 6: HTTPS served directly with rustls, HTTP/1.1 and HTTP/2 by ALPN, HSTS
/// over TLS, and SIGHUP reloading the certificate: a broken pair is refused and the current one kept,
/// a good one is served to new connections.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_with_http2_and_hsts_and_reloads_the_certificate_on_sighup() {
    let run = Run::new();
    let issue = || rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (first, second) = (issue(), issue());
    let (cert, key) = (
        run.dir.path().join("cert.pem"),
        run.dir.path().join("key.pem"),
    );
    let install = |pair: &rcgen::CertifiedKey<rcgen::KeyPair>| {
        std::fs::write(&cert, pair.cert.pem()).unwrap();
        std::fs::write(&key, pair.signing_key.serialize_pem()).unwrap();
    };
    install(&first);
    let port = common::free_port();
    let bind = format!("127.0.0.1:{port}");
    let issuer = format!("https://localhost:{port}");
    let env = [
        ("YIHAO_SERVER__BIND", bind.as_str()),
        ("YIHAO_SERVER__ISSUER", issuer.as_str()),
        ("YIHAO_SERVER__TLS__CERT", cert.to_str().unwrap()),
        ("YIHAO_SERVER__TLS__KEY", key.to_str().unwrap()),
    ];
    // Configuration mistakes are one line naming the key.
    let err = run.fails(&["config", "check"], &env[..3]);
    assert!(err.contains("server.tls.key"), "{err}");
    let err = run.fails(
        &["config", "check"],
        &[
            env[0],
            ("YIHAO_SERVER__ISSUER", "http://localhost"),
            env[2],
            env[3],
        ],
    );
    assert!(
        err.contains("server.issuer") && err.contains("https"),
        "{err}"
    );
    let err = run.fails(
        &["serve"],
        &[
            env[0],
            env[1],
            ("YIHAO_SERVER__TLS__CERT", "missing.pem"),
            env[3],
        ],
    );
    assert!(
        err.contains("server.tls.cert") && err.contains("missing.pem"),
        "{err}"
    );

    let mut server = run.cmd(&["serve"]);
    server.envs(env).env("YIHAO_LOG__FORMAT", "json");
    let mut child = server
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    // The server's log, line by line as it is written, and whole at the end.
    let stderr = child.stderr.take().unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            all.push_str(&line);
            all.push('\n');
            let _ = lines_tx.send(line);
        }
        all
    });
    // Waits until the server logs a line containing `needle`.
    let logged = |needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return,
                Ok(_) => {}
                Err(_) => panic!("the server never logged {needle:?}"),
            }
        }
    };
    // A new client per request: a new connection, so a new handshake.
    let client = |trusted: &rcgen::CertifiedKey<rcgen::KeyPair>, http1: bool| {
        let root = reqwest::Certificate::from_pem(trusted.cert.pem().as_bytes()).unwrap();
        let builder = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(root)
            .resolve("localhost", ([127, 0, 0, 1], port).into())
            .timeout(Duration::from_secs(5));
        let builder = if http1 { builder.http1_only() } else { builder };
        builder.build().unwrap()
    };
    let url = format!("{issuer}/.well-known/openid-configuration");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut served = None;
    while served.is_none() && Instant::now() < deadline {
        served = client(&first, false).get(&url).send().await.ok();
        // Real time: the server is another process.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let h2 = served.expect("never served over TLS");
    assert_eq!(h2.version(), reqwest::Version::HTTP_2);
    assert_eq!(
        h2.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    assert_eq!(h2.json::<Value>().await.unwrap()["issuer"], issuer.as_str());
    let h1 = client(&first, true).get(&url).send().await.unwrap();
    assert_eq!(h1.version(), reqwest::Version::HTTP_11);
    assert_eq!(
        h1.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    assert!(client(&second, false).get(&url).send().await.is_err());

    let hangup = || {
        assert!(
            Command::new("kill")
                .args(["-HUP", &pid])
                .status()
                .unwrap()
                .success()
        );
    };
    // A broken pair (the second certificate with the first key) is refused; the first stays. The
    // log line says the SIGHUP was handled, so the first certificate answering after it is the
    // rule at work, not a reload that had not happened yet.
    std::fs::write(&cert, second.cert.pem()).unwrap();
    hangup();
    logged("TLS certificate not reloaded");
    assert!(client(&first, false).get(&url).send().await.is_ok());
    assert!(client(&second, false).get(&url).send().await.is_err());
    // A good pair is served to new connections.
    install(&second);
    hangup();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut reloaded = false;
    while !reloaded && Instant::now() < deadline {
        // Real time: the server is another process.
        tokio::time::sleep(Duration::from_millis(50)).await;
        reloaded = client(&second, false).get(&url).send().await.is_ok();
    }
    assert!(reloaded, "the new certificate was never served");
    assert!(client(&first, false).get(&url).send().await.is_err());

    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    let log = reader.join().unwrap();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("TLS certificate not reloaded"), "{log}");
    assert!(log.contains("TLS certificate reloaded"), "{log}");
}

/// A session id is base64url and may begin with `-` (one in 64 do): the CLI takes it as the id,
/// not as an option.
#[test]
fn a_session_id_beginning_with_a_hyphen_is_an_id() {
    let run = Run::new();
    let err = run.fails(&["session", "revoke", "-AXnM66zMLtrD6Bds2z0OP"], &[]);
    assert!(
        err.contains("session -AXnM66zMLtrD6Bds2z0OP not found"),
        "{err}"
    );
}

#[test]
fn sms_outbox_prints_the_development_gateways_messages_and_only_there() {
    let run = Run::new();
    assert_eq!(run.ok(&["sms", "outbox"]), "", "an empty outbox");
    let line = |phone: &str, code: &str| {
        format!(
            r#"{{"at":1800000000,"phone":"{phone}","purpose":"login","code":"{code}","text":"x"}}"#
        )
    };
    std::fs::create_dir_all(run.dir.path().join("data")).unwrap();
    std::fs::write(
        run.dir.path().join("data/sms-outbox.jsonl"),
        format!(
            "{}\n{}\n{}\n",
            line("13812341234", "111111"),
            line("13900001111", "222222"),
            line("13812341234", "333333")
        ),
    )
    .unwrap();
    let out = run.ok(&[
        "sms",
        "outbox",
        "--phone",
        "+86 138 1234 1234",
        "--last",
        "1",
    ]);
    assert_eq!(out, "1800000000\t13812341234\tlogin\t333333\n");
    let all = run.json(&["sms", "outbox", "--output", "json"]);
    assert_eq!(all.as_array().unwrap().len(), 3);
    let err = run.fails(&["sms", "outbox"], &[("YIHAO_SMS__ADAPTER", "off")]);
    assert!(err.contains("development mode"), "{err}");
}

#[test]
fn admin_commands_grant_list_and_revoke_one_role_per_account() {
    let run = Run::new();
    let created = run.json(&[
        "account",
        "create",
        "--id-number",
        "11010519491231002X",
        "--name",
        "张三",
        "--output",
        "json",
    ]);
    let id = created["account_id"].as_str().unwrap().to_owned();
    let granted = run.json(&[
        "admin",
        "grant",
        "--account",
        "11010519491231002X",
        "--role",
        "security",
        "--output",
        "json",
    ]);
    assert_eq!(granted["account_id"], id.as_str());
    assert_eq!(granted["role"], "security");
    assert_eq!(granted["granted_by"], "admin");
    // One role per account; a department administrator names its department; no made-up roles.
    let said = run.fails(
        &["admin", "grant", "--account", &id, "--role", "audit"],
        &[],
    );
    assert!(said.contains("one role per account"), "{said}");
    let said = run.fails(&["admin", "grant", "--account", &id, "--role", "root"], &[]);
    assert!(said.contains("root"), "{said}");
    let listed = run.json(&["admin", "list", "--output", "json"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    // The account must now sign in with two factors.
    let factors = run.json(&["account", "factors", &id, "--output", "json"]);
    assert_eq!(factors["second_factor_required"], true);
    // A revoke names the role held.
    let said = run.fails(
        &["admin", "revoke", "--account", &id, "--role", "system"],
        &[],
    );
    assert!(said.contains("security"), "{said}");
    run.ok(&["admin", "revoke", "--account", &id, "--role", "security"]);
    assert_eq!(
        run.json(&["admin", "list", "--output", "json"]),
        serde_json::json!([])
    );
    // Both changes are audited with the operator as actor.
    let out = run.run(&["audit", "export", "--since", "0"], &[]);
    let roles: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["event"] == "admin_role")
        .collect();
    assert_eq!(roles.len(), 2);
    assert!(
        roles
            .iter()
            .all(|r| r["actor"] == "admin" && r["target"] == id.as_str())
    );
}

#[test]
fn the_sandbox_seeds_test_people_an_enterprise_and_clients_once() {
    let run = Run::new();
    let first = run.json(&["sandbox", "seed", "--people", "3", "--output", "json"]);
    let people = first["people"].as_array().unwrap();
    assert_eq!(people.len(), 3);
    for p in people {
        let number = p["id_number"].as_str().unwrap();
        assert!(
            yihao::domain::document::Document::national(number, 1_800_000_000).is_ok(),
            "{number} is valid by its checksum"
        );
        assert!(p["name"].as_str().unwrap().starts_with("测试"));
    }
    let code = first["enterprise"]["credit_code"].as_str().unwrap();
    assert!(yihao::domain::identifiers::CreditCode::parse(code).is_ok());
    assert_eq!(first["enterprise"]["members"].as_array().unwrap().len(), 2);
    let ids: Vec<&str> = first["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["sandbox-web", "sandbox-app", "sandbox-service"]);
    assert!(first["clients"][0]["client_secret"].is_string());
    assert!(
        first["clients"][1].get("client_secret").is_none(),
        "the app is public"
    );
    // A test person signs in with the printed password.
    let shown = run.json(&[
        "account",
        "show",
        people[0]["id_number"].as_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(shown["account_id"], people[0]["account_id"]);
    // Again: the same people and enterprise, nothing added; a fresh secret that works.
    let second = run.json(&["sandbox", "seed", "--people", "3", "--output", "json"]);
    assert_eq!(second["people"], first["people"]);
    assert_eq!(second["enterprise"]["members"].as_array().unwrap().len(), 2);
    assert_ne!(
        second["clients"][0]["client_secret"],
        first["clients"][0]["client_secret"]
    );
    let said = run.fails(&["sandbox", "seed", "--people", "0"], &[]);
    assert!(said.contains("--people"), "{said}");
}
