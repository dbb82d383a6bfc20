//! Dynamic Client Registration (RFC 7591) with an administrator's one-time initial access token,
//! and the client configuration endpoint (RFC 7592): a refused token, a reused one, an expired one;
//! metadata refused without spending the token; a pending client that signs nobody in and gets no
//! token until a system administrator approves it; read, replace and delete with the registration
//! access token; the self-check of the registered client.

use std::sync::Arc;

use serde_json::{Value, json};
use yihao::protocol::admin::Actor;
use yihao::protocol::audit::RequestContext;

use crate::{Browser, Setup, authorize_url, post_form, setup_on};

const DEPARTMENT: &str = "91110101000000019Y";

async fn send(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value, Option<String>) {
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    if let Some(b) = body {
        request = request.json(&b);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        challenge,
    )
}

async fn issue(s: &Setup, lifetime: Option<i64>, now: i64) -> String {
    let app = &s._server.test_app.app;
    let context = RequestContext::default();
    app.administration(&Actor::Operator, &context)
        .issue_registration_token(Some(DEPARTMENT), lifetime, now)
        .await
        .unwrap()
        .initial_access_token
}

fn metadata() -> Value {
    json!({
        "client_name": "不动产登记系统",
        "redirect_uris": ["http://127.0.0.1:9/dcr"],
        "post_logout_redirect_uris": ["http://127.0.0.1:9/dcr-bye"],
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
        "scope": "openid profile",
        // RFC 7591 §2: metadata the server does not understand is ignored.
        "logo_uri": "https://dept.example.gov.cn/logo.png",
        "contacts": ["ops@dept.example.gov.cn"],
        "software_id": "budongchan",
    })
}

