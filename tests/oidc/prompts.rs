//! What the authorization request asks of the person: `prompt`, `max_age`, `id_token_hint`,
//! `acr_values`, and the login page itself (language, hint, failures, forged forms).

use openidconnect::TokenResponse;
use yihao::domain::account::ProofMethod;

use crate::common::people::Person;
use crate::{
    Browser, ID_NUMBER, PASSWORD, authorize_url, hidden, jwt_part, redirect_params, rp_sign_in,
    setup, setup_on, tax_exchange,
};

#[tokio::test]
async fn prompt_none_without_a_session_is_login_required_and_with_one_gives_a_code() {
    let s = setup(|_| {}).await;
    let browser = Browser::new();
    let response = browser
        .get(&authorize_url(
            &s.base,
            "tax",
            "http://127.0.0.1:9/tax",
            &[("prompt", "none")],
        ))
        .await;
    let params = redirect_params(&response);
    assert_eq!(params["error"], "login_required");
    assert_eq!(params["state"], "st");
    assert_eq!(params["iss"], s.base);
    browser
        .authorize(
            &s.base,
            &authorize_url(&s.base, "tax", "http://127.0.0.1:9/tax", &[]),
        )
        .await;
    let params = redirect_params(
        &browser
            .get(&authorize_url(
                &s.base,
                "tax",
                "http://127.0.0.1:9/tax",
                &[("prompt", "none")],
            ))
            .await,
    );
    assert!(params.contains_key("code"), "{params:?}");
    // "hall" needs consent, which prompt=none cannot ask for.
    let params = redirect_params(
        &browser
            .get(&authorize_url(
                &s.base,
                "hall",
                "http://127.0.0.1:9/cb",
                &[("prompt", "none")],
            ))
            .await,
    );
    assert_eq!(params["error"], "consent_required");
}

#[tokio::test]
async fn prompt_login_max_age_and_select_account_ask_for_the_password_again() {
    // The server's clock stands still until the test moves it: max_age is checked to the second.
    let clock = std::sync::Arc::new(yihao::clock::ManualClock::starting_now());
    let s = setup_on(|_| {}, Some(clock.clone())).await;
    let browser = Browser::new();
    browser
        .authorize(
            &s.base,
            &authorize_url(&s.base, "tax", "http://127.0.0.1:9/tax", &[]),
        )
        .await;
    // max_age bounds the age of the last authentication: 5 seconds old is still within 5.
    clock.advance(5);
    let within = browser
        .get(&authorize_url(
            &s.base,
            "tax",
            "http://127.0.0.1:9/tax",
            &[("max_age", "5")],
        ))
        .await;
    assert!(redirect_params(&within).contains_key("code"), "{within:?}");
    clock.advance(1);
    for extra in [
        ("prompt", "login"),
        ("max_age", "5"),
        ("prompt", "select_account"),
    ] {
        let response = browser
            .get(&authorize_url(
                &s.base,
                "tax",
                "http://127.0.0.1:9/tax",
                &[extra],
            ))
            .await;
        assert_eq!(response.status(), 200, "{extra:?}");
        assert!(
            response.text().await.unwrap().contains("action=\"/login\""),
            "{extra:?}"
        );
    }
    // prompt=consent shows the consent page even to a first-party client.
    let page = browser
        .page(&authorize_url(
            &s.base,
            "tax",
            "http://127.0.0.1:9/tax",
            &[("prompt", "consent")],
        ))
        .await;
    assert!(page.contains("action=\"/consent\""));
}

