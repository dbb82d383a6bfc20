//! Acting for an organisation: the chooser after login, and the `org` claim in ID token, access token
//! and userinfo.

use serde_json::Value;

use yihao::domain::account::AccountId;
use yihao::domain::identifiers::CreditCode;
use yihao::domain::organisation::{OrgId, Organisation, Role, Scope as OrgScope};

use crate::common::people::{Person, grant};
use crate::{
    Browser, ID_NUMBER, PASSWORD, SECRET, Setup, authorize_url, hidden, jwt_part, redirect_params,
    setup, tax_exchange, userinfo,
};

/// Chooses `org` ("<org id>|<role>" or "none") on the organisation `chooser` page.
async fn choose(s: &Setup, browser: &Browser, chooser: &str, org: &str) -> reqwest::Response {
    browser
        .post(
            &format!("{}/select-org", s.base),
            &[
                ("interaction", &hidden(chooser, "interaction")),
                ("csrf", &hidden(chooser, "csrf")),
                ("org", org),
            ],
        )
        .await
}

/// "测试有限公司" (o-1) with a legal representative, and the test person as its agent for
/// `tax.declare` for a day: the organisation, the person and the representative.
async fn org_with_agent(s: &Setup) -> (Organisation, AccountId, AccountId) {
    let app = &s._server.test_app.app;
    let ids = &app.identities;
    let person = ids.find(ID_NUMBER, 1).await.unwrap().unwrap().id;
    let boss = Person {
        source: "register",
        ..Person::new("440305200002290029", "李四")
    }
    .create(app, None)
    .await;
    let org = ids
        .create_org(
            OrgId::parse("o-1").unwrap(),
            CreditCode::parse("91512081MA62K0260E").unwrap(),
            "测试有限公司",
            1,
        )
        .await
        .unwrap();
    let now = app.now();
    grant(
        ids,
        &org,
        &boss,
        Role::LegalRepresentative,
        OrgScope::All,
        None,
        None,
        now,
    )
    .await
    .unwrap();
    let items = OrgScope::parse(&["tax.declare".into()]).unwrap();
    grant(
        ids,
        &org,
        &person,
        Role::Agent,
        items,
        Some(now + 86_400),
        Some(boss.clone()),
        now,
    )
    .await
    .unwrap();
    (org, person, boss)
}

