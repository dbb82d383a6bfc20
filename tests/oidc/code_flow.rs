//! The code flow end to end with the `openidconnect` crate as relying party: PKCE, ID tokens in each
//! algorithm verified against the JWKS, userinfo, SSO for a second client with a pairwise `sub`,
//! the fragment and form_post response modes, client_secret_post, public clients, the claims
//! parameter, and a client's own algorithm and token lifetimes.

use openidconnect::TokenResponse;
use openidconnect::core::CoreGenderClaim;
use serde_json::Value;
use yihao::domain::client::AuthMethod;

use crate::{
    Browser, ID_NUMBER, PHONE, SECRET, authorize_url, client_spec, code_exchange, code_flow,
    code_for, jwt_part, redirect_params, register, relying_party, rp_exchange, rp_request, setup,
    tax_exchange, userinfo,
};

#[tokio::test]
async fn code_flow_with_pkce_gives_a_verified_id_token_and_userinfo() {
    let s = setup(|_| {}).await;
    let browser = Browser::new();
    let (claims, info) = code_flow(&s, &browser).await;
    assert_eq!(claims.issuer().as_str(), s.base);
    assert_eq!(claims.audiences()[0].as_str(), "hall");
    assert_eq!(claims.authorized_party().unwrap().as_str(), "hall");
    assert_eq!(
        claims.auth_context_ref().unwrap().as_str(),
        "urn:yihao:loa:2",
        "min(level 2, password 2)"
    );
    assert_eq!(claims.auth_method_refs().unwrap()[0].as_str(), "pwd");
    assert!(claims.auth_time().is_some());
    assert_eq!(info.name().unwrap().get(None).unwrap().as_str(), "张三");
    assert_eq!(info.gender(), Some(&CoreGenderClaim::new("female".into())));
    assert_eq!(
        info.phone_number().unwrap().as_str(),
        "138****1234",
        "phone masked"
    );
    assert!(!claims.subject().as_str().contains(ID_NUMBER));
}

#[tokio::test]
async fn es256_and_eddsa_id_tokens_verify_too() {
    for alg in ["ES256", "EdDSA"] {
        let s = setup(|c| c.tokens.id_token_alg = alg.into()).await;
        let (claims, _) = code_flow(&s, &Browser::new()).await;
        assert_eq!(claims.audiences()[0].as_str(), "hall", "{alg}");
    }
}

#[tokio::test]
async fn a_second_client_gets_sso_without_the_login_form_and_a_pairwise_sub() {
    let s = setup(|_| {}).await;
    let browser = Browser::new();
    let (hall, _) = code_flow(&s, &browser).await;
    // "tax" is first-party (no consent) and shares the host 127.0.0.1 with "hall"; "other" does not.
    let (tax, http) = relying_party(&s.base, "tax", Some(SECRET), "http://127.0.0.1:9/tax").await;
    let tax = tax.set_auth_type(openidconnect::AuthType::RequestBody);
    let (url, _, nonce) = rp_request(&tax);
    let response = browser.get(url.as_str()).await;
    assert!(
        response.status().is_redirection(),
        "the login form was shown again"
    );
    let code = redirect_params(&response)["code"].clone();
    let tokens = rp_exchange(&tax, &http, code).await;
    let claims = tokens
        .id_token()
        .unwrap()
        .claims(&tax.id_token_verifier(), &nonce)
        .unwrap();
    assert_eq!(claims.subject(), hall.subject(), "same sector, same sub");
    assert_eq!(
        claims.additional_claims().clone(),
        openidconnect::EmptyAdditionalClaims {}
    );
    let (other, http) = relying_party(
        &s.base,
        "other",
        Some(SECRET),
        "https://other.example.gov.cn/cb",
    )
    .await;
    let (url, _, nonce) = rp_request(&other);
    let code = redirect_params(&browser.get(url.as_str()).await)["code"].clone();
    let tokens = rp_exchange(&other, &http, code).await;
    let claims = tokens
        .id_token()
        .unwrap()
        .claims(&other.id_token_verifier(), &nonce)
        .unwrap();
    assert_ne!(
        claims.subject(),
        hall.subject(),
        "another sector sees another sub"
    );
}

