//! Second factors and step-up (docs/assurance.md): authenticator-app codes checked against an
//! independent implementation (`oathtool`), enrolment on the personal page and at sign-in, a
//! client requiring level 3 driving a level-2 session through a face check and a second factor to
//! an ID token with `acr` `urn:yihao:loa:3` and both methods in `amr` (verified by the
//! `openidconnect` relying party), `unmet_authentication_requirements` when an essential level is
//! out of reach, and the refusals: a replayed code, a code from another account's authenticator,
//! a spent recovery code.

use std::sync::Arc;

use openidconnect::core::CoreJwsSigningAlgorithm;
use openidconnect::{AuthenticationContextClass, OAuth2TokenResponse, TokenResponse};
use serde_json::{Value, json};
use yihao::clock::ManualClock;
use yihao::domain::client::{AuthMethod, Channel};

use crate::common::people::Person;
use crate::{
    Browser, ID_NUMBER, PASSWORD, SECRET, Setup, authorize_url, client_spec, code_exchange, hidden,
    redirect_params, register, relying_party, rp_exchange, rp_request, setup_on,
};

const OATHTOOL_VAR: &str = "YIHAO_TEST_OATHTOOL";

/// oathtool, as `YIHAO_TEST_OATHTOOL` names it (`.ci/run` installs Debian's and sets it).
fn oathtool() -> Option<String> {
    std::env::var(OATHTOOL_VAR).ok().filter(|p| !p.is_empty())
}

/// The code an authenticator app shows for `secret` (base32) at `at`: oathtool's when it is
/// configured; otherwise (a machine without it, outside CI) yihao's own computation.
pub(crate) fn code_at(secret: &str, at: i64) -> String {
    match oathtool() {
        Some(tool) => {
            let out = std::process::Command::new(tool)
                .args(["--totp", "-b", secret, "-N", &format!("@{at}")])
                .output()
                .expect("oathtool runs");
            assert!(out.status.success(), "{out:?}");
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        }
        None => {
            crate::common::not_configured(OATHTOOL_VAR);
            let bytes = data_encoding::BASE32_NOPAD
                .decode(secret.as_bytes())
                .unwrap();
            let secret = yihao::crypto::totp::Secret::from_bytes(bytes);
            yihao::crypto::totp::code_at(&secret, yihao::crypto::totp::step_of(at))
        }
    }
}

fn now(clock: &ManualClock) -> i64 {
    yihao::clock::Clock::now(clock)
}

/// The text between `id="{id}">` and the next `<`.
pub(crate) fn element(page: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\">");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} in {page}"))
        + marker.len();
    page[start..].split('<').next().unwrap().to_owned()
}

/// Follows redirects within the server, at most ten; the last response.
async fn follow(
    browser: &Browser,
    base: &str,
    mut response: reqwest::Response,
) -> reqwest::Response {
    for _ in 0..10 {
        if !response.status().is_redirection() {
            return response;
        }
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        if !location.starts_with('/') && !location.starts_with(base) {
            return response;
        }
        let url = if location.starts_with('/') {
            format!("{base}{location}")
        } else {
            location
        };
        response = browser.get(&url).await;
    }
    response
}

/// Signs in on the personal page as (`id`, `password`); its text.
async fn personal_page(s: &Setup, browser: &Browser, id: &str, password: &str) -> String {
    let first = browser.get(&format!("{}/account", s.base)).await;
    let login = follow(browser, &s.base, first).await.text().await.unwrap();
    let after = browser.login(&s.base, &login, id, password).await;
    let page = follow(browser, &s.base, after).await;
    assert_eq!(page.status(), 200);
    page.text().await.unwrap()
}

