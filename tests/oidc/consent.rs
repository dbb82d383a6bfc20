//! Consent: remembered per client and scope, refusable; and claims released only for their scope.

use serde_json::Value;

use crate::{
    Browser, ID_NUMBER, PASSWORD, PHONE, authorize_url, code_for, redirect_params, setup,
    tax_exchange, userinfo,
};

#[tokio::test]
async fn consent_is_remembered_and_a_refusal_is_access_denied() {
    let s = setup(|_| {}).await;
    let browser = Browser::new();
    let page = browser
        .page(&authorize_url(
            &s.base,
            "hall",
            "http://127.0.0.1:9/cb",
            &[],
        ))
        .await;
    let consent = browser.login_page(&s.base, &page, PHONE, PASSWORD).await;
    assert!(consent.contains("您的姓名和性别"), "{consent}");
    let params = redirect_params(&browser.consent(&s.base, &consent, "deny").await);
    assert_eq!(params["error"], "access_denied");
    let params = browser
        .authorize(
            &s.base,
            &authorize_url(&s.base, "hall", "http://127.0.0.1:9/cb", &[]),
        )
        .await;
    assert!(params.contains_key("code"));
    let again = browser
        .get(&authorize_url(
            &s.base,
            "hall",
            "http://127.0.0.1:9/cb",
            &[],
        ))
        .await;
    assert!(again.status().is_redirection(), "consent asked twice");
    let more = browser
        .get(&authorize_url(
            &s.base,
            "hall",
            "http://127.0.0.1:9/cb",
            &[("scope", "openid profile phone")],
        ))
        .await;
    assert!(
        more.text().await.unwrap().contains("action=\"/consent\""),
        "a new scope needs consent"
    );
}

#[tokio::test]
async fn restricted_claims_need_their_scope() {
    let s = setup(|_| {}).await;
    let browser = Browser::new();
    let http = reqwest::Client::new();
    let code = code_for(
        &s,
        &browser,
        "tax",
        "http://127.0.0.1:9/tax",
        &[("scope", "openid idcard email")],
    )
    .await;
    let r = tax_exchange(&s, &code).await;
    let info: Value = userinfo(&s, r["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["id_number"], ID_NUMBER);
    assert_eq!(info["id_type"], "resident_id");
    assert!(
        info.get("name").is_none(),
        "profile was not asked for: {info}"
    );
    let post: Value = http
        .post(format!("{}/userinfo", s.base))
        .bearer_auth(r["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(post, info, "userinfo answers POST too");
}