#[tokio::test]
async fn a_department_registers_with_a_one_time_token_and_its_client_waits_for_approval() {
    let clock = Arc::new(yihao::clock::ManualClock::starting_now());
    let s = setup_on(|_| {}, Some(clock.clone())).await;
    let now = || yihao::clock::Clock::now_ms(clock.as_ref()) / 1000;
    let endpoint = format!("{}/connect/register", s.base);
    // Discovery names the endpoint (RFC 8414 §2).
    let discovery: Value = reqwest::get(format!("{}/.well-known/openid-configuration", s.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["registration_endpoint"], endpoint);

    // No token, a made-up token: 401 invalid_token with the Bearer challenge.
    for token in [None, Some("made-up")] {
        let (status, body, challenge) =
            send(reqwest::Method::POST, &endpoint, token, Some(metadata())).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"], "invalid_token");
        assert!(challenge.unwrap().contains("error=\"invalid_token\""));
    }
    let token = issue(&s, None, now()).await;
    // Metadata refused (RFC 7591 §3.2.2), and the token is not spent on it.
    let mut bad = metadata();
    bad["redirect_uris"] = json!(["http://dept.example.gov.cn/cb"]);
    let (status, body, _) = send(reqwest::Method::POST, &endpoint, Some(&token), Some(bad)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_redirect_uri")),
        "{body}"
    );
    for (field, value) in [
        ("scope", json!("openid idcard")),
        ("scope", json!("openid admin:system")),
        ("first_party", json!(true)),
        ("full_phone", json!(true)),
        ("department", json!("91110000000000000X")),
        ("response_types", json!(["token"])),
        ("client_id", json!("chosen-by-me")),
        // Powers beyond signing people in at a web service are an administrator's to give.
        ("scope", json!("openid records.read")),
        ("grant_types", json!(["client_credentials"])),
        ("channel", json!("app")),
        ("pkce_optional", json!(true)),
        (
            "grant_types",
            json!(["urn:ietf:params:oauth:grant-type:device_code"]),
        ),
        // Redirect URIs (the pairwise sector) come with the code grant only.
        ("grant_types", json!([])),
    ] {
        let mut bad = metadata();
        bad[field] = value;
        let (status, body, _) =
            send(reqwest::Method::POST, &endpoint, Some(&token), Some(bad)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_client_metadata")),
            "{field}: {body}"
        );
    }
    // Registered: 201, a secret, the registration access token and URI, pending, the department.
    let (status, registered, _) = send(
        reqwest::Method::POST,
        &endpoint,
        Some(&token),
        Some(metadata()),
    )
    .await;
    assert_eq!(status, 201, "{registered}");
    let id = registered["client_id"].as_str().unwrap().to_owned();
    let secret = registered["client_secret"].as_str().unwrap().to_owned();
    let access = registered["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let uri = registered["registration_client_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(uri, format!("{endpoint}/{id}"));
    assert_eq!(registered["pending"], true);
    assert_eq!(registered["department"], DEPARTMENT);
    assert_eq!(registered["first_party"], false);
    assert_eq!(registered["client_secret_expires_at"], 0);
    assert!(registered.get("logo_uri").is_none());
    // The token was for one registration.
    let (status, body, _) = send(
        reqwest::Method::POST,
        &endpoint,
        Some(&token),
        Some(metadata()),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_token")),
        "reused: {body}"
    );

    // Pending: nobody signs in there, and it gets no token.
    let browser = Browser::new();
    let refused = browser
        .get(&authorize_url(&s.base, &id, "http://127.0.0.1:9/dcr", &[]))
        .await;
    assert_eq!(refused.status(), 400);
    assert!(refused.headers().get("location").is_none());
    let (status, body) = post_form(
        &s.base,
        "/token",
        (&id, &secret),
        &[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("redirect_uri", "http://127.0.0.1:9/dcr"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );

    // RFC 7592: read and replace with the registration access token; another token is refused.
    let (status, read, _) = send(reqwest::Method::GET, &uri, Some(&access), None).await;
    assert_eq!(
        (status, read["client_name"].as_str()),
        (200, Some("不动产登记系统")),
        "{read}"
    );
    assert!(read.get("client_secret").is_none() && read.get("registration_access_token").is_none());
    let (status, _, _) = send(reqwest::Method::GET, &uri, Some(&token), None).await;
    assert_eq!(status, 401);
    let (status, _, _) = send(
        reqwest::Method::GET,
        &format!("{endpoint}/nosuch"),
        Some(&access),
        None,
    )
    .await;
    assert_eq!(
        status, 401,
        "RFC 7592 §2.1: an unknown client answers as a bad token"
    );
    let mut changed = metadata();
    changed["client_name"] = json!("不动产登记系统（新）");
    changed["redirect_uris"] = json!(["http://127.0.0.1:9/dcr2"]);
    let (status, replaced, _) =
        send(reqwest::Method::PUT, &uri, Some(&access), Some(changed)).await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(
        replaced["redirect_uris"],
        json!(["http://127.0.0.1:9/dcr2"])
    );
    assert_eq!(replaced["pending"], true, "a change does not approve");
    let mut escalate = metadata();
    escalate["first_party"] = json!(true);
    let (status, _, _) = send(reqwest::Method::PUT, &uri, Some(&access), Some(escalate)).await;
    assert_eq!(status, 400);
    // What was read may be sent back as it is (RFC 7592 §2.2).
    let mut echoed = replaced.clone();
    for member in ["client_id_issued_at", "registration_client_uri", "pending"] {
        echoed.as_object_mut().unwrap().remove(member);
    }
    let (status, body, _) = send(reqwest::Method::PUT, &uri, Some(&access), Some(echoed)).await;
    assert_eq!(status, 200, "{body}");

    // A system administrator approves; now the person signs in and the client gets its tokens.
    let app = &s._server.test_app.app;
    let context = RequestContext::default();
    let approved = app
        .administration(&Actor::Operator, &context)
        .approve_client(&id, now())
        .await
        .unwrap();
    assert!(!approved.pending);
    app.clients.forget(&id);
    // With PKCE, which the server requires of every client by default.
    let verifier = "registered-client-pkce-verifier-0123456789abcdef";
    let challenge = {
        use base64::Engine;
        use sha2::Digest;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
    };
    let pkce = [
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let landed = browser
        .authorize(
            &s.base,
            &authorize_url(&s.base, &id, "http://127.0.0.1:9/dcr2", &pkce),
        )
        .await;
    let code = landed
        .get("code")
        .unwrap_or_else(|| panic!("no code: {landed:?}"))
        .clone();
    let (status, tokens) = post_form(
        &s.base,
        "/token",
        (&id, &secret),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9/dcr2"),
            ("code_verifier", verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["id_token"].is_string());

    // A wrong secret, now that the client exists for the protocol: refused, and recorded under it
    // (the first refusal of an address in a minute is recorded: a new minute).
    clock.advance(61);
    let (status, _) = post_form(
        &s.base,
        "/token",
        (&id, "not-the-secret"),
        &[("grant_type", "authorization_code"), ("code", "x")],
    )
    .await;
    assert_eq!(status, 401);
    // Sent back unchanged, the registration stays approved; a new redirect URI (where codes go,
    // and the pairwise sector) waits for a new approval, and signs nobody in meanwhile.
    let (_, current, _) = send(reqwest::Method::GET, &uri, Some(&access), None).await;
    let (status, same, _) = send(
        reqwest::Method::PUT,
        &uri,
        Some(&access),
        Some(current.clone()),
    )
    .await;
    assert_eq!(
        (status, same["pending"].as_bool()),
        (200, Some(false)),
        "{same}"
    );
    let mut moved = current.clone();
    moved["redirect_uris"] = json!(["http://127.0.0.1:9/elsewhere"]);
    let (status, moved, _) = send(reqwest::Method::PUT, &uri, Some(&access), Some(moved)).await;
    assert_eq!(
        (status, moved["pending"].as_bool()),
        (200, Some(true)),
        "{moved}"
    );
    app.clients.forget(&id);
    let refused = browser
        .get(&authorize_url(
            &s.base,
            &id,
            "http://127.0.0.1:9/elsewhere",
            &pkce,
        ))
        .await;
    assert_eq!(refused.status(), 400, "pending again");

    // Its self-check: plain-http loopback URIs are reported as such; the wrong secret above is
    // among its recent errors (the refusals while it was pending are not: to the token endpoint
    // it did not exist).
    let check = app
        .check_client(&Actor::Operator, &context, &id)
        .await
        .unwrap();
    let check = serde_json::to_value(&check).unwrap();
    assert!(
        check["recent_errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "client_auth_failure"),
        "{check}"
    );
    assert!(
        check["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["what"] == "redirect_uri"
                && c["ok"] == false
                && c["detail"].as_str().unwrap().contains("plain http")),
        "{check}"
    );

    // Deleted by its registration access token; then the token opens nothing.
    let (status, _, _) = send(reqwest::Method::DELETE, &uri, Some(&access), None).await;
    assert_eq!(status, 204);
    let (status, _, _) = send(reqwest::Method::GET, &uri, Some(&access), None).await;
    assert_eq!(status, 401);

    // An initial access token past its lifetime registers nothing.
    let late = issue(&s, Some(60), now()).await;
    clock.advance(61);
    let (status, body, _) = send(
        reqwest::Method::POST,
        &endpoint,
        Some(&late),
        Some(metadata()),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_token")),
        "expired: {body}"
    );
}