/// Enrols an authenticator app on the personal page at the clock's time: its key, and the page
/// that confirmed it (with the recovery codes of a first factor).
async fn enrol_on_personal_page(
    s: &Setup,
    browser: &Browser,
    clock: &ManualClock,
    page: &str,
) -> (String, String) {
    let csrf = hidden(page, "csrf");
    let started = browser
        .post(
            &format!("{}/account/factors", s.base),
            &[
                ("csrf", &csrf),
                ("current", PASSWORD),
                ("action", "add_totp"),
            ],
        )
        .await;
    assert_eq!(started.status(), 200);
    let started = started.text().await.unwrap();
    assert!(started.contains("<svg"), "the QR code is drawn");
    let secret = element(&started, "totp-secret");
    let wrong = browser
        .post(
            &format!("{}/account/factors/totp/confirm", s.base),
            &[("csrf", &csrf), ("name", "我的手机"), ("code", "000000")],
        )
        .await;
    assert_eq!(wrong.status(), 401, "a wrong first code enrols nothing");
    assert_eq!(
        element(&wrong.text().await.unwrap(), "totp-secret"),
        secret,
        "the same enrolment is shown again"
    );
    let code = code_at(&secret, now(clock));
    let done = browser
        .post(
            &format!("{}/account/factors/totp/confirm", s.base),
            &[("csrf", &csrf), ("name", "我的手机"), ("code", &code)],
        )
        .await;
    assert_eq!(done.status(), 200);
    (secret, done.text().await.unwrap())
}

/// The access token of the app (a client on the `app` channel) for the browser's person.
async fn app_token(s: &Setup, browser: &Browser) -> String {
    let code = browser
        .authorize(
            &s.base,
            &authorize_url(&s.base, "mobile", "http://127.0.0.1:9/mobile", &[]),
        )
        .await["code"]
        .clone();
    let (status, body) = code_exchange(s, "mobile", "http://127.0.0.1:9/mobile", &code).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn face_check(s: &Setup, token: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/proofing/face", s.base))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// The server with a manual clock, the clients "social" (first party, minimum level 3) and
/// "mobile" (the app's client, on the `app` channel), and `configure`'s settings.
async fn setup_factors(
    configure: impl FnOnce(&mut yihao::config::Config),
) -> (Setup, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::starting_now());
    let s = setup_on(configure, Some(clock.clone())).await;
    let app = &s._server.test_app.app;
    let mut social = client_spec(
        "social",
        "http://127.0.0.1:9/social",
        AuthMethod::ClientSecretBasic,
        true,
    );
    social.settings.min_level = Some(3);
    register(app, social, SECRET).await;
    let mut mobile = client_spec(
        "mobile",
        "http://127.0.0.1:9/mobile",
        AuthMethod::ClientSecretBasic,
        true,
    );
    mobile.settings.channel = Channel::App;
    register(app, mobile, SECRET).await;
    app.clients.reload().await.unwrap();
    (s, clock)
}

#[tokio::test]
async fn yihao_computes_the_codes_oathtool_computes() {
    let Some(tool) = oathtool() else {
        crate::common::not_configured(OATHTOOL_VAR);
        return;
    };
    for i in 0..20u8 {
        let secret = yihao::crypto::totp::Secret::generate();
        let at = 1_700_000_000 + i64::from(i) * 7_919;
        let out = std::process::Command::new(&tool)
            .args(["--totp", "-b", &secret.base32(), "-N", &format!("@{at}")])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap().trim(),
            yihao::crypto::totp::code_at(&secret, yihao::crypto::totp::step_of(at))
        );
    }
}

