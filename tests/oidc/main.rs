//! End to end on a real port, with the `openidconnect` crate as the relying party and a cookie-keeping
//! HTTP client as the browser: discovery, the code flow with PKCE, ID-token verification against the
//! JWKS, userinfo, SSO for a second client, prompt handling, and the error paths of /authorize,
//! /token and /userinfo. Every value of the discovery document is exercised here.
//!
//! One test binary (`cargo test --test oidc`); this file holds the server every test starts
//! ([`setup`]), the person's browser and the relying party, and the modules by subject.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod account_page;
mod admin;
mod audit;
mod cas;
mod client_auth;
mod client_credentials;
mod client_registration;
mod code_flow;
mod consent;
mod device;
mod discovery;
mod enterprise_page;
mod errors;
mod introspection;
mod kiosk;
mod logout;
mod native;
mod organisations;
mod prompts;
mod qr;
mod rate_limits;
mod recovery;
mod refresh;
mod registration;
mod second_factor;
mod sessions;
mod sms_login;
mod threats;
mod window;

use std::collections::HashMap;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdTokenClaims, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreTokenResponse, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    RedirectUrl, Scope, TokenResponse,
};
use serde_json::Value;
use yihao::domain::client::{AuthMethod, ClientSpec, RedirectUri};

use common::browser::{Browser, hidden, redirect_params};
use common::clients::{post_form, register};
use common::people::{ID_NUMBER, NAME, PASSWORD, PHONE, Person};

const SECRET: &str = "hall-secret-of-at-least-some-length";

struct Setup {
    /// Keeps the server running for the test's length.
    _server: common::Spawned,
    base: String,
}

/// A service of people's browsers with every scope and a post-logout URI.
fn client_spec(id: &str, redirect: &str, auth: AuthMethod, first_party: bool) -> ClientSpec {
    ClientSpec {
        post_logout_redirect_uris: vec![
            RedirectUri::parse_post_logout("http://127.0.0.1:9/bye").unwrap(),
        ],
        ..common::clients::web(
            id,
            redirect,
            auth,
            &[
                "openid",
                "profile",
                "phone",
                "email",
                "idcard",
                "org",
                "offline_access",
            ],
            first_party,
        )
    }
}

/// A server on a real port (adjusted by `configure`) with the clients "hall" (client_secret_basic,
/// needs consent), "tax" (client_secret_post, first party, the same host), "other" (another host)
/// and "app" (public), and the test person with a mobile number.
async fn setup(configure: impl FnOnce(&mut yihao::config::Config)) -> Setup {
    setup_on(configure, None).await
}

/// [`setup`] with the server on `clock`, which the test moves instead of sleeping.
async fn setup_on(
    configure: impl FnOnce(&mut yihao::config::Config),
    clock: Option<std::sync::Arc<yihao::clock::ManualClock>>,
) -> Setup {
    let server = common::spawn_issuer_on(configure, clock).await;
    let app = &server.test_app.app;
    for spec in [
        client_spec(
            "hall",
            "http://127.0.0.1:9/cb",
            AuthMethod::ClientSecretBasic,
            false,
        ),
        client_spec(
            "tax",
            "http://127.0.0.1:9/tax",
            AuthMethod::ClientSecretPost,
            true,
        ),
        client_spec(
            "other",
            "https://other.example.gov.cn/cb",
            AuthMethod::ClientSecretBasic,
            true,
        ),
        client_spec("app", "http://127.0.0.1/app", AuthMethod::None, true),
    ] {
        register(app, spec, SECRET).await;
    }
    Person {
        phone: Some(PHONE),
        source: "register",
        ..Person::new(ID_NUMBER, NAME)
    }
    .create(app, Some(PASSWORD))
    .await;
    let base = server.base.clone();
    Setup {
        _server: server,
        base,
    }
}

/// The relying party's client, as discovery configures it.
type RpClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

fn rp_http() -> openidconnect::reqwest::Client {
    openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Client `id` of the provider at `base`, configured by discovery, and its HTTP client.
async fn rp_client(
    base: &str,
    id: &str,
    secret: Option<&str>,
) -> (RpClient, openidconnect::reqwest::Client) {
    let http = rp_http();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(base.to_owned()).unwrap(), &http)
            .await
            .unwrap();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(id.to_owned()),
        secret.map(|s| ClientSecret::new(s.to_owned())),
    );
    (client, http)
}

/// A relying party: [`rp_client`] with its redirect URI.
async fn relying_party(
    base: &str,
    id: &str,
    secret: Option<&str>,
    redirect: &str,
) -> (RpClient, openidconnect::reqwest::Client) {
    let (client, http) = rp_client(base, id, secret).await;
    let client = client.set_redirect_uri(RedirectUrl::new(redirect.to_owned()).unwrap());
    (client, http)
}

/// The relying party's authorization request for a code (random state and nonce): URL, state, nonce.
fn rp_request(client: &RpClient) -> (url::Url, CsrfToken, Nonce) {
    client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .url()
}

/// The relying party exchanges `code` for tokens.
async fn rp_exchange(
    client: &RpClient,
    http: &openidconnect::reqwest::Client,
    code: String,
) -> CoreTokenResponse {
    client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .request_async(http)
        .await
        .unwrap()
}

