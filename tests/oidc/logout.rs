//! Logout: RP-initiated (with and without a hint tying it to the session), back-channel (surviving a
//! relying party that is down and a restart) and front-channel.

use openidconnect::TokenResponse;
use yihao::domain::client::AuthMethod;

use crate::{
    Browser, SECRET, Setup, authorize_url, backchannel_receiver, client_spec, hidden,
    redirect_params, register, rp_sign_in, setup, verify_logout_token,
};

/// Answers the logout confirmation offered on `page` with `decision` ("logout" or "stay").
async fn confirm_logout(
    s: &Setup,
    browser: &Browser,
    page: &str,
    decision: &str,
) -> reqwest::Response {
    browser
        .post(
            &format!("{}/logout/confirm", s.base),
            &[
                ("interaction", &hidden(page, "interaction")),
                ("csrf", &hidden(page, "csrf")),
                ("decision", decision),
            ],
        )
        .await
}

/// The person signs in at `client` (scope openid) in a new browser, then logs out without a hint
/// and confirms: the confirmation's answer.
async fn sign_in_then_log_out(s: &Setup, client: &str, redirect: &str) -> reqwest::Response {
    let browser = Browser::new();
    browser
        .authorize(
            &s.base,
            &authorize_url(&s.base, client, redirect, &[("scope", "openid")]),
        )
        .await;
    // Log out (no hint: confirm).
    let page = browser.page(&format!("{}/logout", s.base)).await;
    confirm_logout(s, &browser, &page, "logout").await
}

#[tokio::test]
async fn rp_initiated_logout_ends_the_session_and_returns_with_state() {
    let s = setup(|_| {}).await;
    let browser = Browser::new();
    let (hall, tokens, nonce) = rp_sign_in(&s, &browser, "hall", "http://127.0.0.1:9/cb").await;
    let id_token = tokens.id_token().unwrap();
    id_token.claims(&hall.id_token_verifier(), &nonce).unwrap();
    let logout = |extra: &[(&str, &str)]| {
        let mut u = url::Url::parse(&format!("{}/logout", s.base)).unwrap();
        u.query_pairs_mut().extend_pairs(extra);
        u.to_string()
    };
    // A post_logout_redirect_uri the client did not register: shown, not redirected.
    let bad = browser
        .get(&logout(&[
            ("id_token_hint", &id_token.to_string()),
            ("post_logout_redirect_uri", "http://127.0.0.1:9/evil"),
        ]))
        .await;
    assert_eq!(bad.status(), 400);
    assert!(bad.headers().get("location").is_none());
    // The hint names this session: logged out at once, back to the client with state.
    let done = browser
        .get(&logout(&[
            ("id_token_hint", &id_token.to_string()),
            ("post_logout_redirect_uri", "http://127.0.0.1:9/bye"),
            ("state", "s-out"),
        ]))
        .await;
    assert!(done.status().is_redirection(), "{}", done.status());
    assert_eq!(
        done.headers()["location"],
        "http://127.0.0.1:9/bye?state=s-out"
    );
    let after = browser
        .get(&authorize_url(
            &s.base,
            "tax",
            "http://127.0.0.1:9/tax",
            &[("prompt", "none")],
        ))
        .await;
    assert_eq!(
        redirect_params(&after)["error"],
        "login_required",
        "the SSO session is gone"
    );
}

#[tokio::test]
async fn a_logout_that_cannot_be_tied_to_the_session_asks_first() {
    let s = setup(|_| {}).await;
    let browser = Browser::new();
    browser
        .authorize(
            &s.base,
            &authorize_url(&s.base, "tax", "http://127.0.0.1:9/tax", &[]),
        )
        .await;
    let page = browser
        .get(&format!(
            "{}/logout?client_id=hall&post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fbye",
            s.base
        ))
        .await;
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("form-action 'self' http://127.0.0.1:9"),
        "{csp}"
    );
    let page = page.text().await.unwrap();
    assert!(page.contains("action=\"/logout/confirm\""), "{page}");
    // Staying keeps the session.
    let stay = confirm_logout(&s, &browser, &page, "stay").await;
    assert_eq!(stay.status(), 200);
    let still = browser
        .get(&authorize_url(
            &s.base,
            "tax",
            "http://127.0.0.1:9/tax",
            &[("prompt", "none")],
        ))
        .await;
    assert!(redirect_params(&still).contains_key("code"));
    // A forged confirmation (another browser) is refused.
    let page = browser.page(&format!("{}/logout", s.base)).await;
    let forged = confirm_logout(&s, &Browser::new(), &page, "logout").await;
    assert_eq!(forged.status(), 400);
    // Confirming ends it.
    let page = browser.page(&format!("{}/logout?client_id=hall&post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fbye&state=x", s.base)).await;
    let out = confirm_logout(&s, &browser, &page, "logout").await;
    assert_eq!(out.headers()["location"], "http://127.0.0.1:9/bye?state=x");
    let gone = browser
        .get(&authorize_url(
            &s.base,
            "tax",
            "http://127.0.0.1:9/tax",
            &[("prompt", "none")],
        ))
        .await;
    assert_eq!(redirect_params(&gone)["error"], "login_required");
    // An expired hint is still a valid hint (RP-Initiated Logout §2); a forged one is refused.
    let ring = s._server.test_app.app.keys.ring();
    let now = s._server.test_app.app.now();
    let expired = ring
        .signer(yihao::domain::jose::Alg::RS256, now)
        .unwrap()
        .sign_jwt("JWT", &serde_json::json!({"iss": s.base, "sub": "x", "aud": "hall", "iat": now - 7200, "exp": now - 3600, "sid": "nope"}))
        .unwrap();
    let ok = browser
        .get(&format!("{}/logout?id_token_hint={expired}", s.base))
        .await;
    assert_eq!(
        ok.status(),
        200,
        "no session left: a plain 'logged out' page"
    );
    let forged = browser
        .get(&format!(
            "{}/logout?id_token_hint=eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
            s.base
        ))
        .await;
    assert_eq!(forged.status(), 400);
}

