//! Self-service registration end to end: from the login page of a relying party, through the
//! development register and SMS outbox, back to the relying party signed in; and every failure path,
//! each checked to leave no account behind.

use openidconnect::TokenResponse;
use yihao::app::App;
use yihao::domain::document::Document;

use crate::common::people::last_sms_code;
use crate::{
    Browser, PHONE, SECRET, hidden, redirect_params, relying_party, rp_exchange, rp_request,
    setup_on,
};

const NUMBER: &str = "110101199003070011";
const NAME: &str = "测试李四";
const MOBILE: &str = "13911112222";
const GOOD_PASSWORD: &str = "Sunrise-2026!";

/// The registration form reached from the login page of a fresh request at "hall".
async fn register_form(
    s: &crate::Setup,
    browser: &Browser,
) -> (String, crate::RpClient, openidconnect::Nonce) {
    let (client, _) = relying_party(&s.base, "hall", Some(SECRET), "http://127.0.0.1:9/cb").await;
    let (url, _, nonce) = rp_request(&client);
    let login = browser.page(url.as_str()).await;
    let interaction = hidden(&login, "interaction");
    assert!(
        login.contains(&format!("/register?interaction={interaction}")),
        "{login}"
    );
    let form = browser
        .page(&format!("{}/register?interaction={interaction}", s.base))
        .await;
    assert_eq!(hidden(&form, "interaction"), interaction);
    (form, client, nonce)
}

async fn apply(
    s: &crate::Setup,
    browser: &Browser,
    form: &str,
    number: &str,
    name: &str,
    phone: &str,
) -> reqwest::Response {
    browser
        .post(
            &format!("{}/register", s.base),
            &[
                ("interaction", &hidden(form, "interaction")),
                ("csrf", &hidden(form, "csrf")),
                ("kind", "resident_id"),
                ("number", number),
                ("country", ""),
                ("name", name),
                ("phone", phone),
            ],
        )
        .await
}

async fn complete(
    s: &crate::Setup,
    browser: &Browser,
    page: &str,
    code: &str,
    password: &str,
    consents: &[&str],
) -> reqwest::Response {
    let (draft, csrf) = (hidden(page, "draft"), hidden(page, "csrf"));
    let mut form = vec![
        ("draft", draft.as_str()),
        ("csrf", csrf.as_str()),
        ("code", code),
        ("password", password),
        ("password2", password),
    ];
    for c in consents {
        form.push((c, "yes"));
    }
    browser
        .post(&format!("{}/register/complete", s.base), &form)
        .await
}

const ALL: [&str; 3] = ["terms", "privacy", "sensitive"];

async fn registered(app: &App, number: &str) -> bool {
    app.identities
        .find_by_document(&Document::national(number, app.now()).unwrap())
        .await
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn a_new_citizen_registers_and_arrives_signed_in_at_the_relying_party() {
    let s = setup_on(|_| {}, None).await;
    let app = s._server.test_app.app.clone();
    let browser = Browser::new();
    let (form, client, nonce) = register_form(&s, &browser).await;
    let confirm = apply(&s, &browser, &form, NUMBER, NAME, MOBILE).await;
    assert_eq!(confirm.status(), 200);
    let confirm = confirm.text().await.unwrap();
    assert!(confirm.contains("139****2222"), "{confirm}");
    assert!(
        !confirm.contains(NUMBER) && !confirm.contains(MOBILE),
        "no numbers on the page"
    );
    let code = last_sms_code(&app, MOBILE);
    let consent = complete(&s, &browser, &confirm, &code, GOOD_PASSWORD, &ALL).await;
    let consent = consent.text().await.unwrap();
    assert!(consent.contains("action=\"/consent\""), "{consent}");
    let response = browser.consent(&s.base, &consent, "allow").await;
    let code = redirect_params(&response)["code"].clone();
    let (_, http) = relying_party(&s.base, "hall", Some(SECRET), "http://127.0.0.1:9/cb").await;
    let tokens = rp_exchange(&client, &http, code).await;
    let claims = tokens
        .id_token()
        .unwrap()
        .claims(&client.id_token_verifier(), &nonce)
        .unwrap();
    assert_eq!(
        claims.auth_context_ref().unwrap().as_str(),
        "urn:yihao:loa:2"
    );

    let account = app
        .identities
        .find_by_document(&Document::national(NUMBER, app.now()).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.evidence.level().get(), 2);
    assert_eq!(account.evidence.method().as_str(), "register_check");
    assert_eq!(account.phone.unwrap().as_str(), MOBILE);
    let agreements = app.store.agreements(account.id.as_str()).await.unwrap();
    let kinds: Vec<_> = agreements.iter().map(|a| a.kind.as_str()).collect();
    assert_eq!(kinds.len(), 3);
    for kind in ["terms", "privacy", "sensitive_pi"] {
        assert!(kinds.contains(&kind), "{kinds:?}");
    }
    assert!(agreements.iter().all(|a| a.version == "2026-11-30"));
    // The password works at the next login.
    let other = Browser::new();
    let (url, _, _) = rp_request(&client);
    let login = other.page(url.as_str()).await;
    let next = other.login(&s.base, &login, NUMBER, GOOD_PASSWORD).await;
    assert!(
        next.status().is_redirection(),
        "signed in; consent was remembered"
    );
    let records = app.store.audit_records(1, 1000).await.unwrap();
    assert!(
        records
            .iter()
            .any(|r| r.event == "registration" && r.result == "success"),
        "audited"
    );
    assert!(
        records.iter().all(|r| !format!("{r:?}").contains(NUMBER)),
        "no ID number in the audit log"
    );
}

#[tokio::test]
async fn a_registered_id_number_gets_the_recovery_path_not_a_second_account() {
    let s = setup_on(|_| {}, None).await;
    let app = s._server.test_app.app.clone();
    let browser = Browser::new();
    let (form, _, _) = register_form(&s, &browser).await;
    // The test person (张三, phone 13812341234) is registered.
    let r = apply(
        &s,
        &browser,
        &form,
        crate::ID_NUMBER,
        crate::NAME,
        "13900000001",
    )
    .await;
    assert_eq!(r.status(), 409);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("138****1234"),
        "the phone on file, masked: {text}"
    );
    assert!(!text.contains(PHONE));
    assert!(text.contains("/recover?interaction="), "{text}");
    // Another name: registered, but the phone is not shown.
    let r = apply(&s, &browser, &form, crate::ID_NUMBER, "别人", "13900000001").await;
    assert_eq!(r.status(), 409);
    assert!(!r.text().await.unwrap().contains("138****1234"));
    assert!(
        crate::common::people::sms_codes(&app, "13900000001").is_empty(),
        "no code sent"
    );
}

