//! Refresh tokens: rotation, narrowing, and reuse revoking the family.

use openidconnect::{OAuth2TokenResponse, TokenResponse};

use crate::{Browser, SECRET, post_form, relying_party, setup, tokens_with_refresh};

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
        &s.base,
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
        &s.base,
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
    let (_, still_live) =
        post_form(&s.base, "/introspect", ("hall", SECRET), &[("token", &r3)]).await;
    assert_eq!(still_live["active"], true);
    // Reuse of r1 (already rotated) revokes every token of the family, including the newest.
    let (_, reuse) = post_form(
        &s.base,
        "/token",
        ("hall", SECRET),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", r1.secret()),
        ],
    )
    .await;
    assert_eq!(reuse["error"], "invalid_grant");
    let (status, after) =
        post_form(&s.base, "/introspect", ("hall", SECRET), &[("token", &r3)]).await;
    assert_eq!(status, 200);
    assert_eq!(after["active"], false, "the family is revoked");
    // Another client cannot spend or revoke hall's refresh tokens.
    let fresh = tokens_with_refresh(&s, &browser).await;
    let token = fresh["refresh_token"].as_str().unwrap();
    let (_, foreign) = post_form(
        &s.base,
        "/token",
        ("other", SECRET),
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
    .await;
    assert_eq!(foreign["error"], "invalid_grant");
    let (_, still) = post_form(
        &s.base,
        "/introspect",
        ("hall", SECRET),
        &[("token", token)],
    )
    .await;
    assert_eq!(still["active"], true);
    assert_eq!(still["token_type"], "refresh_token");
}