#[tokio::test]
async fn the_login_page_speaks_english_on_request_prefills_the_hint_and_reveals_nothing_on_failure()
{
    let s = setup(|_| {}).await;
    let browser = Browser::new();
    let url = authorize_url(
        &s.base,
        "hall",
        "http://127.0.0.1:9/cb",
        &[("ui_locales", "en"), ("login_hint", "13812341234")],
    );
    let page = browser.page(&url).await;
    assert!(
        page.contains("lang=\"en\"") && page.contains("Log in"),
        "{page}"
    );
    assert!(page.contains("value=\"13812341234\""));
    assert!(!page.contains("<script"), "no script on the login page");
    let zh = browser
        .page(&authorize_url(
            &s.base,
            "hall",
            "http://127.0.0.1:9/cb",
            &[],
        ))
        .await;
    assert!(zh.contains("lang=\"zh-CN\""));
    let wrong = browser
        .login(&s.base, &page, ID_NUMBER, "Wrong-pass1!")
        .await;
    assert_eq!(wrong.status(), 401);
    let wrong_text = wrong.text().await.unwrap();
    let unknown = browser
        .login_page(&s.base, &page, "440305200002290029", "Wrong-pass1!")
        .await;
    let message = |p: &str| {
        p.split("role=\"alert\">")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        message(&wrong_text),
        message(&unknown),
        "known and unknown accounts fail alike"
    );
    // A forged form (CSRF token from elsewhere) is refused.
    let forged = browser
        .post(
            &format!("{}/login", s.base),
            &[
                ("interaction", &hidden(&page, "interaction")),
                ("csrf", "forged"),
                ("identifier", ID_NUMBER),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(forged.status(), 400);
    // Without the CSRF cookie (another browser) the form is refused too.
    let other = Browser::new();
    assert_eq!(
        other
            .login(&s.base, &page, ID_NUMBER, PASSWORD)
            .await
            .status(),
        400
    );
}

#[tokio::test]
async fn an_id_token_hint_for_someone_else_asks_for_a_login() {
    let s = setup(|_| {}).await;
    let browser = Browser::new();
    let (_, tokens, _) = rp_sign_in(&s, &browser, "hall", "http://127.0.0.1:9/cb").await;
    let hint = tokens.id_token().unwrap().to_string();
    // The hint names the session's person: no login form.
    let ok = browser
        .get(&authorize_url(
            &s.base,
            "hall",
            "http://127.0.0.1:9/cb",
            &[
                ("id_token_hint", &hint),
                ("prompt", "none"),
                ("scope", "openid"),
            ],
        ))
        .await;
    assert!(redirect_params(&ok).contains_key("code"));
    // A hint from another sector (another client's sub) does not match: login_required with prompt=none.
    let other = Browser::new();
    let (_, tokens, _) = rp_sign_in(&s, &other, "other", "https://other.example.gov.cn/cb").await;
    let foreign = tokens.id_token().unwrap().to_string();
    let refused = browser
        .get(&authorize_url(
            &s.base,
            "hall",
            "http://127.0.0.1:9/cb",
            &[
                ("id_token_hint", &foreign),
                ("prompt", "none"),
                ("scope", "openid"),
            ],
        ))
        .await;
    assert_eq!(redirect_params(&refused)["error"], "login_required");
}

#[tokio::test]
async fn acr_values_above_what_a_password_reaches_give_the_level_reached_without_looping() {
    let s = setup(|_| {}).await;
    let app = &s._server.test_app.app;
    // A self-declared (level 1) account.
    Person {
        level: 1,
        method: ProofMethod::SelfDeclared,
        ..Person::new("440305200002290029", "李四")
    }
    .create(app, Some(PASSWORD))
    .await;
    let browser = Browser::new();
    let url = authorize_url(
        &s.base,
        "tax",
        "http://127.0.0.1:9/tax",
        &[("acr_values", "urn:yihao:loa:2")],
    );
    let page = browser.page(&url).await;
    let response = browser
        .login(&s.base, &page, "440305200002290029", PASSWORD)
        .await;
    assert!(
        response.status().is_redirection(),
        "the login page came back: a loop"
    );
    let code = redirect_params(&response)["code"].clone();
    let tokens = tax_exchange(&s, &code).await;
    let claims = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(
        claims["acr"], "urn:yihao:loa:1",
        "the relying party sees the level actually reached"
    );
}
