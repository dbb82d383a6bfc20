//! The personal page: signed in through yihao's own client, the profile masked, sessions, the
//! authorised services and withdrawing consent (the service's refresh token stops working and it
//! receives a back-channel logout), the disclosure ledger and its exports, the history, and a
//! password change that ends the other sessions.

use std::time::Duration;

use serde_json::Value;
use yihao::domain::client::AuthMethod;

use crate::{
    Browser, ID_NUMBER, PASSWORD, SECRET, authorize_url, backchannel_receiver, client_spec, hidden,
    post_form, redirect_params, register, setup_on,
};

/// Follows redirects within the server (the browser keeps its cookies), at most ten.
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
        let url = if location.starts_with('/') {
            format!("{base}{location}")
        } else {
            location
        };
        response = browser.get(&url).await;
    }
    response
}

#[tokio::test]
async fn without_a_session_the_page_signs_in_through_yihaos_own_client() {
    let s = setup_on(|_| {}, None).await;
    let browser = Browser::new();
    let first = browser.get(&format!("{}/account", s.base)).await;
    assert_eq!(first.status(), 303);
    let location = first.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.contains("client_id=yihao-account"), "{location}");
    assert!(location.contains("code_challenge_method=S256"));
    let login = browser.page(&location).await;
    let after = browser.login(&s.base, &login, ID_NUMBER, PASSWORD).await;
    assert!(after.status().is_redirection(), "first party: no consent");
    let page = follow(&browser, &s.base, after).await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("个人中心"), "{page}");
    let title = &page[page.find("<title>").unwrap()..page.find("</title>").unwrap()];
    assert!(!title[7..].contains('<'), "markup in the title: {title}");
    for action in [
        "/account/password",
        "/account/phone",
        "/account/close",
        "/account/sessions/end",
    ] {
        assert!(
            page.contains(&format!("action=\"{action}\"")),
            "no {action} form"
        );
    }
    assert!(page.contains("110***********002X"), "the ID number masked");
    assert!(page.contains("138****1234"), "the phone masked");
    assert!(!page.contains(ID_NUMBER) && !page.contains(crate::PHONE));
    assert!(page.contains("urn:yihao:loa:2"));
    assert!(
        page.contains("公安人口信息核验"),
        "how the level was reached"
    );
}

