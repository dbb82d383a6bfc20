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

mod audit;
mod client_auth;
mod client_credentials;
mod code_flow;
mod consent;
mod discovery;
mod errors;
mod introspection;
mod logout;
mod organisations;
mod prompts;
mod rate_limits;
mod refresh;
mod sessions;
mod threats;

use std::collections::HashMap;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdTokenClaims, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use serde_json::Value;
use yihao::crypto::hash_secret;
use yihao::domain::account::{AccountId, Evidence, Level, PersonName, ProofMethod};
use yihao::domain::client::{
    AuthMethod, Client, ClientId as YClientId, ClientSecrets, ClientSpec, GrantType, RedirectUri,
    Scope as YScope,
};
use yihao::domain::document::Document;
use yihao::domain::identifiers::Phone;
use yihao::domain::password::Password;
use yihao::protocol::accounts::NewAccount;

const ID_NUMBER: &str = "11010519491231002X";
const PHONE: &str = "13812341234";
const PASSWORD: &str = "Str0ng-pass!";
const SECRET: &str = "hall-secret-of-at-least-some-length";

struct Setup {
    /// Keeps the server running for the test's length.
    _server: common::Spawned,
    base: String,
}

fn client_spec(id: &str, redirect: &str, auth: AuthMethod, first_party: bool) -> ClientSpec {
    ClientSpec {
        id: YClientId::parse(id).unwrap(),
        name: format!("服务 {id}"),
        auth_method: auth,
        redirect_uris: vec![RedirectUri::parse(redirect).unwrap()],
        post_logout_redirect_uris: vec![
            RedirectUri::parse_post_logout("http://127.0.0.1:9/bye").unwrap(),
        ],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scopes: [
            "openid",
            "profile",
            "phone",
            "email",
            "idcard",
            "org",
            "offline_access",
        ]
        .map(|s| YScope::parse(s).unwrap())
        .to_vec(),
        first_party,
        settings: yihao::domain::client::ClientSettings::default(),
    }
}

async fn setup(configure: impl FnOnce(&mut yihao::config::Config)) -> Setup {
    let server = common::spawn_issuer(configure).await;
    let app = &server.test_app.app;
    let secrets = || Some(ClientSecrets::hashed(hash_secret(SECRET), None));
    for (spec, secrets) in [
        (
            client_spec(
                "hall",
                "http://127.0.0.1:9/cb",
                AuthMethod::ClientSecretBasic,
                false,
            ),
            secrets(),
        ),
        (
            client_spec(
                "tax",
                "http://127.0.0.1:9/tax",
                AuthMethod::ClientSecretPost,
                true,
            ),
            secrets(),
        ),
        (
            client_spec(
                "other",
                "https://other.example.gov.cn/cb",
                AuthMethod::ClientSecretBasic,
                true,
            ),
            secrets(),
        ),
        (
            client_spec("app", "http://127.0.0.1/app", AuthMethod::None, true),
            None,
        ),
    ] {
        app.store
            .insert_client(&Client::register(spec, secrets, 0).unwrap())
            .await
            .unwrap();
    }
    let new = NewAccount {
        documents: vec![Document::national(ID_NUMBER, 1_700_000_000).unwrap()],
        name: PersonName::parse("张三").unwrap(),
        phone: Some(Phone::parse(PHONE).unwrap()),
        email: None,
        evidence: Evidence::new(
            Level::new(2).unwrap(),
            ProofMethod::RegisterCheck,
            "register",
            1,
        )
        .unwrap(),
    };
    let id = AccountId::parse(&uuid::Uuid::new_v4().to_string()).unwrap();
    app.identities
        .create_account(id, new, Some(&Password::new(PASSWORD)), 1)
        .await
        .unwrap();
    let base = server.base.clone();
    Setup {
        _server: server,
        base,
    }
}

/// The person's browser: keeps cookies, does not follow redirects.
struct Browser {
    http: reqwest::Client,
}

impl Browser {
    fn new() -> Self {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self { http }
    }

    async fn get(&self, url: &str) -> reqwest::Response {
        self.http.get(url).send().await.unwrap()
    }

    async fn post(&self, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http.post(url).form(form).send().await.unwrap()
    }

    /// Submits the login form of `page`.
    async fn login(
        &self,
        base: &str,
        page: &str,
        identifier: &str,
        password: &str,
    ) -> reqwest::Response {
        let (i, c) = (hidden(page, "interaction"), hidden(page, "csrf"));
        self.post(
            &format!("{base}/login"),
            &[
                ("interaction", &i),
                ("csrf", &c),
                ("identifier", identifier),
                ("password", password),
            ],
        )
        .await
    }

    async fn consent(&self, base: &str, page: &str, decision: &str) -> reqwest::Response {
        let (i, c) = (hidden(page, "interaction"), hidden(page, "csrf"));
        self.post(
            &format!("{base}/consent"),
            &[("interaction", &i), ("csrf", &c), ("decision", decision)],
        )
        .await
    }

    /// Follows an authorization request through login and consent to the redirect's parameters.
    async fn authorize(&self, base: &str, url: &str) -> HashMap<String, String> {
        let mut response = self.get(url).await;
        loop {
            if response.status().is_redirection() {
                return redirect_params(&response);
            }
            let body = response.text().await.unwrap();
            response = if body.contains("action=\"/login\"") {
                self.login(base, &body, ID_NUMBER, PASSWORD).await
            } else if body.contains("action=\"/consent\"") {
                self.consent(base, &body, "allow").await
            } else {
                panic!("unexpected page: {body}");
            };
        }
    }
}

fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

fn redirect_params(response: &reqwest::Response) -> HashMap<String, String> {
    let location = response.headers()["location"].to_str().unwrap();
    let url = url::Url::parse(location).unwrap();
    let mut params: HashMap<String, String> = url.query_pairs().into_owned().collect();
    if let Some(fragment) = url.fragment() {
        params.extend(url::form_urlencoded::parse(fragment.as_bytes()).into_owned());
    }
    params
}

fn rp_http() -> openidconnect::reqwest::Client {
    openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn relying_party(
    base: &str,
    id: &str,
    secret: Option<&str>,
    redirect: &str,
) -> (
    CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    >,
    openidconnect::reqwest::Client,
) {
    let http = rp_http();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(base.to_owned()).unwrap(), &http)
            .await
            .unwrap();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(id.to_owned()),
        secret.map(|s| ClientSecret::new(s.to_owned())),
    )
    .set_redirect_uri(RedirectUrl::new(redirect.to_owned()).unwrap());
    (client, http)
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
    let (status, body) = post_form(
        s,
        "/token",
        ("hall", SECRET),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9/cb"),
        ],
    )
    .await;
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

/// Registers a client; secret-based ones get SECRET.
async fn register(app: &yihao::app::App, spec: ClientSpec) {
    let secrets = spec
        .auth_method
        .uses_secret()
        .then(|| ClientSecrets::hashed(hash_secret(SECRET), None));
    app.store
        .insert_client(&Client::register(spec, secrets, 0).unwrap())
        .await
        .unwrap();
}

/// Posts a form to an endpoint with Basic authentication and returns status and JSON.
async fn post_form(
    s: &Setup,
    path: &str,
    client: (&str, &str),
    form: &[(&str, &str)],
) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", s.base))
        .basic_auth(client.0, Some(client.1))
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}