#[tokio::test]
async fn fragment_and_form_post_response_modes() {
    let s = setup(|_| {}).await;
    let browser = Browser::new();
    let params = browser
        .authorize(
            &s.base,
            &authorize_url(
                &s.base,
                "tax",
                "http://127.0.0.1:9/tax",
                &[("response_mode", "fragment")],
            ),
        )
        .await;
    assert!(params.contains_key("code"), "code in the fragment");
    let response = browser
        .get(&authorize_url(
            &s.base,
            "tax",
            "http://127.0.0.1:9/tax",
            &[("response_mode", "form_post")],
        ))
        .await;
    assert_eq!(response.status(), 200);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("form-action http://127.0.0.1:9"), "{csp}");
    let page = response.text().await.unwrap();
    assert!(page.contains("action=\"http://127.0.0.1:9/tax\""), "{page}");
    assert!(
        page.contains("name=\"code\"")
            && page.contains("name=\"iss\"")
            && page.contains("name=\"state\" value=\"st\"")
    );
}

#[tokio::test]
async fn client_secret_post_public_clients_pkce_and_the_claims_parameter() {
    let s = setup(|_| {}).await;
    let browser = Browser::new();
    let http = reqwest::Client::new();
    // client_secret_post.
    let code = code_for(&s, &browser, "tax", "http://127.0.0.1:9/tax", &[]).await;
    let r = tax_exchange(&s, &code).await;
    assert!(r["access_token"].is_string(), "{r}");
    // A public client (none) with PKCE, from a loopback port of its choice (RFC 8252 §7.3).
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let redirect = "http://127.0.0.1:50123/app";
    let claims = r#"{"id_token":{"name":null}}"#;
    let app_request = [
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("claims", claims),
    ];
    let code = code_for(&s, &browser, "app", redirect, &app_request).await;
    let exchange = |v: &str, code: &str| {
        http.post(format!("{}/token", s.base))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect),
                ("client_id", "app"),
                ("code_verifier", v),
            ])
            .send()
    };
    let wrong: Value = exchange("wrong-verifier-wrong-verifier-wrong-verifier-00", &code)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(wrong["error"], "invalid_grant");
    let code = code_for(&s, &browser, "app", redirect, &app_request).await;
    let ok: Value = exchange(verifier, &code)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id_token = ok["id_token"].as_str().unwrap();
    let payload = jwt_part(id_token, 1);
    assert_eq!(
        payload["name"], "张三",
        "claims parameter: name in the ID token"
    );
    assert_eq!(payload["aud"], "app");
}

#[tokio::test]
async fn a_client_gets_its_own_id_token_algorithm_and_token_lifetimes() {
    let s = setup(|_| {}).await;
    let app = &s._server.test_app.app;
    let mut spec = client_spec(
        "fast",
        "http://127.0.0.1:9/fast",
        AuthMethod::ClientSecretBasic,
        true,
    );
    spec.settings = yihao::domain::client::ClientSettings {
        id_token_alg: Some(yihao::domain::jose::Alg::EdDSA),
        access_token_secs: Some(120),
        id_token_secs: Some(300),
        full_phone: true,
        access_token_alg: Some(yihao::domain::jose::Alg::RS256),
        resources: vec![],
        ..spec.settings
    };
    register(app, spec, SECRET).await;
    let browser = Browser::new();
    let code = code_for(&s, &browser, "fast", "http://127.0.0.1:9/fast", &[]).await;
    let (status, tokens) = code_exchange(&s, "fast", "http://127.0.0.1:9/fast", &code).await;
    assert_eq!(status, 200, "{tokens}");
    let id_token = tokens["id_token"].as_str().unwrap();
    assert_eq!(jwt_part(id_token, 0)["alg"], "EdDSA");
    let id = jwt_part(id_token, 1);
    assert_eq!(
        id["exp"].as_i64().unwrap() - id["iat"].as_i64().unwrap(),
        300
    );
    let access = jwt_part(tokens["access_token"].as_str().unwrap(), 1);
    assert_eq!(
        access["exp"].as_i64().unwrap() - access["iat"].as_i64().unwrap(),
        120
    );
    assert_eq!(tokens["expires_in"], 120);
    assert_eq!(
        jwt_part(tokens["access_token"].as_str().unwrap(), 0)["typ"],
        "at+jwt"
    );
    assert_eq!(
        jwt_part(tokens["access_token"].as_str().unwrap(), 0)["alg"],
        "RS256"
    );
    // This client was allowed the full mobile number.
    let code = code_for(
        &s,
        &browser,
        "fast",
        "http://127.0.0.1:9/fast",
        &[("scope", "openid phone")],
    )
    .await;
    let (status, tokens) = code_exchange(&s, "fast", "http://127.0.0.1:9/fast", &code).await;
    assert_eq!(status, 200, "{tokens}");
    let info: Value = userinfo(&s, tokens["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["phone_number"], PHONE);
}
