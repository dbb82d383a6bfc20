//! RFC 9700 (OAuth 2.0 Security Best Current Practice): one named test per threat the server defends
//! against. The README's security section lists them; some threats are covered by tests in other
//! modules of this binary (code replay, refresh-token replay), named there.

use openidconnect::PkceCodeChallenge;
use serde_json::Value;
use yihao::crypto::hash_secret;
use yihao::domain::client::{AuthMethod, Client, ClientSecrets};

use crate::{
    Browser, ID_NUMBER, PASSWORD, SECRET, Setup, authorize_url, client_spec, code_exchange,
    code_for, hidden, post_form, redirect_params, setup, userinfo,
};

/// A code for "hall" bound to the S256 `challenge`.
async fn hall_code_for(s: &Setup, browser: &Browser, challenge: &PkceCodeChallenge) -> String {
    code_for(
        s,
        browser,
        "hall",
        "http://127.0.0.1:9/cb",
        &[
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .await
}

/// Redirect manipulation (RFC 9700 §4.1): anything but the registered URI, exactly, is shown to the
/// person and never redirected to — including through the error path (no open redirector).
#[tokio::test]
async fn threat_redirect_uri_manipulation_is_shown_not_redirected() {
    let s = setup(|_| {}).await;
    let browser = Browser::new();
    for manipulated in [
        "http://127.0.0.1:9/cb/extra",
        "http://127.0.0.1:9/cbx",
        "http://127.0.0.1:9/c",
        "http://127.0.0.1:9/cb/../evil",
        "http://127.0.0.1:9/evil/../cb",
        "http://evil@127.0.0.1:9/cb",
        "http://127.0.0.1:9@evil.example/cb",
        "http://127.0.0.1:9/cb#frag",
        "HTTP://127.0.0.1:9/CB",
        "http://127.0.0.1:9/%63b",
        "http://127.0.0.1:9/cb?x=1",
        "http://127.0.0.1:10/cb",
        "https://evil.example/cb",
    ] {
        // Each with an error the server would otherwise report by redirect (an unknown scope).
        for extra in [vec![], vec![("response_type", "token")]] {
            let r = browser
                .get(&authorize_url(&s.base, "hall", manipulated, &extra))
                .await;
            assert_eq!(r.status(), 400, "{manipulated} {extra:?}");
            assert!(
                r.headers().get("location").is_none(),
                "{manipulated}: redirected"
            );
        }
    }
}

/// Mix-up (RFC 9700 §4.4, RFC 9207): every authorization response names the issuer, errors too.
#[tokio::test]
async fn threat_mix_up_is_prevented_by_iss_in_every_authorization_response() {
    let s = setup(|_| {}).await;
    let browser = Browser::new();
    let error = redirect_params(
        &browser
            .get(&authorize_url(
                &s.base,
                "hall",
                "http://127.0.0.1:9/cb",
                &[("prompt", "none")],
            ))
            .await,
    );
    assert_eq!(error["error"], "login_required");
    assert_eq!(error["iss"], s.base);
    let success = browser
        .authorize(
            &s.base,
            &authorize_url(&s.base, "hall", "http://127.0.0.1:9/cb", &[]),
        )
        .await;
    assert!(success.contains_key("code"));
    assert_eq!(success["iss"], s.base);
}

/// Code injection (RFC 9700 §4.5): a code is bound to its client, its redirect URI and its PKCE
/// verifier; presented by another client, with another redirect URI or another verifier, it gives no
/// token (and is spent: the legitimate client cannot use it afterwards either).
#[tokio::test]
async fn threat_code_injection_is_refused() {
    let s = setup(|_| {}).await;
    let browser = Browser::new();
    let http = reqwest::Client::new();
    let exchange =
        |client: &'static str, code: String, redirect: &'static str, verifier: String| {
            let form = vec![
                ("grant_type", "authorization_code".to_owned()),
                ("code", code),
                ("redirect_uri", redirect.to_owned()),
                ("code_verifier", verifier),
            ];
            let request = http.post(format!("{}/token", s.base));
            // `tax` authenticates in the body (client_secret_post), `hall` with Basic.
            let request = if client == "tax" {
                let mut form = form;
                form.push(("client_id", "tax".to_owned()));
                form.push(("client_secret", SECRET.to_owned()));
                request.form(&form)
            } else {
                request.basic_auth(client, Some(SECRET)).form(&form)
            };
            async move {
                let r = request.send().await.unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            }
        };
    let fresh = || async {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let code = hall_code_for(&s, &browser, &challenge).await;
        (code, verifier.secret().to_owned())
    };
    let (_, other_verifier) = PkceCodeChallenge::new_random_sha256();
    for why in ["another client", "another redirect URI", "another verifier"] {
        let (code, verifier) = fresh().await;
        let (status, body) = match why {
            "another client" => {
                exchange(
                    "tax",
                    code.clone(),
                    "http://127.0.0.1:9/cb",
                    verifier.clone(),
                )
                .await
            }
            "another redirect URI" => {
                exchange(
                    "hall",
                    code.clone(),
                    "http://127.0.0.1:9/tax",
                    verifier.clone(),
                )
                .await
            }
            _ => {
                exchange(
                    "hall",
                    code.clone(),
                    "http://127.0.0.1:9/cb",
                    other_verifier.secret().to_owned(),
                )
                .await
            }
        };
        assert_eq!(
            (status, &body["error"]),
            (400, &Value::from("invalid_grant")),
            "{why}: {body}"
        );
        assert!(body.get("access_token").is_none());
        let (status, _) = exchange("hall", code, "http://127.0.0.1:9/cb", verifier).await;
        assert_eq!(status, 400, "{why}: the injected code is spent");
    }
    let (code, verifier) = fresh().await;
    let (status, body) = exchange("hall", code, "http://127.0.0.1:9/cb", verifier).await;
    assert_eq!(status, 200, "the legitimate exchange works: {body}");
}

/// PKCE downgrade (RFC 9700 §4.8.2): a public client must send an S256 challenge; `plain` is not
/// offered; a verifier for a code issued without a challenge, or none for one with, is refused.
#[tokio::test]
async fn threat_pkce_downgrade_is_refused() {
    let s = setup(|_| {}).await;
    let browser = Browser::new();
    let missing = redirect_params(
        &browser
            .get(&authorize_url(&s.base, "app", "http://127.0.0.1/app", &[]))
            .await,
    );
    assert_eq!(missing["error"], "invalid_request", "{missing:?}");
    let plain = redirect_params(
        &browser
            .get(&authorize_url(
                &s.base,
                "app",
                "http://127.0.0.1/app",
                &[
                    ("code_challenge", &"a".repeat(43)),
                    ("code_challenge_method", "plain"),
                ],
            ))
            .await,
    );
    assert_eq!(plain["error"], "invalid_request", "{plain:?}");
    let http = reqwest::Client::new();
    let exchange = |code: String, verifier: Option<String>| {
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code),
            ("redirect_uri", "http://127.0.0.1:9/cb".to_owned()),
        ];
        if let Some(v) = verifier {
            form.push(("code_verifier", v));
        }
        http.post(format!("{}/token", s.base))
            .basic_auth("hall", Some(SECRET))
            .form(&form)
            .send()
    };
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let with_challenge = hall_code_for(&s, &browser, &challenge).await;
    let r = exchange(with_challenge, None).await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
    let without = code_for(&s, &browser, "hall", "http://127.0.0.1:9/cb", &[]).await;
    let r = exchange(without, Some("x".repeat(43))).await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
}

