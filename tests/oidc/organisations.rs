//! Acting for an organisation: the chooser after login, and the `org` claim in ID token, access token
//! and userinfo.

use serde_json::Value;

use crate::common::people::{Person, grant};
use crate::{
    Browser, ID_NUMBER, PASSWORD, Setup, authorize_url, hidden, jwt_part, redirect_params, setup,
    tax_exchange, userinfo,
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

#[tokio::test]
async fn a_person_chooses_the_organisation_they_act_for_and_the_tokens_carry_it() {
    use yihao::domain::identifiers::CreditCode;
    use yihao::domain::organisation::{OrgId, Role, Scope as OrgScope};
    let s = setup(|_| {}).await;
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

    let browser = Browser::new();
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
    let chooser = browser.get(&url).await.text().await.unwrap();
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
    let chooser = browser.get(&url).await.text().await.unwrap();
    let forged = choose(&s, &browser, &chooser, "o-1|legal_representative").await;
    assert_eq!(forged.status(), 400);
}
