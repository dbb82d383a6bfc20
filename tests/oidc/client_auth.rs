//! Client authentication by assertion: private_key_jwt (inline keys or a jwks_uri) and
//! client_secret_jwt (through a secret rotation); each assertion authenticates once.

use serde_json::Value;
use yihao::domain::client::{AuthMethod, Client, ClientId, ClientSpec};

use crate::common::clients::machine;
use crate::{SECRET, register, setup};

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
        let now = crate::common::client_clock();
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
            settings,
            ..machine(id, AuthMethod::PrivateKeyJwt, &["records.read"])
        };
        register(app, spec, SECRET).await;
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
    assert_eq!(replay.status(), 400, "a replayed assertion is refused");
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
        assert_eq!(r.status(), 400, "{why}");
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

/// An HS256 client assertion (OIDC Core §9 client_secret_jwt) signed with `secret`.
fn secret_assertion(
    alg: jsonwebtoken::Algorithm,
    secret: &str,
    client: &str,
    aud: &str,
    jti: &str,
) -> String {
    let now = crate::common::client_clock();
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
        name: "HMAC department".into(),
        ..machine("dept-hmac", AuthMethod::ClientSecretJwt, &["records.read"])
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
    pk.id = ClientId::parse("dept-pk").unwrap();
    pk.auth_method = AuthMethod::PrivateKeyJwt;
    pk.settings.jwks = Some(serde_json::json!({"keys": [machine.jwk.clone()]}).to_string());
    register(app, pk, SECRET).await;

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
        400,
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
            (400, &Value::from("invalid_client")),
            "{why}: {body}"
        );
    }

    // Rotation: the previous secret signs until its deadline, then only the new one.
    let now = app.now();
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
        400,
        "a previous secret past its deadline is refused"
    );
}
