//! A real browser: headless Chromium, driven through chromedriver with the W3C WebDriver protocol.
//! A person logs in, consents and lands at the relying party, then gets single sign-on at a second
//! client; a citizen registers, signs in by SMS code and withdraws consent on the personal page (the
//! service receives a back-channel logout); an enterprise is registered, its agent acts for it and
//! loses the role at the next refresh; a forgotten password is recovered and the phone changed;
//! and, with an English browser, every page of these flows (login tabs, registration, consent,
//! personal page, phone change, enterprise page, recovery, closure) is served in English.
//!
//! The three administrators each do their own work in the console (issue 18), whose pages axe-core
//! checks for WCAG 2.1 A and AA violations when YIHAO_TEST_AXE names its `axe.min.js`.
//!
//! Runs when YIHAO_TEST_CHROMEDRIVER names chromedriver (`.ci/run` installs Debian's chromium and
//! chromium-driver and sets it); when set and the browser does not work, the test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};
use yihao::domain::client::{AuthMethod, ClientSpec, GrantType};

use common::clients::{post_form, register, web};
use common::people::{ID_NUMBER, NAME, PASSWORD, Person};

const DRIVER_VAR: &str = "YIHAO_TEST_CHROMEDRIVER";
const SECRET: &str = "browser-test-secret";

/// chromedriver on a free port, stopped on drop.
struct Driver {
    child: Child,
    url: String,
    http: reqwest::Client,
    session: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start(path: &str) -> Self {
        Self::start_in(path, "zh-CN,zh").await
    }

