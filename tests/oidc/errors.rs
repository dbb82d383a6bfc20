//! The error paths of /authorize (shown to the person or redirected, as the RFC says), /token and
//! /userinfo, and a replayed code revoking what its first use gave.

use serde_json::Value;

use crate::{Browser, SECRET, authorize_url, code_for, redirect_params, setup, userinfo};

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
    // RFC 6749 §5.2: the challenge of the scheme the client used, carrying the error (review 21).
    assert_eq!(
        bad_secret.headers()["www-authenticate"],
        "Basic realm=\"yihao\", error=\"invalid_client\", error_description=\"client authentication failed\""
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
    // Credentials in the body: 400 and no challenge, since the client used no HTTP scheme.
    let mut post = grant(&code);
    post.extend([
        ("client_id", "hall".to_owned()),
        ("client_secret", "wrong".to_owned()),
    ]);
    let in_body = token(post, None).await.unwrap();
    assert_eq!(in_body.status(), 400);
    assert!(in_body.headers().get("www-authenticate").is_none());
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
    assert_eq!(userinfo(&s, &access).await.status(), 200);
    let replay = token(grant(&code), Some(("hall", SECRET))).await.unwrap();
    assert_eq!(
        replay.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    let revoked = userinfo(&s, &access).await;
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
        userinfo(&s, body["id_token"].as_str().unwrap())
            .await
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
