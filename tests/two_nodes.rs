//! Two yihao nodes on one PostgreSQL + Redis behave as one server: a refresh token rotated on node A
//! is refused on node B, and an access token revoked on A introspects inactive on B. Runs when
//! YIHAO_TEST_DATABASE_URL and YIHAO_TEST_REDIS_URL are set (CI sets both).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::Value;
use yihao::crypto::hash_secret;
use yihao::domain::account::ProofMethod;
use yihao::domain::client::{
    AuthMethod, Client, ClientId, ClientSecrets, ClientSettings, ClientSpec, GrantType,
    RedirectUri, Scope,
};

const SECRET: &str = "two-node-secret";

async fn post(base: &str, path: &str, form: &[(&str, &str)]) -> Value {
    reqwest::Client::new()
        .post(format!("{base}{path}"))
        .basic_auth("hall", Some(SECRET))
        .form(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Two nodes on one fresh PostgreSQL schema and one Redis, with one master key; node B answers with
/// A's issuer. `each` adjusts node 0 (A) and node 1 (B). `None` (after saying why) when the backends
/// are not configured.
async fn two_nodes(
    each: impl Fn(&mut yihao::config::Config, usize),
) -> Option<(common::TestDatabase, common::Spawned, common::Spawned)> {
    let (Some(db), Some(cache)) = (
        common::postgres_database().await,
        common::redis_cache().await,
    ) else {
        common::not_configured("YIHAO_TEST_DATABASE_URL and YIHAO_TEST_REDIS_URL");
        return None;
    };
    let master = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [9u8; 32]);
    let shared = |c: &mut yihao::config::Config, node: usize| {
        c.database = db.config.clone();
        c.cache = cache.clone();
        c.keys.master_key = yihao::config::Secret::new(master.clone());
        each(c, node);
    };
    let a = common::spawn_issuer(|c| shared(c, 0)).await;
    let b = common::spawn_issuer(|c| {
        shared(c, 1);
        c.server.issuer = a.base.clone();
    })
    .await;
    Some((db, a, b))
}

#[tokio::test]
async fn two_nodes_share_refresh_rotation_and_revocation() {
    let Some((_db, a, b)) = two_nodes(|_, _| {}).await else {
        return;
    };
    let app = &a.test_app.app;
    let spec = ClientSpec {
        id: ClientId::parse("hall").unwrap(),
        name: "hall".into(),
        auth_method: AuthMethod::ClientSecretBasic,
        redirect_uris: vec![RedirectUri::parse("http://127.0.0.1:9/cb").unwrap()],
        post_logout_redirect_uris: vec![],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scopes: ["openid", "offline_access"]
            .map(|s| Scope::parse(s).unwrap())
            .to_vec(),
        first_party: true,
        settings: ClientSettings::default(),
    };
    let secrets = Some(ClientSecrets::hashed(hash_secret(SECRET), None));
    app.store
        .insert_client(&Client::register(spec, secrets, 0).unwrap())
        .await
        .unwrap();
    common::create_person(
        app,
        "11010519491231002X",
        "张三",
        2,
        ProofMethod::RegisterCheck,
        Some("Str0ng-pass!"),
    )
    .await;

    // Log in on node A (login form, no consent: first party).
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = format!(
        "{}/authorize?client_id=hall&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&response_type=code&scope=openid%20offline_access",
        a.base
    );
    let page = browser
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let hidden = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let start = page.find(&marker).unwrap() + marker.len();
        page[start..].split('"').next().unwrap().to_owned()
    };
    let done = browser
        .post(format!("{}/login", a.base))
        .form(&[
            ("interaction", hidden("interaction")),
            ("csrf", hidden("csrf")),
            ("identifier", "11010519491231002X".into()),
            ("password", "Str0ng-pass!".into()),
        ])
        .send()
        .await
        .unwrap();
    let location = url::Url::parse(done.headers()["location"].to_str().unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    // The code is redeemed on node B: codes live in the shared Redis.
    let tokens = post(
        &b.base,
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9/cb"),
        ],
    )
    .await;
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned();
    let access = tokens["access_token"].as_str().unwrap().to_owned();

    // Rotated on A, refused on B.
    let rotated = post(
        &a.base,
        "/token",
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert!(rotated["refresh_token"].is_string(), "{rotated}");
    let again = post(
        &b.base,
        "/token",
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(again["error"], "invalid_grant");

    // Revoked on A, inactive on B.
    assert_eq!(
        post(&b.base, "/introspect", &[("token", &access)]).await["active"],
        true
    );
    post(&a.base, "/revoke", &[("token", &access)]).await;
    assert_eq!(
        post(&b.base, "/introspect", &[("token", &access)]).await["active"],
        false
    );
}

/// client_credentials for `dept` on `base` with `secret`: the HTTP status.
async fn machine_token(base: &str, secret: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{base}/token"))
        .basic_auth("dept", Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Polls until `want` (at most 5 s); returns what was seen last.
async fn status_becomes(base: &str, secret: &str, want: u16) -> u16 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let got = machine_token(base, secret).await;
        if got == want || std::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Each node holds the registry in memory. A change announced on the clients channel (as the CLI
/// announces every change) reaches the other node at once, long before its periodic reload; a
/// change nobody announced is picked up by that reload.
#[tokio::test]
async fn a_client_change_reaches_every_node_that_holds_it() {
    // A reloads rarely (only the announcement can explain a quick change), B often.
    let Some((_db, a, b)) = two_nodes(|c, node| {
        c.cache.clients_reload_ms = [3_600_000, 100][node];
    })
    .await
    else {
        return;
    };
    let store = &a.test_app.app.store;
    let spec = ClientSpec {
        id: ClientId::parse("dept").unwrap(),
        name: "dept".into(),
        auth_method: AuthMethod::ClientSecretBasic,
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        grant_types: vec![GrantType::ClientCredentials],
        scopes: vec![Scope::parse("records.read").unwrap()],
        first_party: false,
        settings: ClientSettings::default(),
    };
    let with_secret = |secret: &str| {
        Client::register(
            spec.clone(),
            Some(ClientSecrets::hashed(hash_secret(secret), None)),
            0,
        )
        .unwrap()
    };
    store.insert_client(&with_secret(SECRET)).await.unwrap();
    // Registered after start: read from the store on first use, then held.
    assert_eq!(machine_token(&a.base, SECRET).await, 200);
    assert_eq!(machine_token(&b.base, SECRET).await, 200);

    // A new secret, announced: both nodes refuse the old one at once.
    store
        .update_client(&with_secret("second-secret"))
        .await
        .unwrap();
    a.test_app
        .app
        .ephemeral
        .publish(yihao::store::client_cache::CLIENTS_CHANNEL, b"dept")
        .await
        .unwrap();
    assert_eq!(status_becomes(&a.base, SECRET, 401).await, 401);
    assert_eq!(status_becomes(&b.base, SECRET, 401).await, 401);
    assert_eq!(machine_token(&a.base, "second-secret").await, 200);

    // Deleted without an announcement: B's reload drops it; A still holds it until its own reload
    // or an announcement (the CLI always announces).
    assert!(store.delete_client(&spec.id).await.unwrap());
    assert_eq!(status_becomes(&b.base, "second-secret", 401).await, 401);
    assert_eq!(machine_token(&a.base, "second-secret").await, 200);
}