    /// chromedriver with a browser whose Accept-Language is `languages`.
    async fn start_in(path: &str, languages: &str) -> Self {
        let port = common::free_port();
        let child = Command::new(path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{DRIVER_VAR}={path} does not start: {e}"));
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = http.get(format!("{url}/status")).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready"
            );
            // Real time: waiting for chromedriver or the page, another process.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let chromium =
            std::env::var("YIHAO_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                // Pages without ui_locales follow Accept-Language, which --lang does not set headless.
                "prefs": {"intl.accept_languages": languages},
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--lang=zh-CN", format!("--user-data-dir={}", profile.path().display())],
            }
        }}});
        let created: Value = http
            .post(format!("{url}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {created}"))
            .to_owned();
        Self {
            child,
            url,
            http,
            session,
            _profile: profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.url, self.session);
        let mut request = self.http.request(method, url);
        if let Some(b) = body {
            request = request.json(&b);
        }
        let value: Value = request.send().await.unwrap().json().await.unwrap();
        assert!(
            value["value"].get("error").is_none(),
            "webdriver {path}: {value}"
        );
        value["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    async fn current_url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The element matching `css` now, if any.
    async fn try_find(&self, css: &str) -> Option<String> {
        let url = format!("{}/session/{}/element", self.url, self.session);
        let r: Value = self
            .http
            .post(url)
            .json(&json!({"using": "css selector", "value": css}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        // W3C WebDriver §12.2: an element reference is an object with this one key.
        r["value"]["element-6066-11e4-a52e-4f735466cecf"]
            .as_str()
            .map(str::to_owned)
    }

    async fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(id) = self.try_find(css).await {
                return id;
            }
            assert!(
                Instant::now() < deadline,
                "no element {css} on {}",
                self.current_url().await
            );
            // Real time: waiting for chromedriver or the page, another process.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Waits until the element's text satisfies `want` (the page may still be loading after a click).
    async fn wait_for_text(&self, css: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(id) = self.try_find(css).await {
                let text_url = format!("{}/session/{}/element/{id}/text", self.url, self.session);
                let t: Value = self
                    .http
                    .get(text_url)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                if let Some(text) = t["value"].as_str().filter(|text| want(text)) {
                    return text.to_owned();
                }
            }
            if Instant::now() >= deadline {
                let source = self.call(reqwest::Method::GET, "/source", None).await;
                panic!(
                    "{css} never showed the expected text on {}: {}",
                    self.current_url().await,
                    source.as_str().unwrap_or_default()
                );
            }
            // Real time: waiting for chromedriver or the page, another process.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_for_url(&self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = self.current_url().await;
            if url.starts_with(prefix) {
                return url;
            }
            assert!(Instant::now() < deadline, "stuck at {url}");
            // Real time: waiting for chromedriver or the page, another process.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn spec(id: &str, redirect: &str, first_party: bool) -> ClientSpec {
    ClientSpec {
        name: format!("{id} 服务"),
        grant_types: vec![GrantType::AuthorizationCode],
        ..web(
            id,
            redirect,
            AuthMethod::ClientSecretBasic,
            &["openid", "profile"],
            first_party,
        )
    }
}

#[tokio::test]
async fn a_person_logs_in_with_a_real_browser_and_gets_single_sign_on() {
    let Ok(driver_path) = std::env::var(DRIVER_VAR) else {
        common::not_configured(DRIVER_VAR);
        return;
    };
    // The relying party: answers its redirect URI.
    let rp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rp_base = format!("http://{}", rp.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            rp,
            Router::new().route("/cb", get(|| async { "signed in" })),
        )
        .await
        .unwrap();
    });
    let server = common::spawn_issuer(|_| {}).await;
    let app = &server.test_app.app;
    let redirect = format!("{rp_base}/cb");
    register(app, spec("hall", &redirect, false), SECRET).await;
    register(app, spec("tax", &redirect, true), SECRET).await;
    Person::new(ID_NUMBER, NAME)
        .create(app, Some(PASSWORD))
        .await;

    let browser = Driver::start(&driver_path).await;
    let authorize = |client: &str| {
        format!(
            "{}/authorize?client_id={client}&redirect_uri={}&response_type=code&scope=openid%20profile&state=browser&ui_locales=zh-CN",
            server.base,
            url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
        )
    };
    browser.goto(&authorize("hall")).await;
    browser.wait_for_text("h1", |t| t == "登录").await;
    // Every field has its label (accessibility).
    browser.find("label[for=identifier]").await;
    browser.find("label[for=password]").await;
    browser.type_into("#identifier", ID_NUMBER).await;
    browser.type_into("#password", "Wrong-pass1!").await;
    browser.click("button[type=submit]").await;
    // A failed login says so.
    browser
        .wait_for_text("p.error", |t| t.contains("不正确"))
        .await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("button[type=submit]").await;
    browser.wait_for_text("h1", |t| t == "授权确认").await;
    browser.click("button[value=allow]").await;
    let landed = browser.wait_for_url(&redirect).await;
    let url = url::Url::parse(&landed).unwrap();
    let params: std::collections::HashMap<String, String> =
        url.query_pairs().into_owned().collect();
    assert_eq!(params["state"], "browser");
    assert_eq!(params["iss"], server.base);
    let (_, tokens) = post_form(
        &server.base,
        "/token",
        ("hall", SECRET),
        &[
            ("grant_type", "authorization_code"),
            ("code", params["code"].as_str()),
            ("redirect_uri", redirect.as_str()),
        ],
    )
    .await;
    assert!(tokens["id_token"].is_string(), "{tokens}");

    // Single sign-on: the second client's request comes straight back with a code.
    browser.goto(&authorize("tax")).await;
    let landed = browser.wait_for_url(&redirect).await;
    assert!(landed.contains("code="), "{landed}");
    browser.call(reqwest::Method::DELETE, "", None).await;
}

/// A relying party on a free port: its redirect URI answers, and its back-channel logout endpoint
/// hands each logout token to the receiver.
async fn relying_party() -> (String, tokio::sync::mpsc::Receiver<String>) {
    let rp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", rp.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(8);
    let backchannel = axum::routing::post(
        move |axum::Form(form): axum::Form<std::collections::HashMap<String, String>>| {
            let tx = tx.clone();
            async move {
                let _ = tx
                    .send(form.get("logout_token").cloned().unwrap_or_default())
                    .await;
                "ok"
            }
        },
    );
    tokio::spawn(async move {
        axum::serve(
            rp,
            Router::new()
                .route("/cb", get(|| async { "signed in" }))
                .route("/backchannel", backchannel),
        )
        .await
        .unwrap();
    });
    (base, rx)
}

/// The code in the URL the browser landed on at the relying party.
fn landed_code(landed: &str) -> String {
    let url = url::Url::parse(landed).unwrap();
    url.query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {landed}"))
}

impl Driver {
    /// Asserts the page is in English (its `lang`) and its heading is `h1`.
    async fn english_page(&self, h1: &str) {
        self.wait_for_text("h1", |t| t == h1).await;
        let source = self.call(reqwest::Method::GET, "/source", None).await;
        assert!(
            source
                .as_str()
                .unwrap_or_default()
                .contains("<html lang=\"en\""),
            "not in English: {}",
            self.current_url().await
        );
    }

    /// Forgets every cookie: the next visit is a new visitor.
    async fn forget_cookies(&self) {
        self.call(reqwest::Method::DELETE, "/cookie", None).await;
    }
}

#[tokio::test]
async fn a_citizen_registers_signs_in_by_sms_and_withdraws_consent_in_a_real_browser() {
    let Ok(driver_path) = std::env::var(DRIVER_VAR) else {
        common::not_configured(DRIVER_VAR);
        return;
    };
    let (rp, mut logouts) = relying_party().await;
    let server = common::spawn_issuer(|c| c.logout.poll_ms = 50).await;
    let app = &server.test_app.app;
    let redirect = format!("{rp}/cb");
    let mut hall = spec("hall", &redirect, false);
    hall.settings.backchannel_logout_uri = Some(format!("{rp}/backchannel"));
    register(app, hall, SECRET).await;
    let authorize = format!(
        "{}/authorize?client_id=hall&redirect_uri={}&response_type=code&scope=openid%20profile&state=s",
        server.base,
        url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
    );
    let (number, name, mobile, password) = (
        "110101199003070011",
        "测试李四",
        "13911112222",
        "Sunrise-2026!",
    );

    let browser = Driver::start(&driver_path).await;
    // Registration, reached from the login page.
    browser.goto(&authorize).await;
    browser.wait_for_text("h1", |t| t == "登录").await;
    browser.click("a[href^='/register']").await;
    browser.wait_for_text("h1", |t| t == "注册账号").await;
    for field in ["kind", "number", "name", "phone"] {
        browser.find(&format!("label[for={field}]")).await;
    }
    browser.type_into("#number", number).await;
    browser.type_into("#name", name).await;
    browser.type_into("#phone", mobile).await;
    browser.click("form[action='/register'] button").await;
    browser
        .wait_for_text("p.notice", |t| t.contains("139****2222"))
        .await;
    let code = common::people::last_sms_code(app, mobile);
    browser.type_into("#code", &code).await;
    browser.type_into("#password", password).await;
    browser.type_into("#password2", password).await;
    for consent in ["terms", "privacy", "sensitive"] {
        browser.click(&format!("input[name={consent}]")).await;
    }
    browser
        .click("form[action='/register/complete'] button")
        .await;
    browser.wait_for_text("h1", |t| t == "授权确认").await;
    browser.click("button[value=allow]").await;
    let landed = browser.wait_for_url(&redirect).await;
    landed_code(&landed);

    // A new visit signs in by SMS code (consent is remembered).
    browser.forget_cookies().await;
    browser.goto(&authorize).await;
    browser.click("a[href^='/login/sms']").await;
    browser.type_into("#phone", mobile).await;
    browser.click("form[action='/login/sms/send'] button").await;
    browser
        .wait_for_text("p.notice", |t| t.contains("139****2222"))
        .await;
    let code = common::people::last_sms_code(app, mobile);
    browser.type_into("#code", &code).await;
    browser.click("form[action='/login/sms'] button").await;
    let landed = browser.wait_for_url(&redirect).await;
    let (status, tokens) = post_form(
        &server.base,
        "/token",
        ("hall", SECRET),
        &[
            ("grant_type", "authorization_code"),
            ("code", landed_code(&landed).as_str()),
            ("redirect_uri", redirect.as_str()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let id_token = tokens["id_token"].as_str().unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            id_token.split('.').nth(1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["amr"], json!(["sms"]));
    assert_eq!(claims["acr"], "urn:yihao:loa:2");

    // The personal page: withdraw the service's consent; the service is told.
    browser.goto(&format!("{}/account", server.base)).await;
    browser.wait_for_text("h1", |t| t == "个人中心").await;
    browser
        .click("form[action='/account/services/withdraw'] button")
        .await;
    browser
        .wait_for_text("p.notice", |t| t.contains("已撤回授权"))
        .await;
    let token = tokio::time::timeout(Duration::from_secs(10), logouts.recv())
        .await
        .expect("the relying party received no back-channel logout")
        .unwrap();
    assert_eq!(token.split('.').count(), 3, "a signed logout token");
    browser.call(reqwest::Method::DELETE, "", None).await;
}

#[tokio::test]
async fn an_enterprise_is_registered_and_its_agent_loses_the_role_at_the_next_refresh() {
    let Ok(driver_path) = std::env::var(DRIVER_VAR) else {
        common::not_configured(DRIVER_VAR);
        return;
    };
    let (rp, _) = relying_party().await;
    let server = common::spawn_issuer(|_| {}).await;
    let app = &server.test_app.app;
    let redirect = format!("{rp}/cb");
    let mut tax = spec("tax", &redirect, true);
    tax.grant_types.push(GrantType::RefreshToken);
    tax.scopes = ["openid", "profile", "org", "offline_access"]
        .iter()
        .map(|s| yihao::domain::client::Scope::parse(s).unwrap())
        .collect();
    register(app, tax, SECRET).await;
    let (boss, boss_name, agent, agent_name) = (
        "110101199003070011",
        "测试李四",
        "310104198506150023",
        "测试王芳",
    );
    for (n, m) in [(boss, boss_name), (agent, agent_name)] {
        Person::new(n, m).create(app, Some(PASSWORD)).await;
    }
    let (code, org) = ("91512081MA62K0260E", "测试云端科技有限公司");
    let browser = Driver::start(&driver_path).await;
    let sign_in = |number: &'static str| {
        let browser = &browser;
        async move {
            browser.type_into("#identifier", number).await;
            browser.type_into("#password", PASSWORD).await;
            browser.click("form[action='/login'] button").await;
        }
    };

    // The legal representative registers the enterprise and authorises the agent.
    browser.goto(&format!("{}/account", server.base)).await;
    sign_in(boss).await;
    browser.wait_for_text("h1", |t| t == "个人中心").await;
    browser.type_into("#credit-code", code).await;
    browser.type_into("#org-name", org).await;
    browser.click("form[action='/account/org'] button").await;
    browser.wait_for_text("h1", |t| t == org).await;
    browser.type_into("#agent-number", agent).await;
    browser.type_into("#agent-name", agent_name).await;
    browser.type_into("#agent-expiry", "2099-12-31").await;
    browser
        .click("form[action$='/appoint'] input[value=agent] ~ button")
        .await;
    browser
        .wait_for_text("p.notice", |t| t.contains("已授权"))
        .await;

    // The agent acts for the enterprise at the service and gets a refresh token.
    browser.forget_cookies().await;
    browser
        .goto(&format!(
            "{}/authorize?client_id=tax&redirect_uri={}&response_type=code&scope=openid%20org%20offline_access&state=s",
            server.base,
            url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
        ))
        .await;
    sign_in(agent).await;
    browser.wait_for_text("h1", |t| t == "选择办事身份").await;
    browser.click("form[action='/select-org'] button").await;
    let landed = browser.wait_for_url(&redirect).await;
    let (status, tokens) = post_form(
        &server.base,
        "/token",
        ("tax", SECRET),
        &[
            ("grant_type", "authorization_code"),
            ("code", landed_code(&landed).as_str()),
            ("redirect_uri", redirect.as_str()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let refresh = |token: String| {
        let base = server.base.clone();
        async move {
            post_form(
                &base,
                "/token",
                ("tax", SECRET),
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", token.as_str()),
                ],
            )
            .await
        }
    };
    let (status, rotated) = refresh(tokens["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(status, 200, "{rotated}");

    // The legal representative revokes the mandate on the enterprise page.
    browser.forget_cookies().await;
    browser.goto(&format!("{}/account", server.base)).await;
    sign_in(boss).await;
    browser.wait_for_text("h1", |t| t == "个人中心").await;
    browser
        .click(&format!("a[href='/account/org/{code}']"))
        .await;
    browser.wait_for_text("h1", |t| t == org).await;
    browser.click("form[action$='/revoke'] button").await;
    browser
        .wait_for_text("p.notice", |t| t.contains("已撤销"))
        .await;
    let (status, body) = refresh(rotated["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    browser.call(reqwest::Method::DELETE, "", None).await;
}

#[tokio::test]
async fn a_forgotten_password_is_recovered_and_the_phone_changed_in_a_real_browser() {
    let Ok(driver_path) = std::env::var(DRIVER_VAR) else {
        common::not_configured(DRIVER_VAR);
        return;
    };
    let (rp, _) = relying_party().await;
    let server = common::spawn_issuer(|_| {}).await;
    let app = &server.test_app.app;
    let redirect = format!("{rp}/cb");
    register(app, spec("tax", &redirect, true), SECRET).await;
    let phone = common::people::PHONE;
    Person {
        phone: Some(phone),
        ..Person::new(ID_NUMBER, NAME)
    }
    .create(app, Some(PASSWORD))
    .await;
    let authorize = format!(
        "{}/authorize?client_id=tax&redirect_uri={}&response_type=code&scope=openid&state=s",
        server.base,
        url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
    );
    let browser = Driver::start(&driver_path).await;
    browser.goto(&authorize).await;
    browser.click("a[href^='/recover']").await;
    browser.wait_for_text("h1", |t| t == "找回密码").await;
    browser.type_into("#number", ID_NUMBER).await;
    browser.type_into("#name", NAME).await;
    browser.click("form[action='/recover'] button").await;
    browser
        .wait_for_text("p.notice", |t| t.contains("预留的手机号码"))
        .await;
    let code = common::people::last_sms_code(app, phone);
    let new_password = "Moonrise-2027?";
    browser.type_into("#code", &code).await;
    browser.type_into("#password", new_password).await;
    browser.type_into("#password2", new_password).await;
    browser
        .click("form[action='/recover/complete'] button")
        .await;
    browser.wait_for_text("h1", |t| t == "密码已重设").await;
    // Back to the sign-in that was waiting, with the new password.
    browser.click("a[href^='/login?interaction=']").await;
    browser.type_into("#identifier", ID_NUMBER).await;
    browser.type_into("#password", new_password).await;
    browser.click("form[action='/login'] button").await;
    browser.wait_for_url(&redirect).await;

    // The personal page: a new mobile number, with codes to the old and the new one.
    browser.goto(&format!("{}/account", server.base)).await;
    browser.wait_for_text("h1", |t| t == "个人中心").await;
    let new_phone = "13700003333";
    browser.type_into("#new-phone", new_phone).await;
    browser.click("form[action='/account/phone'] button").await;
    browser.wait_for_text("h1", |t| t == "更换手机号码").await;
    let old_code = common::people::last_sms_code(app, phone);
    let new_code = common::people::last_sms_code(app, new_phone);
    browser.type_into("#old-code", &old_code).await;
    browser.type_into("#new-code", &new_code).await;
    browser
        .click("form[action='/account/phone/confirm'] button")
        .await;
    browser
        .wait_for_text("p.notice", |t| t.contains("手机号码已更换"))
        .await;
    browser
        .wait_for_text("dl", |t| t.contains("137****3333"))
        .await;
    browser.call(reqwest::Method::DELETE, "", None).await;
}

#[tokio::test]
async fn every_page_of_registration_recovery_and_the_personal_pages_speaks_english() {
    let Ok(driver_path) = std::env::var(DRIVER_VAR) else {
        common::not_configured(DRIVER_VAR);
        return;
    };
    let (rp, _) = relying_party().await;
    let server = common::spawn_issuer(|_| {}).await;
    let app = &server.test_app.app;
    let redirect = format!("{rp}/cb");
    register(app, spec("hall", &redirect, false), SECRET).await;
    let authorize = format!(
        "{}/authorize?client_id=hall&redirect_uri={}&response_type=code&scope=openid&state=s",
        server.base,
        url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
    );
    let (number, name, mobile, password) = (
        "110101199003070011",
        "测试李四",
        "13911113333",
        "Sunrise-2026!",
    );
    let browser = Driver::start_in(&driver_path, "en-GB,en").await;

    // The login page and its SMS tab.
    browser.goto(&authorize).await;
    browser.english_page("Log in").await;
    browser.click("a[href^='/login/sms']").await;
    browser.english_page("Log in").await;
    browser.find("form[action='/login/sms/send']").await;
    // Registration: the form, a field refused in English, the confirmation, consent.
    browser.click("a[href^='/login?interaction=']").await;
    browser.click("a[href^='/register']").await;
    browser.english_page("Register").await;
    browser.type_into("#number", "110105194912310021").await;
    browser.type_into("#name", name).await;
    browser.type_into("#phone", mobile).await;
    browser.click("form[action='/register'] button").await;
    browser
        .wait_for_text("p.error", |t| {
            t.starts_with("The document number is not valid")
        })
        .await;
    browser
        .call(
            reqwest::Method::POST,
            &format!("/element/{}/clear", browser.find("#number").await),
            Some(json!({})),
        )
        .await;
    browser.type_into("#number", number).await;
    browser.click("form[action='/register'] button").await;
    browser
        .wait_for_text("p.notice", |t| t.contains("A code was sent to 139****3333"))
        .await;
    browser.english_page("Register").await;
    browser
        .type_into("#code", &common::people::last_sms_code(app, mobile))
        .await;
    browser.type_into("#password", password).await;
    browser.type_into("#password2", password).await;
    for consent in ["terms", "privacy", "sensitive"] {
        browser.click(&format!("input[name={consent}]")).await;
    }
    browser
        .click("form[action='/register/complete'] button")
        .await;
    browser.english_page("Allow access").await;
    browser.click("button[value=allow]").await;
    browser.wait_for_url(&redirect).await;

    // The personal page, the phone change and the enterprise page.
    browser.goto(&format!("{}/account", server.base)).await;
    browser.english_page("My account").await;
    browser.type_into("#new-phone", "13700004444").await;
    browser.click("form[action='/account/phone'] button").await;
    browser.english_page("Change mobile number").await;
    browser.goto(&format!("{}/account", server.base)).await;
    browser
        .type_into("#credit-code", "91512081MA62K0260E")
        .await;
    browser.type_into("#org-name", "测试云端科技有限公司").await;
    browser.click("form[action='/account/org'] button").await;
    browser.english_page("测试云端科技有限公司").await;
    browser
        .wait_for_text("h2#members", |t| t == "Members")
        .await;

    // Recovery, from a new visit.
    browser.forget_cookies().await;
    browser.goto(&authorize).await;
    browser.click("a[href^='/recover']").await;
    browser.english_page("Recover your password").await;
    browser.type_into("#number", number).await;
    browser.type_into("#name", name).await;
    browser.click("form[action='/recover'] button").await;
    browser.english_page("Recover your password").await;
    browser
        .wait_for_text("p.notice", |t| {
            t.starts_with("If the document number and name match")
        })
        .await;
    browser
        .type_into("#code", &common::people::last_sms_code(app, mobile))
        .await;
    browser.type_into("#password", "Moonrise-2027?").await;
    browser.type_into("#password2", "Moonrise-2027?").await;
    browser
        .click("form[action='/recover/complete'] button")
        .await;
    browser.english_page("Password changed").await;

    // Closing the account, signed in again with the new password.
    browser.goto(&format!("{}/account", server.base)).await;
    browser.english_page("Log in").await;
    browser.type_into("#identifier", number).await;
    browser.type_into("#password", "Moonrise-2027?").await;
    browser.click("form[action='/login'] button").await;
    browser.english_page("My account").await;
    browser.type_into("#close-password", "Moonrise-2027?").await;
    browser.click("input[name=confirm]").await;
    browser.click("form[action='/account/close'] button").await;
    browser.english_page("Account closed").await;
    browser.call(reqwest::Method::DELETE, "", None).await;
}

/// The code an authenticator app shows for `secret` (base32) at `at`: oathtool's when
/// YIHAO_TEST_OATHTOOL names it (CI), else yihao's own.
fn totp_at(secret: &str, at: i64) -> String {
    match std::env::var("YIHAO_TEST_OATHTOOL") {
        Ok(tool) if !tool.is_empty() => {
            let out = Command::new(tool)
                .args(["--totp", "-b", secret, "-N", &format!("@{at}")])
                .output()
                .unwrap();
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        }
        _ => {
            common::not_configured("YIHAO_TEST_OATHTOOL");
            let bytes = data_encoding::BASE32_NOPAD
                .decode(secret.as_bytes())
                .unwrap();
            yihao::crypto::totp::code_at(
                &yihao::crypto::totp::Secret::from_bytes(bytes),
                yihao::crypto::totp::step_of(at),
            )
        }
    }
}

/// Sets the person's real-name level as a face check (in the app) or an operator would.
async fn set_level(app: &yihao::app::App, level: u8) {
    use yihao::domain::account::{Evidence, Level, ProofMethod};
    let account = app.identities.find(ID_NUMBER, 1).await.unwrap().unwrap();
    let method = if level == 3 {
        ProofMethod::FaceCheck
    } else {
        ProofMethod::RegisterCheck
    };
    let evidence = Evidence::new(Level::new(level).unwrap(), method, "test", 1).unwrap();
    app.identities
        .set_evidence(&account.id, evidence, 1)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_authenticator_app_is_enrolled_and_steps_a_session_up_to_level_3_in_a_real_browser() {
    let Ok(driver_path) = std::env::var(DRIVER_VAR) else {
        common::not_configured(DRIVER_VAR);
        return;
    };
    let (rp, _) = relying_party().await;
    let clock = std::sync::Arc::new(yihao::clock::ManualClock::starting_now());
    let server = common::spawn_issuer_on(|_| {}, Some(clock.clone())).await;
    let app = &server.test_app.app;
    let redirect = format!("{rp}/cb");
    let mut social = spec("social", &redirect, true);
    social.settings.min_level = Some(3);
    register(app, social, SECRET).await;
    app.clients.reload().await.unwrap();
    Person {
        phone: Some(common::people::PHONE),
        ..Person::new(ID_NUMBER, NAME)
    }
    .create(app, Some(PASSWORD))
    .await;
    let now = || yihao::clock::Clock::now(clock.as_ref());

    // The personal page: an authenticator app, behind the current password.
    let browser = Driver::start(&driver_path).await;
    browser.goto(&format!("{}/account", server.base)).await;
    browser.type_into("#identifier", ID_NUMBER).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("form[action='/login'] button").await;
    browser
        .wait_for_text("#factors", |t| t == "两重身份验证")
        .await;
    browser.type_into("#factor-password", PASSWORD).await;
    browser.click("button[value='add_totp']").await;
    browser.find(".qr svg").await;
    let secret = browser
        .wait_for_text("#totp-secret", |t| t.len() == 32)
        .await;
    browser
        .type_into("#totp-code", &totp_at(&secret, now()))
        .await;
    browser
        .click("form[action='/account/factors/totp/confirm'] button")
        .await;
    browser
        .wait_for_text("p.notice", |t| t.contains("已添加身份验证器"))
        .await;
    let codes = browser
        .wait_for_text("#recovery-codes", |t| !t.is_empty())
        .await;
    assert_eq!(codes.lines().count(), 10, "{codes}");

    // A service that requires level 3: first the face check (done in the app), then the code.
    let authorize = format!(
        "{}/authorize?client_id=social&redirect_uri={}&response_type=code&scope=openid&state=s",
        server.base,
        url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
    );
    browser.goto(&authorize).await;
    browser.wait_for_text("h1", |t| t == "需要人脸核验").await;
    browser.click("button[value='continue']").await;
    browser
        .wait_for_text("p.error", |t| t.contains("还没有完成人脸核验"))
        .await;
    set_level(app, 3).await;
    browser.click("button[value='continue']").await;
    browser.wait_for_text("h1", |t| t == "验证第二重身份").await;
    clock.advance(30);
    browser.type_into("#code", &totp_at(&secret, now())).await;
    browser.click("button[value='totp']").await;
    landed_code(&browser.wait_for_url(&redirect).await);
    browser.call(reqwest::Method::DELETE, "", None).await;

    // In English: the second-factor page, the proofing page and the personal page's section.
    let english = Driver::start_in(&driver_path, "en").await;
    english.goto(&authorize).await;
    english.type_into("#identifier", ID_NUMBER).await;
    english.type_into("#password", PASSWORD).await;
    english.click("form[action='/login'] button").await;
    english
        .english_page("Confirm it is you: second factor")
        .await;
    clock.advance(30);
    english.type_into("#code", &totp_at(&secret, now())).await;
    english.click("button[value='totp']").await;
    english.wait_for_url(&redirect).await;
    set_level(app, 2).await;
    english.goto(&authorize).await;
    english.english_page("Face verification needed").await;
    english.goto(&format!("{}/account", server.base)).await;
    english
        .wait_for_text("#factors", |t| t == "Two-factor sign-in")
        .await;
    english.call(reqwest::Method::DELETE, "", None).await;
}

/// Virtual authenticators (W3C WebAuthn Level 3 §11 "User Agent Automation", which chromedriver
/// serves under the session).
impl Driver {
    /// A platform authenticator with resident keys and user verification that always succeeds.
    async fn add_virtual_authenticator(&self) -> String {
        let body = json!({
            "protocol": "ctap2", "transport": "internal", "hasResidentKey": true,
            "hasUserVerification": true, "isUserConsenting": true, "isUserVerified": true,
        });
        self.call(reqwest::Method::POST, "/webauthn/authenticator", Some(body))
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn credentials(&self, authenticator: &str) -> Vec<Value> {
        let path = format!("/webauthn/authenticator/{authenticator}/credentials");
        self.call(reqwest::Method::GET, &path, None)
            .await
            .as_array()
            .unwrap()
            .clone()
    }

    /// Puts `credential` back with its signature counter at `count`: a copy of the authenticator.
    async fn clone_credential(&self, authenticator: &str, credential: &Value, count: u32) {
        let id = credential["credentialId"].as_str().unwrap();
        let path = format!("/webauthn/authenticator/{authenticator}/credentials/{id}");
        self.call(reqwest::Method::DELETE, &path, None).await;
        let mut copy = credential.clone();
        copy["signCount"] = json!(count);
        let path = format!("/webauthn/authenticator/{authenticator}/credential");
        self.call(reqwest::Method::POST, &path, Some(copy)).await;
    }
}

/// Exchanges a code at the server for `client`; the ID token's claims.
async fn id_token_claims(base: &str, client: &str, redirect: &str, code: &str) -> Value {
    let (status, body) = post_form(
        base,
        "/token",
        (client, SECRET),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let claims = body["id_token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap();
    serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims).unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_passkey_is_registered_signs_in_as_a_second_factor_and_alone_and_a_copy_or_another_accounts_is_refused()
 {
    let Ok(driver_path) = std::env::var(DRIVER_VAR) else {
        common::not_configured(DRIVER_VAR);
        return;
    };
    let (rp, _) = relying_party().await;
    // WebAuthn needs a host name: the issuer is localhost (the relying party id).
    let server = common::spawn_issuer(|c| {
        c.server.issuer = c.server.issuer.replace("127.0.0.1", "localhost");
    })
    .await;
    let base = server.base.replace("127.0.0.1", "localhost");
    let app = &server.test_app.app;
    let redirect = format!("{rp}/cb");
    let mut social = spec("social", &redirect, true);
    social.settings.min_level = Some(3);
    register(app, social, SECRET).await;
    register(app, spec("tax", &redirect, true), SECRET).await;
    app.clients.reload().await.unwrap();
    Person {
        phone: Some(common::people::PHONE),
        ..Person::new(ID_NUMBER, NAME)
    }
    .create(app, Some(PASSWORD))
    .await;
    set_level(app, 3).await;
    let authorize = |client: &str| {
        format!(
            "{base}/authorize?client_id={client}&redirect_uri={}&response_type=code&scope=openid&state=s",
            url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
        )
    };

    let browser = Driver::start(&driver_path).await;
    let authenticator = browser.add_virtual_authenticator().await;
    // Registered on the personal page, behind the current password.
    browser.goto(&format!("{base}/account")).await;
    browser.type_into("#identifier", ID_NUMBER).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("form[action='/login'] button").await;
    browser
        .wait_for_text("#factors", |t| t == "两重身份验证")
        .await;
    browser.type_into("#factor-password", PASSWORD).await;
    browser.click("button[value='add_passkey']").await;
    browser.click("#passkey-create").await;
    browser
        .wait_for_text("p.notice", |t| t.contains("已添加通行密钥"))
        .await;
    browser
        .wait_for_text("#recovery-codes", |t| t.lines().count() == 10)
        .await;
    let credentials = browser.credentials(&authenticator).await;
    assert_eq!(credentials.len(), 1);
    assert_eq!(credentials[0]["isResidentCredential"], true, "discoverable");
    assert_eq!(credentials[0]["rpId"], "localhost");

    // A second factor: the password session steps up to level 3 with the passkey.
    browser.goto(&authorize("social")).await;
    browser.wait_for_text("h1", |t| t == "验证第二重身份").await;
    browser.click("#passkey-second").await;
    let code = landed_code(&browser.wait_for_url(&redirect).await);
    let claims = id_token_claims(&server.base, "social", &redirect, &code).await;
    assert_eq!(claims["acr"], "urn:yihao:loa:3");
    assert_eq!(claims["amr"], json!(["pwd", "hwk", "mfa"]));

    // Alone: a new visitor signs in with the passkey, no name or password typed. (Cookies are
    // forgotten for the page shown: yihao's.)
    browser.goto(&format!("{base}/healthz")).await;
    browser.forget_cookies().await;
    browser.goto(&authorize("tax")).await;
    browser.click("#passkey-login").await;
    let code = landed_code(&browser.wait_for_url(&redirect).await);
    let claims = id_token_claims(&server.base, "tax", &redirect, &code).await;
    assert_eq!(claims["acr"], "urn:yihao:loa:3");
    assert_eq!(claims["amr"], json!(["hwk", "mfa"]));

    // Another person's passkey, offered as this person's second factor, is refused: the page is
    // made to ask for the other credential (what a tampered browser could do).
    const OTHER: &str = "110101199003070011";
    Person {
        phone: Some("13912345678"),
        ..Person::new(OTHER, "测试李四")
    }
    .create(app, Some(PASSWORD))
    .await;
    browser.goto(&format!("{base}/healthz")).await;
    browser.forget_cookies().await;
    browser.goto(&format!("{base}/account")).await;
    browser.type_into("#identifier", OTHER).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("form[action='/login'] button").await;
    browser.type_into("#factor-password", PASSWORD).await;
    browser.click("button[value='add_passkey']").await;
    browser.click("#passkey-create").await;
    browser
        .wait_for_text("p.notice", |t| t.contains("已添加通行密钥"))
        .await;
    let others = browser.credentials(&authenticator).await;
    let other = others
        .iter()
        .find(|c| c["credentialId"] != credentials[0]["credentialId"])
        .unwrap();
    browser.goto(&format!("{base}/healthz")).await;
    browser.forget_cookies().await;
    browser.goto(&authorize("social")).await;
    browser.type_into("#identifier", ID_NUMBER).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("form[action='/login'] button").await;
    browser.wait_for_text("h1", |t| t == "验证第二重身份").await;
    let script = "const f = document.querySelector('form[data-passkey]'); \
                  const o = JSON.parse(f.dataset.options); \
                  o.publicKey.allowCredentials = [{type: 'public-key', id: arguments[0]}]; \
                  f.dataset.options = JSON.stringify(o);";
    browser
        .call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": [other["credentialId"]]})),
        )
        .await;
    browser.click("#passkey-second").await;
    browser
        .wait_for_text("p.error", |t| t.contains("未通过验证"))
        .await;
    let records = app.store.audit_records(1, 10_000).await.unwrap();
    assert!(records.iter().any(|r| r.event == "factor_used"
        && r.result == "failure"
        && r.reason.as_deref() == Some("another_account")));
    // The other person's credential leaves this authenticator (one resident credential each).
    let path = format!(
        "/webauthn/authenticator/{authenticator}/credentials/{}",
        other["credentialId"].as_str().unwrap()
    );
    browser.call(reqwest::Method::DELETE, &path, None).await;

    // A copy of the authenticator (its counter back at 0) is refused, and that is audited.
    let credential = browser.credentials(&authenticator).await.remove(0);
    assert_eq!(credential["credentialId"], credentials[0]["credentialId"]);
    assert!(
        credential["signCount"].as_u64().unwrap() >= 2,
        "{credential}"
    );
    browser
        .clone_credential(&authenticator, &credential, 0)
        .await;
    browser.goto(&format!("{base}/healthz")).await;
    browser.forget_cookies().await;
    browser.goto(&authorize("tax")).await;
    browser.click("#passkey-login").await;
    browser
        .wait_for_text("p.error", |t| t.contains("可能已被复制"))
        .await;
    let records = app.store.audit_records(1, 10_000).await.unwrap();
    assert!(records.iter().any(|r| r.event == "factor_used"
        && r.result == "failure"
        && r.reason.as_deref() == Some("cloned")));

    // It is removed from the account at once: the person registers a new passkey.
    let account = app.identities.find(ID_NUMBER, 1).await.unwrap().unwrap();
    assert!(
        app.store
            .factors_of(account.id.as_str())
            .await
            .unwrap()
            .is_empty()
    );
    browser.call(reqwest::Method::DELETE, "", None).await;
}

#[tokio::test]
async fn a_kiosk_is_approved_at_its_verification_uri_in_a_real_browser_in_chinese_and_english() {
    let Ok(driver_path) = std::env::var(DRIVER_VAR) else {
        common::not_configured(DRIVER_VAR);
        return;
    };
    // The device polls every second.
    let server = common::spawn_issuer(|c| c.tokens.device_poll_secs = 1).await;
    let app = &server.test_app.app;
    let mut kiosk = spec("kiosk", "http://127.0.0.1:9/kiosk", false);
    kiosk.name = "自助服务终端".into();
    kiosk.grant_types = vec![GrantType::DeviceCode];
    kiosk.settings.channel = yihao::domain::client::Channel::Kiosk;
    kiosk.settings.location = Some("市民中心一楼 3 号自助机".into());
    register(app, kiosk, SECRET).await;
    app.clients.reload().await.unwrap();
    Person {
        phone: Some(common::people::PHONE),
        ..Person::new(ID_NUMBER, NAME)
    }
    .create(app, Some(PASSWORD))
    .await;
    let base = server.base.clone();
    let start = || {
        let base = base.clone();
        async move {
            let (status, body) = post_form(
                &base,
                "/device_authorization",
                ("kiosk", SECRET),
                &[("scope", "openid profile")],
            )
            .await;
            assert_eq!(status, 200, "{body}");
            body
        }
    };
    let poll = |code: String| {
        let base = base.clone();
        async move {
            post_form(
                &base,
                "/token",
                ("kiosk", SECRET),
                &[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                    ("device_code", code.as_str()),
                ],
            )
            .await
        }
    };

    // The kiosk is the openidconnect crate's device flow; the person's phone opens
    // verification_uri_complete (what the kiosk's QR code holds) in Chromium.
    use openidconnect::core::{CoreClient, CoreDeviceAuthorizationResponse, CoreProviderMetadata};
    use openidconnect::{
        ClientId, ClientSecret, DeviceAuthorizationUrl, IssuerUrl, OAuth2TokenResponse,
    };
    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(server.base.clone()).unwrap(), &http)
            .await
            .unwrap();
    let rp = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new("kiosk".into()),
        Some(ClientSecret::new(SECRET.into())),
    )
    .set_device_authorization_url(
        DeviceAuthorizationUrl::new(format!("{}/device_authorization", server.base)).unwrap(),
    );
    let details: CoreDeviceAuthorizationResponse = rp
        .exchange_device_code()
        .request_async(&http)
        .await
        .unwrap();
    let poller = {
        let (rp, http, details) = (rp.clone(), http.clone(), details.clone());
        tokio::spawn(async move {
            rp.exchange_device_access_token(&details)
                .unwrap()
                .request_async(&http, tokio::time::sleep, Some(Duration::from_secs(60)))
                .await
        })
    };
    let browser = Driver::start(&driver_path).await;
    browser
        .goto(details.verification_uri_complete().unwrap().secret())
        .await;
    browser.type_into("#identifier", ID_NUMBER).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("form[action='/login'] button").await;
    browser
        .wait_for_text("p.notice", |t| t.contains("市民中心一楼 3 号自助机"))
        .await;
    browser.click("button[value='allow']").await;
    browser.wait_for_text("h1", |t| t == "设备已登录").await;
    let tokens = poller.await.unwrap().unwrap();
    assert!(!tokens.access_token().secret().is_empty());
    browser.call(reqwest::Method::DELETE, "", None).await;

    // In English, typing the code the kiosk shows at verification_uri.
    let started = start().await;
    let english = Driver::start_in(&driver_path, "en").await;
    english
        .goto(started["verification_uri"].as_str().unwrap())
        .await;
    english.english_page("Sign in on a device").await;
    english
        .type_into("#user-code", started["user_code"].as_str().unwrap())
        .await;
    english.click("form[action='/device'] button").await;
    english.type_into("#identifier", ID_NUMBER).await;
    english.type_into("#password", PASSWORD).await;
    english.click("form[action='/login'] button").await;
    english
        .wait_for_text("p.notice", |t| t.contains("Check that this is the device"))
        .await;
    english.click("button[value='deny']").await;
    english.english_page("The device is not signed in").await;
    let (_, refused) = poll(started["device_code"].as_str().unwrap().to_owned()).await;
    assert_eq!(refused["error"], "access_denied");
    english.call(reqwest::Method::DELETE, "", None).await;
}

#[allow(dead_code)]
#[path = "../examples/qr_app.rs"]
mod qr_app;

#[tokio::test]
async fn the_app_confirms_a_sign_in_code_shown_in_a_real_browser() {
    let Ok(driver_path) = std::env::var(DRIVER_VAR) else {
        common::not_configured(DRIVER_VAR);
        return;
    };
    let (rp, _) = relying_party().await;
    let server = common::spawn_issuer(|_| {}).await;
    let app = &server.test_app.app;
    let redirect = format!("{rp}/cb");
    register(app, spec("hall", &redirect, true), SECRET).await;
    let mut mobile = spec("mobile", "http://127.0.0.1:9/mobile", true);
    mobile.settings.channel = yihao::domain::client::Channel::App;
    register(app, mobile, SECRET).await;
    app.clients.reload().await.unwrap();
    Person {
        phone: Some(common::people::PHONE),
        ..Person::new(ID_NUMBER, NAME)
    }
    .create(app, Some(PASSWORD))
    .await;
    // The app's signed-in session: its access token.
    let phone = common::browser::Browser::new();
    let code = phone
        .authorize(
            &server.base,
            &format!(
                "{}/authorize?client_id=mobile&redirect_uri={}&response_type=code&scope=openid&state=s",
                server.base,
                url::form_urlencoded::byte_serialize(b"http://127.0.0.1:9/mobile").collect::<String>()
            ),
        )
        .await["code"]
        .clone();
    let (_, tokens) = post_form(
        &server.base,
        "/token",
        ("mobile", SECRET),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9/mobile"),
        ],
    )
    .await;
    let token = tokens["access_token"].as_str().unwrap().to_owned();

    let browser = Driver::start(&driver_path).await;
    browser
        .goto(&format!(
            "{}/authorize?client_id=hall&redirect_uri={}&response_type=code&scope=openid&state=s",
            server.base,
            url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
        ))
        .await;
    browser.click("a[href^='/login/qr']").await;
    browser.find("#qr-login svg").await;
    let source = browser.call(reqwest::Method::GET, "/source", None).await;
    let source = source.as_str().unwrap();
    let marker = "data-ticket=\"";
    let start = source.find(marker).unwrap() + marker.len();
    let ticket = source[start..].split('"').next().unwrap().to_owned();
    let (status, asking) = qr_app::view(&server.base, &token, &ticket).await.unwrap();
    assert_eq!(status, 200, "{asking}");
    assert_eq!(asking["service"], "hall 服务");
    let (status, _) = qr_app::answer(&server.base, &token, &ticket, true)
        .await
        .unwrap();
    assert_eq!(status, 200);
    // The page, refreshing every 2 s, lands at the relying party signed in.
    landed_code(&browser.wait_for_url(&redirect).await);
    browser.call(reqwest::Method::DELETE, "", None).await;
}

#[tokio::test]
async fn the_enrolment_qr_device_and_lost_factor_pages_speak_chinese_and_english() {
    let Ok(driver_path) = std::env::var(DRIVER_VAR) else {
        common::not_configured(DRIVER_VAR);
        return;
    };
    let (rp, _) = relying_party().await;
    // Every account must use two factors: the first sign-in enrols one.
    let clock = std::sync::Arc::new(yihao::clock::ManualClock::starting_now());
    let server = common::spawn_issuer_on(
        |c| c.second_factor.required_for_all = true,
        Some(clock.clone()),
    )
    .await;
    let app = &server.test_app.app;
    let redirect = format!("{rp}/cb");
    register(app, spec("hall", &redirect, true), SECRET).await;
    app.clients.reload().await.unwrap();
    Person {
        phone: Some(common::people::PHONE),
        ..Person::new(ID_NUMBER, NAME)
    }
    .create(app, Some(PASSWORD))
    .await;
    let authorize = format!(
        "{}/authorize?client_id=hall&redirect_uri={}&response_type=code&scope=openid&state=s",
        server.base,
        url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
    );
    let now = || yihao::clock::Clock::now(clock.as_ref());

    let zh = Driver::start(&driver_path).await;
    zh.goto(&format!("{}/device", server.base)).await;
    zh.wait_for_text("h1", |t| t == "在设备上登录").await;
    zh.goto(&format!("{}/qr?ticket=x", server.base)).await;
    zh.wait_for_text("h1", |t| t == "扫码登录").await;
    zh.goto(&authorize).await;
    zh.type_into("#identifier", ID_NUMBER).await;
    zh.type_into("#password", PASSWORD).await;
    zh.click("form[action='/login'] button").await;
    zh.wait_for_text("h1", |t| t == "设置身份验证器").await;
    let secret = zh.wait_for_text("#totp-secret", |t| t.len() == 32).await;
    zh.type_into("#code", &totp_at(&secret, now())).await;
    zh.click("button[value='enrol']").await;
    zh.wait_for_text("h1", |t| t == "请保存恢复码").await;
    zh.click("button[value='continue']").await;
    zh.wait_for_url(&redirect).await;
    zh.call(reqwest::Method::DELETE, "", None).await;

    let en = Driver::start_in(&driver_path, "en").await;
    en.goto(&format!("{}/device", server.base)).await;
    en.english_page("Sign in on a device").await;
    en.goto(&format!("{}/qr?ticket=x", server.base)).await;
    en.english_page("Scan with the app").await;
    en.goto(&authorize).await;
    en.click("a[href^='/login/qr']").await;
    en.english_page("Log in").await;
    en.find("#qr-login svg").await;
    en.click("a[href^='/login?interaction=']").await;
    en.type_into("#identifier", ID_NUMBER).await;
    en.type_into("#password", PASSWORD).await;
    en.click("form[action='/login'] button").await;
    en.english_page("Confirm it is you: second factor").await;
    // Lost the authenticator and the codes: a code to the phone, then name and number.
    en.click("details:last-of-type summary").await;
    en.click("button[value='lost_send']").await;
    en.wait_for_text("p.notice", |t| t.contains("A code was sent to"))
        .await;
    let code = common::people::last_sms_code(app, common::people::PHONE);
    en.type_into("#lost-code", &code).await;
    en.type_into("#lost-number", ID_NUMBER).await;
    en.type_into("#lost-name", NAME).await;
    en.click("button[value='lost_confirm']").await;
    en.english_page("Set up an authenticator app").await;
    en.wait_for_text("p.error", |t| t.contains("Every old factor was removed"))
        .await;
    en.call(reqwest::Method::DELETE, "", None).await;
}

/// axe-core (npm), as `YIHAO_TEST_AXE` names its `axe.min.js` (`.ci/run` installs it).
const AXE_VAR: &str = "YIHAO_TEST_AXE";

impl Driver {
    /// The WCAG 2.1 A and AA violations axe-core finds on the page now (rule id and the elements),
    /// or nothing when axe-core is not configured (outside CI). WebDriver runs the script outside
    /// the page's CSP, which stays as served.
    async fn accessibility_violations(&self) -> Vec<Value> {
        let Ok(path) = std::env::var(AXE_VAR) else {
            common::not_configured(AXE_VAR);
            return Vec::new();
        };
        let axe =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{AXE_VAR}={path}: {e}"));
        let script = format!(
            "{axe}\nconst done = arguments[arguments.length - 1];\n\
             axe.run(document, {{runOnly: {{type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}}}})\
             .then(r => done(r.violations.map(v => ({{id: v.id, help: v.help, nodes: v.nodes.map(n => n.html)}}))))\
             .catch(e => done([{{id: 'axe-error', help: String(e)}}]));"
        );
        self.call(
            reqwest::Method::POST,
            "/execute/async",
            Some(json!({"script": script, "args": []})),
        )
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
    }

    /// Asserts the page has no accessibility violation.
    async fn accessible(&self) {
        let found = self.accessibility_violations().await;
        assert!(
            found.is_empty(),
            "{}: {}",
            self.current_url().await,
            serde_json::to_string_pretty(&found).unwrap()
        );
    }

    /// Opens the console as `number`: the password, then the authenticator app the two-factor rule
    /// makes an administrator enrol (a code computed at `now`), then the recovery codes page; waits
    /// for the console's home page titled `title`. The authenticator's key.
    async fn console_sign_in(&self, base: &str, number: &str, now: i64, title: &str) -> String {
        self.goto(&format!("{base}/admin")).await;
        self.type_into("#identifier", number).await;
        self.type_into("#password", PASSWORD).await;
        self.click("form[action='/login'] button").await;
        let secret = self.wait_for_text("#totp-secret", |t| t.len() == 32).await;
        self.type_into("#code", &totp_at(&secret, now)).await;
        self.click("button[value='enrol']").await;
        self.click("button[value='continue']").await;
        self.wait_for_text("h1", |t| t == title).await;
        secret
    }

    /// Opens the console again as `number`, whose authenticator has `secret`: the password, then
    /// a code computed at `now`.
    async fn console_sign_in_again(
        &self,
        base: &str,
        number: &str,
        secret: &str,
        now: i64,
        title: &str,
    ) {
        self.goto(&format!("{base}/admin")).await;
        self.type_into("#identifier", number).await;
        self.type_into("#password", PASSWORD).await;
        self.click("form[action='/login'] button").await;
        self.type_into("#code", &totp_at(secret, now)).await;
        self.click("button[value='totp']").await;
        self.wait_for_text("h1", |t| t == title).await;
    }
}

#[tokio::test]
async fn three_administrators_each_do_their_own_work_in_the_console_and_nothing_else() {
    let Ok(driver_path) = std::env::var(DRIVER_VAR) else {
        common::not_configured(DRIVER_VAR);
        return;
    };
    let clock = std::sync::Arc::new(yihao::clock::ManualClock::starting_now());
    let server = common::spawn_issuer_on(|_| {}, Some(clock.clone())).await;
    let app = &server.test_app.app;
    let now = || yihao::clock::Clock::now(clock.as_ref());
    register(app, spec("hall", "http://127.0.0.1:9/cb", true), SECRET).await;
    app.clients.reload().await.unwrap();
    let citizen = Person::new(ID_NUMBER, NAME)
        .create(app, Some(PASSWORD))
        .await;
    let context = yihao::protocol::audit::RequestContext::default();
    let operator = app.administration(&yihao::protocol::admin::Actor::Operator, &context);
    let mut admins = Vec::new();
    for (i, role) in [(1, "system"), (2, "security"), (3, "audit")] {
        let number = common::resident_id(i);
        let account = Person {
            level: 3,
            method: yihao::domain::account::ProofMethod::FaceCheck,
            ..Person::new(&number, "管理员")
        }
        .create(app, Some(PASSWORD))
        .await;
        operator
            .grant_role(account.as_str(), role, None, now())
            .await
            .unwrap();
        admins.push((number, account));
    }
    // The citizen is signed in at a service.
    let person = common::browser::Browser::new();
    person
        .authorize(
            &server.base,
            &format!(
                "{}/authorize?client_id=hall&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&response_type=code&scope=openid",
                server.base
            ),
        )
        .await;
    assert_eq!(
        app.store
            .sessions_of(citizen.as_str(), false)
            .await
            .unwrap()
            .len(),
        1
    );

    // The system administrator signs in with the password and an authenticator code, and registers
    // a client; an account search is refused.
    // An enterprise, for the organisation pages.
    const ORG: &str = "9144030071526726XG";
    operator
        .create_org(
            &yihao::protocol::admin::orgs::NewOrg {
                credit_code: ORG.into(),
                name: "深圳某公司".into(),
            },
            now(),
        )
        .await
        .unwrap();
    let system = Driver::start(&driver_path).await;
    let system_key = system
        .console_sign_in(&server.base, &admins[0].0, now(), "管理控制台")
        .await;
    system.accessible().await;
    system.click("a[href='/admin/clients']").await;
    system.wait_for_text("h1", |t| t == "接入系统").await;
    system.accessible().await;
    system.type_into("#name", "不动产登记系统").await;
    system
        .type_into("#redirect_uri", "https://bdc.example.gov.cn/cb")
        .await;
    system
        .click("form[action='/admin/clients'][method='post'] button")
        .await;
    let client_id = system.wait_for_text("#created-id", |t| !t.is_empty()).await;
    system
        .wait_for_text("#created-secret", |t| t.len() >= 40)
        .await;
    system.accessible().await;
    let client_page = format!("/admin/clients/{client_id}");
    // The client page with its self-check run (the table of probes and recent refusals).
    let checked_page = format!("{client_page}?check=1");
    for page in [
        "/admin/keys",
        "/admin/reports",
        "/admin/settings",
        &client_page,
        &checked_page,
    ] {
        system.goto(&format!("{}{page}", server.base)).await;
        system.find("h1").await;
        system.accessible().await;
    }
    system.wait_for_text("#check", |t| t == "自检").await;
    system.find("#checks").await;
    assert!(
        app.store
            .client(&yihao::domain::client::ClientId::parse(&client_id).unwrap())
            .await
            .unwrap()
            .is_some()
    );
    system
        .goto(&format!("{}/admin/accounts?q={ID_NUMBER}", server.base))
        .await;
    system.wait_for_text("h1", |t| t == "无权操作").await;
    system.accessible().await;
    system.call(reqwest::Method::DELETE, "", None).await;

    // The security administrator finds the citizen (masked) and locks the account: the citizen's
    // session ends.
    clock.advance(30);
    let security = Driver::start(&driver_path).await;
    let security_key = security
        .console_sign_in(&server.base, &admins[1].0, now(), "管理控制台")
        .await;
    security.click("a[href='/admin/accounts']").await;
    security.type_into("#q", ID_NUMBER).await;
    security.click("form[role='search'] button").await;
    let shown = security
        .wait_for_text("dd.document", |t| t.contains('*'))
        .await;
    assert!(!shown.contains(ID_NUMBER), "{shown}");
    security.click("button[value='locked']").await;
    security.wait_for_text("dd.status", |t| t == "locked").await;
    security.accessible().await;
    let org_page = format!("/admin/orgs/{ORG}");
    for page in ["/admin/roles", "/admin/orgs", &org_page] {
        security.goto(&format!("{}{page}", server.base)).await;
        security.find("h1").await;
        security.accessible().await;
    }
    assert!(
        app.store
            .sessions_of(citizen.as_str(), false)
            .await
            .unwrap()
            .is_empty(),
        "the locked person's session ended"
    );
    security.call(reqwest::Method::DELETE, "", None).await;

    // The audit administrator (an English browser) sees both records with their actors, verifies
    // the chain, and is refused both actions.
    clock.advance(30);
    let audit = Driver::start_in(&driver_path, "en").await;
    audit
        .console_sign_in(&server.base, &admins[2].0, now(), "Administration console")
        .await;
    audit.click("a[href='/admin/audit']").await;
    audit.english_page("Audit log").await;
    audit.type_into("#event", "admin_client").await;
    audit.click("form[role='search'] button").await;
    audit
        .wait_for_text("#audit tbody", |t| {
            t.contains(admins[0].1.as_str()) && t.contains(&client_id)
        })
        .await;
    audit
        .goto(&format!(
            "{}/admin/audit?event=admin_account&target={citizen}",
            server.base
        ))
        .await;
    audit
        .wait_for_text("#audit tbody", |t| {
            t.contains(admins[1].1.as_str()) && t.contains("status:locked")
        })
        .await;
    audit
        .click("form[action='/admin/audit/verify'] button")
        .await;
    audit
        .wait_for_text("p.notice", |t| t.contains("intact"))
        .await;
    audit.accessible().await;
    // The check can fail: a page with an image without a text alternative and an unlabelled field.
    if std::env::var(AXE_VAR).is_ok() {
        audit
            .goto("data:text/html,<html lang=en><title>t</title><main><img src=x><input></main></html>")
            .await;
        let found = audit.accessibility_violations().await;
        let ids: Vec<&str> = found.iter().filter_map(|v| v["id"].as_str()).collect();
        assert!(
            ids.contains(&"image-alt") && ids.contains(&"label"),
            "{found:?}"
        );
    }
    for page in ["/admin/accounts", "/admin/clients"] {
        audit.goto(&format!("{}{page}", server.base)).await;
        audit.english_page("Not allowed").await;
    }
    audit.call(reqwest::Method::DELETE, "", None).await;

    // The system and security administrators' pages in English, checked the same way.
    for (number, key, pages) in [
        (
            &admins[0].0,
            &system_key,
            vec![
                ("/admin/clients".to_owned(), "Connected systems"),
                (client_page.clone(), "不动产登记系统"),
                (checked_page.clone(), "不动产登记系统"),
                ("/admin/keys".to_owned(), "Signing keys"),
                ("/admin/reports".to_owned(), "Reports"),
                ("/admin/settings".to_owned(), "Settings"),
                ("/admin/audit".to_owned(), "Not allowed"),
            ],
        ),
        (
            &admins[1].0,
            &security_key,
            vec![
                (format!("/admin/accounts?q={ID_NUMBER}"), "Accounts"),
                ("/admin/roles".to_owned(), "Administrators"),
                ("/admin/orgs".to_owned(), "Organisations"),
                (org_page.clone(), "深圳某公司"),
            ],
        ),
    ] {
        clock.advance(30);
        let english = Driver::start_in(&driver_path, "en").await;
        english
            .console_sign_in_again(&server.base, number, key, now(), "Administration console")
            .await;
        for (page, title) in pages {
            english.goto(&format!("{}{page}", server.base)).await;
            english.english_page(title).await;
            english.accessible().await;
        }
        english.call(reqwest::Method::DELETE, "", None).await;
    }
    assert!(common::verify_audit(app).await.is_ok());
}

/// Apache with Debian's mod_auth_cas in front of a legacy page, configured by the guide's own
/// `docs/integration/examples/apache-mod-auth-cas/yihao-cas.conf`; stopped on drop.
struct Apache {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Apache {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Apache {
    async fn start(binary: &str, issuer: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let port = common::free_port();
        let example = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/integration/examples/apache-mod-auth-cas"
        );
        let copy = Command::new("cp")
            .args([
                "-r",
                &format!("{example}/htdocs"),
                &root.display().to_string(),
            ])
            .status()
            .unwrap();
        assert!(copy.success());
        let cache = root.join("cas-cache");
        std::fs::create_dir(&cache).unwrap();
        // Apache's workers run as an unprivileged user when it starts as root.
        for (path, mode) in [(root.to_path_buf(), 0o755), (cache.clone(), 0o777)] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let _ = Command::new("chmod")
            .args(["-R", "a+rX", &root.join("htdocs").display().to_string()])
            .status();
        let modules = "/usr/lib/apache2/modules";
        let mut conf = format!(
            "ServerRoot {root}\nPidFile {root}/httpd.pid\nDefaultRuntimeDir {root}\nErrorLog {root}/error.log\n\
             Listen 127.0.0.1:{port}\nServerName localhost\nLogLevel warn\nTypesConfig /etc/mime.types\n",
            root = root.display()
        );
        for module in [
            "mpm_prefork",
            "authz_core",
            "authn_core",
            "authz_user",
            "mime",
            "dir",
            "include",
            "auth_cas",
        ] {
            conf.push_str(&format!(
                "LoadModule {module}_module {modules}/mod_{module}.so\n"
            ));
        }
        conf.push_str(&format!(
            "DocumentRoot {root}/htdocs\nDirectoryIndex index.shtml\n<Directory {root}/htdocs>\n  Require all granted\n  Options +Includes\n  AddType text/html .shtml\n  AddOutputFilter INCLUDES .shtml\n</Directory>\nInclude {example}/yihao-cas.conf\n",
            root = root.display()
        ));
        let conf_path = root.join("httpd.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(binary)
            .args(["-f", &conf_path.display().to_string(), "-DFOREGROUND"])
            .env("YIHAO_ISSUER", issuer)
            .env("CAS_CACHE_DIR", format!("{}/", cache.display()))
            .env("APACHE_RUN_DIR", root)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{binary} does not start: {e}"));
        let base = format!("http://localhost:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if reqwest::get(format!("{base}/")).await.is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "Apache did not start: {}",
                std::fs::read_to_string(root.join("error.log")).unwrap_or_default()
            );
            // Real time: waiting for another process.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self {
            child,
            base,
            _dir: dir,
        }
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("error.log")).unwrap_or_default()
    }
}

#[tokio::test]
async fn a_legacy_page_behind_mod_auth_cas_gets_single_sign_on_from_openid_connect_and_single_logout()
 {
    let Ok(driver_path) = std::env::var(DRIVER_VAR) else {
        common::not_configured(DRIVER_VAR);
        return;
    };
    const APACHE_VAR: &str = "YIHAO_TEST_APACHE";
    let Some(apache_binary) = std::env::var(APACHE_VAR).ok().filter(|v| !v.is_empty()) else {
        common::not_configured(APACHE_VAR);
        return;
    };
    let (rp_base, _logouts) = relying_party().await;
    let server = common::spawn_issuer(|_| {}).await;
    let app = &server.test_app.app;
    let redirect = format!("{rp_base}/cb");
    register(app, spec("hall", &redirect, true), SECRET).await;
    let apache = Apache::start(&apache_binary, &server.base).await;
    // The legacy system, known to CAS by its protected location (a prefix); the person consents to
    // release the name.
    let legacy = ClientSpec {
        id: yihao::domain::client::ClientId::parse("legacy").unwrap(),
        name: "旧业务系统".into(),
        auth_method: AuthMethod::None,
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        grant_types: vec![],
        scopes: vec![yihao::domain::client::Scope::parse("profile").unwrap()],
        first_party: false,
        settings: yihao::domain::client::ClientSettings {
            cas_services: vec![
                yihao::domain::client::CasService::parse(&format!("{}/protected/*", apache.base))
                    .unwrap(),
            ],
            ..Default::default()
        },
    };
    register(app, legacy, SECRET).await;
    app.clients.reload().await.unwrap();
    Person::new(ID_NUMBER, NAME)
        .create(app, Some(PASSWORD))
        .await;

    let browser = Driver::start(&driver_path).await;
    // Signed in through OpenID Connect at the service hall.
    browser
        .goto(&format!(
            "{}/authorize?client_id=hall&redirect_uri={}&response_type=code&scope=openid&state=s",
            server.base,
            url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
        ))
        .await;
    browser.type_into("#identifier", ID_NUMBER).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("button[type=submit]").await;
    browser.wait_for_url(&redirect).await;
    // The legacy page: mod_auth_cas sends the browser to yihao's CAS login, where the session
    // signs the person in without a password; only the consent is asked.
    browser.goto(&format!("{}/protected/", apache.base)).await;
    browser.wait_for_text("h1", |t| t == "授权确认").await;
    assert!(
        browser
            .current_url()
            .await
            .starts_with(&format!("{}/cas/login?service=", server.base))
    );
    browser.click("button[value=allow]").await;
    browser
        .wait_for_url(&format!("{}/protected/", apache.base))
        .await;
    let user = browser.wait_for_text("#user", |t| !t.is_empty()).await;
    assert!(
        !user.contains(ID_NUMBER) && user.len() > 20,
        "a pairwise subject: {user}"
    );
    let name = browser.wait_for_text("#name", |t| !t.is_empty()).await;
    assert_eq!(name, NAME, "{}", apache.error_log());
    let acr = browser.wait_for_text("#acr", |t| !t.is_empty()).await;
    assert!(acr.starts_with("urn:yihao:loa:"), "{acr}");
    // mod_auth_cas's session cookie works from another client too, until single logout ends it.
    let cookies = browser.call(reqwest::Method::GET, "/cookie", None).await;
    let session = cookies
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "MOD_AUTH_CAS")
        .unwrap_or_else(|| panic!("no mod_auth_cas session: {cookies}"))["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let with_cookie = || async {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(format!("{}/protected/", apache.base))
            .header("cookie", format!("MOD_AUTH_CAS={session}"))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(with_cookie().await, 200);
    // Logging out at yihao ends the legacy page's session too (CAS single logout through the
    // outbox; mod_auth_cas answers the LogoutRequest with a redirect, which counts as delivered).
    browser.goto(&format!("{}/cas/logout", server.base)).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let deliveries = app.store.logout_deliveries("legacy").await.unwrap();
        if deliveries.iter().any(|d| d.status == "delivered") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no single logout: {deliveries:?}"
        );
        // Real time: the outbox's deliverer runs on its own interval.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        with_cookie().await,
        302,
        "mod_auth_cas's session is over: {}",
        apache.error_log()
    );
    // And the browser going back is asked to sign in again.
    browser.goto(&format!("{}/protected/", apache.base)).await;
    browser.wait_for_text("h1", |t| t == "登录").await;
    browser.call(reqwest::Method::DELETE, "", None).await;
}