#[tokio::test]
async fn withdrawing_consent_revokes_the_refresh_token_and_sends_a_back_channel_logout() {
    let s = setup_on(|c| c.logout.poll_ms = 50, None).await;
    let app = s._server.test_app.app.clone();
    let rp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = rp.local_addr().unwrap().port();
    let mut rx = backchannel_receiver(rp);
    // A service that asks for consent, with a back-channel logout URI.
    let mut spec = client_spec(
        "svc",
        "http://127.0.0.1:9/svc",
        AuthMethod::ClientSecretBasic,
        false,
    );
    spec.settings.backchannel_logout_uri = Some(format!("http://127.0.0.1:{port}/backchannel"));
    register(&app, spec, SECRET).await;
    let browser = Browser::new();
    let params = browser
        .authorize(
            &s.base,
            &authorize_url(
                &s.base,
                "svc",
                "http://127.0.0.1:9/svc",
                &[
                    ("scope", "openid profile offline_access"),
                    ("prompt", "consent"),
                ],
            ),
        )
        .await;
    let (status, tokens) = post_form(
        &s.base,
        "/token",
        ("svc", SECRET),
        &[
            ("grant_type", "authorization_code"),
            ("code", &params["code"]),
            ("redirect_uri", "http://127.0.0.1:9/svc"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();

    let page = follow(
        &browser,
        &s.base,
        browser.get(&format!("{}/account", s.base)).await,
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(page.contains("服务 svc"), "the service is listed: {page}");
    let withdrawn = browser
        .post(
            &format!("{}/account/services/withdraw", s.base),
            &[("csrf", &hidden(&page, "csrf")), ("client_id", "svc")],
        )
        .await;
    assert_eq!(withdrawn.status(), 200);
    assert!(withdrawn.text().await.unwrap().contains("已撤回授权"));

    let token = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("no back-channel logout")
        .unwrap();
    assert!(!token.is_empty());
    let (status, body) = post_form(
        &s.base,
        "/token",
        ("svc", SECRET),
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    // The next sign-in at the service asks for consent again.
    let again = browser
        .get(&authorize_url(
            &s.base,
            "svc",
            "http://127.0.0.1:9/svc",
            &[],
        ))
        .await;
    assert!(again.text().await.unwrap().contains("action=\"/consent\""));
    let records = app.store.audit_records(1, 1000).await.unwrap();
    assert!(records.iter().any(|r| r.event == "consent_withdrawn"));
}

#[tokio::test]
async fn the_disclosure_ledger_lists_releases_and_exports_as_csv_and_json() {
    let s = setup_on(|_| {}, None).await;
    let browser = Browser::new();
    let params = browser
        .authorize(
            &s.base,
            &authorize_url(
                &s.base,
                "hall",
                "http://127.0.0.1:9/cb",
                &[("scope", "openid profile phone")],
            ),
        )
        .await;
    let (status, tokens) =
        crate::code_exchange(&s, "hall", "http://127.0.0.1:9/cb", &params["code"]).await;
    assert_eq!(status, 200);
    // Access tokens carry no claims; userinfo releases them (and the audit log records it).
    let info = crate::userinfo(&s, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(info.status(), 200);
    let csv = follow(
        &browser,
        &s.base,
        browser.get(&format!("{}/account/ledger.csv", s.base)).await,
    )
    .await;
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(
        csv.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("ledger.csv")
    );
    let csv = csv.text().await.unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "time,client_id,service,claims,via,consent"
    );
    let row = lines.next().expect("one release");
    assert!(
        row.contains(",hall,") && row.contains("phone_number") && row.contains("userinfo"),
        "{row}"
    );
    let json: Value = browser
        .get(&format!("{}/account/ledger.json", s.base))
        .await
        .json()
        .await
        .unwrap();
    let first = &json.as_array().unwrap()[0];
    assert_eq!(first["client_id"], "hall");
    assert!(
        first["claims"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "name")
    );
    assert!(
        first["consent"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "phone")
    );
    // Without a session: no ledger.
    let stranger = Browser::new();
    let r = stranger
        .get(&format!("{}/account/ledger.json", s.base))
        .await;
    assert_eq!(r.status(), 303);
}

#[tokio::test]
async fn a_password_change_needs_the_current_one_and_ends_the_other_sessions() {
    let s = setup_on(|_| {}, None).await;
    let app = s._server.test_app.app.clone();
    let other = Browser::new();
    crate::code_for(&s, &other, "tax", "http://127.0.0.1:9/tax", &[]).await;
    let browser = Browser::new();
    crate::code_for(&s, &browser, "tax", "http://127.0.0.1:9/tax", &[]).await;
    let page = follow(
        &browser,
        &s.base,
        browser.get(&format!("{}/account", s.base)).await,
    )
    .await
    .text()
    .await
    .unwrap();
    let csrf = hidden(&page, "csrf");
    let change = |current: &'static str, new: &'static str| {
        let csrf = csrf.clone();
        let browser = &browser;
        let base = s.base.clone();
        async move {
            browser
                .post(
                    &format!("{base}/account/password"),
                    &[
                        ("csrf", &csrf),
                        ("current", current),
                        ("password", new),
                        ("password2", new),
                    ],
                )
                .await
        }
    };
    let wrong = change("Not-the-pass-1", "Evening-2027!").await;
    assert_eq!(wrong.status(), 401);
    let weak = change(PASSWORD, "weak").await;
    assert_eq!(weak.status(), 400);
    let ok = change(PASSWORD, "Evening-2027!").await;
    assert_eq!(ok.status(), 200);
    assert!(ok.text().await.unwrap().contains("密码已修改"));
    // The other browser's session ended; this one goes on.
    let again = other
        .get(&authorize_url(
            &s.base,
            "tax",
            "http://127.0.0.1:9/tax",
            &[],
        ))
        .await;
    assert!(again.text().await.unwrap().contains("action=\"/login\""));
    let still = browser
        .get(&authorize_url(
            &s.base,
            "tax",
            "http://127.0.0.1:9/tax",
            &[],
        ))
        .await;
    assert!(still.status().is_redirection());
    assert!(redirect_params(&still).contains_key("code"));
    // A form without the page's CSRF token changes nothing.
    let forged = browser
        .post(
            &format!("{}/account/password", s.base),
            &[
                ("csrf", "forged"),
                ("current", "Evening-2027!"),
                ("password", "Night-2028!!"),
                ("password2", "Night-2028!!"),
            ],
        )
        .await;
    assert_eq!(forged.status(), 400);
    let records = app.store.audit_records(1, 1000).await.unwrap();
    assert_eq!(
        records
            .iter()
            .filter(|r| r.event == "password_change" && r.result == "success")
            .count(),
        1
    );
    // A session is not a password oracle: five tries per lockout window, then 429.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            change("Guess-pass-01", "Night-2028!!")
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(
        statuses,
        [401, 401, 429, 429],
        "three tries were spent above"
    );
}

/// A browser signed in to the personal page as the test person, and the page.
async fn personal_page(s: &crate::Setup) -> (Browser, String) {
    let browser = Browser::new();
    crate::code_for(s, &browser, "tax", "http://127.0.0.1:9/tax", &[]).await;
    let page = follow(
        &browser,
        &s.base,
        browser.get(&format!("{}/account", s.base)).await,
    )
    .await
    .text()
    .await
    .unwrap();
    (browser, page)
}

#[tokio::test]
async fn the_phone_changes_with_codes_to_the_old_and_the_new_number() {
    let s = setup_on(|_| {}, None).await;
    let app = s._server.test_app.app.clone();
    let (browser, page) = personal_page(&s).await;
    let new = "13700001111";
    let started = browser
        .post(
            &format!("{}/account/phone", s.base),
            &[
                ("csrf", &hidden(&page, "csrf")),
                ("phone", new),
                ("proof", "old"),
            ],
        )
        .await;
    assert_eq!(started.status(), 200);
    let confirm = started.text().await.unwrap();
    assert!(confirm.contains("name=\"old_code\""), "{confirm}");
    let old_code = crate::common::people::last_sms_code(&app, crate::PHONE);
    let new_code = crate::common::people::last_sms_code(&app, new);
    let wrong = if old_code == "000000" {
        "000001"
    } else {
        "000000"
    };
    let post = |old: String, new_c: String| {
        let browser = &browser;
        let base = s.base.clone();
        let confirm = confirm.clone();
        async move {
            browser
                .post(
                    &format!("{base}/account/phone/confirm"),
                    &[
                        ("csrf", hidden(&confirm, "csrf").as_str()),
                        ("draft", hidden(&confirm, "draft").as_str()),
                        ("old_code", old.as_str()),
                        ("new_code", new_c.as_str()),
                    ],
                )
                .await
        }
    };
    let r = post(wrong.to_owned(), new_code.clone()).await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("原手机号码收到的验证码"));
    let r = post(old_code, new_code).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("手机号码已更换"));
    let account = app.identities.find(new, app.now()).await.unwrap().unwrap();
    assert_eq!(account.phone.unwrap().as_str(), new);
    assert!(
        app.identities
            .find(crate::PHONE, app.now())
            .await
            .unwrap()
            .is_none()
    );
    let records = app.store.audit_records(1, 1000).await.unwrap();
    let change = records
        .iter()
        .find(|r| r.event == "phone_change" && r.result == "success")
        .expect("audited");
    assert!(
        !format!("{change:?}").contains(new),
        "the number only as a keyed hash"
    );
}

#[tokio::test]
async fn without_the_old_number_a_fresh_real_name_check_proves_the_person() {
    let s = setup_on(|_| {}, None).await;
    let app = s._server.test_app.app.clone();
    let (browser, page) = personal_page(&s).await;
    let new = "13700002222";
    let start = |name: &'static str| {
        let browser = &browser;
        let base = s.base.clone();
        let csrf = hidden(&page, "csrf");
        async move {
            browser
                .post(
                    &format!("{base}/account/phone"),
                    &[
                        ("csrf", csrf.as_str()),
                        ("phone", new),
                        ("proof", "real_name"),
                        ("number", ID_NUMBER),
                        ("name", name),
                    ],
                )
                .await
        }
    };
    let refused = start("李四").await;
    assert_eq!(refused.status(), 422);
    assert!(crate::common::people::sms_codes(&app, new).is_empty());
    let started = start(crate::NAME).await;
    assert_eq!(started.status(), 200);
    let confirm = started.text().await.unwrap();
    assert!(
        !confirm.contains("name=\"old_code\""),
        "no code to the old number"
    );
    let code = crate::common::people::last_sms_code(&app, new);
    let r = browser
        .post(
            &format!("{}/account/phone/confirm", s.base),
            &[
                ("csrf", hidden(&confirm, "csrf").as_str()),
                ("draft", hidden(&confirm, "draft").as_str()),
                ("new_code", code.as_str()),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(app.identities.find(new, app.now()).await.unwrap().is_some());
}

#[tokio::test]
async fn closing_the_account_stops_sign_in_at_once_and_erasure_keeps_only_the_id_in_the_audit_log()
{
    let s = setup_on(|c| c.logout.poll_ms = 50, None).await;
    let app = s._server.test_app.app.clone();
    let rp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = rp.local_addr().unwrap().port();
    let mut rx = backchannel_receiver(rp);
    let mut spec = client_spec(
        "bc",
        "http://127.0.0.1:9/bc",
        AuthMethod::ClientSecretBasic,
        true,
    );
    spec.settings.backchannel_logout_uri = Some(format!("http://127.0.0.1:{port}/backchannel"));
    register(&app, spec, SECRET).await;
    let browser = Browser::new();
    crate::code_for(&s, &browser, "bc", "http://127.0.0.1:9/bc", &[]).await;
    let page = follow(
        &browser,
        &s.base,
        browser.get(&format!("{}/account", s.base)).await,
    )
    .await
    .text()
    .await
    .unwrap();
    let account_id = app
        .identities
        .find(ID_NUMBER, app.now())
        .await
        .unwrap()
        .unwrap()
        .id;
    let close = |current: &'static str, confirm: &'static str| {
        let browser = &browser;
        let base = s.base.clone();
        let csrf = hidden(&page, "csrf");
        async move {
            browser
                .post(
                    &format!("{base}/account/close"),
                    &[
                        ("csrf", csrf.as_str()),
                        ("current", current),
                        ("confirm", confirm),
                    ],
                )
                .await
        }
    };
    assert_eq!(close(PASSWORD, "").await.status(), 400, "not confirmed");
    assert_eq!(close("Wrong-pass-1", "yes").await.status(), 401);
    let closed = close(PASSWORD, "yes").await;
    assert_eq!(closed.status(), 200);
    assert!(closed.text().await.unwrap().contains("30 天后删除"));
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("the service was not told")
        .unwrap();
    // No sign-in any more: password, SMS code.
    let other = Browser::new();
    let login = other
        .page(&authorize_url(
            &s.base,
            "tax",
            "http://127.0.0.1:9/tax",
            &[],
        ))
        .await;
    let refused = other.login_page(&s.base, &login, ID_NUMBER, PASSWORD).await;
    assert!(refused.contains("无法登录"), "{refused}");
    other.sms_send(&s.base, &login, crate::PHONE).await;
    assert!(
        crate::common::people::sms_codes(&app, crate::PHONE).is_empty(),
        "no code for a closed account"
    );

    // Erasure after the grace period: the data goes, the audit log keeps the id.
    let context = yihao::protocol::audit::RequestContext::default();
    let audit = app.audit(&context);
    let early =
        yihao::protocol::my_account::erase_closed(app.store.as_ref(), &audit, app.now() - 10)
            .await
            .unwrap();
    assert_eq!(early, 0, "within the grace period");
    let erased =
        yihao::protocol::my_account::erase_closed(app.store.as_ref(), &audit, app.now() + 1)
            .await
            .unwrap();
    assert_eq!(erased, 1);
    assert!(
        app.identities
            .find(ID_NUMBER, app.now())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        app.store
            .account(account_id.as_str())
            .await
            .unwrap()
            .is_none()
    );
    let records = app.store.audit_records(1, 10_000).await.unwrap();
    assert!(records.iter().any(|r| r.event == "account_closed"));
    let erasure = records
        .iter()
        .find(|r| r.event == "account_erased")
        .unwrap();
    assert_eq!(erasure.target.as_deref(), Some(account_id.as_str()));
}
