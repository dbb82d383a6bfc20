//! End to end on a real port, with the `openidconnect` crate as the relying party and a cookie-keeping
//! HTTP client as the browser: discovery, the code flow with PKCE, ID-token verification against the
//! JWKS, userinfo, SSO for a second client, prompt handling, and the error paths of /authorize,
//! /token and /userinfo. Every value of the discovery document is exercised here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreIdTokenClaims,
    CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreUserInfoClaims,
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

#[tokio::test]
async fn discovery_lists_exactly_what_is_served() {
    let s = setup(|_| {}).await;
    let d: Value = reqwest::get(format!("{}/.well-known/openid-configuration", s.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let oauth: Value = reqwest::get(format!("{}/.well-known/oauth-authorization-server", s.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d, oauth, "RFC 8414 metadata is the same document");
    assert_eq!(d["issuer"], s.base);
    for (key, path) in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("jwks_uri", "/jwks"),
    ] {
        assert_eq!(d[key], format!("{}{path}", s.base), "{key}");
    }
    let list = |k: &str| {
        d[k].as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(list("response_types_supported"), ["code"]);
    assert_eq!(
        list("response_modes_supported"),
        ["query", "fragment", "form_post"]
    );
    assert_eq!(
        list("grant_types_supported"),
        ["authorization_code", "refresh_token", "client_credentials"]
    );
    assert_eq!(
        d["introspection_endpoint"],
        format!("{}/introspect", s.base)
    );
    assert_eq!(d["revocation_endpoint"], format!("{}/revoke", s.base));
    assert_eq!(d["end_session_endpoint"], format!("{}/logout", s.base));
    assert_eq!(d["backchannel_logout_supported"], true);
    assert_eq!(d["backchannel_logout_session_supported"], true);
    assert_eq!(d["frontchannel_logout_supported"], true);
    assert_eq!(d["frontchannel_logout_session_supported"], true);
    assert_eq!(
        list("introspection_endpoint_auth_methods_supported"),
        [
            "client_secret_basic",
            "client_secret_post",
            "client_secret_jwt",
            "private_key_jwt"
        ]
    );
    assert_eq!(
        list("revocation_endpoint_auth_methods_supported"),
        [
            "client_secret_basic",
            "client_secret_post",
            "client_secret_jwt",
            "private_key_jwt",
            "none"
        ]
    );
    assert_eq!(list("subject_types_supported"), ["pairwise"]);
    assert_eq!(
        list("id_token_signing_alg_values_supported"),
        ["RS256", "ES256", "EdDSA"]
    );
    assert_eq!(
        list("token_endpoint_auth_methods_supported"),
        [
            "client_secret_basic",
            "client_secret_post",
            "client_secret_jwt",
            "private_key_jwt",
            "none"
        ]
    );
    for endpoint in ["token", "introspection", "revocation"] {
        assert_eq!(
            list(&format!(
                "{endpoint}_endpoint_auth_signing_alg_values_supported"
            )),
            [
                "RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA", "HS256", "HS384",
                "HS512"
            ]
        );
    }
    assert_eq!(list("code_challenge_methods_supported"), ["S256"]);
    assert_eq!(
        list("scopes_supported"),
        [
            "openid",
            "profile",
            "phone",
            "email",
            "idcard",
            "org",
            "offline_access"
        ]
    );
    assert_eq!(
        list("prompt_values_supported"),
        ["none", "login", "consent", "select_account"]
    );
    assert_eq!(list("ui_locales_supported"), ["zh-CN", "en"]);
    assert_eq!(
        list("acr_values_supported"),
        [
            "urn:yihao:loa:1",
            "urn:yihao:loa:2",
            "urn:yihao:loa:3",
            "urn:yihao:loa:4"
        ]
    );
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    assert_eq!(d["claims_parameter_supported"], true);
    assert_eq!(d["request_parameter_supported"], false);
    assert_eq!(d["request_uri_parameter_supported"], false);
    let jwks: Value = reqwest::get(format!("{}/jwks", s.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let algs: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["alg"].as_str().unwrap())
        .collect();
    for alg in ["RS256", "ES256", "EdDSA"] {
        assert!(algs.contains(&alg), "{alg} missing from JWKS");
    }
    for k in jwks["keys"].as_array().unwrap() {
        assert_eq!(k["use"], "sig");
        assert!(k["kid"].is_string() && k.get("d").is_none(), "{k}");
    }
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
    let (url, _, nonce) = tax
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .url();
    let response = browser.get(url.as_str()).await;
    assert!(
        response.status().is_redirection(),
        "the login form was shown again"
    );
    let code = redirect_params(&response)["code"].clone();
    let tokens = tax
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
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
    let (url, _, nonce) = other
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .url();
    let code = redirect_params(&browser.get(url.as_str()).await)["code"].clone();
    let tokens = other
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
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
    let s = setup(|_| {}).await;
    let browser = Browser::new();
    browser
        .authorize(
            &s.base,
            &authorize_url(&s.base, "tax", "http://127.0.0.1:9/tax", &[]),
        )
        .await;
    for extra in [
        ("prompt", "login"),
        ("max_age", "0"),
        ("prompt", "select_account"),
    ] {
        if extra.1 == "0" {
            tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        }
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
        .get(&authorize_url(
            &s.base,
            "tax",
            "http://127.0.0.1:9/tax",
            &[("prompt", "consent")],
        ))
        .await
        .text()
        .await
        .unwrap();
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
    let page = browser.get(&url).await.text().await.unwrap();
    assert!(
        page.contains("lang=\"en\"") && page.contains("Log in"),
        "{page}"
    );
    assert!(page.contains("value=\"13812341234\""));
    assert!(!page.contains("<script"), "no script on the login page");
    let zh = browser
        .get(&authorize_url(
            &s.base,
            "hall",
            "http://127.0.0.1:9/cb",
            &[],
        ))
        .await
        .text()
        .await
        .unwrap();
    assert!(zh.contains("lang=\"zh-CN\""));
    let wrong = browser
        .login(&s.base, &page, ID_NUMBER, "Wrong-pass1!")
        .await;
    assert_eq!(wrong.status(), 401);
    let wrong_text = wrong.text().await.unwrap();
    let unknown = browser
        .login(&s.base, &page, "440305200002290029", "Wrong-pass1!")
        .await
        .text()
        .await
        .unwrap();
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
async fn consent_is_remembered_and_a_refusal_is_access_denied() {
    let s = setup(|_| {}).await;
    let browser = Browser::new();
    let page = browser
        .get(&authorize_url(
            &s.base,
            "hall",
            "http://127.0.0.1:9/cb",
            &[],
        ))
        .await
        .text()
        .await
        .unwrap();
    let consent = browser
        .login(&s.base, &page, PHONE, PASSWORD)
        .await
        .text()
        .await
        .unwrap();
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
async fn authorize_errors_are_shown_or_redirected_as_the_rfc_says() {
    let s = setup(|_| {}).await;
    let browser = Browser::new();
    for url in [
        authorize_url(&s.base, "nobody", "http://127.0.0.1:9/cb", &[]),
        authorize_url(&s.base, "hall", "http://127.0.0.1:9/evil", &[]),
        authorize_url(&s.base, "hall", "http://127.0.0.1:9/cb/../cb", &[]),
        format!(
            "{}&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb",
            authorize_url(&s.base, "hall", "http://127.0.0.1:9/cb", &[])
        ),
    ] {
        let response = browser.get(&url).await;
        assert_eq!(response.status(), 400, "{url}");
        assert!(
            response.headers().get("location").is_none(),
            "redirected: {url}"
        );
    }
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 8] = [
        (
            "hall",
            &[("response_type", "token")],
            "unsupported_response_type",
        ),
        ("hall", &[("scope", "openid admin")], "invalid_scope"),
        (
            "hall",
            &[("request", "eyJhbGciOiJub25lIn0.e30.")],
            "request_not_supported",
        ),
        (
            "hall",
            &[("request_uri", "https://x.example/r")],
            "request_uri_not_supported",
        ),
        (
            "hall",
            &[
                (
                    "code_challenge",
                    "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                ),
                ("code_challenge_method", "plain"),
            ],
            "invalid_request",
        ),
        ("hall", &[("prompt", "none login")], "invalid_request"),
        ("hall", &[("claims", "{not json")], "invalid_request"),
        ("app", &[], "invalid_request"),
    ];
    for (client, extra, code) in cases {
        let redirect = if client == "app" {
            "http://127.0.0.1/app"
        } else {
            "http://127.0.0.1:9/cb"
        };
        let mut url = authorize_url(&s.base, client, redirect, &[]);
        for (k, v) in extra {
            // Replace rather than repeat (a repeat is an error of its own).
            let mut u = url::Url::parse(&url).unwrap();
            let pairs: Vec<(String, String)> = u
                .query_pairs()
                .into_owned()
                .filter(|(n, _)| n != k)
                .collect();
            u.query_pairs_mut()
                .clear()
                .extend_pairs(pairs)
                .append_pair(k, v);
            url = u.to_string();
        }
        let params = redirect_params(&browser.get(&url).await);
        assert_eq!(params["error"], code, "{extra:?}");
        assert_eq!(params["state"], "st");
        assert_eq!(params["iss"], s.base);
    }
    let dup = format!(
        "{}&scope=openid",
        authorize_url(&s.base, "hall", "http://127.0.0.1:9/cb", &[])
    );
    assert_eq!(
        redirect_params(&browser.get(&dup).await)["error"],
        "invalid_request"
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

#[tokio::test]
async fn token_endpoint_errors_and_code_replay_revocation() {
    let s = setup(|_| {}).await;
    let browser = Browser::new();
    let http = reqwest::Client::new();
    let token = |form: Vec<(&'static str, String)>, basic: Option<(&str, &str)>| {
        let mut r = http.post(format!("{}/token", s.base)).form(&form);
        if let Some((u, p)) = basic {
            r = r.basic_auth(u, Some(p));
        }
        r.send()
    };
    let redirect = "http://127.0.0.1:9/cb".to_owned();
    let code = code_for(&s, &browser, "hall", &redirect, &[]).await;
    let grant = |code: &str| {
        vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", redirect.clone()),
        ]
    };

    let bad_secret = token(grant(&code), Some(("hall", "wrong"))).await.unwrap();
    assert_eq!(bad_secret.status(), 401);
    assert!(
        bad_secret.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_eq!(
        bad_secret.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
    let mut post = grant(&code);
    post.extend([
        ("client_id", "hall".to_owned()),
        ("client_secret", SECRET.to_owned()),
    ]);
    assert_eq!(
        token(post, None)
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["error"],
        "invalid_client",
        "hall registered client_secret_basic"
    );
    let mut wrong_redirect = grant(&code);
    wrong_redirect[2].1 = "http://127.0.0.1:9/other".into();
    assert_eq!(
        token(wrong_redirect, Some(("hall", SECRET)))
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["error"],
        "invalid_grant"
    );
    // The code was consumed by that failed attempt: single use means single use.
    let code = code_for(&s, &browser, "hall", &redirect, &[]).await;
    let ok = token(grant(&code), Some(("hall", SECRET))).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["cache-control"], "no-store");
    let body: Value = ok.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap().to_owned();
    let userinfo = |token: String| {
        http.get(format!("{}/userinfo", s.base))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(userinfo(access.clone()).await.unwrap().status(), 200);
    let replay = token(grant(&code), Some(("hall", SECRET))).await.unwrap();
    assert_eq!(
        replay.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    let revoked = userinfo(access).await.unwrap();
    assert_eq!(
        revoked.status(),
        401,
        "the replayed code's access token is revoked"
    );
    assert!(
        revoked.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    // The ID token is not an access token.
    let code = code_for(&s, &browser, "hall", &redirect, &[]).await;
    let body: Value = token(grant(&code), Some(("hall", SECRET)))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        userinfo(body["id_token"].as_str().unwrap().to_owned())
            .await
            .unwrap()
            .status(),
        401
    );
    let no_token = http
        .get(format!("{}/userinfo", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 401);
    assert_eq!(
        no_token.headers()["www-authenticate"],
        "Bearer realm=\"yihao\""
    );
    let unsupported = token(
        vec![("grant_type", "password".into())],
        Some(("hall", SECRET)),
    )
    .await
    .unwrap();
    assert_eq!(
        unsupported.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
    let dup = http
        .post(format!("{}/token", s.base))
        .basic_auth("hall", Some(SECRET))
        .body("grant_type=authorization_code&code=a&code=b")
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(
        dup.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
}

#[tokio::test]
async fn client_secret_post_public_clients_pkce_and_the_claims_parameter() {
    let s = setup(|_| {}).await;
    let browser = Browser::new();
    let http = reqwest::Client::new();
    // client_secret_post.
    let code = code_for(&s, &browser, "tax", "http://127.0.0.1:9/tax", &[]).await;
    let r: Value = http
        .post(format!("{}/token", s.base))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9/tax"),
            ("client_id", "tax"),
            ("client_secret", SECRET),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(r["access_token"].is_string(), "{r}");
    // A public client (none) with PKCE, from a loopback port of its choice (RFC 8252 §7.3).
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let redirect = "http://127.0.0.1:50123/app";
    let claims = r#"{"id_token":{"name":null}}"#;
    let code = code_for(
        &s,
        &browser,
        "app",
        redirect,
        &[
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("claims", claims),
        ],
    )
    .await;
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
    let code = code_for(
        &s,
        &browser,
        "app",
        redirect,
        &[
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("claims", claims),
        ],
    )
    .await;
    let ok: Value = exchange(verifier, &code)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id_token = ok["id_token"].as_str().unwrap();
    let payload: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            id_token.split('.').nth(1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        payload["name"], "张三",
        "claims parameter: name in the ID token"
    );
    assert_eq!(payload["aud"], "app");
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
    let r: Value = http
        .post(format!("{}/token", s.base))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9/tax"),
            ("client_id", "tax"),
            ("client_secret", SECRET),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let info: Value = http
        .get(format!("{}/userinfo", s.base))
        .bearer_auth(r["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
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

#[tokio::test]
async fn a_person_chooses_the_organisation_they_act_for_and_the_tokens_carry_it() {
    use yihao::domain::identifiers::CreditCode;
    use yihao::domain::organisation::{Membership, OrgId, Role, Scope as OrgScope};
    let s = setup(|_| {}).await;
    let app = &s._server.test_app.app;
    let ids = &app.identities;
    let person = ids.find(ID_NUMBER, 1).await.unwrap().unwrap().id;
    let boss = AccountId::parse(&uuid::Uuid::new_v4().to_string()).unwrap();
    let boss_account = NewAccount {
        documents: vec![Document::national("440305200002290029", 1_700_000_000).unwrap()],
        name: PersonName::parse("李四").unwrap(),
        phone: None,
        email: None,
        evidence: Evidence::new(
            Level::new(2).unwrap(),
            ProofMethod::RegisterCheck,
            "register",
            1,
        )
        .unwrap(),
    };
    ids.create_account(boss.clone(), boss_account, None, 1)
        .await
        .unwrap();
    let org = ids
        .create_org(
            OrgId::parse("o-1").unwrap(),
            CreditCode::parse("91512081MA62K0260E").unwrap(),
            "测试有限公司",
            1,
        )
        .await
        .unwrap();
    let now = yihao::clock::system_ms() / 1000;
    let lr = Membership::grant(
        org.id.clone(),
        boss.clone(),
        Role::LegalRepresentative,
        OrgScope::All,
        None,
        None,
        now,
    )
    .unwrap();
    ids.grant(&org, lr, now).await.unwrap();
    let items = OrgScope::parse(&["tax.declare".into()]).unwrap();
    let agent = Membership::grant(
        org.id.clone(),
        person,
        Role::Agent,
        items,
        Some(now + 86_400),
        Some(boss.clone()),
        now,
    )
    .unwrap();
    ids.grant(&org, agent, now).await.unwrap();

    let browser = Browser::new();
    let http = reqwest::Client::new();
    let url = authorize_url(
        &s.base,
        "tax",
        "http://127.0.0.1:9/tax",
        &[("scope", "openid org")],
    );
    let page = browser.get(&url).await.text().await.unwrap();
    let chooser = browser
        .login(&s.base, &page, ID_NUMBER, PASSWORD)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        chooser.contains("action=\"/select-org\"") && chooser.contains("测试有限公司（经办人）"),
        "{chooser}"
    );
    let choice = "o-1|agent".to_owned();
    let response = browser
        .post(
            &format!("{}/select-org", s.base),
            &[
                ("interaction", &hidden(&chooser, "interaction")),
                ("csrf", &hidden(&chooser, "csrf")),
                ("org", &choice),
            ],
        )
        .await;
    let code = redirect_params(&response)["code"].clone();
    let tokens: Value = http
        .post(format!("{}/token", s.base))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9/tax"),
            ("client_id", "tax"),
            ("client_secret", SECRET),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let payload = |jwt: &str| -> Value {
        serde_json::from_slice(
            &base64::Engine::decode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                jwt.split('.').nth(1).unwrap(),
            )
            .unwrap(),
        )
        .unwrap()
    };
    let id_token = payload(tokens["id_token"].as_str().unwrap());
    let org_claim = &id_token["org"];
    assert_eq!(org_claim["credit_code"], "91512081MA62K0260E");
    assert_eq!(org_claim["name"], "测试有限公司");
    assert_eq!(org_claim["role"], "agent");
    assert_eq!(
        org_claim["delegation"]["scope"],
        serde_json::json!(["tax.declare"])
    );
    assert_eq!(org_claim["delegation"]["exp"], now + 86_400);
    let granted_by = org_claim["delegation"]["granted_by"].as_str().unwrap();
    assert_ne!(
        granted_by,
        boss.as_str(),
        "the grantor appears as a pairwise sub, not an internal id"
    );
    assert_eq!(
        payload(tokens["access_token"].as_str().unwrap())["org"],
        *org_claim,
        "department systems see it offline"
    );
    let info: Value = http
        .get(format!("{}/userinfo", s.base))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["org"], *org_claim);
    assert_eq!(info["sub"], id_token["sub"], "sub stays the person");

    // Choosing "myself" gives tokens without an organisation; prompt=none cannot ask.
    let chooser = browser.get(&url).await.text().await.unwrap();
    let response = browser
        .post(
            &format!("{}/select-org", s.base),
            &[
                ("interaction", &hidden(&chooser, "interaction")),
                ("csrf", &hidden(&chooser, "csrf")),
                ("org", "none"),
            ],
        )
        .await;
    let code = redirect_params(&response)["code"].clone();
    let tokens: Value = http
        .post(format!("{}/token", s.base))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9/tax"),
            ("client_id", "tax"),
            ("client_secret", SECRET),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        payload(tokens["id_token"].as_str().unwrap())
            .get("org")
            .is_none()
    );
    let none = authorize_url(
        &s.base,
        "tax",
        "http://127.0.0.1:9/tax",
        &[("scope", "openid org"), ("prompt", "none")],
    );
    assert_eq!(
        redirect_params(&browser.get(&none).await)["error"],
        "interaction_required"
    );
    // A role not held is refused.
    let chooser = browser.get(&url).await.text().await.unwrap();
    let forged = browser
        .post(
            &format!("{}/select-org", s.base),
            &[
                ("interaction", &hidden(&chooser, "interaction")),
                ("csrf", &hidden(&chooser, "csrf")),
                ("org", "o-1|legal_representative"),
            ],
        )
        .await;
    assert_eq!(forged.status(), 400);
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
        ..Default::default()
    };
    register(app, spec).await;
    let browser = Browser::new();
    let code = code_for(&s, &browser, "fast", "http://127.0.0.1:9/fast", &[]).await;
    let (status, tokens) = post_form(
        &s,
        "/token",
        ("fast", SECRET),
        &[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "http://127.0.0.1:9/fast"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let part = |jwt: &str, i: usize| -> Value {
        serde_json::from_slice(
            &base64::Engine::decode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                jwt.split('.').nth(i).unwrap(),
            )
            .unwrap(),
        )
        .unwrap()
    };
    let id_token = tokens["id_token"].as_str().unwrap();
    assert_eq!(part(id_token, 0)["alg"], "EdDSA");
    let id = part(id_token, 1);
    assert_eq!(
        id["exp"].as_i64().unwrap() - id["iat"].as_i64().unwrap(),
        300
    );
    let access = part(tokens["access_token"].as_str().unwrap(), 1);
    assert_eq!(
        access["exp"].as_i64().unwrap() - access["iat"].as_i64().unwrap(),
        120
    );
    assert_eq!(tokens["expires_in"], 120);
    assert_eq!(
        part(tokens["access_token"].as_str().unwrap(), 0)["typ"],
        "at+jwt"
    );
    assert_eq!(
        part(tokens["access_token"].as_str().unwrap(), 0)["alg"],
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
    let (status, tokens) = post_form(
        &s,
        "/token",
        ("fast", SECRET),
        &[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "http://127.0.0.1:9/fast"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let info: Value = reqwest::Client::new()
        .get(format!("{}/userinfo", s.base))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["phone_number"], PHONE);
}

#[tokio::test]
async fn an_id_token_hint_for_someone_else_asks_for_a_login() {
    let s = setup(|_| {}).await;
    let browser = Browser::new();
    let (hall, http) = relying_party(&s.base, "hall", Some(SECRET), "http://127.0.0.1:9/cb").await;
    let (url, _, nonce) = hall
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .url();
    let code = browser.authorize(&s.base, url.as_str()).await["code"].clone();
    let tokens = hall
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    let hint = tokens.id_token().unwrap().to_string();
    let _ = nonce;
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
    let (tax, http) = relying_party(
        &s.base,
        "other",
        Some(SECRET),
        "https://other.example.gov.cn/cb",
    )
    .await;
    let (url, _, _) = tax
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .url();
    let code = other.authorize(&s.base, url.as_str()).await["code"].clone();
    let foreign = tax
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .request_async(&http)
        .await
        .unwrap()
        .id_token()
        .unwrap()
        .to_string();
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
    common::create_person(
        app,
        "440305200002290029",
        "李四",
        1,
        ProofMethod::SelfDeclared,
        Some(PASSWORD),
    )
    .await;
    let browser = Browser::new();
    let url = authorize_url(
        &s.base,
        "tax",
        "http://127.0.0.1:9/tax",
        &[("acr_values", "urn:yihao:loa:2")],
    );
    let page = browser.get(&url).await.text().await.unwrap();
    let response = browser
        .login(&s.base, &page, "440305200002290029", PASSWORD)
        .await;
    assert!(
        response.status().is_redirection(),
        "the login page came back: a loop"
    );
    let code = redirect_params(&response)["code"].clone();
    let tokens: Value = reqwest::Client::new()
        .post(format!("{}/token", s.base))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "http://127.0.0.1:9/tax"),
            ("client_id", "tax"),
            ("client_secret", SECRET),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            tokens["id_token"]
                .as_str()
                .unwrap()
                .split('.')
                .nth(1)
                .unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        claims["acr"], "urn:yihao:loa:1",
        "the relying party sees the level actually reached"
    );
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

/// Confirms the logout offered on `page`.
async fn confirm_logout(s: &Setup, browser: &Browser, page: &str) -> reqwest::Response {
    browser
        .post(
            &format!("{}/logout/confirm", s.base),
            &[
                ("interaction", &hidden(page, "interaction")),
                ("csrf", &hidden(page, "csrf")),
                ("decision", "logout"),
            ],
        )
        .await
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

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_family() {
    let s = setup(|_| {}).await;
    let browser = Browser::new();
    let (hall, http) = relying_party(&s.base, "hall", Some(SECRET), "http://127.0.0.1:9/cb").await;
    let first = tokens_with_refresh(&s, &browser).await;
    let r1 = openidconnect::RefreshToken::new(first["refresh_token"].as_str().unwrap().to_owned());
    let second = hall
        .exchange_refresh_token(&r1)
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    let r2 = second
        .refresh_token()
        .expect("rotation gives a new refresh token")
        .clone();
    assert_ne!(r2.secret(), r1.secret());
    assert!(
        second.id_token().is_some(),
        "an ID token with the refreshed tokens"
    );
    // Narrowing is allowed; widening is not.
    let (status, narrow) = post_form(
        &s,
        "/token",
        ("hall", SECRET),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", r2.secret()),
            ("scope", "openid"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{narrow}");
    assert_eq!(narrow["scope"], "openid");
    let r3 = narrow["refresh_token"].as_str().unwrap().to_owned();
    let (_, wide) = post_form(
        &s,
        "/token",
        ("hall", SECRET),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &r3),
            ("scope", "openid idcard"),
        ],
    )
    .await;
    assert_eq!(wide["error"], "invalid_scope");
    // A refused request does not spend the token.
    let (_, still_live) = post_form(&s, "/introspect", ("hall", SECRET), &[("token", &r3)]).await;
    assert_eq!(still_live["active"], true);
    // Reuse of r1 (already rotated) revokes every token of the family, including the newest.
    let (_, reuse) = post_form(
        &s,
        "/token",
        ("hall", SECRET),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", r1.secret()),
        ],
    )
    .await;
    assert_eq!(reuse["error"], "invalid_grant");
    let (status, after) = post_form(&s, "/introspect", ("hall", SECRET), &[("token", &r3)]).await;
    assert_eq!(status, 200);
    assert_eq!(after["active"], false, "the family is revoked");
    // Another client cannot spend or revoke hall's refresh tokens.
    let fresh = tokens_with_refresh(&s, &browser).await;
    let token = fresh["refresh_token"].as_str().unwrap();
    let (_, foreign) = post_form(
        &s,
        "/token",
        ("other", SECRET),
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
    .await;
    assert_eq!(foreign["error"], "invalid_grant");
    let (_, still) = post_form(&s, "/introspect", ("hall", SECRET), &[("token", token)]).await;
    assert_eq!(still["active"], true);
    assert_eq!(still["token_type"], "refresh_token");
}

#[tokio::test]
async fn client_credentials_give_machine_tokens_limited_to_the_clients_scopes_and_resources() {
    let s = setup(|_| {}).await;
    let app = &s._server.test_app.app;
    let spec = ClientSpec {
        id: YClientId::parse("dept").unwrap(),
        name: "部门系统".into(),
        auth_method: AuthMethod::ClientSecretBasic,
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        grant_types: vec![GrantType::ClientCredentials],
        scopes: ["records.read", "records.write"]
            .map(|s| YScope::parse(s).unwrap())
            .to_vec(),
        first_party: false,
        settings: yihao::domain::client::ClientSettings {
            resources: vec!["https://records.example.gov.cn/".into()],
            ..Default::default()
        },
    };
    register(app, spec).await;
    let http = rp_http();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(s.base.clone()).unwrap(), &http)
            .await
            .unwrap();
    let dept = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new("dept".into()),
        Some(ClientSecret::new(SECRET.into())),
    );
    let tokens = dept
        .exchange_client_credentials()
        .unwrap()
        .add_scope(Scope::new("records.read".into()))
        .request_async(&http)
        .await
        .unwrap();
    let access = tokens.access_token().secret().clone();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            access.split('.').nth(1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], "dept");
    assert_eq!(claims["client_id"], "dept");
    assert_eq!(claims["scope"], "records.read");
    let (_, r) = post_form(
        &s,
        "/token",
        ("dept", SECRET),
        &[
            ("grant_type", "client_credentials"),
            ("resource", "https://records.example.gov.cn/"),
        ],
    )
    .await;
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            r["access_token"]
                .as_str()
                .unwrap()
                .split('.')
                .nth(1)
                .unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["aud"], "https://records.example.gov.cn/");
    assert_eq!(
        claims["scope"], "records.read records.write",
        "all allowed scopes when none asked"
    );
    let (_, bad) = post_form(
        &s,
        "/token",
        ("dept", SECRET),
        &[
            ("grant_type", "client_credentials"),
            ("resource", "https://other.example/"),
        ],
    )
    .await;
    assert_eq!(bad["error"], "invalid_target");
    let (_, bad) = post_form(
        &s,
        "/token",
        ("dept", SECRET),
        &[("grant_type", "client_credentials"), ("scope", "openid")],
    )
    .await;
    assert_eq!(bad["error"], "invalid_scope");
    let (_, bad) = post_form(
        &s,
        "/token",
        ("hall", SECRET),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(bad["error"], "unauthorized_client");
    // The resource server (here: the same client) introspects the token.
    let (_, active) = post_form(&s, "/introspect", ("dept", SECRET), &[("token", &access)]).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["client_id"], "dept");
}

#[tokio::test]
async fn introspection_and_revocation_of_both_token_kinds() {
    let s = setup(|_| {}).await;
    let browser = Browser::new();
    let tokens = tokens_with_refresh(&s, &browser).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let (status, active) =
        post_form(&s, "/introspect", ("hall", SECRET), &[("token", &access)]).await;
    assert_eq!(status, 200);
    assert_eq!(active["active"], true);
    for field in ["scope", "client_id", "sub", "exp", "iat", "iss", "jti"] {
        assert!(active.get(field).is_some(), "{field} missing: {active}");
    }
    // Foreign: another client learns nothing about hall's token.
    let (_, foreign) = post_form(&s, "/introspect", ("other", SECRET), &[("token", &access)]).await;
    assert_eq!(foreign, serde_json::json!({"active": false}));
    // Malformed and unknown.
    for junk in ["junk", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."] {
        let (_, r) = post_form(&s, "/introspect", ("hall", SECRET), &[("token", junk)]).await;
        assert_eq!(r, serde_json::json!({"active": false}), "{junk}");
    }
    // Expired: a token this server signed an hour ago.
    let ring = s._server.test_app.app.keys.ring();
    let now = yihao::clock::system_ms() / 1000;
    let expired = ring
        .signer(yihao::domain::jose::Alg::ES256, now)
        .unwrap()
        .sign_jwt("at+jwt", &serde_json::json!({"iss": s.base, "sub": "x", "client_id": "hall", "jti": "old", "iat": now - 3600, "exp": now - 1800}))
        .unwrap();
    let (_, r) = post_form(&s, "/introspect", ("hall", SECRET), &[("token", &expired)]).await;
    assert_eq!(r["active"], false);
    // Without client authentication: 401.
    let anonymous = reqwest::Client::new()
        .post(format!("{}/introspect", s.base))
        .form(&[("token", &access)])
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    // Revocation (RFC 7009): the access token, on every node through the shared store.
    let (status, _) = post_form(
        &s,
        "/revoke",
        ("hall", SECRET),
        &[("token", &access), ("token_type_hint", "access_token")],
    )
    .await;
    assert_eq!(status, 200);
    let (_, r) = post_form(&s, "/introspect", ("hall", SECRET), &[("token", &access)]).await;
    assert_eq!(r["active"], false);
    let userinfo = reqwest::Client::new()
        .get(format!("{}/userinfo", s.base))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), 401);
    // The refresh token, with a wrong hint (honoured but not trusted): its family ends.
    let (status, _) = post_form(
        &s,
        "/revoke",
        ("hall", SECRET),
        &[("token", &refresh), ("token_type_hint", "access_token")],
    )
    .await;
    assert_eq!(status, 200);
    let (_, r) = post_form(
        &s,
        "/token",
        ("hall", SECRET),
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(r["error"], "invalid_grant");
    // Unknown tokens are answered 200 too.
    let (status, _) = post_form(
        &s,
        "/revoke",
        ("hall", SECRET),
        &[("token", "never-issued")],
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn rp_initiated_logout_ends_the_session_and_returns_with_state() {
    let s = setup(|_| {}).await;
    let browser = Browser::new();
    let (hall, http) = relying_party(&s.base, "hall", Some(SECRET), "http://127.0.0.1:9/cb").await;
    let (url, _, nonce) = hall
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .url();
    let code = browser.authorize(&s.base, url.as_str()).await["code"].clone();
    let tokens = hall
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    let id_token = tokens.id_token().unwrap();
    id_token.claims(&hall.id_token_verifier(), &nonce).unwrap();
    let logout = |extra: &[(&str, &str)]| {
        let mut u = url::Url::parse(&format!("{}/logout", s.base)).unwrap();
        u.query_pairs_mut().extend_pairs(extra);
        u.to_string()
    };
    // A post_logout_redirect_uri the client did not register: shown, not redirected.
    let bad = browser
        .get(&logout(&[
            ("id_token_hint", &id_token.to_string()),
            ("post_logout_redirect_uri", "http://127.0.0.1:9/evil"),
        ]))
        .await;
    assert_eq!(bad.status(), 400);
    assert!(bad.headers().get("location").is_none());
    // The hint names this session: logged out at once, back to the client with state.
    let done = browser
        .get(&logout(&[
            ("id_token_hint", &id_token.to_string()),
            ("post_logout_redirect_uri", "http://127.0.0.1:9/bye"),
            ("state", "s-out"),
        ]))
        .await;
    assert!(done.status().is_redirection(), "{}", done.status());
    assert_eq!(
        done.headers()["location"],
        "http://127.0.0.1:9/bye?state=s-out"
    );
    let after = browser
        .get(&authorize_url(
            &s.base,
            "tax",
            "http://127.0.0.1:9/tax",
            &[("prompt", "none")],
        ))
        .await;
    assert_eq!(
        redirect_params(&after)["error"],
        "login_required",
        "the SSO session is gone"
    );
}

#[tokio::test]
async fn a_logout_that_cannot_be_tied_to_the_session_asks_first() {
    let s = setup(|_| {}).await;
    let browser = Browser::new();
    browser
        .authorize(
            &s.base,
            &authorize_url(&s.base, "tax", "http://127.0.0.1:9/tax", &[]),
        )
        .await;
    let page = browser
        .get(&format!(
            "{}/logout?client_id=hall&post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fbye",
            s.base
        ))
        .await;
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("form-action 'self' http://127.0.0.1:9"),
        "{csp}"
    );
    let page = page.text().await.unwrap();
    assert!(page.contains("action=\"/logout/confirm\""), "{page}");
    // Staying keeps the session.
    let stay = browser
        .post(
            &format!("{}/logout/confirm", s.base),
            &[
                ("interaction", &hidden(&page, "interaction")),
                ("csrf", &hidden(&page, "csrf")),
                ("decision", "stay"),
            ],
        )
        .await;
    assert_eq!(stay.status(), 200);
    let still = browser
        .get(&authorize_url(
            &s.base,
            "tax",
            "http://127.0.0.1:9/tax",
            &[("prompt", "none")],
        ))
        .await;
    assert!(redirect_params(&still).contains_key("code"));
    // A forged confirmation (another browser) is refused.
    let page = browser
        .get(&format!("{}/logout", s.base))
        .await
        .text()
        .await
        .unwrap();
    let forged = Browser::new()
        .post(
            &format!("{}/logout/confirm", s.base),
            &[
                ("interaction", &hidden(&page, "interaction")),
                ("csrf", &hidden(&page, "csrf")),
                ("decision", "logout"),
            ],
        )
        .await;
    assert_eq!(forged.status(), 400);
    // Confirming ends it.
    let page = browser.get(&format!("{}/logout?client_id=hall&post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fbye&state=x", s.base)).await.text().await.unwrap();
    let out = confirm_logout(&s, &browser, &page).await;
    assert_eq!(out.headers()["location"], "http://127.0.0.1:9/bye?state=x");
    let gone = browser
        .get(&authorize_url(
            &s.base,
            "tax",
            "http://127.0.0.1:9/tax",
            &[("prompt", "none")],
        ))
        .await;
    assert_eq!(redirect_params(&gone)["error"], "login_required");
    // An expired hint is still a valid hint (RP-Initiated Logout §2); a forged one is refused.
    let ring = s._server.test_app.app.keys.ring();
    let now = yihao::clock::system_ms() / 1000;
    let expired = ring
        .signer(yihao::domain::jose::Alg::RS256, now)
        .unwrap()
        .sign_jwt("JWT", &serde_json::json!({"iss": s.base, "sub": "x", "aud": "hall", "iat": now - 7200, "exp": now - 3600, "sid": "nope"}))
        .unwrap();
    let ok = browser
        .get(&format!("{}/logout?id_token_hint={expired}", s.base))
        .await;
    assert_eq!(
        ok.status(),
        200,
        "no session left: a plain 'logged out' page"
    );
    let forged = browser
        .get(&format!(
            "{}/logout?id_token_hint=eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
            s.base
        ))
        .await;
    assert_eq!(forged.status(), 400);
}

/// A department system's key pair, its public JWK, and assertions signed with it.
struct MachineKey {
    encoding: jsonwebtoken::EncodingKey,
    jwk: Value,
}

impl MachineKey {
    fn new(kid: &str) -> Self {
        let der =
            yihao::crypto::signing::SigningKey::generate(yihao::domain::jose::Alg::ES256).unwrap();
        let key = yihao::crypto::signing::SigningKey::from_pkcs8(
            kid,
            yihao::domain::jose::Alg::ES256,
            &der,
            0,
            0,
            None,
        )
        .unwrap();
        Self {
            encoding: jsonwebtoken::EncodingKey::from_ec_der(&der),
            jwk: key.jwk().clone(),
        }
    }

    fn assertion(&self, client: &str, aud: &str, jti: &str, exp_in: i64) -> String {
        let now = yihao::clock::system_ms() / 1000;
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = self.jwk["kid"].as_str().map(str::to_owned);
        let claims = serde_json::json!({"iss": client, "sub": client, "aud": aud, "jti": jti, "iat": now, "exp": now + exp_in});
        jsonwebtoken::encode(&header, &claims, &self.encoding).unwrap()
    }
}

#[tokio::test]
async fn private_key_jwt_authenticates_once_per_assertion_from_inline_keys_or_a_jwks_uri() {
    let s = setup(|_| {}).await;
    let app = &s._server.test_app.app;
    let inline = MachineKey::new("dept-key-1");
    let published = MachineKey::new("dept-key-2");
    // The second department publishes its keys itself.
    let jwks_doc = serde_json::json!({"keys": [published.jwk.clone()]});
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jwks_uri = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let doc = jwks_doc.clone();
        axum::serve(
            listener,
            axum::Router::new().route(
                "/jwks.json",
                axum::routing::get(move || async move { axum::Json(doc) }),
            ),
        )
        .await
        .unwrap();
    });
    for (id, settings) in [
        (
            "dept-a",
            yihao::domain::client::ClientSettings {
                jwks: Some(serde_json::json!({"keys": [inline.jwk.clone()]}).to_string()),
                ..Default::default()
            },
        ),
        (
            "dept-b",
            yihao::domain::client::ClientSettings {
                jwks_uri: Some(jwks_uri.clone()),
                ..Default::default()
            },
        ),
    ] {
        let spec = ClientSpec {
            id: YClientId::parse(id).unwrap(),
            name: id.into(),
            auth_method: AuthMethod::PrivateKeyJwt,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            grant_types: vec![GrantType::ClientCredentials],
            scopes: vec![YScope::parse("records.read").unwrap()],
            first_party: false,
            settings,
        };
        app.store
            .insert_client(&Client::register(spec, None, 0).unwrap())
            .await
            .unwrap();
    }
    let token_url = format!("{}/token", s.base);
    let http = reqwest::Client::new();
    let post = |assertion: String| {
        http.post(&token_url)
            .form(&[
                ("grant_type", "client_credentials"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", assertion.as_str()),
            ])
            .send()
    };
    let ok = post(inline.assertion("dept-a", &token_url, "a-1", 60))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200, "{}", ok.text().await.unwrap());
    let replay = post(inline.assertion("dept-a", &token_url, "a-1", 60))
        .await
        .unwrap();
    assert_eq!(replay.status(), 401, "a replayed assertion is refused");
    assert_eq!(
        post(inline.assertion("dept-a", &s.base, "a-2", 60))
            .await
            .unwrap()
            .status(),
        200,
        "the issuer is an accepted audience"
    );
    for (why, assertion) in [
        (
            "foreign audience",
            inline.assertion("dept-a", "https://elsewhere.example/token", "a-3", 60),
        ),
        (
            "too long a lifetime",
            inline.assertion("dept-a", &token_url, "a-4", 3600),
        ),
        (
            "expired",
            inline.assertion("dept-a", &token_url, "a-5", -120),
        ),
        (
            "another client's key",
            published.assertion("dept-a", &token_url, "a-6", 60),
        ),
        (
            "claims another client",
            inline.assertion("dept-b", &token_url, "a-7", 60),
        ),
    ] {
        let r = post(assertion).await.unwrap();
        assert_eq!(r.status(), 401, "{why}");
        assert_eq!(
            r.json::<Value>().await.unwrap()["error"],
            "invalid_client",
            "{why}"
        );
    }
    let fetched = post(published.assertion("dept-b", &token_url, "b-1", 60))
        .await
        .unwrap();
    assert_eq!(
        fetched.status(),
        200,
        "keys from jwks_uri: {}",
        fetched.text().await.unwrap()
    );
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

#[tokio::test]
async fn back_channel_logout_survives_a_down_relying_party_and_a_restart() {
    let s = setup(|c| {
        c.logout.retry_base_secs = 1;
        c.logout.retry_max_secs = 1;
        c.logout.poll_ms = 100;
    })
    .await;
    let app = s._server.test_app.app.clone();
    // The relying party's address, not listening yet: it is down.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut spec = client_spec(
        "bc",
        "http://127.0.0.1:9/bc",
        AuthMethod::ClientSecretBasic,
        true,
    );
    spec.settings.backchannel_logout_uri = Some(format!("http://127.0.0.1:{port}/backchannel"));
    spec.settings.backchannel_logout_session_required = true;
    register(&app, spec).await;
    let browser = Browser::new();
    browser
        .authorize(
            &s.base,
            &authorize_url(
                &s.base,
                "bc",
                "http://127.0.0.1:9/bc",
                &[("scope", "openid")],
            ),
        )
        .await;
    // Log out (no hint: confirm).
    let page = browser
        .get(&format!("{}/logout", s.base))
        .await
        .text()
        .await
        .unwrap();
    let out = confirm_logout(&s, &browser, &page).await;
    assert_eq!(out.status(), 200);
    // Node 1 tries and fails while the RP is down.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let rows = app.store.logout_deliveries("bc").await.unwrap();
        if rows.first().is_some_and(|r| r.attempts >= 1) {
            assert_eq!(rows[0].status, "pending");
            assert!(rows[0].last_error.is_some());
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no delivery attempt: {rows:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Node 1 stops; node 2 starts on the same database; then the RP comes up.
    for task in &s._server.background {
        task.abort();
    }
    let node2 = yihao::app::App::build(app.config.clone()).await.unwrap();
    let _node2_tasks = yihao::app::spawn_background(node2.clone());
    let rp = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let mut rx = backchannel_receiver(rp);
    let token = tokio::time::timeout(std::time::Duration::from_secs(15), rx.recv())
        .await
        .expect("the logout token never arrived")
        .unwrap();
    let claims = verify_logout_token(&s.base, &token, "bc").await;
    assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(claims["sid"].is_string() && claims["sub"].is_string() && claims["jti"].is_string());
    assert!(
        claims.get("nonce").is_none(),
        "§2.4: a logout token has no nonce"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let rows = app.store.logout_deliveries("bc").await.unwrap();
        if rows[0].status == "delivered" {
            assert!(rows[0].attempts >= 2);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not recorded as delivered: {rows:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(rx.try_recv().is_err(), "delivered twice");
}

#[tokio::test]
async fn front_channel_logout_loads_each_clients_page_then_continues() {
    let s = setup(|_| {}).await;
    let app = &s._server.test_app.app;
    let mut spec = client_spec(
        "fc",
        "http://127.0.0.1:9/fc",
        AuthMethod::ClientSecretBasic,
        true,
    );
    spec.settings.frontchannel_logout_uri = Some("http://127.0.0.1:9/fc-logout".into());
    spec.settings.frontchannel_logout_session_required = true;
    register(app, spec).await;
    let browser = Browser::new();
    browser
        .authorize(
            &s.base,
            &authorize_url(
                &s.base,
                "fc",
                "http://127.0.0.1:9/fc",
                &[("scope", "openid")],
            ),
        )
        .await;
    let page = browser
        .get(&format!("{}/logout", s.base))
        .await
        .text()
        .await
        .unwrap();
    let out = confirm_logout(&s, &browser, &page).await;
    assert_eq!(out.status(), 200);
    let csp = out.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-src http://127.0.0.1:9"), "{csp}");
    let html = out.text().await.unwrap();
    let iss = url::form_urlencoded::byte_serialize(s.base.as_bytes()).collect::<String>();
    assert!(
        html.contains(&format!("src=\"http://127.0.0.1:9/fc-logout?iss={iss}&")),
        "{html}"
    );
    assert!(html.contains("sid="), "{html}");
}

/// An HS256 client assertion (OIDC Core §9 client_secret_jwt) signed with `secret`.
fn secret_assertion(
    alg: jsonwebtoken::Algorithm,
    secret: &str,
    client: &str,
    aud: &str,
    jti: &str,
) -> String {
    let now = yihao::clock::system_ms() / 1000;
    let claims = serde_json::json!({"iss": client, "sub": client, "aud": aud, "jti": jti, "iat": now, "exp": now + 60});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn client_secret_jwt_signs_with_the_secret_and_survives_a_rotation() {
    use jsonwebtoken::Algorithm::{HS256, HS512};
    let s = setup(|_| {}).await;
    let app = &s._server.test_app.app;
    let spec = ClientSpec {
        id: YClientId::parse("dept-hmac").unwrap(),
        name: "HMAC department".into(),
        auth_method: AuthMethod::ClientSecretJwt,
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        grant_types: vec![GrantType::ClientCredentials],
        scopes: vec![YScope::parse("records.read").unwrap()],
        first_party: false,
        settings: Default::default(),
    };
    let first = app.client_secrets.store(
        &spec.id,
        spec.auth_method,
        "first-secret-0123456789abcdef",
        None,
    );
    let client = Client::register(spec.clone(), Some(first.clone()), 0).unwrap();
    app.store.insert_client(&client).await.unwrap();
    // A private_key_jwt client, to show an HMAC assertion never authenticates it.
    let machine = MachineKey::new("pk-1");
    let mut pk = spec.clone();
    pk.id = YClientId::parse("dept-pk").unwrap();
    pk.auth_method = AuthMethod::PrivateKeyJwt;
    pk.settings.jwks = Some(serde_json::json!({"keys": [machine.jwk.clone()]}).to_string());
    app.store
        .insert_client(&Client::register(pk, None, 0).unwrap())
        .await
        .unwrap();

    let token_url = format!("{}/token", s.base);
    let http = reqwest::Client::new();
    let post = |url: String, assertion: String, extra: Option<(&'static str, String)>| {
        let mut form = vec![
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
            ),
            ("client_assertion", assertion),
        ];
        match extra {
            Some(pair) => form.push(pair),
            None => form.push(("grant_type", "client_credentials".to_owned())),
        }
        let req = http.post(url).form(&form);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let secret = "first-secret-0123456789abcdef";
    let (status, body) = post(
        token_url.clone(),
        secret_assertion(HS256, secret, "dept-hmac", &token_url, "h-1"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        post(
            token_url.clone(),
            secret_assertion(HS256, secret, "dept-hmac", &token_url, "h-1"),
            None
        )
        .await
        .0,
        401,
        "a replayed assertion is refused"
    );
    assert_eq!(
        post(
            token_url.clone(),
            secret_assertion(HS512, secret, "dept-hmac", &token_url, "h-2"),
            None
        )
        .await
        .0,
        200,
        "HS512 too"
    );
    // The same client authenticates at the introspection endpoint, whose URL is an audience.
    let introspect = format!("{}/introspect", s.base);
    let (status, body) = post(
        introspect.clone(),
        secret_assertion(HS256, secret, "dept-hmac", &introspect, "h-3"),
        Some(("token", token)),
    )
    .await;
    assert_eq!(
        (status, &body["active"]),
        (200, &Value::Bool(true)),
        "{body}"
    );

    for (why, assertion) in [
        (
            "a wrong secret",
            secret_assertion(HS256, "not-the-secret", "dept-hmac", &token_url, "h-4"),
        ),
        (
            "an asymmetric algorithm for a secret client",
            machine.assertion("dept-hmac", &token_url, "h-5", 60),
        ),
        (
            "an HMAC assertion for a private_key_jwt client, keyed with its public JWK",
            secret_assertion(
                HS256,
                &machine.jwk.to_string(),
                "dept-pk",
                &token_url,
                "h-6",
            ),
        ),
    ] {
        let (status, body) = post(token_url.clone(), assertion, None).await;
        assert_eq!(
            (status, &body["error"]),
            (401, &Value::from("invalid_client")),
            "{why}: {body}"
        );
    }

    // Rotation: the previous secret signs until its deadline, then only the new one.
    let now = yihao::clock::system_ms() / 1000;
    let second = app.client_secrets.store(
        &spec.id,
        spec.auth_method,
        "second-secret-0123456789abcdef",
        Some((&first, now + 3600)),
    );
    app.store
        .update_client(&Client::restore(spec.clone(), Some(second), 0, now).unwrap())
        .await
        .unwrap();
    // What the CLI's announcement on the clients channel does on every node.
    app.clients.forget(spec.id.as_str());
    for (secret, jti) in [
        ("second-secret-0123456789abcdef", "r-1"),
        ("first-secret-0123456789abcdef", "r-2"),
    ] {
        let (status, body) = post(
            token_url.clone(),
            secret_assertion(HS256, secret, "dept-hmac", &token_url, jti),
            None,
        )
        .await;
        assert_eq!(status, 200, "{secret}: {body}");
    }
    let current = app.store.client(&spec.id).await.unwrap().unwrap();
    let expired = app.client_secrets.store(
        &spec.id,
        spec.auth_method,
        "third-secret-0123456789abcdef",
        Some((current.secrets().unwrap(), now - 1)),
    );
    app.store
        .update_client(&Client::restore(spec.clone(), Some(expired), 0, now).unwrap())
        .await
        .unwrap();
    app.clients.forget(spec.id.as_str());
    assert_eq!(
        post(
            token_url.clone(),
            secret_assertion(
                HS256,
                "second-secret-0123456789abcdef",
                "dept-hmac",
                &token_url,
                "r-3"
            ),
            None
        )
        .await
        .0,
        401,
        "a previous secret past its deadline is refused"
    );
}

/// Runs the real `yihao` binary against the test server's database and keys (as an operator on the
/// same host would); returns stdout, panicking with stderr on failure.
async fn yihao_cli(app: &yihao::app::App, args: &[&str], stdin: Option<&str>) -> String {
    let db = app.config.database.url.clone();
    let keys = app.config.keys.dev_dir.display().to_string();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let stdin = stdin.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_yihao"))
            .args(&args)
            .env("YIHAO_DATABASE__URL", db)
            .env("YIHAO_KEYS__DEV_DIR", keys)
            .env("YIHAO_LOG__LEVEL", "warn")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        let out = child.wait_with_output().unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert!(out.status.success(), "yihao {args:?}: {stderr}");
        stdout
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn administrators_list_and_end_sessions_and_a_password_change_signs_out_everywhere() {
    let s = setup(|c| {
        c.session.sweep_ms = 50;
        c.logout.poll_ms = 50;
    })
    .await;
    let app = s._server.test_app.app.clone();
    let rp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rp_uri = format!("http://{}/backchannel", rp.local_addr().unwrap());
    let mut logouts = backchannel_receiver(rp);
    let mut spec = client_spec(
        "kiosk",
        "http://127.0.0.1:9/kiosk",
        AuthMethod::ClientSecretBasic,
        true,
    );
    spec.settings.backchannel_logout_uri = Some(rp_uri);
    spec.settings.channel = yihao::domain::client::Channel::Kiosk;
    register(&app, spec).await;
    let browser = Browser::new();
    let sign_in = |client: &'static str, redirect: &'static str| {
        let url = authorize_url(&s.base, client, redirect, &[("scope", "openid")]);
        let browser = &browser;
        let base = s.base.clone();
        async move { browser.authorize(&base, &url).await }
    };
    assert!(
        sign_in("kiosk", "http://127.0.0.1:9/kiosk")
            .await
            .contains_key("code")
    );
    assert!(
        sign_in("hall", "http://127.0.0.1:9/cb")
            .await
            .contains_key("code")
    );

    let listed: Value = serde_json::from_str(
        &yihao_cli(
            &app,
            &[
                "session",
                "list",
                "--account",
                ID_NUMBER,
                "--output",
                "json",
            ],
            None,
        )
        .await,
    )
    .unwrap();
    let sessions = listed.as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{listed}");
    let listed = &sessions[0];
    assert_eq!(listed["state"], "active");
    assert_eq!(
        listed["channel"], "kiosk",
        "the channel of the client signed in at"
    );
    assert_eq!(listed["signed_in_at_client"], "kiosk");
    assert_eq!(listed["clients"], serde_json::json!(["kiosk", "hall"]));
    assert_eq!(listed["ip"], "127.0.0.1");
    assert_eq!(listed["amr"], serde_json::json!(["pwd"]));
    let sid = listed["sid"].as_str().unwrap().to_owned();

    // The administrator ends it from another process (the server's live store is in-process).
    yihao_cli(&app, &["session", "revoke", &sid], None).await;
    let token = tokio::time::timeout(std::time::Duration::from_secs(10), logouts.recv())
        .await
        .expect("no back-channel logout after the revocation")
        .unwrap();
    assert_eq!(
        verify_logout_token(&s.base, &token, "kiosk").await["sid"],
        sid.as_str()
    );
    // The server drops the live session at its next sweep: silent SSO now needs a login.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let url = authorize_url(
            &s.base,
            "hall",
            "http://127.0.0.1:9/cb",
            &[("scope", "openid"), ("prompt", "none")],
        );
        let params = redirect_params(&browser.get(&url).await);
        if params.get("error").map(String::as_str) == Some("login_required") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the revoked session still works: {params:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let all: Value = serde_json::from_str(
        &yihao_cli(
            &app,
            &[
                "session",
                "list",
                "--account",
                ID_NUMBER,
                "--all",
                "--output",
                "json",
            ],
            None,
        )
        .await,
    )
    .unwrap();
    assert_eq!(all[0]["state"], "ended:admin");
    assert_eq!(all[0]["end_reason"], "admin");

    // Signed in again; the password changes: that session ends too, and the kiosk hears of it.
    assert!(
        sign_in("kiosk", "http://127.0.0.1:9/kiosk")
            .await
            .contains_key("code")
    );
    yihao_cli(
        &app,
        &["account", "set-password", ID_NUMBER, "--password-stdin"],
        Some("An0ther-pass!\n"),
    )
    .await;
    let token = tokio::time::timeout(std::time::Duration::from_secs(10), logouts.recv())
        .await
        .expect("no back-channel logout after the password change")
        .unwrap();
    let claims = verify_logout_token(&s.base, &token, "kiosk").await;
    assert_ne!(claims["sid"], sid.as_str(), "the new session's logout");
    let all: Value = serde_json::from_str(
        &yihao_cli(
            &app,
            &[
                "session",
                "list",
                "--account",
                ID_NUMBER,
                "--all",
                "--output",
                "json",
            ],
            None,
        )
        .await,
    )
    .unwrap();
    let renewed = all
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["sid"] == claims["sid"])
        .unwrap();
    assert_eq!(renewed["end_reason"], "password_changed");
    assert!(logouts.try_recv().is_err(), "one logout per ended session");
}

#[tokio::test]
async fn security_events_are_audited_in_one_verifiable_chain_without_personal_numbers() {
    let s = setup(|_| {}).await;
    let app = s._server.test_app.app.clone();
    let browser = Browser::new();
    // A wrong password first, then the whole code flow with userinfo.
    let page = browser
        .get(&authorize_url(
            &s.base,
            "hall",
            "http://127.0.0.1:9/cb",
            &[("scope", "openid")],
        ))
        .await
        .text()
        .await
        .unwrap();
    let refused = browser
        .login(&s.base, &page, ID_NUMBER, "wrong-Passw0rd")
        .await;
    assert_eq!(refused.status(), 401);
    code_flow(&s, &browser).await;
    // A client presenting a wrong secret.
    let bad = reqwest::Client::new()
        .post(format!("{}/token", s.base))
        .basic_auth("hall", Some("not-the-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);

    let records = app.store.audit_records(1, 1000).await.unwrap();
    let of = |event: &str| {
        records
            .iter()
            .filter(|r| r.event == event)
            .collect::<Vec<_>>()
    };
    let failure = of("login_failure");
    assert_eq!(failure.len(), 1);
    assert_eq!(failure[0].result, "failure");
    assert_eq!(failure[0].reason.as_deref(), Some("invalid_credentials"));
    assert!(
        failure[0].target.as_deref().unwrap().starts_with("a:"),
        "counted against the account"
    );
    let login = of("login_success");
    assert_eq!(login.len(), 1);
    assert_eq!(login[0].client_id.as_deref(), Some("hall"));
    assert_eq!(login[0].ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(login[0].acr.as_deref(), Some("urn:yihao:loa:2"));
    assert!(
        login[0]
            .request_id
            .as_deref()
            .is_some_and(|r| !r.is_empty())
    );
    let account = login[0].actor.clone().unwrap();
    assert_eq!(of("consent_given").len(), 1);
    let issued = of("token_issued");
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].actor.as_deref(), Some(account.as_str()));
    let release = of("attribute_release");
    assert_eq!(
        release.len(),
        1,
        "userinfo released profile and phone claims"
    );
    let details: Value = serde_json::from_str(release[0].details.as_deref().unwrap()).unwrap();
    assert_eq!(details["via"], "userinfo");
    assert!(
        details["claims"]
            .as_array()
            .unwrap()
            .contains(&Value::from("phone_number"))
    );
    let auth = of("client_auth_failure");
    assert_eq!(auth.len(), 1);
    assert_eq!(auth[0].target.as_deref(), Some("hall"));

    // docs/privacy.md: no ID number or phone number in any record, in any form we know.
    let text = serde_json::to_string(&records).unwrap();
    for secret in [ID_NUMBER, PHONE, "11010519491231", PASSWORD, SECRET] {
        assert!(!text.contains(secret), "{secret} in the audit log");
    }
    let verified = yihao::protocol::audit::verify(app.store.as_ref(), &app.keys.ring(), 1)
        .await
        .unwrap();
    assert_eq!(verified.last, records.len() as i64);
}

/// Posts a wrong password for the person through `browser`'s login page, from `forwarded_for`.
async fn failed_login(s: &Setup, browser: &Browser, forwarded_for: &str) -> reqwest::Response {
    let page = browser
        .get(&authorize_url(
            &s.base,
            "hall",
            "http://127.0.0.1:9/cb",
            &[("scope", "openid")],
        ))
        .await
        .text()
        .await
        .unwrap();
    browser
        .http
        .post(format!("{}/login", s.base))
        .header("x-forwarded-for", forwarded_for)
        .form(&[
            ("interaction", hidden(&page, "interaction").as_str()),
            ("csrf", hidden(&page, "csrf").as_str()),
            ("identifier", PHONE),
            ("password", "wrong-Passw0rd"),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn logins_are_rate_limited_per_address_and_only_a_trusted_proxy_names_the_address() {
    for trusted in [true, false] {
        let s = setup(|c| {
            c.limits.login_per_ip_per_min = 2;
            c.limits.login_per_account_per_min = 100;
            c.passwords.lockout_threshold = 100;
            if trusted {
                c.server.trusted_proxies = vec!["127.0.0.0/8".into()];
            }
        })
        .await;
        let browser = Browser::new();
        // The limit counts per minute of the real clock: keep the test inside one minute.
        while std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            % 60
            > 50
        {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        for _ in 0..2 {
            assert_eq!(
                failed_login(&s, &browser, "198.51.100.1").await.status(),
                401
            );
        }
        let limited = failed_login(&s, &browser, "198.51.100.1").await;
        assert_eq!(limited.status(), 429);
        let retry: u64 = limited.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        assert!(limited.text().await.unwrap().contains("尝试次数过多"));
        // Another address: counted apart only when a trusted proxy says so.
        let other = failed_login(&s, &browser, "198.51.100.2").await.status();
        let app = &s._server.test_app.app;
        let records = app.store.audit_records(1, 100).await.unwrap();
        let ips: Vec<Option<String>> = records
            .iter()
            .filter(|r| r.event == "login_failure")
            .map(|r| r.ip.clone())
            .collect();
        // One record per address and window, however many refusals follow.
        let limited: Vec<_> = records
            .iter()
            .filter(|r| r.event == "rate_limited")
            .collect();
        assert_eq!(limited.len(), 1, "{limited:?}");
        assert_eq!(limited[0].reason.as_deref(), Some("login_ip"));
        assert_eq!(limited[0].result, "failure");
        if trusted {
            assert_eq!(other, 401, "198.51.100.2 has its own count");
            assert_eq!(
                ips[0].as_deref(),
                Some("198.51.100.1"),
                "the audit log sees the client"
            );
        } else {
            assert_eq!(other, 429, "an untrusted peer cannot choose its address");
            assert_eq!(ips[0].as_deref(), Some("127.0.0.1"));
        }
    }
}

#[tokio::test]
async fn a_client_over_its_token_rate_gets_429_with_retry_after() {
    let s = setup(|c| c.limits.token_per_client_per_sec = 1).await;
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    // Three requests within well under a second span at most two one-second windows.
    for _ in 0..3 {
        let r = http
            .post(format!("{}/introspect", s.base))
            .basic_auth("hall", Some(SECRET))
            .form(&[("token", "nothing")])
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            assert_eq!(r.headers()["retry-after"], "1");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"], "temporarily_unavailable");
        }
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(statuses[0], 200);
    let limited: Vec<_> = s
        ._server
        .test_app
        .app
        .store
        .audit_records(1, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.event == "rate_limited")
        .collect();
    assert!(!limited.is_empty());
    assert!(
        limited
            .iter()
            .all(|r| r.actor.as_deref() == Some("hall")
                && r.reason.as_deref() == Some("token_client"))
    );
}

// RFC 9700 (OAuth 2.0 Security Best Current Practice): one named test per threat the server defends
// against. The README's security section lists them; some threats are covered by the tests above
// (code replay, refresh-token replay), named there.

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
        let code = code_for(
            &s,
            &browser,
            "hall",
            "http://127.0.0.1:9/cb",
            &[
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
            ],
        )
        .await;
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
    let with_challenge = code_for(
        &s,
        &browser,
        "hall",
        "http://127.0.0.1:9/cb",
        &[
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
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
    let page = browser.get(&url).await.text().await.unwrap();
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
    let (status, tokens) = post_form(
        &s,
        "/token",
        ("hall", SECRET),
        &[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "http://127.0.0.1:9/cb"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let token = tokens["access_token"].as_str().unwrap();
    let header = reqwest::Client::new()
        .get(format!("{}/userinfo", s.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
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
    assert_eq!(id_only.status(), 401);
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
