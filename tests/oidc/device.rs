//! The device authorization grant (RFC 8628): the `openidconnect` crate plays a kiosk end to end
//! (device code, polling, tokens) while the person approves at `verification_uri_complete` on
//! yihao's pages, where the consent names the kiosk and where it stands; and every error of RFC 8628
//! §3.5 (`authorization_pending`, `slow_down`, `access_denied`, `expired_token`), with the refusals
//! of a code used twice, a code of another client, and a client not allowed the grant.

use std::sync::Arc;
use std::time::Duration;

use openidconnect::core::{CoreDeviceAuthorizationResponse, CoreJwsSigningAlgorithm};
use openidconnect::{DeviceAuthorizationUrl, OAuth2TokenResponse, Scope};
use serde_json::Value;
use yihao::clock::ManualClock;
use yihao::domain::client::{AuthMethod, Channel, GrantType};

use crate::{
    Browser, ID_NUMBER, PASSWORD, SECRET, Setup, client_spec, post_form, register, rp_client,
    setup_on,
};

const LOCATION: &str = "市民中心一楼 3 号自助机";

/// The server with the kiosk client "kiosk" (client_secret_basic, the device grant and refresh
/// tokens, channel `kiosk`, a location) and `configure`'s settings.
async fn setup_kiosk(
    configure: impl FnOnce(&mut yihao::config::Config),
    clock: Option<Arc<ManualClock>>,
) -> Setup {
    let s = setup_on(configure, clock).await;
    let app = &s._server.test_app.app;
    let mut kiosk = client_spec(
        "kiosk",
        "http://127.0.0.1:9/kiosk",
        AuthMethod::ClientSecretBasic,
        false,
    );
    kiosk.name = "自助服务终端".into();
    kiosk.grant_types = vec![GrantType::DeviceCode, GrantType::RefreshToken];
    kiosk.settings.channel = Channel::Kiosk;
    kiosk.settings.location = Some(LOCATION.into());
    register(app, kiosk, SECRET).await;
    app.clients.reload().await.unwrap();
    s
}

async fn device_authorization(s: &Setup, client: &str, scope: &str) -> (u16, Value) {
    post_form(
        &s.base,
        "/device_authorization",
        (client, SECRET),
        &[("scope", scope)],
    )
    .await
}

async fn poll(s: &Setup, client: &str, device_code: &str) -> (u16, Value) {
    post_form(
        &s.base,
        "/token",
        (client, SECRET),
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", device_code),
        ],
    )
    .await
}

