//! Introspection (RFC 7662) and revocation (RFC 7009) of access and refresh tokens.

use std::sync::Arc;

use yihao::clock::ManualClock;

use crate::{Browser, SECRET, post_form, setup, setup_on, tokens_with_refresh, userinfo};

#[tokio::test]
async fn introspection_and_revocation_of_both_token_kinds() {
    let s = setup(|_| {}).await;
    let browser = Browser::new();
    let tokens = tokens_with_refresh(&s, &browser).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let (status, active) = post_form(
        &s.base,
        "/introspect",
        ("hall", SECRET),
        &[("token", &access)],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(active["active"], true);
    for field in ["scope", "client_id", "sub", "exp", "iat", "iss", "jti"] {
        assert!(active.get(field).is_some(), "{field} missing: {active}");
    }
    // Foreign: another client learns nothing about hall's token.
    let (_, foreign) = post_form(
        &s.base,
        "/introspect",
        ("other", SECRET),
        &[("token", &access)],
    )
    .await;
    assert_eq!(foreign, serde_json::json!({"active": false}));
    // Malformed and unknown.
    for junk in ["junk", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."] {
        let (_, r) = post_form(&s.base, "/introspect", ("hall", SECRET), &[("token", junk)]).await;
        assert_eq!(r, serde_json::json!({"active": false}), "{junk}");
    }
    // Expired: a token this server signed an hour ago.
    let ring = s._server.test_app.app.keys.ring();
    let now = s._server.test_app.app.now();
    let expired = ring
        .signer(yihao::domain::jose::Alg::ES256, now)
        .unwrap()
        .sign_jwt("at+jwt", &serde_json::json!({"iss": s.base, "sub": "x", "client_id": "hall", "jti": "old", "iat": now - 3600, "exp": now - 1800}))
        .unwrap();
    let (_, r) = post_form(
        &s.base,
        "/introspect",
        ("hall", SECRET),
        &[("token", &expired)],
    )
    .await;
    assert_eq!(r["active"], false);
    // Without client authentication: 401.
    let anonymous = reqwest::Client::new()
        .post(format!("{}/introspect", s.base))
        .form(&[("token", &access)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        anonymous.status(),
        400,
        "no Authorization header: no challenge either"
    );
    // Revocation (RFC 7009): the access token, on every node through the shared store.
    let (status, _) = post_form(
        &s.base,
        "/revoke",
        ("hall", SECRET),
        &[("token", &access), ("token_type_hint", "access_token")],
    )
    .await;
    assert_eq!(status, 200);
    let (_, r) = post_form(
        &s.base,
        "/introspect",
        ("hall", SECRET),
        &[("token", &access)],
    )
    .await;
    assert_eq!(r["active"], false);
    assert_eq!(userinfo(&s, &access).await.status(), 401);
    // The refresh token, with a wrong hint (honoured but not trusted): its family ends.
    let (status, _) = post_form(
        &s.base,
        "/revoke",
        ("hall", SECRET),
        &[("token", &refresh), ("token_type_hint", "access_token")],
    )
    .await;
    assert_eq!(status, 200);
    let (_, r) = post_form(
        &s.base,
        "/token",
        ("hall", SECRET),
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(r["error"], "invalid_grant");
    // Unknown tokens are answered 200 too.
    let (status, _) = post_form(
        &s.base,
        "/revoke",
        ("hall", SECRET),
        &[("token", "never-issued")],
    )
    .await;
    assert_eq!(status, 200);
}

/// An access token lives until its `exp` on the server's clock, to the second (RFC 7519 §4.1.4): at
/// `exp` it still works, one second later userinfo answers `invalid_token` and introspection
/// `active: false`.
#[tokio::test]
async fn access_tokens_expire_on_the_servers_clock() {
    let clock = Arc::new(ManualClock::starting_now());
    let s = setup_on(|c| c.tokens.access_token_secs = 300, Some(clock.clone())).await;
    let browser = Browser::new();
    let tokens = tokens_with_refresh(&s, &browser).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let introspect = |token: String| {
        let base = s.base.clone();
        async move { post_form(&base, "/introspect", ("hall", SECRET), &[("token", &token)]).await }
    };
    clock.advance(300);
    assert_eq!(userinfo(&s, &access).await.status(), 200, "at exp");
    assert_eq!(introspect(access.clone()).await.1["active"], true);
    clock.advance(1);
    let late = userinfo(&s, &access).await;
    assert_eq!(late.status(), 401);
    assert!(
        late.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    assert_eq!(
        introspect(access).await.1,
        serde_json::json!({ "active": false })
    );
}

/// Security review 8: revoked access-token ids lived only in the cache, so a Redis that restarted
/// empty made revoked tokens valid again. A revocation answered 200 is recorded durably first: a
/// node whose cache knows nothing of it still refuses the token.
#[tokio::test]
async fn a_revocation_holds_on_a_node_whose_cache_is_empty() {
    let s = setup(|_| {}).await;
    let browser = Browser::new();
    let tokens = tokens_with_refresh(&s, &browser).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let (status, _) = post_form(&s.base, "/revoke", ("hall", SECRET), &[("token", &access)]).await;
    assert_eq!(status, 200);
    // Another node on the same database, with a cache of its own, empty.
    let app = &s._server.test_app.app;
    let fresh = yihao::app::App::build(app.config.clone()).await.unwrap();
    let ring = fresh.keys.ring();
    let header = format!("Bearer {access}");
    let refused = fresh
        .bearer(&ring)
        .validate(Some(header.as_bytes()), Some("openid"), fresh.now())
        .await
        .unwrap_err();
    assert_eq!(refused.description, "the access token has been revoked");
}
