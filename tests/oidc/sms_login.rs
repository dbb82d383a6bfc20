//! Sign-in by SMS code, end to end: the login page's SMS tab, the code from the development
//! gateway's outbox, the relying party's ID token (`amr` sms, level 2); and every way a code is
//! refused: wrong, expired, reused, too many tries, too soon, a gateway that is down; an unknown
//! number answered like a known one; the owner's unlock of a locked account.

use std::sync::Arc;

use openidconnect::TokenResponse;
use yihao::clock::ManualClock;

use crate::common::people::{last_sms_code, sms_codes};
use crate::{Browser, ID_NUMBER, PHONE, SECRET, relying_party, rp_exchange, rp_request, setup_on};

/// The login page of a fresh authorization request at "hall".
async fn login_page(
    s: &crate::Setup,
    browser: &Browser,
) -> (String, crate::RpClient, openidconnect::Nonce) {
    let (client, _) = relying_party(&s.base, "hall", Some(SECRET), "http://127.0.0.1:9/cb").await;
    let (url, _, nonce) = rp_request(&client);
    let page = browser.page(url.as_str()).await;
    assert!(
        page.contains("/login/sms?interaction="),
        "no SMS tab: {page}"
    );
    (page, client, nonce)
}

#[tokio::test]
async fn a_person_signs_in_by_sms_code_and_the_id_token_says_sms_at_level_2() {
    let s = setup_on(|_| {}, None).await;
    let app = s._server.test_app.app.clone();
    let browser = Browser::new();
    let (page, client, nonce) = login_page(&s, &browser).await;
    let sent = browser.sms_send(&s.base, &page, "+86 138-1234-1234").await;
    assert_eq!(sent.status(), 200);
    let sent = sent.text().await.unwrap();
    assert!(sent.contains("138****1234"), "{sent}");
    assert!(!sent.contains(PHONE), "the number is shown masked: {sent}");
    let code = last_sms_code(&app, PHONE);
    let response = browser
        .sms_login(&s.base, &sent, "+86 138-1234-1234", &code)
        .await;
    // "hall" asks for consent.
    let consent = response.text().await.unwrap();
    assert!(consent.contains("action=\"/consent\""), "{consent}");
    let response = browser.consent(&s.base, &consent, "allow").await;
    let code = crate::redirect_params(&response)["code"].clone();
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
    let amr: Vec<_> = claims
        .auth_method_refs()
        .unwrap()
        .iter()
        .map(|a| a.as_str().to_owned())
        .collect();
    assert_eq!(amr, ["sms"]);
}

#[tokio::test]
async fn an_unknown_number_is_answered_like_a_known_one_and_nothing_is_sent() {
    let s = setup_on(|_| {}, None).await;
    let app = s._server.test_app.app.clone();
    let browser = Browser::new();
    let (page, _, _) = login_page(&s, &browser).await;
    let known = browser.sms_send(&s.base, &page, PHONE).await;
    let unknown = browser.sms_send(&s.base, &page, "13900001111").await;
    assert_eq!(known.status(), unknown.status());
    let notice = |text: &str, masked: &str| {
        text.split("class=\"notice\"")
            .nth(1)
            .unwrap()
            .split("</p>")
            .next()
            .unwrap()
            .replace(masked, "MASK")
    };
    let (known, unknown) = (known.text().await.unwrap(), unknown.text().await.unwrap());
    assert_eq!(
        notice(&known, "138****1234"),
        notice(&unknown, "139****1111")
    );
    assert_eq!(sms_codes(&app, PHONE).len(), 1);
    assert!(sms_codes(&app, "13900001111").is_empty());
    // Any code for the unknown number is simply wrong.
    let refused = browser
        .sms_login(&s.base, &unknown, "13900001111", "123456")
        .await;
    assert_eq!(refused.status(), 401);
}