/// The person opens `url` (verification_uri_complete), signs in, and answers the consent page with
/// `decision`; the page it ends on.
async fn approve(s: &Setup, browser: &Browser, url: &str, decision: &str) -> String {
    let login = browser.page(url).await;
    assert!(login.contains("action=\"/login\""), "{login}");
    let consent = browser
        .login_page(&s.base, &login, ID_NUMBER, PASSWORD)
        .await;
    assert!(
        consent.contains(LOCATION),
        "the consent page names where the kiosk stands: {consent}"
    );
    assert!(consent.contains("自助服务终端"));
    browser
        .consent(&s.base, &consent, decision)
        .await
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_kiosk_signs_a_person_in_with_the_device_grant_through_openidconnect() {
    let s = setup_kiosk(|c| c.tokens.device_poll_secs = 1, None).await;
    let discovery: Value = reqwest::get(format!("{}/.well-known/openid-configuration", s.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["device_authorization_endpoint"],
        format!("{}/device_authorization", s.base)
    );
    assert!(
        discovery["grant_types_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g == "urn:ietf:params:oauth:grant-type:device_code")
    );
    let (client, http) = rp_client(&s.base, "kiosk", Some(SECRET)).await;
    let client = client.set_device_authorization_url(
        DeviceAuthorizationUrl::new(format!("{}/device_authorization", s.base)).unwrap(),
    );
    let details: CoreDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("offline_access".into()))
        .request_async(&http)
        .await
        .unwrap();
    let user_code = details.user_code().secret().clone();
    assert_eq!(user_code.len(), 9, "XXXX-XXXX: {user_code}");
    assert_eq!(
        details.verification_uri().as_str(),
        format!("{}/device", s.base)
    );
    let complete = details
        .verification_uri_complete()
        .unwrap()
        .secret()
        .clone();
    assert_eq!(complete, format!("{}/device?user_code={user_code}", s.base));
    assert_eq!(details.interval(), Duration::from_secs(1));
    // The QR code of verification_uri_complete, for a kiosk that cannot draw one.
    let qr = reqwest::get(format!("{}/device/qr.svg?user_code={user_code}", s.base))
        .await
        .unwrap();
    assert_eq!(qr.headers()["content-type"], "image/svg+xml");
    assert!(qr.text().await.unwrap().starts_with("<svg"));

    // The kiosk polls while the person approves on their phone.
    let poller = {
        let client = client.clone();
        let http = http.clone();
        let details = details.clone();
        tokio::spawn(async move {
            client
                .exchange_device_access_token(&details)
                .unwrap()
                .request_async(&http, tokio::time::sleep, Some(Duration::from_secs(30)))
                .await
        })
    };
    let browser = Browser::new();
    let done = approve(&s, &browser, &complete, "allow").await;
    assert!(done.contains("设备已登录"), "{done}");
    let tokens = poller.await.unwrap().unwrap();
    assert!(
        tokens.refresh_token().is_some(),
        "offline_access: a refresh token"
    );
    let verifier = client
        .id_token_verifier()
        .set_allowed_algs(vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256]);
    let id_token = tokens.extra_fields().id_token().expect("an ID token");
    let claims = id_token
        .claims(&verifier, |_: Option<&openidconnect::Nonce>| Ok(()))
        .unwrap();
    assert_eq!(
        claims.auth_context_ref().unwrap().as_str(),
        "urn:yihao:loa:2"
    );
    // The code was spent: polling again is refused.
    let (status, body) = poll(&s, "kiosk", details.device_code().secret()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // The user code is spent too.
    let again = browser.get(&complete).await;
    assert_eq!(again.status(), 404);
}

#[tokio::test]
async fn every_device_grant_error_is_answered() {
    let clock = Arc::new(ManualClock::starting_now());
    let s = setup_kiosk(|_| {}, Some(clock.clone())).await;
    // A client not registered for the grant, and a scope it may not ask for.
    let (status, body) = device_authorization(&s, "hall", "openid").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client")),
        "{body}"
    );
    let (status, body) = device_authorization(&s, "kiosk", "openid admin").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope")),
        "{body}"
    );
    let (status, started) = device_authorization(&s, "kiosk", "openid").await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["expires_in"], 600);
    assert_eq!(started["interval"], 5);
    let code = started["device_code"].as_str().unwrap().to_owned();

    // Pending, then too fast: slow_down, and the interval grows by 5 s.
    let (status, body) = poll(&s, "kiosk", &code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("authorization_pending"))
    );
    clock.advance(2);
    let (_, body) = poll(&s, "kiosk", &code).await;
    assert_eq!(body["error"], "slow_down");
    clock.advance(6);
    let (_, body) = poll(&s, "kiosk", &code).await;
    assert_eq!(
        body["error"], "slow_down",
        "the interval is 10 s now, then 15"
    );
    clock.advance(16);
    let (_, body) = poll(&s, "kiosk", &code).await;
    assert_eq!(body["error"], "authorization_pending");
    // Another client presenting the code; an unknown code.
    register(
        &s._server.test_app.app,
        {
            let mut other = client_spec(
                "kiosk2",
                "http://127.0.0.1:9/k2",
                AuthMethod::ClientSecretBasic,
                false,
            );
            other.grant_types = vec![GrantType::DeviceCode];
            other
        },
        SECRET,
    )
    .await;
    s._server.test_app.app.clients.reload().await.unwrap();
    let (_, body) = poll(&s, "kiosk2", &code).await;
    assert_eq!(body["error"], "invalid_grant");
    let (_, body) = poll(&s, "kiosk", "not-a-code").await;
    assert_eq!(body["error"], "invalid_grant");

    // The person declines: access_denied.
    let browser = Browser::new();
    let url = started["verification_uri_complete"].as_str().unwrap();
    let declined = approve(&s, &browser, url, "deny").await;
    assert!(declined.contains("设备未登录"), "{declined}");
    clock.advance(11);
    let (_, body) = poll(&s, "kiosk", &code).await;
    assert_eq!(body["error"], "access_denied");

    // Expired: expired_token, and the user code no longer works.
    let (_, late) = device_authorization(&s, "kiosk", "openid").await;
    clock.advance(601);
    let (_, body) = poll(&s, "kiosk", late["device_code"].as_str().unwrap()).await;
    assert_eq!(body["error"], "expired_token");
    let page = browser
        .get(late["verification_uri_complete"].as_str().unwrap())
        .await;
    assert_eq!(page.status(), 404);

    // Guessing user codes: unknown ones are audited, and an address gets ten a minute.
    for i in 0..9 {
        let r = browser
            .get(&format!(
                "{}/device?user_code=BBBB-BBB{}",
                s.base,
                ["B", "C", "D", "F", "G", "H", "J", "K", "L"][i]
            ))
            .await;
        assert!(r.status() == 404 || r.status() == 429, "{}", r.status());
    }
    let limited = browser
        .get(&format!("{}/device?user_code=BBBB-BBBM", s.base))
        .await;
    assert_eq!(limited.status(), 429);
    let records = s
        ._server
        .test_app
        .app
        .store
        .audit_records(1, 10_000)
        .await
        .unwrap();
    assert!(
        records
            .iter()
            .any(|r| r.event == "device_approval"
                && r.reason.as_deref() == Some("unknown_user_code"))
    );
}
