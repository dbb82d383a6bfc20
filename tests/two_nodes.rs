//! Two yihao nodes on one PostgreSQL + Redis behave as one server: a refresh token rotated on node A
//! is refused on node B, and an access token revoked on A introspects inactive on B. Runs when
//! YIHAO_TEST_DATABASE_URL and YIHAO_TEST_REDIS_URL are set (CI sets both).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::Value;
use yihao::domain::client::{AuthMethod, ClientSpec};

use common::browser::{Browser, redirect_params};
use common::clients::{client, machine, post_form, register, web};
use common::people::{ID_NUMBER, NAME, PASSWORD, Person};

const SECRET: &str = "two-node-secret";

/// A form post as "hall": the JSON answer.
async fn post(base: &str, path: &str, form: &[(&str, &str)]) -> Value {
    post_form(base, path, ("hall", SECRET), form).await.1
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
        name: "hall".into(),
        ..web(
            "hall",
            "http://127.0.0.1:9/cb",
            AuthMethod::ClientSecretBasic,
            &["openid", "offline_access"],
            true,
        )
    };
    register(app, spec, SECRET).await;
    Person::new(ID_NUMBER, NAME)
        .create(app, Some(PASSWORD))
        .await;

    // Log in on node A (login form, no consent: first party).
    let browser = Browser::new();
    let url = format!(
        "{}/authorize?client_id=hall&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&response_type=code&scope=openid%20offline_access",
        a.base
    );
    let page = browser.page(&url).await;
    let done = browser.login(&a.base, &page, ID_NUMBER, PASSWORD).await;
    let code = redirect_params(&done)["code"].clone();
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
    post_form(
        base,
        "/token",
        ("dept", secret),
        &[("grant_type", "client_credentials")],
    )
    .await
    .0
}

/// Polls until `want` (at most 5 s); returns what was seen last.
async fn status_becomes(base: &str, secret: &str, want: u16) -> u16 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let got = machine_token(base, secret).await;
        if got == want || std::time::Instant::now() > deadline {
            return got;
        }
        // Real time: the other node hears the change through Redis.
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
    let spec = machine("dept", AuthMethod::ClientSecretBasic, &["records.read"]);
    let with_secret = |secret: &str| client(spec.clone(), secret);
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
