//! The service window (亮码): the app shows a one-use identity code for what the person chose to
//! show; the window's business system redeems it by token exchange (RFC 8693) and reads userinfo;
//! the app sees the release in the disclosure ledger. A code redeemed twice, late, or by a client
//! not on the window channel is refused and audited.

use std::sync::Arc;

use serde_json::{Value, json};
use yihao::clock::ManualClock;
use yihao::domain::client::{AuthMethod, Channel};

use crate::{
    Browser, SECRET, Setup, authorize_url, client_spec, code_exchange, post_form, register,
    setup_on, userinfo,
};

async fn redeem(s: &Setup, client: &str, code: &str) -> (u16, Value) {
    post_form(
        &s.base,
        "/token",
        (client, SECRET),
        &[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", code),
            (
                "subject_token_type",
                "urn:yihao:params:oauth:token-type:identity-code",
            ),
        ],
    )
    .await
}

async fn new_code(s: &Setup, token: &str, scope: &str) -> String {
    let r: Value = reqwest::Client::new()
        .post(format!("{}/api/v1/identity-code", s.base))
        .bearer_auth(token)
        .json(&json!({ "scope": scope }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["expires_in"], 60, "{r}");
    r["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_window_reads_what_the_person_shows_once_and_the_app_sees_the_release() {
    let clock = Arc::new(ManualClock::starting_now());
    let s = setup_on(|_| {}, Some(clock.clone())).await;
    let app = &s._server.test_app.app;
    for (id, channel) in [
        ("mobile", Channel::App),
        ("window", Channel::Window),
        ("kiosk", Channel::Kiosk),
    ] {
        let mut spec = client_spec(
            id,
            &format!("http://127.0.0.1:9/{id}"),
            AuthMethod::ClientSecretBasic,
            true,
        );
        spec.name = format!("{id} 系统");
        spec.settings.channel = channel;
        register(app, spec, SECRET).await;
    }
    app.clients.reload().await.unwrap();
    let phone = Browser::new();
    let code = phone
        .authorize(
            &s.base,
            &authorize_url(&s.base, "mobile", "http://127.0.0.1:9/mobile", &[]),
        )
        .await["code"]
        .clone();
    let (_, tokens) = code_exchange(&s, "mobile", "http://127.0.0.1:9/mobile", &code).await;
    let app_token = tokens["access_token"].as_str().unwrap().to_owned();

    // The person shows their name; the window redeems the code and reads it.
    let shown = new_code(&s, &app_token, "openid profile").await;
    let (status, body) = redeem(&s, "window", &shown).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert!(body.get("id_token").is_none());
    assert_eq!(body["scope"], "openid profile");
    let window_token = body["access_token"].as_str().unwrap();
    let claims: Value = userinfo(&s, window_token).await.json().await.unwrap();
    assert_eq!(claims["name"], "张三");
    assert!(
        claims.get("phone_number").is_none(),
        "only what the person chose to show"
    );

    // Twice: refused.
    let (status, body) = redeem(&s, "window", &shown).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // Late: refused.
    let late = new_code(&s, &app_token, "openid").await;
    clock.advance(61);
    let (_, body) = redeem(&s, "window", &late).await;
    assert_eq!(body["error"], "invalid_grant");
    // Not a window: refused (and the code is not spent by it).
    let third = new_code(&s, &app_token, "openid").await;
    let (_, body) = redeem(&s, "kiosk", &third).await;
    assert_eq!(body["error"], "unauthorized_client");
    let (status, _) = redeem(&s, "window", &third).await;
    assert_eq!(status, 200);
    // The wrong token type.
    let (_, body) = post_form(
        &s.base,
        "/token",
        ("window", SECRET),
        &[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", "x"),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
        ],
    )
    .await;
    assert_eq!(body["error"], "invalid_request");

    // The app shows what the window received.
    let releases: Value = reqwest::Client::new()
        .get(format!("{}/api/v1/releases", s.base))
        .bearer_auth(&app_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let first = &releases["releases"][0];
    assert_eq!(first["service"], "window 系统", "{releases}");
    assert!(
        first["claims"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "name")
    );
    let records = app.store.audit_records(1, 10_000).await.unwrap();
    for reason in ["unknown_code", "expired_code", "not_a_window"] {
        assert!(
            records
                .iter()
                .any(|r| r.event == "identity_code" && r.reason.as_deref() == Some(reason)),
            "{reason}"
        );
    }
}