/// The person signs in at relying party `id` (secret [`SECRET`]) through `browser`: the relying
/// party, its tokens and the nonce it sent.
async fn rp_sign_in(
    s: &Setup,
    browser: &Browser,
    id: &str,
    redirect: &str,
) -> (RpClient, CoreTokenResponse, Nonce) {
    let (client, http) = relying_party(&s.base, id, Some(SECRET), redirect).await;
    let (url, _, nonce) = rp_request(&client);
    let code = browser.authorize(&s.base, url.as_str()).await["code"].clone();
    let tokens = rp_exchange(&client, &http, code).await;
    (client, tokens, nonce)
}

/// The whole flow for one ID-token algorithm; returns what the RP saw.
async fn code_flow(s: &Setup, browser: &Browser) -> (CoreIdTokenClaims, CoreUserInfoClaims) {
    let (client, http) =
        relying_party(&s.base, "hall", Some(SECRET), "http://127.0.0.1:9/cb").await;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("phone".into()))
        .set_pkce_challenge(challenge)
        .url();
    let params = browser.authorize(&s.base, url.as_str()).await;
    assert_eq!(params["state"], *csrf.secret());
    assert_eq!(params["iss"], s.base, "RFC 9207 iss");
    let tokens = client
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let id_token = tokens.id_token().expect("an ID token");
    let verifier = client.id_token_verifier().set_allowed_algs(vec![
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        CoreJwsSigningAlgorithm::EdDsa,
    ]);
    let claims = id_token.claims(&verifier, &nonce).unwrap().clone();
    let expected = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected), "at_hash");
    let info: CoreUserInfoClaims = client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    (claims, info)
}

fn authorize_url(base: &str, client: &str, redirect: &str, extra: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("client_id", client),
        ("redirect_uri", redirect),
        ("response_type", "code"),
        ("scope", "openid profile"),
        ("state", "st"),
    ];
    for (k, v) in extra {
        params.retain(|(n, _)| n != k);
        params.push((k, v));
    }
    let mut url = url::Url::parse(&format!("{base}/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url.to_string()
}

async fn code_for(
    s: &Setup,
    browser: &Browser,
    client: &str,
    redirect: &str,
    extra: &[(&str, &str)],
) -> String {
    browser
        .authorize(&s.base, &authorize_url(&s.base, client, redirect, extra))
        .await["code"]
        .clone()
}

/// A code exchange for "hall" with offline_access: access, refresh and ID tokens.
async fn tokens_with_refresh(s: &Setup, browser: &Browser) -> Value {
    let code = code_for(
        s,
        browser,
        "hall",
        "http://127.0.0.1:9/cb",
        &[("scope", "openid profile offline_access")],
    )
    .await;
    let (status, body) = code_exchange(s, "hall", "http://127.0.0.1:9/cb", &code).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["refresh_token"].is_string(),
        "offline_access gives a refresh token: {body}"
    );
    body
}

/// A relying party's back-channel logout endpoint (`POST /backchannel`) on `listener`: each logout
/// token POSTed there arrives on the receiver.
fn backchannel_receiver(listener: tokio::net::TcpListener) -> tokio::sync::mpsc::Receiver<String> {
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(8);
    tokio::spawn(async move {
        let route = axum::routing::post(
            move |axum::Form(form): axum::Form<HashMap<String, String>>| {
                let tx = tx.clone();
                async move {
                    let _ = tx
                        .send(form.get("logout_token").cloned().unwrap_or_default())
                        .await;
                    "ok"
                }
            },
        );
        axum::serve(listener, axum::Router::new().route("/backchannel", route))
            .await
            .unwrap();
    });
    rx
}

/// Verifies a logout token as a relying party does (Back-Channel Logout §2.6): signature against
/// the JWKS, `typ`, issuer and audience; returns its claims.
async fn verify_logout_token(base: &str, token: &str, audience: &str) -> Value {
    let jwks: jsonwebtoken::jwk::JwkSet = reqwest::get(format!("{base}/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    let key =
        jsonwebtoken::DecodingKey::from_jwk(jwks.find(header.kid.as_deref().unwrap()).unwrap())
            .unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[base]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap()
        .claims
}

/// Exchanges `code` as `client` (Basic authentication with [`SECRET`]) for the redirect URI
/// `redirect`: status and answer.
async fn code_exchange(s: &Setup, client: &str, redirect: &str, code: &str) -> (u16, Value) {
    post_form(
        &s.base,
        "/token",
        (client, SECRET),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect),
        ],
    )
    .await
}

/// Exchanges `code` as "tax" (client_secret_post, redirect URI http://127.0.0.1:9/tax): the answer.
async fn tax_exchange(s: &Setup, code: &str) -> Value {
    reqwest::Client::new()
        .post(format!("{}/token", s.base))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", "http://127.0.0.1:9/tax"),
            ("client_id", "tax"),
            ("client_secret", SECRET),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Part `i` of a JWT (0: header, 1: claims), decoded.
fn jwt_part(jwt: &str, i: usize) -> Value {
    serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            jwt.split('.').nth(i).unwrap(),
        )
        .unwrap(),
    )
    .unwrap()
}

/// `GET /userinfo` with `token` in the Authorization header.
async fn userinfo(s: &Setup, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}/userinfo", s.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}