#[tokio::test]
async fn a_client_requiring_level_3_steps_a_level_2_session_up_to_loa_3() {
    let (s, clock) = setup_factors(|_| {}).await;
    let discovery: Value = reqwest::get(format!("{}/.well-known/openid-configuration", s.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["acr_values_supported"],
        json!(["urn:yihao:loa:1", "urn:yihao:loa:2", "urn:yihao:loa:3"]),
        "level 3 is reachable (TOTP and face verification); 4 is not"
    );
    let browser = Browser::new();
    let page = personal_page(&s, &browser, ID_NUMBER, PASSWORD).await;
    let (secret, enrolled) = enrol_on_personal_page(&s, &browser, &clock, &page).await;
    assert_eq!(
        enrolled.matches("<li><code>").count(),
        10,
        "ten recovery codes with the first factor"
    );

    // The relying party asks; the account is proofed at 2: a face check is what is missing first.
    let (client, http) =
        relying_party(&s.base, "social", Some(SECRET), "http://127.0.0.1:9/social").await;
    let (url, _, nonce) = rp_request(&client);
    let proofing = browser.get(url.as_str()).await;
    assert_eq!(proofing.status(), 200);
    let proofing = proofing.text().await.unwrap();
    assert!(
        proofing.contains("action=\"/login/proofing\""),
        "{proofing}"
    );
    let (i, c) = (hidden(&proofing, "interaction"), hidden(&proofing, "csrf"));
    let not_yet = browser
        .post(
            &format!("{}/login/proofing", s.base),
            &[("interaction", &i), ("csrf", &c), ("decision", "continue")],
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(not_yet.contains("还没有完成人脸核验"), "{not_yet}");

    // The app: the person's token, the face-verification consent, a live capture.
    let token = app_token(&s, &browser).await;
    let liveness = format!("dev-live-face:{ID_NUMBER}");
    let (status, body) = face_check(
        &s,
        &token,
        json!({"liveness": liveness, "consent": "2026-11-30"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["acr"], "urn:yihao:loa:3");

    // Continue: now only the second factor is missing.
    let second = browser
        .post(
            &format!("{}/login/proofing", s.base),
            &[("interaction", &i), ("csrf", &c), ("decision", "continue")],
        )
        .await;
    assert_eq!(second.status(), 200);
    let second = second.text().await.unwrap();
    assert!(
        second.contains("action=\"/login/second-factor\""),
        "{second}"
    );
    clock.advance(30);
    let code = code_at(&secret, now(&clock));
    let (i, c) = (hidden(&second, "interaction"), hidden(&second, "csrf"));
    let done = browser
        .post(
            &format!("{}/login/second-factor", s.base),
            &[
                ("interaction", &i),
                ("csrf", &c),
                ("method", "totp"),
                ("code", &code),
            ],
        )
        .await;
    assert!(
        done.status().is_redirection(),
        "{}",
        done.text().await.unwrap()
    );
    let params = redirect_params(&done);
    let tokens = rp_exchange(&client, &http, params["code"].clone()).await;
    let verifier = client
        .id_token_verifier()
        .set_allowed_algs(vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256]);
    let claims = tokens
        .id_token()
        .unwrap()
        .claims(&verifier, &nonce)
        .unwrap()
        .clone();
    assert_eq!(
        claims.auth_context_ref(),
        Some(&AuthenticationContextClass::new("urn:yihao:loa:3".into()))
    );
    let amr: Vec<String> = claims
        .auth_method_refs()
        .unwrap()
        .iter()
        .map(|m| m.to_string())
        .collect();
    assert!(
        amr.contains(&"pwd".into()) && amr.contains(&"otp".into()) && amr.contains(&"mfa".into()),
        "{amr:?}"
    );
    assert_eq!(
        claims.auth_time().unwrap().timestamp(),
        now(&clock),
        "auth_time is the step-up's"
    );
    assert!(!tokens.access_token().secret().is_empty());

    // The level stays with the session: another level-3 request needs nothing more.
    let again = browser
        .authorize(
            &s.base,
            &authorize_url(
                &s.base,
                "social",
                "http://127.0.0.1:9/social",
                &[("nonce", "n")],
            ),
        )
        .await;
    assert!(again.contains_key("code"), "{again:?}");

    // Face data: only the consent and the evidence are kept.
    let app = &s._server.test_app.app;
    let account = app
        .identities
        .find(ID_NUMBER, now(&clock))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.evidence.method().as_str(), "face_check");
    let agreements = app.store.agreements(account.id.as_str()).await.unwrap();
    assert!(agreements.iter().any(|a| a.kind == "face_verification"));
}

#[tokio::test]
async fn an_essential_level_out_of_reach_is_unmet_and_a_voluntary_one_gets_the_level_reached() {
    // No face verification: an account proofed at 2 cannot reach 3.
    let (s, _clock) = setup_factors(|c| c.verify.face.adapter = yihao::config::Adapter::Off).await;
    let discovery: Value = reqwest::get(format!("{}/.well-known/openid-configuration", s.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["acr_values_supported"],
        json!(["urn:yihao:loa:1", "urn:yihao:loa:2"])
    );
    let browser = Browser::new();
    let essential = r#"{"id_token":{"acr":{"essential":true,"values":["urn:yihao:loa:3"]}}}"#;
    let params = browser
        .authorize(
            &s.base,
            &authorize_url(
                &s.base,
                "tax",
                "http://127.0.0.1:9/tax",
                &[("claims", essential)],
            ),
        )
        .await;
    assert_eq!(
        params["error"], "unmet_authentication_requirements",
        "{params:?}"
    );
    assert_eq!(params["state"], "st");
    // The client's own minimum is essential too.
    let params = browser
        .authorize(
            &s.base,
            &authorize_url(&s.base, "social", "http://127.0.0.1:9/social", &[]),
        )
        .await;
    assert_eq!(params["error"], "unmet_authentication_requirements");
    // Voluntary: the level reached.
    let code = browser
        .authorize(
            &s.base,
            &authorize_url(
                &s.base,
                "tax",
                "http://127.0.0.1:9/tax",
                &[("acr_values", "urn:yihao:loa:3"), ("nonce", "n")],
            ),
        )
        .await["code"]
        .clone();
    let tokens = crate::tax_exchange(&s, &code).await;
    let id_token = crate::jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(id_token["acr"], "urn:yihao:loa:2");
    assert_eq!(id_token["amr"], json!(["pwd"]));
}

/// Signs in to "tax" with a password (unless the browser is signed in); the page that follows (a
/// second-factor page for an account that must use two factors).
async fn password_step(s: &Setup, browser: &Browser, id: &str) -> String {
    let url = authorize_url(&s.base, "tax", "http://127.0.0.1:9/tax", &[("nonce", "n")]);
    let login = browser.page(&url).await;
    if !login.contains("action=\"/login\"") {
        // Signed in already: the session's second factor is what is asked.
        return login;
    }
    let next = browser.login(&s.base, &login, id, PASSWORD).await;
    let status = next.status();
    let page = next.text().await.unwrap();
    assert_eq!(
        status,
        200,
        "{id}: {}",
        &page[page.find("<main>").unwrap_or(0)..]
    );
    page
}

pub(crate) async fn submit_factor(
    s: &Setup,
    browser: &Browser,
    page: &str,
    method: &str,
    code: &str,
) -> reqwest::Response {
    let (i, c) = (hidden(page, "interaction"), hidden(page, "csrf"));
    browser
        .post(
            &format!("{}/login/second-factor", s.base),
            &[
                ("interaction", &i),
                ("csrf", &c),
                ("method", method),
                ("code", code),
            ],
        )
        .await
}

/// A two-factor account without a factor signs in with its password and enrols an authenticator
/// app on the page that follows: the app's key, and the page of recovery codes.
async fn enrol_at_sign_in(
    s: &Setup,
    browser: &Browser,
    clock: &ManualClock,
    id: &str,
) -> (String, String) {
    let enrol = password_step(s, browser, id).await;
    assert!(enrol.contains("value=\"enrol\""), "{enrol}");
    let secret = element(&enrol, "totp-secret");
    let code = code_at(&secret, now(clock));
    let shown = submit_factor(s, browser, &enrol, "enrol", &code).await;
    assert_eq!(shown.status(), 200);
    (secret, shown.text().await.unwrap())
}

#[tokio::test]
async fn codes_are_good_once_and_only_for_their_own_account() {
    let (s, clock) = setup_factors(|c| c.second_factor.required_for_all = true).await;
    let app = &s._server.test_app.app;
    const OTHER: &str = "110101199003070011";
    Person {
        phone: Some("13912345678"),
        source: "register",
        ..Person::new(OTHER, "测试李四")
    }
    .create(app, Some(PASSWORD))
    .await;

    // Both must use two factors and have none: each enrols one at sign-in.
    let mut secrets = Vec::new();
    let mut recovery = Vec::new();
    for id in [ID_NUMBER, OTHER] {
        let browser = Browser::new();
        let (secret, shown) = enrol_at_sign_in(&s, &browser, &clock, id).await;
        let codes: Vec<String> = shown
            .split("<li><code>")
            .skip(1)
            .map(|c| c.split('<').next().unwrap().to_owned())
            .collect();
        assert_eq!(codes.len(), 10, "{shown}");
        let done = submit_factor(&s, &browser, &shown, "continue", "").await;
        assert!(redirect_params(&done).contains_key("code"));
        secrets.push(secret);
        recovery.push(codes);
    }

    clock.advance(30);
    let t = now(&clock);
    let browser = Browser::new();
    let page = password_step(&s, &browser, ID_NUMBER).await;
    assert!(page.contains("value=\"totp\""), "{page}");
    // The other account's authenticator shows a good code for the other account only.
    let theirs = submit_factor(&s, &browser, &page, "totp", &code_at(&secrets[1], t)).await;
    assert_eq!(theirs.status(), 401);
    let mine = code_at(&secrets[0], t);
    let ok = submit_factor(&s, &browser, &page, "totp", &mine).await;
    assert!(ok.status().is_redirection(), "{}", ok.status());
    let tokens = crate::tax_exchange(&s, &redirect_params(&ok)["code"]).await;
    let id_token = crate::jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(id_token["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(
        id_token["acr"], "urn:yihao:loa:2",
        "proofed at 2: two factors do not raise that"
    );

    // The same code again, in another browser, within its step: refused as used.
    let replay_browser = Browser::new();
    let page = password_step(&s, &replay_browser, ID_NUMBER).await;
    let replayed = submit_factor(&s, &replay_browser, &page, "totp", &mine).await;
    assert_eq!(replayed.status(), 401);
    assert!(replayed.text().await.unwrap().contains("已经用过"));

    // A recovery code works once, in place of a code.
    let code = recovery[0][3].clone();
    let page = password_step(&s, &replay_browser, ID_NUMBER).await;
    let used = submit_factor(&s, &replay_browser, &page, "recovery", &code.to_lowercase()).await;
    assert!(used.status().is_redirection());
    let again_browser = Browser::new();
    let page = password_step(&s, &again_browser, ID_NUMBER).await;
    let spent = submit_factor(&s, &again_browser, &page, "recovery", &code).await;
    assert_eq!(spent.status(), 401);
    // Another account's recovery code is no code here.
    let page = password_step(&s, &again_browser, ID_NUMBER).await;
    let foreign = submit_factor(&s, &again_browser, &page, "recovery", &recovery[1][0]).await;
    assert_eq!(foreign.status(), 401);

    // Every use and failure is in the audit log.
    let account = app.identities.find(ID_NUMBER, t).await.unwrap().unwrap();
    let records: Vec<_> = app
        .store
        .audit_records(1, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.actor.as_deref() == Some(account.id.as_str()))
        .collect();
    let reasons: Vec<String> = records
        .iter()
        .filter(|r| r.event == "factor_used")
        .map(|r| r.reason.clone().unwrap_or_else(|| "ok".into()))
        .collect();
    for expected in ["ok", "wrong_code", "replayed"] {
        assert!(
            reasons.iter().any(|r| r == expected),
            "{expected}: {reasons:?}"
        );
    }
    assert!(records.iter().any(|r| r.event == "step_up"));
}

#[tokio::test]
async fn face_verification_refuses_what_it_must() {
    let (s, clock) = setup_factors(|_| {}).await;
    let browser = Browser::new();
    let token = app_token(&s, &browser).await;
    let live = format!("dev-live-face:{ID_NUMBER}");
    let (status, body) = face_check(&s, &token, json!({"liveness": live, "consent": "old"})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("consent_required"))
    );
    let (status, body) = face_check(
        &s,
        &token,
        json!({"liveness": "someone-else", "consent": "2026-11-30"}),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (422, Some("no_match")));
    let (status, body) = face_check(&s, &token, json!({"liveness": live})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let (status, _) = face_check(
        &s,
        "not-a-token",
        json!({"liveness": live, "consent": "2026-11-30"}),
    )
    .await;
    assert_eq!(status, 401);
    // A token of a web client: face checks come from the app or a kiosk.
    let code = browser
        .authorize(
            &s.base,
            &authorize_url(&s.base, "tax", "http://127.0.0.1:9/tax", &[]),
        )
        .await["code"]
        .clone();
    let web_token = crate::tax_exchange(&s, &code).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = face_check(
        &s,
        &web_token,
        json!({"liveness": live, "consent": "2026-11-30"}),
    )
    .await;
    assert_eq!(status, 403);
    // Still level 2; the failed check is audited.
    let app = &s._server.test_app.app;
    let account = app
        .identities
        .find(ID_NUMBER, now(&clock))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.evidence.level().get(), 2);
    let records = app.store.audit_records(1, 10_000).await.unwrap();
    assert!(records.iter().any(|r| r.event == "proofing"
        && r.result == "failure"
        && r.actor.as_deref() == Some(account.id.as_str())));
}

#[tokio::test]
async fn a_lost_factor_is_reset_with_an_sms_code_and_a_fresh_real_name_check() {
    let (s, clock) = setup_factors(|c| c.second_factor.required_for_all = true).await;
    let app = &s._server.test_app.app;
    // Enrolled at the first sign-in.
    let first = Browser::new();
    let (old_secret, _) = enrol_at_sign_in(&s, &first, &clock, ID_NUMBER).await;

    // Later, without the phone app or the codes: a code to the phone, then name and number.
    clock.advance(30);
    let browser = Browser::new();
    let page = password_step(&s, &browser, ID_NUMBER).await;
    assert!(page.contains("value=\"lost_send\""), "{page}");
    let sent = submit_factor(&s, &browser, &page, "lost_send", "").await;
    assert_eq!(sent.status(), 200);
    let sent = sent.text().await.unwrap();
    assert!(sent.contains("138****1234"), "the masked number");
    let code = crate::common::people::last_sms_code(app, crate::PHONE);
    let (i, c) = (hidden(&sent, "interaction"), hidden(&sent, "csrf"));
    let confirm = |code: String, name: &'static str| {
        let (i, c) = (i.clone(), c.clone());
        let browser = &browser;
        let base = s.base.clone();
        async move {
            browser
                .post(
                    &format!("{base}/login/second-factor"),
                    &[
                        ("interaction", i.as_str()),
                        ("csrf", c.as_str()),
                        ("method", "lost_confirm"),
                        ("code", code.as_str()),
                        ("number", ID_NUMBER),
                        ("name", name),
                    ],
                )
                .await
        }
    };
    let wrong = confirm(code, "李四").await;
    assert_eq!(wrong.status(), 401, "another name: refused");
    // The code was spent on that try; a new one after the resend delay, not before.
    let early = submit_factor(&s, &browser, &sent, "lost_send", "").await;
    assert_eq!(early.status(), 429);
    assert!(early.headers().contains_key("retry-after"));
    clock.advance(61);
    let again = submit_factor(&s, &browser, &sent, "lost_send", "").await;
    assert_eq!(again.status(), 200);
    let code = crate::common::people::last_sms_code(app, crate::PHONE);
    let reset = confirm(code, crate::NAME).await;
    assert_eq!(reset.status(), 200);
    let reset = reset.text().await.unwrap();
    let new_secret = element(&reset, "totp-secret");
    assert_ne!(new_secret, old_secret);
    let account = app
        .identities
        .find(ID_NUMBER, now(&clock))
        .await
        .unwrap()
        .unwrap();
    assert!(
        app.store
            .factors_of(account.id.as_str())
            .await
            .unwrap()
            .is_empty(),
        "the old factor is gone"
    );
    let open = app
        .store
        .sessions_of(account.id.as_str(), false)
        .await
        .unwrap();
    assert_eq!(
        open.len(),
        1,
        "every other session ended: only the resetting one is open"
    );
    // A new authenticator app, then the request goes on.
    let codes = submit_factor(
        &s,
        &browser,
        &reset,
        "enrol",
        &code_at(&new_secret, now(&clock)),
    )
    .await;
    assert_eq!(codes.status(), 200);
    let codes = codes.text().await.unwrap();
    let done = submit_factor(&s, &browser, &codes, "continue", "").await;
    assert!(redirect_params(&done).contains_key("code"));
    let records = app.store.audit_records(1, 10_000).await.unwrap();
    assert!(records.iter().any(|r| {
        r.event == "factor_removed"
            && r.result == "success"
            && r.details
                .as_deref()
                .is_some_and(|d| d.contains("lost_factor"))
    }));
    assert!(
        records
            .iter()
            .any(|r| r.event == "factor_removed" && r.reason.as_deref() == Some("not_the_account"))
    );
}

#[tokio::test]
async fn declining_the_face_check_ends_an_essential_request_unmet_and_max_age_asks_for_both_factors_again()
 {
    let (s, clock) = setup_factors(|_| {}).await;
    let browser = Browser::new();
    let page = personal_page(&s, &browser, ID_NUMBER, PASSWORD).await;
    let (secret, _) = enrol_on_personal_page(&s, &browser, &clock, &page).await;
    // Proofed at 2: the level-3 client's request shows the proofing page; "not now" ends it.
    let url = authorize_url(&s.base, "social", "http://127.0.0.1:9/social", &[]);
    let proofing = browser.page(&url).await;
    let (i, c) = (hidden(&proofing, "interaction"), hidden(&proofing, "csrf"));
    let skipped = browser
        .post(
            &format!("{}/login/proofing", s.base),
            &[("interaction", &i), ("csrf", &c), ("decision", "skip")],
        )
        .await;
    assert_eq!(
        redirect_params(&skipped)["error"],
        "unmet_authentication_requirements"
    );

    // A voluntary level 3 for the account proofed at 3 steps up; then max_age=0 asks again for
    // the password and then the code: the second factor is not carried over a new login.
    let app = &s._server.test_app.app;
    let account = app
        .identities
        .find(ID_NUMBER, now(&clock))
        .await
        .unwrap()
        .unwrap();
    let evidence = yihao::domain::account::Evidence::new(
        yihao::domain::account::Level::new(3).unwrap(),
        yihao::domain::account::ProofMethod::FaceCheck,
        "test",
        now(&clock),
    )
    .unwrap();
    app.identities
        .set_evidence(&account.id, evidence, now(&clock))
        .await
        .unwrap();
    let wish = [("acr_values", "urn:yihao:loa:3"), ("nonce", "n")];
    let second = browser
        .page(&authorize_url(
            &s.base,
            "tax",
            "http://127.0.0.1:9/tax",
            &wish,
        ))
        .await;
    clock.advance(30);
    let done = submit_factor(
        &s,
        &browser,
        &second,
        "totp",
        &code_at(&secret, now(&clock)),
    )
    .await;
    let tokens = crate::tax_exchange(&s, &redirect_params(&done)["code"]).await;
    let stepped = crate::jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(stepped["acr"], "urn:yihao:loa:3");
    assert_eq!(stepped["auth_time"], now(&clock));
    clock.advance(5);
    let again = [("acr_values", "urn:yihao:loa:3"), ("max_age", "0")];
    let login = browser
        .page(&authorize_url(
            &s.base,
            "tax",
            "http://127.0.0.1:9/tax",
            &again,
        ))
        .await;
    assert!(
        login.contains("action=\"/login\""),
        "max_age=0: the password again"
    );
    let second = browser
        .login(&s.base, &login, ID_NUMBER, PASSWORD)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        second.contains("value=\"totp\""),
        "and the second factor again"
    );
}
