//! Rate limits: logins per address (and who may name the address), tokens per client.

use serde_json::Value;

use crate::{Browser, PHONE, SECRET, Setup, authorize_url, hidden, setup_on};

/// Posts a wrong password for the person through `browser`'s login page, from `forwarded_for`.
async fn failed_login(s: &Setup, browser: &Browser, forwarded_for: &str) -> reqwest::Response {
    failed_login_as(s, browser, forwarded_for, PHONE).await
}

/// [`failed_login`] with the person's number spelled `identifier`.
async fn failed_login_as(
    s: &Setup,
    browser: &Browser,
    forwarded_for: &str,
    identifier: &str,
) -> reqwest::Response {
    let page = browser
        .page(&authorize_url(
            &s.base,
            "hall",
            "http://127.0.0.1:9/cb",
            &[("scope", "openid")],
        ))
        .await;
    browser
        .http
        .post(format!("{}/login", s.base))
        .header("x-forwarded-for", forwarded_for)
        .form(&[
            ("interaction", hidden(&page, "interaction").as_str()),
            ("csrf", hidden(&page, "csrf").as_str()),
            ("identifier", identifier),
            ("password", "wrong-Passw0rd"),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn logins_are_rate_limited_per_address_and_only_a_trusted_proxy_names_the_address() {
    for trusted in [true, false] {
        // A fixed clock 10 s into a minute: every attempt falls in one window, and the refusal
        // says exactly how long that window has left.
        let minute = yihao::clock::system_ms() / 60_000 * 60;
        let clock = std::sync::Arc::new(yihao::clock::ManualClock::at_ms((minute + 10) * 1000));
        let s = setup_on(
            |c| {
                c.limits.login_per_ip_per_min = 2;
                c.limits.login_per_account_per_min = 100;
                c.passwords.lockout_threshold = 100;
                if trusted {
                    c.server.trusted_proxies = vec!["127.0.0.0/8".into()];
                }
            },
            Some(clock),
        )
        .await;
        let browser = Browser::new();
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
        assert_eq!(retry, 50, "the rest of the minute window");
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
    // On a clock that stands still the three requests fall in one one-second window.
    let clock = std::sync::Arc::new(yihao::clock::ManualClock::starting_now());
    let s = setup_on(
        |c| c.limits.token_per_client_per_sec = 1,
        Some(clock.clone()),
    )
    .await;
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
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
    assert_eq!(statuses, [200, 429, 429]);
    // The next second is a new window.
    clock.advance(1);
    let next = http
        .post(format!("{}/introspect", s.base))
        .basic_auth("hall", Some(SECRET))
        .form(&[("token", "nothing")])
        .send()
        .await
        .unwrap();
    assert_eq!(next.status(), 200);
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
    assert_eq!(
        limited.len(),
        1,
        "the first refusal of a window only: {limited:?}"
    );
    assert!(
        limited
            .iter()
            .all(|r| r.actor.as_deref() == Some("hall")
                && r.reason.as_deref() == Some("token_client"))
    );
}

/// Security review 3: the per-account limit hashed the identifier as typed, so every spelling of
/// one mobile number had its own budget. It counts the account the number resolves to.
#[tokio::test]
async fn the_per_account_login_limit_counts_the_account_not_its_spelling() {
    let clock = std::sync::Arc::new(yihao::clock::ManualClock::starting_now());
    let s = setup_on(
        |c| {
            c.limits.login_per_account_per_min = 2;
            c.limits.login_per_ip_per_min = 100;
            c.passwords.lockout_threshold = 100;
        },
        Some(clock),
    )
    .await;
    let browser = Browser::new();
    let spellings = ["13812341234", "+86 138 1234 1234", "138-1234-1234"];
    let mut statuses = Vec::new();
    for spelling in spellings {
        statuses.push(
            failed_login_as(&s, &browser, "198.51.100.1", spelling)
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [401, 401, 429]);
}

/// Security review 12: a public client's token budget was shared by everyone who knew its
/// `client_id`. It is counted per client and source address.
#[tokio::test]
async fn a_public_clients_token_budget_is_counted_per_source() {
    let clock = std::sync::Arc::new(yihao::clock::ManualClock::starting_now());
    let s = setup_on(
        |c| {
            c.limits.token_per_client_per_sec = 1;
            c.server.trusted_proxies = vec!["127.0.0.0/8".into()];
        },
        Some(clock),
    )
    .await;
    let from = |address: &'static str| {
        let base = s.base.clone();
        async move {
            reqwest::Client::new()
                .post(format!("{base}/token"))
                .header("x-forwarded-for", address)
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("client_id", "app"),
                    ("code", "no-such-code"),
                    ("redirect_uri", "http://127.0.0.1/app"),
                    ("code_verifier", "x".repeat(43).as_str()),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        from("198.51.100.1").await,
        400,
        "within the budget: the grant fails"
    );
    assert_eq!(from("198.51.100.1").await, 429);
    assert_eq!(
        from("198.51.100.2").await,
        400,
        "another source has its own budget"
    );
}
