//! The audit log of a whole flow: one verifiable chain, and no personal numbers in it.

use serde_json::Value;

use crate::{Browser, ID_NUMBER, PASSWORD, PHONE, SECRET, authorize_url, code_flow, setup};

#[tokio::test]
async fn security_events_are_audited_in_one_verifiable_chain_without_personal_numbers() {
    let s = setup(|_| {}).await;
    let app = s._server.test_app.app.clone();
    let browser = Browser::new();
    // A wrong password first, then the whole code flow with userinfo.
    let page = browser
        .page(&authorize_url(
            &s.base,
            "hall",
            "http://127.0.0.1:9/cb",
            &[("scope", "openid")],
        ))
        .await;
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
    let last = crate::common::verify_audit(&app).await.unwrap();
    assert_eq!(last, records.len() as i64);
}