/// CSRF on login and consent (RFC 9700 §4.7): forms carry a token bound to the browser that started
/// the interaction; a forged token or another browser is refused.
#[tokio::test]
async fn threat_csrf_on_login_and_consent_is_refused() {
    let s = setup(|_| {}).await;
    let browser = Browser::new();
    let url = authorize_url(&s.base, "hall", "http://127.0.0.1:9/cb", &[]);
    let page = browser.page(&url).await;
    let interaction = hidden(&page, "interaction");
    let forged = browser
        .post(
            &format!("{}/login", s.base),
            &[
                ("interaction", &interaction),
                ("csrf", "forged"),
                ("identifier", ID_NUMBER),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(forged.status(), 400, "a forged login form");
    let elsewhere = Browser::new()
        .post(
            &format!("{}/login", s.base),
            &[
                ("interaction", &interaction),
                ("csrf", &hidden(&page, "csrf")),
                ("identifier", ID_NUMBER),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(
        elsewhere.status(),
        400,
        "the login form posted from another browser"
    );
    let consent = browser.login(&s.base, &page, ID_NUMBER, PASSWORD).await;
    let consent = consent.text().await.unwrap();
    assert!(consent.contains("action=\"/consent\""));
    let forged = browser
        .post(
            &format!("{}/consent", s.base),
            &[
                ("interaction", &hidden(&consent, "interaction")),
                ("csrf", "forged"),
                ("decision", "allow"),
            ],
        )
        .await;
    assert_eq!(forged.status(), 400, "a forged consent");
}

/// Clickjacking (RFC 9700 §4.16) and token leakage through Referer (§4.2.4): every page forbids
/// framing and sends no referrer.
#[tokio::test]
async fn threat_clickjacking_and_referer_leakage_are_prevented_by_headers() {
    let s = setup(|_| {}).await;
    let browser = Browser::new();
    let login = browser
        .get(&authorize_url(
            &s.base,
            "hall",
            "http://127.0.0.1:9/cb",
            &[],
        ))
        .await;
    let form_post = Browser::new();
    let mut pages = vec![login];
    pages.push(
        form_post
            .get(&authorize_url(
                &s.base,
                "hall",
                "http://127.0.0.1:9/cb",
                &[("response_mode", "form_post"), ("prompt", "none")],
            ))
            .await,
    );
    for page in pages {
        let h = page.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "no-referrer");
    }
}

/// Access tokens in URLs (RFC 9700 §2.4: "MUST NOT" send them in a query): a token that works in the
/// Authorization header is refused in the query.
#[tokio::test]
async fn threat_access_token_in_a_url_query_is_refused() {
    let s = setup(|_| {}).await;
    let browser = Browser::new();
    let code = code_for(&s, &browser, "hall", "http://127.0.0.1:9/cb", &[]).await;
    let (status, tokens) = code_exchange(&s, "hall", "http://127.0.0.1:9/cb", &code).await;
    assert_eq!(status, 200, "{tokens}");
    let token = tokens["access_token"].as_str().unwrap();
    let header = userinfo(&s, token).await;
    assert_eq!(header.status(), 200);
    let query = reqwest::get(format!("{}/userinfo?access_token={token}", s.base))
        .await
        .unwrap();
    assert_eq!(query.status(), 401);
    assert!(
        query.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
}

/// Parameter smuggling (RFC 6749 §3.1: "Request and response parameters MUST NOT be included more
/// than once"): a repeated client_id or redirect_uri is shown to the person (which one is meant is
/// unknown, so nothing is redirected), any other repeated authorization parameter is an error at the
/// registered redirect URI, and a repeated token parameter is `invalid_request`; only RFC 8707's
/// `resource` may repeat.
#[tokio::test]
async fn threat_duplicate_parameters_are_refused() {
    let s = setup(|_| {}).await;
    let browser = Browser::new();
    let url = authorize_url(&s.base, "hall", "http://127.0.0.1:9/cb", &[]);
    for repeated in [
        "&client_id=hall",
        "&client_id=app",
        "&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb",
    ] {
        let r = browser.get(&format!("{url}{repeated}")).await;
        assert_eq!(r.status(), 400, "{repeated}");
        assert!(r.headers().get("location").is_none(), "{repeated}");
        assert!(r.text().await.unwrap().contains("repeated"), "{repeated}");
    }
    let error = redirect_params(&browser.get(&format!("{url}&state=other")).await);
    assert_eq!(error["error"], "invalid_request");
    assert!(error["error_description"].contains("state"), "{error:?}");
    let token = |body: &'static str| {
        reqwest::Client::new()
            .post(format!("{}/token", s.base))
            .basic_auth("hall", Some(SECRET))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    for body in [
        "grant_type=client_credentials&grant_type=client_credentials",
        "grant_type=client_credentials&scope=a&scope=b",
        "grant_type=client_credentials&client_id=hall&client_id=hall",
    ] {
        let r = token(body).await.unwrap();
        assert_eq!(r.status(), 400, "{body}");
        let error: Value = r.json().await.unwrap();
        assert_eq!(error["error"], "invalid_request", "{body}");
        assert_eq!(error["error_description"], "a parameter is repeated");
    }
    // `resource` may repeat (RFC 8707 §2); the answer is about the resources, not the repetition.
    let r =
        token("grant_type=client_credentials&resource=https%3A%2F%2Fa&resource=https%3A%2F%2Fb")
            .await
            .unwrap();
    let error: Value = r.json().await.unwrap();
    assert_ne!(
        error["error_description"], "a parameter is repeated",
        "{error}"
    );
}

/// Client impersonation (RFC 6749 §10.2, RFC 9700 §2.5): a public client cannot get machine
/// tokens, and a confidential client's id alone (no secret) authenticates nobody.
#[tokio::test]
async fn threat_public_client_impersonation_is_refused() {
    let s = setup(|_| {}).await;
    let http = reqwest::Client::new();
    let post = |form: Vec<(&'static str, &'static str)>| {
        http.post(format!("{}/token", s.base)).form(&form).send()
    };
    let public = post(vec![
        ("grant_type", "client_credentials"),
        ("client_id", "app"),
    ])
    .await
    .unwrap();
    assert!(public.status() == 400 || public.status() == 401);
    let error = public.json::<Value>().await.unwrap()["error"].clone();
    assert!(
        error == "unauthorized_client" || error == "invalid_client",
        "{error}"
    );
    let id_only = post(vec![
        ("grant_type", "client_credentials"),
        ("client_id", "hall"),
    ])
    .await
    .unwrap();
    assert_eq!(id_only.status(), 400);
    assert_eq!(
        id_only.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
}

/// Too-long lifetimes (RFC 9700 §4.10.3, §4.14): codes live at most 10 minutes, tokens at most a
/// day, in the server's configuration and in each client's registration.
#[test]
fn threat_too_long_lifetimes_are_refused() {
    for (key, value) in [
        ("YIHAO_TOKENS__CODE_SECS", "3600"),
        ("YIHAO_TOKENS__ACCESS_TOKEN_SECS", "2592000"),
        ("YIHAO_TOKENS__ID_TOKEN_SECS", "2592000"),
    ] {
        let err = yihao::config::Config::load_with_env(None, [(key, value)]).unwrap_err();
        assert!(err.to_string().contains("tokens."), "{key}: {err}");
    }
    let mut spec = client_spec(
        "long",
        "http://127.0.0.1:9/cb",
        AuthMethod::ClientSecretBasic,
        false,
    );
    spec.settings.access_token_secs = Some(30 * 86_400);
    let err = Client::register(
        spec,
        Some(ClientSecrets::hashed(hash_secret(SECRET), None)),
        0,
    )
    .unwrap_err();
    assert!(err.to_string().contains("86400"), "{err}");
}

/// Code replay (RFC 6749 §4.1.2: the server "SHOULD revoke (when possible) all tokens previously
/// issued based on that authorization code"; security review 6): a replayed code revokes the access
/// token and the refresh-token family its first use gave, so an attacker holding a code and a
/// refresh token learns nothing by replaying it.
#[tokio::test]
async fn threat_code_replay_revokes_the_refresh_token_too() {
    let s = setup(|_| {}).await;
    let browser = Browser::new();
    let redirect = "http://127.0.0.1:9/cb";
    let code = code_for(
        &s,
        &browser,
        "hall",
        redirect,
        &[("scope", "openid offline_access")],
    )
    .await;
    let (status, first) = code_exchange(&s, "hall", redirect, &code).await;
    assert_eq!(status, 200, "{first}");
    let access = first["access_token"].as_str().unwrap();
    let refresh = first["refresh_token"].as_str().unwrap();
    let (replayed, body) = code_exchange(&s, "hall", redirect, &code).await;
    assert_eq!(
        (replayed, &body["error"]),
        (400, &Value::from("invalid_grant"))
    );
    assert_eq!(userinfo(&s, access).await.status(), 401);
    let (status, refreshed) = post_form(
        &s.base,
        "/token",
        ("hall", SECRET),
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(
        (status, &refreshed["error"]),
        (400, &Value::from("invalid_grant")),
        "{refreshed}"
    );
    let (_, introspected) = post_form(
        &s.base,
        "/introspect",
        ("hall", SECRET),
        &[("token", refresh)],
    )
    .await;
    assert_eq!(introspected, serde_json::json!({ "active": false }));
}

/// Unbounded pre-login state (security review 5): every `GET /authorize` stored a pending request
/// of up to 64 values of 8 KiB for 10 minutes, from any number of requests. Each value is bounded,
/// and an address may open `limits.interactions_per_ip_per_min` pending requests a minute.
#[tokio::test]
async fn threat_unauthenticated_requests_cannot_fill_the_session_store() {
    let clock = std::sync::Arc::new(yihao::clock::ManualClock::at_ms(
        (yihao::clock::system_ms() / 60_000 * 60 + 10) * 1000,
    ));
    let s = crate::setup_on(|c| c.limits.interactions_per_ip_per_min = 3, Some(clock)).await;
    let url = authorize_url(&s.base, "hall", "http://127.0.0.1:9/cb", &[]);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(Browser::new().get(&url).await);
    }
    let last = statuses.pop().unwrap();
    assert!(statuses.iter().all(|r| r.status() == 200));
    assert_eq!(last.status(), 429);
    assert_eq!(last.headers()["retry-after"], "50");
    let app = &s._server.test_app.app;
    let refusals: Vec<_> = app
        .store
        .audit_records(1, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.event == "rate_limited" && r.reason.as_deref() == Some("interaction_ip"))
        .collect();
    assert_eq!(refusals.len(), 1, "{refusals:?}");

    // Oversized values are refused before anything is stored (on a server with room to open).
    let s = setup(|_| {}).await;
    let long_hint = "1".repeat(257);
    let many_acr = ["urn:yihao:loa:1"; 9].join(" ");
    let long_locale = "x".repeat(65);
    for (name, value) in [
        ("login_hint", long_hint.as_str()),
        ("acr_values", many_acr.as_str()),
        ("ui_locales", long_locale.as_str()),
    ] {
        let response = Browser::new()
            .get(&authorize_url(
                &s.base,
                "hall",
                "http://127.0.0.1:9/cb",
                &[(name, value)],
            ))
            .await;
        let params = redirect_params(&response);
        assert_eq!(params["error"], "invalid_request", "{name}");
        assert_eq!(params["error_description"], format!("{name} is too long"));
    }
}

/// Floods through client authentication (security review 7): every failure wrote an audit record
/// and nothing limited a source that kept failing. A source may fail
/// `limits.client_auth_failures_per_ip_per_min` times a minute, is then refused until the minute
/// ends, and each window writes one failure record and one refusal record.
#[tokio::test]
async fn threat_failed_client_authentication_is_limited_per_source_and_audited_once() {
    let clock = std::sync::Arc::new(yihao::clock::ManualClock::at_ms(
        (yihao::clock::system_ms() / 60_000 * 60 + 10) * 1000,
    ));
    let s = crate::setup_on(
        |c| c.limits.client_auth_failures_per_ip_per_min = 3,
        Some(clock.clone()),
    )
    .await;
    let introspect = |secret: &'static str| {
        let base = s.base.clone();
        async move {
            post_form(&base, "/introspect", ("hall", secret), &[("token", "x")])
                .await
                .0
        }
    };
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(introspect("wrong").await);
    }
    statuses.push(introspect(SECRET).await);
    assert_eq!(statuses, [401, 401, 401, 429], "the right secret waits too");
    let app = &s._server.test_app.app;
    let records = app.store.audit_records(1, 100).await.unwrap();
    let count = |event: &str| records.iter().filter(|r| r.event == event).count();
    assert_eq!(count("client_auth_failure"), 1, "{records:?}");
    assert_eq!(count("rate_limited"), 1, "{records:?}");
    clock.advance(60);
    assert_eq!(introspect(SECRET).await, 200, "a new window");
}

/// The ID number in URLs (security review 16): an ID token travels in `id_token_hint`s, in query
/// strings and proxy logs, so it never carries the ID number, and the mobile number only masked,
/// even when the `claims` parameter asks and the client is allowed the full number; userinfo
/// releases them. The consent page names the full number when the client is allowed it (review 19).
#[tokio::test]
async fn threat_the_id_number_and_full_phone_never_travel_in_an_id_token() {
    let s = setup(|_| {}).await;
    let app = &s._server.test_app.app;
    let mut spec = client_spec(
        "records",
        "http://127.0.0.1:9/records",
        AuthMethod::ClientSecretBasic,
        false,
    );
    spec.settings.full_phone = true;
    crate::register(app, spec, SECRET).await;
    let browser = Browser::new();
    let claims = r#"{"id_token":{"id_number":null,"id_type":null,"phone_number":null}}"#;
    let url = authorize_url(
        &s.base,
        "records",
        "http://127.0.0.1:9/records",
        &[("scope", "openid phone idcard"), ("claims", claims)],
    );
    let page = browser.page(&url).await;
    let consent = browser
        .login_page(&s.base, &page, ID_NUMBER, PASSWORD)
        .await;
    assert!(consent.contains("您的完整手机号码"), "{consent}");
    assert!(!consent.contains("部分隐藏"), "{consent}");
    let code = redirect_params(&browser.consent(&s.base, &consent, "allow").await)["code"].clone();
    let (status, tokens) = code_exchange(&s, "records", "http://127.0.0.1:9/records", &code).await;
    assert_eq!(status, 200, "{tokens}");
    let id = crate::jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert!(
        id.get("id_number").is_none() && id.get("id_type").is_none(),
        "{id}"
    );
    assert_eq!(id["phone_number"], "138****1234", "{id}");
    let info: Value = userinfo(&s, tokens["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["id_number"], ID_NUMBER);
    assert_eq!(info["phone_number"], crate::PHONE);
}

/// Skipping consent (security review 20): `/select-org` accepted an interaction started for the
/// consent page, so posting the consent page's interaction there issued a code without consent. A
/// form is accepted only for the page its interaction was started for.
#[tokio::test]
async fn threat_a_consent_page_cannot_be_skipped_through_another_form() {
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
    let consent = browser
        .login_page(&s.base, &page, ID_NUMBER, PASSWORD)
        .await;
    assert!(consent.contains("action=\"/consent\""), "{consent}");
    let skipped = browser
        .post(
            &format!("{}/select-org", s.base),
            &[
                ("interaction", &hidden(&consent, "interaction")),
                ("csrf", &hidden(&consent, "csrf")),
                ("org", "none"),
            ],
        )
        .await;
    assert_eq!(skipped.status(), 400);
    assert!(skipped.headers().get("location").is_none());
    // The consent page itself still works.
    let allowed = browser.consent(&s.base, &consent, "allow").await;
    assert!(redirect_params(&allowed).contains_key("code"));
}

/// A compromised signing key (security review 14): retired keys kept verifying, and nothing could
/// withdraw one. `keys revoke` takes a key out at once: not published, not verifying, not signing.
#[tokio::test]
async fn threat_a_compromised_signing_key_is_withdrawn_at_once() {
    let s = setup(|c| c.keys.publish_before_use_secs = 0).await;
    let app = &s._server.test_app.app;
    let browser = Browser::new();
    let tokens = crate::tokens_with_refresh(&s, &browser).await;
    let access = tokens["access_token"].as_str().unwrap();
    let kid = crate::jwt_part(access, 0)["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(userinfo(&s, access).await.status(), 200);
    let alone = app.keys.revoke(&kid, app.now()).await.unwrap_err();
    assert!(alone.to_string().contains("rotate"), "{alone}");
    app.keys
        .rotate(yihao::domain::jose::Alg::ES256, app.now())
        .await
        .unwrap();
    assert!(app.keys.revoke(&kid, app.now()).await.unwrap());
    assert_eq!(userinfo(&s, access).await.status(), 401);
    let jwks: Value = reqwest::get(format!("{}/jwks", s.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == kid.as_str()),
        "{jwks}"
    );
    // Signing goes on with the other key.
    let fresh = crate::tokens_with_refresh(&s, &browser).await;
    let fresh = fresh["access_token"].as_str().unwrap();
    assert_ne!(crate::jwt_part(fresh, 0)["kid"], kid.as_str());
    assert_eq!(userinfo(&s, fresh).await.status(), 200);
}

/// PKCE from confidential clients too (RFC 9700 §2.1.1: "Authorization servers MUST support PKCE
/// ... [clients] SHOULD use PKCE"; security review 20): `tokens.require_pkce` is on by default, and a
/// confidential client leaves it out only when registered with `--pkce-optional true`.
#[tokio::test]
async fn threat_a_confidential_client_needs_pkce_unless_registered_without() {
    let s = setup(|_| {}).await;
    let app = &s._server.test_app.app;
    assert!(app.config.tokens.require_pkce, "on by default");
    let mut spec = client_spec(
        "strict",
        "http://127.0.0.1:9/strict",
        AuthMethod::ClientSecretBasic,
        true,
    );
    spec.settings.pkce_optional = false;
    crate::register(app, spec, SECRET).await;
    let browser = Browser::new();
    let without = browser
        .get(&authorize_url(
            &s.base,
            "strict",
            "http://127.0.0.1:9/strict",
            &[],
        ))
        .await;
    let params = redirect_params(&without);
    assert_eq!(params["error"], "invalid_request", "{params:?}");
    assert!(params["error_description"].contains("PKCE"), "{params:?}");
    // "tax" was registered with the opt-out: no PKCE, and still a code.
    let code = code_for(&s, &browser, "tax", "http://127.0.0.1:9/tax", &[]).await;
    assert!(!code.is_empty());
}