#[tokio::test]
async fn back_channel_logout_survives_a_down_relying_party_and_a_restart() {
    let s = setup(|c| {
        c.logout.retry_base_secs = 1;
        c.logout.retry_max_secs = 1;
        c.logout.poll_ms = 100;
    })
    .await;
    let app = s._server.test_app.app.clone();
    // The relying party's address, not listening yet: it is down.
    let port = crate::common::free_port();
    let mut spec = client_spec(
        "bc",
        "http://127.0.0.1:9/bc",
        AuthMethod::ClientSecretBasic,
        true,
    );
    spec.settings.backchannel_logout_uri = Some(format!("http://127.0.0.1:{port}/backchannel"));
    spec.settings.backchannel_logout_session_required = true;
    register(&app, spec, SECRET).await;
    let out = sign_in_then_log_out(&s, "bc", "http://127.0.0.1:9/bc").await;
    assert_eq!(out.status(), 200);
    // Node 1 tries and fails while the RP is down.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let rows = app.store.logout_deliveries("bc").await.unwrap();
        if rows.first().is_some_and(|r| r.attempts >= 1) {
            assert_eq!(rows[0].status, "pending");
            assert!(rows[0].last_error.is_some());
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no delivery attempt: {rows:?}"
        );
        // Real time: the delivery is made by the node's background deliverer, on its own timer.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Node 1 stops; node 2 starts on the same database; then the RP comes up.
    for task in &s._server.background {
        task.abort();
    }
    let node2 = yihao::app::App::build(app.config.clone()).await.unwrap();
    let _node2_tasks = yihao::app::spawn_background(node2.clone());
    let rp = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let mut rx = backchannel_receiver(rp);
    let token = tokio::time::timeout(std::time::Duration::from_secs(15), rx.recv())
        .await
        .expect("the logout token never arrived")
        .unwrap();
    let claims = verify_logout_token(&s.base, &token, "bc").await;
    assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(claims["sid"].is_string() && claims["sub"].is_string() && claims["jti"].is_string());
    assert!(
        claims.get("nonce").is_none(),
        "§2.4: a logout token has no nonce"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let rows = app.store.logout_deliveries("bc").await.unwrap();
        if rows[0].status == "delivered" {
            assert!(rows[0].attempts >= 2);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not recorded as delivered: {rows:?}"
        );
        // Real time: the deliverer retries on its own timer; the loop ends as soon as it has.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(rx.try_recv().is_err(), "delivered twice");
}

#[tokio::test]
async fn front_channel_logout_loads_each_clients_page_then_continues() {
    let s = setup(|_| {}).await;
    let app = &s._server.test_app.app;
    let mut spec = client_spec(
        "fc",
        "http://127.0.0.1:9/fc",
        AuthMethod::ClientSecretBasic,
        true,
    );
    spec.settings.frontchannel_logout_uri = Some("http://127.0.0.1:9/fc-logout".into());
    spec.settings.frontchannel_logout_session_required = true;
    register(app, spec, SECRET).await;
    let out = sign_in_then_log_out(&s, "fc", "http://127.0.0.1:9/fc").await;
    assert_eq!(out.status(), 200);
    let csp = out.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-src http://127.0.0.1:9"), "{csp}");
    let html = out.text().await.unwrap();
    let iss = url::form_urlencoded::byte_serialize(s.base.as_bytes()).collect::<String>();
    assert!(
        html.contains(&format!("src=\"http://127.0.0.1:9/fc-logout?iss={iss}&")),
        "{html}"
    );
    assert!(html.contains("sid="), "{html}");
}