#[tokio::test]
async fn bad_input_is_named_field_by_field_and_nothing_is_sent() {
    let s = setup_on(|_| {}, None).await;
    let app = s._server.test_app.app.clone();
    let browser = Browser::new();
    let (form, _, _) = register_form(&s, &browser).await;
    for (number, name, phone, field, words) in [
        (
            "110105194912310021",
            NAME,
            MOBILE,
            "number",
            "证件号码不正确",
        ),
        (NUMBER, "", MOBILE, "name", "请填写姓名"),
        (NUMBER, NAME, "1234", "phone", "11 位手机号码"),
    ] {
        let r = apply(&s, &browser, &form, number, name, phone).await;
        assert_eq!(r.status(), 400, "{field}");
        let text = r.text().await.unwrap();
        assert!(text.contains(words), "{field}: {text}");
        assert!(
            text.contains(&format!("id=\"{field}\" name=\"{field}\""))
                && text.contains("aria-invalid=\"true\""),
            "{field} marked"
        );
    }
    assert!(crate::common::people::sms_codes(&app, MOBILE).is_empty());
    // A form without its CSRF token changes nothing.
    let r = browser
        .post(
            &format!("{}/register", s.base),
            &[
                ("number", NUMBER),
                ("name", NAME),
                ("phone", MOBILE),
                ("csrf", "x"),
            ],
        )
        .await;
    assert_eq!(r.status(), 400);
    assert!(crate::common::people::sms_codes(&app, MOBILE).is_empty());
}

#[tokio::test]
async fn every_refused_last_step_leaves_no_account() {
    let s = setup_on(|_| {}, None).await;
    let app = s._server.test_app.app.clone();
    let browser = Browser::new();
    let (form, _, _) = register_form(&s, &browser).await;
    let confirm = apply(&s, &browser, &form, NUMBER, NAME, MOBILE)
        .await
        .text()
        .await
        .unwrap();
    let code = last_sms_code(&app, MOBILE);
    let wrong = if code == "000000" { "000001" } else { "000000" };
    for (code, password, consents, status, words) in [
        (code.as_str(), GOOD_PASSWORD, &ALL[..2], 400, "请阅读并同意"),
        (code.as_str(), "short", &ALL[..], 400, "至少需要 8 位"),
        (
            code.as_str(),
            "Abc110101199003070011!",
            &ALL[..],
            400,
            "不得包含证件号码",
        ),
        (wrong, GOOD_PASSWORD, &ALL[..], 401, "验证码不正确"),
    ] {
        let r = complete(&s, &browser, &confirm, code, password, consents).await;
        assert_eq!(r.status(), status, "{words}");
        assert!(r.text().await.unwrap().contains(words), "{words}");
        assert!(
            !registered(&app, NUMBER).await,
            "{words}: an account was created"
        );
    }
    // Two passwords that differ.
    let (draft, csrf) = (hidden(&confirm, "draft"), hidden(&confirm, "csrf"));
    let r = browser
        .post(
            &format!("{}/register/complete", s.base),
            &[
                ("draft", draft.as_str()),
                ("csrf", csrf.as_str()),
                ("code", code.as_str()),
                ("password", GOOD_PASSWORD),
                ("password2", "Other-pass-1"),
                ("terms", "yes"),
                ("privacy", "yes"),
                ("sensitive", "yes"),
            ],
        )
        .await;
    assert_eq!(r.status(), 400);
    assert!(!registered(&app, NUMBER).await);
    // Another browser cannot finish this registration.
    let stranger = Browser::new();
    let stranger_form = stranger.page(&format!("{}/register", s.base)).await;
    let r = stranger
        .post(
            &format!("{}/register/complete", s.base),
            &[
                ("draft", draft.as_str()),
                ("csrf", hidden(&stranger_form, "csrf").as_str()),
                ("code", code.as_str()),
                ("password", GOOD_PASSWORD),
                ("password2", GOOD_PASSWORD),
                ("terms", "yes"),
                ("privacy", "yes"),
                ("sensitive", "yes"),
            ],
        )
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("注册已超时"));
    assert!(!registered(&app, NUMBER).await);
}