#[tokio::test]
async fn a_person_chooses_the_organisation_they_act_for_and_the_tokens_carry_it() {
    let s = setup(|_| {}).await;
    let now = s._server.test_app.app.now();
    let (_, _, boss) = org_with_agent(&s).await;

    let browser = Browser::new();
    let url = authorize_url(
        &s.base,
        "tax",
        "http://127.0.0.1:9/tax",
        &[("scope", "openid org")],
    );
    let page = browser.page(&url).await;
    let chooser = browser
        .login_page(&s.base, &page, ID_NUMBER, PASSWORD)
        .await;
    assert!(
        chooser.contains("action=\"/select-org\"") && chooser.contains("测试有限公司（经办人）"),
        "{chooser}"
    );
    let choice = "o-1|agent".to_owned();
    let response = choose(&s, &browser, &chooser, &choice).await;
    let code = redirect_params(&response)["code"].clone();
    let tokens = tax_exchange(&s, &code).await;
    let id_token = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
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
        jwt_part(tokens["access_token"].as_str().unwrap(), 1)["org"],
        *org_claim,
        "department systems see it offline"
    );
    let info: Value = userinfo(&s, tokens["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["org"], *org_claim);
    assert_eq!(info["sub"], id_token["sub"], "sub stays the person");

    // Choosing "myself" gives tokens without an organisation; prompt=none cannot ask.
    let chooser = browser.page(&url).await;
    let response = choose(&s, &browser, &chooser, "none").await;
    let code = redirect_params(&response)["code"].clone();
    let tokens = tax_exchange(&s, &code).await;
    assert!(
        jwt_part(tokens["id_token"].as_str().unwrap(), 1)
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
    let chooser = browser.page(&url).await;
    let forged = choose(&s, &browser, &chooser, "o-1|legal_representative").await;
    assert_eq!(forged.status(), 400);
}

/// Signs the test person in at "tax" acting as agent of o-1, with a refresh token.
async fn sign_in_as_agent(s: &Setup, browser: &Browser) -> Value {
    let url = authorize_url(
        &s.base,
        "tax",
        "http://127.0.0.1:9/tax",
        &[("scope", "openid org offline_access")],
    );
    let mut page = browser.page(&url).await;
    if page.contains("action=\"/login\"") {
        page = browser
            .login_page(&s.base, &page, ID_NUMBER, PASSWORD)
            .await;
    }
    let response = choose(s, browser, &page, "o-1|agent").await;
    let code = redirect_params(&response)["code"].clone();
    let tokens = tax_exchange(s, &code).await;
    assert_eq!(
        jwt_part(tokens["access_token"].as_str().unwrap(), 1)["org"]["role"],
        "agent"
    );
    tokens
}

/// What a role's tokens can still do: (userinfo status, introspection active, refresh status).
async fn what_the_tokens_do(s: &Setup, tokens: &Value) -> (u16, Value, u16) {
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let info = userinfo(s, access).await.status().as_u16();
    // "tax" authenticates with client_secret_post.
    let tax = |form: Vec<(&'static str, String)>| {
        let base = s.base.clone();
        async move {
            let mut form = form;
            form.push(("client_id", "tax".into()));
            form.push(("client_secret", SECRET.into()));
            let r = reqwest::Client::new()
                .post(format!("{base}/{}", form[0].1))
                .form(&form[1..])
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (_, introspected) = tax(vec![
        ("path", "introspect".into()),
        ("token", access.into()),
    ])
    .await;
    let (refreshed, _) = tax(vec![
        ("path", "token".into()),
        ("grant_type", "refresh_token".into()),
        ("refresh_token", refresh.into()),
    ])
    .await;
    (info, introspected["active"].clone(), refreshed)
}

/// Security review 1: a role outlived its revocation, as long as refresh tokens lived. Revoking the
/// agent (or suspending the organisation) stops the role at once: userinfo refuses the access token,
/// introspection calls it inactive, the refresh token is revoked, and the person's session ended.
#[tokio::test]
async fn threat_a_revoked_role_or_a_suspended_organisation_stops_at_once() {
    let s = setup(|_| {}).await;
    let app = &s._server.test_app.app;
    let (org, person, _) = org_with_agent(&s).await;
    let withdrawal = || yihao::protocol::roles::Withdrawal {
        orgs: app.store.as_ref(),
        refresh: app.store.as_ref(),
        sessions: app.sessions(),
    };
    let browser = Browser::new();
    let tokens = sign_in_as_agent(&s, &browser).await;
    assert_eq!(
        what_the_tokens_do(&s, &tokens).await,
        (200, Value::from(true), 200),
        "while the role is held"
    );
    let tokens = sign_in_as_agent(&s, &browser).await;

    let withdrawn = withdrawal()
        .revoke_member(&org, &person, Role::Agent, app.now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(withdrawn.sessions, 1, "{withdrawn:?}");
    assert!(withdrawn.families >= 1, "{withdrawn:?}");
    assert_eq!(
        what_the_tokens_do(&s, &tokens).await,
        (401, Value::from(false), 400)
    );
    let silent = authorize_url(
        &s.base,
        "tax",
        "http://127.0.0.1:9/tax",
        &[("prompt", "none")],
    );
    assert_eq!(
        redirect_params(&browser.get(&silent).await)["error"],
        "login_required",
        "the session that carried the role ended"
    );

    // Granted again, then the organisation is suspended.
    let now = app.now();
    grant(
        &app.identities,
        &org,
        &person,
        Role::Agent,
        OrgScope::All,
        Some(now + 86_400),
        None,
        now,
    )
    .await
    .unwrap();
    let tokens = sign_in_as_agent(&s, &browser).await;
    assert_eq!(
        what_the_tokens_do(&s, &tokens).await,
        (200, Value::from(true), 200)
    );
    let tokens = sign_in_as_agent(&s, &browser).await;
    withdrawal().suspend(&org, app.now()).await.unwrap();
    assert_eq!(
        what_the_tokens_do(&s, &tokens).await,
        (401, Value::from(false), 400)
    );
}