#[tokio::test]
async fn wrong_expired_reused_and_too_many_codes_are_refused() {
    let clock = Arc::new(ManualClock::starting_now());
    let s = setup_on(|_| {}, Some(clock.clone())).await;
    let app = s._server.test_app.app.clone();
    let browser = Browser::new();
    let (page, _, _) = login_page(&s, &browser).await;
    let sent = browser
        .sms_send(&s.base, &page, PHONE)
        .await
        .text()
        .await
        .unwrap();
    let code = last_sms_code(&app, PHONE);
    let wrong = if code == "000000" { "000001" } else { "000000" };

    let r = browser.sms_login(&s.base, &sent, PHONE, wrong).await;
    assert_eq!(r.status(), 401);
    let text = r.text().await.unwrap();
    assert!(text.contains("还可尝试 4 次"), "{text}");

    let r = browser.sms_login(&s.base, &sent, PHONE, "12ab").await;
    assert_eq!(r.status(), 400, "malformed");

    // Expired: five minutes later the right code is refused.
    clock.advance(300);
    let r = browser.sms_login(&s.base, &sent, PHONE, &code).await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("已过期"));

    // A new code (the resend gate passed long ago), used once, then reused.
    let sent = browser
        .sms_send(&s.base, &page, PHONE)
        .await
        .text()
        .await
        .unwrap();
    let code = last_sms_code(&app, PHONE);
    let first = browser.sms_login(&s.base, &sent, PHONE, &code).await;
    assert_eq!(first.status(), 200, "signed in (consent page)");
    // The interaction is spent; a fresh login page for the reuse.
    let other = Browser::new();
    let (page2, _, _) = login_page(&s, &other).await;
    let tab = other
        .sms_send(&s.base, &page2, "13800000000")
        .await
        .text()
        .await
        .unwrap();
    let reused = other.sms_login(&s.base, &tab, PHONE, &code).await;
    assert_eq!(reused.status(), 401);
    assert!(reused.text().await.unwrap().contains("已使用"));

    // Five wrong tries void a code.
    clock.advance(61);
    let sent = other
        .sms_send(&s.base, &tab, PHONE)
        .await
        .text()
        .await
        .unwrap();
    let code = last_sms_code(&app, PHONE);
    let wrong = if code == "000000" { "000001" } else { "000000" };
    for _ in 0..4 {
        assert_eq!(
            other.sms_login(&s.base, &sent, PHONE, wrong).await.status(),
            401
        );
    }
    let fifth = other.sms_login(&s.base, &sent, PHONE, wrong).await;
    assert!(fifth.text().await.unwrap().contains("错误次数过多"));
    let after = other.sms_login(&s.base, &sent, PHONE, &code).await;
    assert_eq!(
        after.status(),
        401,
        "the right code after the fifth wrong try"
    );
}

#[tokio::test]
async fn a_second_code_within_a_minute_is_refused_with_retry_after() {
    let clock = Arc::new(ManualClock::starting_now());
    let s = setup_on(|_| {}, Some(clock.clone())).await;
    let app = s._server.test_app.app.clone();
    let browser = Browser::new();
    let (page, _, _) = login_page(&s, &browser).await;
    assert_eq!(browser.sms_send(&s.base, &page, PHONE).await.status(), 200);
    clock.advance(20);
    let again = browser.sms_send(&s.base, &page, PHONE).await;
    assert_eq!(again.status(), 429);
    assert_eq!(again.headers()["retry-after"], "40");
    assert_eq!(sms_codes(&app, PHONE).len(), 1);
}

#[tokio::test]
async fn a_gateway_that_is_down_or_slow_gets_a_clear_message_and_no_code() {
    let gateway = crate::common::gateway::Gateway::start().await;
    for (behaviour, status) in [("down", 503), ("slow", 503)] {
        gateway.set(behaviour);
        let url = gateway.url();
        let s = setup_on(
            move |c| {
                c.sms.adapter = yihao::config::Adapter::Http;
                c.sms.http.url = url;
                c.sms.http.signing_key = yihao::config::Secret::new("k");
                c.sms.http.timeout_ms = 300;
                c.sms.http.max_attempts = 2;
            },
            None,
        )
        .await;
        let browser = Browser::new();
        let (page, _, _) = login_page(&s, &browser).await;
        let r = browser.sms_send(&s.base, &page, PHONE).await;
        assert_eq!(r.status(), status, "{behaviour}");
        assert!(
            r.text().await.unwrap().contains("短信服务暂时不可用"),
            "{behaviour}"
        );
    }
}

#[tokio::test]
async fn signing_in_by_sms_is_the_owners_unlock_of_a_password_lockout() {
    let s = setup_on(|_| {}, None).await;
    let app = s._server.test_app.app.clone();
    let browser = Browser::new();
    let (page, _, _) = login_page(&s, &browser).await;
    for _ in 0..5 {
        browser
            .login(&s.base, &page, ID_NUMBER, "Wrong-pass-1")
            .await;
    }
    let locked = browser
        .login_page(&s.base, &page, ID_NUMBER, crate::PASSWORD)
        .await;
    assert!(locked.contains("15 分钟"), "locked: {locked}");
    let sent = browser
        .sms_send(&s.base, &page, PHONE)
        .await
        .text()
        .await
        .unwrap();
    let code = last_sms_code(&app, PHONE);
    let r = browser.sms_login(&s.base, &sent, PHONE, &code).await;
    assert_eq!(r.status(), 200, "signed in");
    let records = app.store.audit_records(1, 1000).await.unwrap();
    assert!(
        records.iter().any(|r| r.event == "account_unlock"),
        "unlock audited"
    );
    // The password works again.
    let other = Browser::new();
    let (page, _, _) = login_page(&s, &other).await;
    let after = other
        .login(&s.base, &page, ID_NUMBER, crate::PASSWORD)
        .await;
    assert_eq!(after.status(), 200, "consent page after the password");
    assert!(after.text().await.unwrap().contains("action=\"/consent\""));
}