#[tokio::test]
async fn the_register_refusing_the_name_or_the_number_creates_nothing() {
    let s = setup_on(|_| {}, None).await;
    let app = s._server.test_app.app.clone();
    for (number, name, words) in [
        (NUMBER, "李四", "证件号码与姓名不一致"),
        // Valid by checksum, unknown to the register.
        ("440305200002290029", "测试某人", "未能核验"),
    ] {
        let browser = Browser::new();
        let (form, _, _) = register_form(&s, &browser).await;
        let confirm = apply(&s, &browser, &form, number, name, MOBILE)
            .await
            .text()
            .await
            .unwrap();
        let code = last_sms_code(&app, MOBILE);
        let r = complete(&s, &browser, &confirm, &code, GOOD_PASSWORD, &ALL).await;
        assert_eq!(r.status(), 422, "{words}");
        assert!(r.text().await.unwrap().contains(words));
        assert!(!registered(&app, number).await, "{words}");
        // The next registration from this number waits for the resend gate: move past it.
        app.ephemeral
            .delete(&format!(
                "sms:resend:register:{}",
                app.sms_key
                    .number_key(&yihao::domain::identifiers::Phone::parse(MOBILE).unwrap())
            ))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_register_that_is_down_keeps_the_phone_verified_and_creates_nothing() {
    let gateway = crate::common::gateway::Gateway::start().await;
    gateway.set("down");
    let url = gateway.url();
    let s = setup_on(
        move |c| {
            c.verify.person.adapter = yihao::config::Adapter::Http;
            c.verify.person.url = url;
            c.verify.person.timeout_ms = 300;
            c.verify.person.max_attempts = 1;
        },
        None,
    )
    .await;
    let app = s._server.test_app.app.clone();
    let browser = Browser::new();
    let (form, _, _) = register_form(&s, &browser).await;
    let confirm = apply(&s, &browser, &form, NUMBER, NAME, MOBILE)
        .await
        .text()
        .await
        .unwrap();
    let code = last_sms_code(&app, MOBILE);
    let r = complete(&s, &browser, &confirm, &code, GOOD_PASSWORD, &ALL).await;
    assert_eq!(r.status(), 503);
    assert!(r.text().await.unwrap().contains("实名核验服务暂时不可用"));
    assert!(!registered(&app, NUMBER).await);
    // Slow is the same as down; the phone stays verified (no code needed on the retry).
    gateway.set("slow");
    let r = complete(&s, &browser, &confirm, "", GOOD_PASSWORD, &ALL).await;
    assert_eq!(r.status(), 503);
    // The register is back: the retry succeeds without a new code.
    gateway.set(r#"{"result":"match","reference":"PRV-7"}"#);
    let r = complete(&s, &browser, &confirm, "", GOOD_PASSWORD, &ALL).await;
    assert_eq!(r.status(), 200, "signed in, consent page");
    let account = app
        .identities
        .find_by_document(&Document::national(NUMBER, app.now()).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.evidence.source(), "population register PRV-7");
}

#[tokio::test]
async fn a_phone_of_another_account_is_refused_after_it_is_proven() {
    let s = setup_on(|_| {}, None).await;
    let app = s._server.test_app.app.clone();
    let browser = Browser::new();
    let (form, _, _) = register_form(&s, &browser).await;
    let confirm = apply(&s, &browser, &form, NUMBER, NAME, PHONE)
        .await
        .text()
        .await
        .unwrap();
    let code = last_sms_code(&app, PHONE);
    let r = complete(&s, &browser, &confirm, &code, GOOD_PASSWORD, &ALL).await;
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("已被其他账号使用"));
    assert!(!registered(&app, NUMBER).await);
}
