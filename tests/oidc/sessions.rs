//! Session administration through the CLI: listing and ending sessions, and a password change
//! signing the person out everywhere.

use serde_json::Value;
use yihao::domain::client::AuthMethod;

use crate::common::process::{output_with_input, yihao_bin};
use crate::{
    Browser, ID_NUMBER, SECRET, authorize_url, backchannel_receiver, client_spec, redirect_params,
    register, setup, verify_logout_token,
};

/// Runs the real `yihao` binary against the test server's database and keys (as an operator on the
/// same host would); returns stdout, panicking with stderr on failure.
async fn yihao_cli(app: &yihao::app::App, args: &[&str], stdin: Option<&str>) -> String {
    let db = app.config.database.url.clone();
    let keys = app.config.keys.dev_dir.display().to_string();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let stdin = stdin.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let mut cmd = yihao_bin();
        cmd.args(&args)
            .env("YIHAO_DATABASE__URL", db)
            .env("YIHAO_KEYS__DEV_DIR", keys)
            .env("YIHAO_LOG__LEVEL", "warn");
        let out = output_with_input(cmd, stdin.as_deref());
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert!(out.status.success(), "yihao {args:?}: {stderr}");
        stdout
    })
    .await
    .unwrap()
}

/// `yihao session list` for the test person, with `extra` arguments, as JSON.
async fn session_list(app: &yihao::app::App, extra: &[&str]) -> Value {
    let mut args = vec!["session", "list", "--account", ID_NUMBER];
    args.extend_from_slice(extra);
    args.extend(["--output", "json"]);
    serde_json::from_str(&yihao_cli(app, &args, None).await).unwrap()
}

#[tokio::test]
async fn administrators_list_and_end_sessions_and_a_password_change_signs_out_everywhere() {
    let s = setup(|c| {
        c.session.sweep_ms = 50;
        c.logout.poll_ms = 50;
    })
    .await;
    let app = s._server.test_app.app.clone();
    let rp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rp_uri = format!("http://{}/backchannel", rp.local_addr().unwrap());
    let mut logouts = backchannel_receiver(rp);
    let mut spec = client_spec(
        "kiosk",
        "http://127.0.0.1:9/kiosk",
        AuthMethod::ClientSecretBasic,
        true,
    );
    spec.settings.backchannel_logout_uri = Some(rp_uri);
    spec.settings.channel = yihao::domain::client::Channel::Kiosk;
    register(&app, spec, SECRET).await;
    let browser = Browser::new();
    let sign_in = |client: &'static str, redirect: &'static str| {
        let url = authorize_url(&s.base, client, redirect, &[("scope", "openid")]);
        let browser = &browser;
        let base = s.base.clone();
        async move { browser.authorize(&base, &url).await }
    };
    assert!(
        sign_in("kiosk", "http://127.0.0.1:9/kiosk")
            .await
            .contains_key("code")
    );
    assert!(
        sign_in("hall", "http://127.0.0.1:9/cb")
            .await
            .contains_key("code")
    );

    let listed = session_list(&app, &[]).await;
    let sessions = listed.as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{listed}");
    let listed = &sessions[0];
    assert_eq!(listed["state"], "active");
    assert_eq!(
        listed["channel"], "kiosk",
        "the channel of the client signed in at"
    );
    assert_eq!(listed["signed_in_at_client"], "kiosk");
    assert_eq!(listed["clients"], serde_json::json!(["kiosk", "hall"]));
    assert_eq!(listed["ip"], "127.0.0.1");
    assert_eq!(listed["amr"], serde_json::json!(["pwd"]));
    let sid = listed["sid"].as_str().unwrap().to_owned();

    // The administrator ends it from another process (the server's live store is in-process).
    yihao_cli(&app, &["session", "revoke", &sid], None).await;
    let token = tokio::time::timeout(std::time::Duration::from_secs(10), logouts.recv())
        .await
        .expect("no back-channel logout after the revocation")
        .unwrap();
    assert_eq!(
        verify_logout_token(&s.base, &token, "kiosk").await["sid"],
        sid.as_str()
    );
    // The server drops the live session at its next sweep: silent SSO now needs a login.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let url = authorize_url(
            &s.base,
            "hall",
            "http://127.0.0.1:9/cb",
            &[("scope", "openid"), ("prompt", "none")],
        );
        let params = redirect_params(&browser.get(&url).await);
        if params.get("error").map(String::as_str) == Some("login_required") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the revoked session still works: {params:?}"
        );
        // Real time: the sweeper drops a session ended from the CLI at its next pass.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let all = session_list(&app, &["--all"]).await;
    assert_eq!(all[0]["state"], "ended:admin");
    assert_eq!(all[0]["end_reason"], "admin");

    // Signed in again; the password changes: that session ends too, and the kiosk hears of it.
    assert!(
        sign_in("kiosk", "http://127.0.0.1:9/kiosk")
            .await
            .contains_key("code")
    );
    yihao_cli(
        &app,
        &["account", "set-password", ID_NUMBER, "--password-stdin"],
        Some("An0ther-pass!\n"),
    )
    .await;
    let token = tokio::time::timeout(std::time::Duration::from_secs(10), logouts.recv())
        .await
        .expect("no back-channel logout after the password change")
        .unwrap();
    let claims = verify_logout_token(&s.base, &token, "kiosk").await;
    assert_ne!(claims["sid"], sid.as_str(), "the new session's logout");
    let all = session_list(&app, &["--all"]).await;
    let renewed = all
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["sid"] == claims["sid"])
        .unwrap();
    assert_eq!(renewed["end_reason"], "password_changed");
    assert!(logouts.try_recv().is_err(), "one logout per ended session");
}

/// Security review 17: locking or disabling an account ended none of its sessions, and
/// introspection ignored the account's status. `account lock` ends the sessions (with
/// back-channel logout) and revokes the refresh tokens; introspection calls the person's tokens
/// inactive from the moment the account is not active.
#[tokio::test]
async fn a_locked_account_is_signed_out_and_its_tokens_are_inactive() {
    let s = setup(|_| {}).await;
    let app = s._server.test_app.app.clone();
    let browser = Browser::new();
    let tokens = crate::tokens_with_refresh(&s, &browser).await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let introspect = |token: String| {
        let base = s.base.clone();
        async move {
            crate::post_form(&base, "/introspect", ("hall", SECRET), &[("token", &token)])
                .await
                .1["active"]
                .clone()
        }
    };
    assert_eq!(introspect(access.to_owned()).await, true);
    yihao_cli(&app, &["account", "lock", ID_NUMBER], None).await;
    assert_eq!(
        introspect(access.to_owned()).await,
        false,
        "the access token"
    );
    assert_eq!(
        introspect(refresh.to_owned()).await,
        false,
        "the refresh token"
    );
    let all = session_list(&app, &["--all"]).await;
    assert_eq!(all[0]["end_reason"], "admin", "{all}");
}
