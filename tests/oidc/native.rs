//! Native apps (RFC 8252) with the `openidconnect` crate as the app: a private-use URI scheme
//! redirect in reverse-domain form (§7.1), PKCE required (§8.1), no client secret (§8.5), a consent
//! page that names the app, refresh tokens rotated on every use, and a loopback redirect on any port
//! (§7.3).

use openidconnect::core::{CoreAuthenticationFlow, CoreJwsSigningAlgorithm};
use openidconnect::{
    AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl,
    RefreshToken, Scope, TokenResponse,
};
use yihao::domain::client::{AuthMethod, Channel, GrantType, RedirectUri};

use crate::{
    Browser, ID_NUMBER, PASSWORD, client_spec, redirect_params, register, rp_client, setup,
};

const SCHEME_REDIRECT: &str = "cn.gov.example.zwapp:/oauth2redirect";

#[tokio::test]
async fn a_native_app_signs_in_with_a_private_use_scheme_pkce_and_no_secret() {
    let s = setup(|_| {}).await;
    let app = &s._server.test_app.app;
    let mut spec = client_spec("zwapp", SCHEME_REDIRECT, AuthMethod::None, false);
    spec.name = "政务服务 App".into();
    spec.redirect_uris = vec![
        RedirectUri::parse(SCHEME_REDIRECT).unwrap(),
        RedirectUri::parse("http://127.0.0.1/native").unwrap(),
    ];
    spec.grant_types = vec![GrantType::AuthorizationCode, GrantType::RefreshToken];
    spec.settings.channel = Channel::App;
    spec.settings.pkce_optional = false;
    register(app, spec, "").await;
    app.clients.reload().await.unwrap();

    let (client, http) = rp_client(&s.base, "zwapp", None).await;
    let client = client.set_redirect_uri(RedirectUrl::new(SCHEME_REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let browser = Browser::new();
    let login = browser.page(url.as_str()).await;
    let consent = browser
        .login_page(&s.base, &login, ID_NUMBER, PASSWORD)
        .await;
    assert!(
        consent.contains("政务服务 App"),
        "the consent page names the app: {consent}"
    );
    let back = browser.consent(&s.base, &consent, "allow").await;
    let location = back.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&format!("{SCHEME_REDIRECT}?")),
        "{location}"
    );
    let params = redirect_params(&back);
    assert_eq!(params["state"], *csrf.secret());
    let tokens = client
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let verifier = client
        .id_token_verifier()
        .set_allowed_algs(vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256]);
    let claims = tokens
        .id_token()
        .unwrap()
        .claims(&verifier, &nonce)
        .unwrap();
    assert_eq!(claims.audiences()[0].as_str(), "zwapp");

    // Refresh tokens rotate: the new one works, the old one is refused (and revokes its family).
    let first = tokens.refresh_token().unwrap().clone();
    let rotated = client
        .exchange_refresh_token(&first)
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    let second = rotated.refresh_token().unwrap().clone();
    assert_ne!(first.secret(), second.secret());
    let replay = client
        .exchange_refresh_token(&RefreshToken::new(first.secret().clone()))
        .unwrap()
        .request_async(&http)
        .await;
    assert!(replay.is_err(), "a used refresh token is refused");

    // Without PKCE the app's request is refused at its redirect URI.
    let no_pkce = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .url()
        .0;
    let refused = browser.get(no_pkce.as_str()).await;
    assert_eq!(redirect_params(&refused)["error"], "invalid_request");
    // A scheme it did not register is shown, never redirected to.
    let other = url
        .as_str()
        .replace("cn.gov.example.zwapp", "cn.gov.example.other");
    let shown = browser.get(&other).await;
    assert_eq!(shown.status(), 400);
    // The loopback redirect works on any port (RFC 8252 §7.3).
    let loopback = url.as_str().replace(
        &url::form_urlencoded::byte_serialize(SCHEME_REDIRECT.as_bytes()).collect::<String>(),
        &url::form_urlencoded::byte_serialize(b"http://127.0.0.1:61234/native").collect::<String>(),
    );
    let page = browser.get(&loopback).await;
    let location = page.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("http://127.0.0.1:61234/native?"),
        "{location}"
    );
}
