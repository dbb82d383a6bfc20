//! The enterprise page: a person registers an enterprise through the development market-regulation
//! register (name and legal representative checked), appoints an agent, the agent acts for the
//! enterprise at a relying party, and a revocation takes the role away from the agent's next refresh.

use yihao::domain::account::ProofMethod;

use crate::common::people::Person;
use crate::{Browser, SECRET, authorize_url, hidden, redirect_params, setup_on};

const BOSS: &str = "110101199003070011";
const BOSS_NAME: &str = "测试李四";
const AGENT: &str = "310104198506150023";
const AGENT_NAME: &str = "测试王芳";
const CODE: &str = "91512081MA62K0260E";
const ORG: &str = "测试云端科技有限公司";
const PASSWORD: &str = "Str0ng-pass!";

/// A browser signed in to the personal page as the person with `number`.
async fn signed_in(s: &crate::Setup, number: &str) -> (Browser, String) {
    let browser = Browser::new();
    let first = browser.get(&format!("{}/account", s.base)).await;
    let location = first.headers()["location"].to_str().unwrap().to_owned();
    let login = browser.page(&location).await;
    let mut r = browser.login(&s.base, &login, number, PASSWORD).await;
    while r.status().is_redirection() {
        let to = r.headers()["location"].to_str().unwrap().to_owned();
        let url = if to.starts_with('/') {
            format!("{}{to}", s.base)
        } else {
            to
        };
        r = browser.get(&url).await;
    }
    let page = r.text().await.unwrap();
    assert!(page.contains("个人中心"), "{page}");
    (browser, page)
}

async fn people(s: &crate::Setup) {
    let app = &s._server.test_app.app;
    for (number, name) in [(BOSS, BOSS_NAME), (AGENT, AGENT_NAME)] {
        Person {
            method: ProofMethod::RegisterCheck,
            ..Person::new(number, name)
        }
        .create(app, Some(PASSWORD))
        .await;
    }
}

async fn register_org(
    s: &crate::Setup,
    browser: &Browser,
    page: &str,
    code: &str,
    name: &str,
) -> reqwest::Response {
    browser
        .post(
            &format!("{}/account/org", s.base),
            &[
                ("csrf", &hidden(page, "csrf")),
                ("credit_code", code),
                ("org_name", name),
            ],
        )
        .await
}

#[tokio::test]
async fn the_register_must_confirm_the_name_and_the_legal_representative() {
    let s = setup_on(|_| {}, None).await;
    people(&s).await;
    let (agent, page) = signed_in(&s, AGENT).await;
    // Not the legal representative.
    let r = register_org(&s, &agent, &page, CODE, ORG).await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("法定代表人不是您"));
    let (boss, page) = signed_in(&s, BOSS).await;
    let r = register_org(&s, &boss, &page, CODE, "别的公司").await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("企业名称与登记信息不一致"));
    // Valid by checksum, unknown to the register; and not a credit code at all.
    let r = register_org(&s, &boss, &page, "911101051234567883", ORG).await;
    assert_eq!(r.status(), 422);
    let r = register_org(&s, &boss, &page, "91310115MA1G4L1WXK", ORG).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("统一社会信用代码不正确"));
    let r = register_org(&s, &boss, &page, CODE, ORG).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], format!("/account/org/{CODE}"));
    let r = register_org(&s, &boss, &page, CODE, ORG).await;
    assert_eq!(r.status(), 409, "registered once");
    // A stranger cannot see the enterprise page.
    let stranger = agent.get(&format!("{}/account/org/{CODE}", s.base)).await;
    assert_eq!(stranger.status(), 403);
}

#[tokio::test]
async fn an_appointed_agent_acts_for_the_enterprise_until_the_mandate_is_revoked() {
    let s = setup_on(|_| {}, None).await;
    people(&s).await;
    let (boss, page) = signed_in(&s, BOSS).await;
    assert_eq!(
        register_org(&s, &boss, &page, CODE, ORG).await.status(),
        303
    );
    let org_page = boss.page(&format!("{}/account/org/{CODE}", s.base)).await;
    assert!(
        org_page.contains(ORG) && org_page.contains("法定代表人"),
        "{org_page}"
    );
    // A wrong name for the appointee is refused; the right one is appointed.
    let appoint = |name: &'static str, org_page: String| {
        let boss = &boss;
        let base = s.base.clone();
        async move {
            boss.post(
                &format!("{base}/account/org/{CODE}/appoint"),
                &[
                    ("csrf", &hidden(&org_page, "csrf")),
                    ("role", "agent"),
                    ("number", AGENT),
                    ("name", name),
                    ("scope", "tax.declare, social.pay"),
                    ("expires", "2099-12-31"),
                ],
            )
            .await
        }
    };
    let wrong = appoint("王芳", org_page.clone()).await;
    assert_eq!(wrong.status(), 422);
    let ok = appoint(AGENT_NAME, org_page.clone()).await;
    assert_eq!(ok.status(), 200);
    let org_page = ok.text().await.unwrap();
    assert!(org_page.contains("tax.declare social.pay"), "{org_page}");
    assert!(
        org_page.contains("role_granted"),
        "the enterprise's history"
    );

    // The agent signs in at "tax" acting for the enterprise and gets a refresh token.
    let agent = Browser::new();
    let url = authorize_url(
        &s.base,
        "tax",
        "http://127.0.0.1:9/tax",
        &[("scope", "openid org offline_access")],
    );
    let login = agent.page(&url).await;
    let chooser = agent.login_page(&s.base, &login, AGENT, PASSWORD).await;
    assert!(chooser.contains(ORG), "{chooser}");
    let org_id = s
        ._server
        .test_app
        .app
        .store
        .org_by_code(&yihao::domain::identifiers::CreditCode::parse(CODE).unwrap())
        .await
        .unwrap()
        .unwrap()
        .id;
    let chosen = agent
        .post(
            &format!("{}/select-org", s.base),
            &[
                ("interaction", &hidden(&chooser, "interaction")),
                ("csrf", &hidden(&chooser, "csrf")),
                ("org", &format!("{org_id}|agent")),
            ],
        )
        .await;
    let code = redirect_params(&chosen)["code"].clone();
    let tokens = crate::tax_exchange(&s, &code).await;
    assert!(tokens["refresh_token"].is_string(), "{tokens}");
    let id_token = crate::jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(id_token["org"]["credit_code"], CODE);
    assert_eq!(id_token["org"]["role"], "agent");
    let refresh_once = |token: String| {
        let base = s.base.clone();
        async move {
            reqwest::Client::new()
                .post(format!("{base}/token"))
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", token.as_str()),
                    ("client_id", "tax"),
                    ("client_secret", SECRET),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    // While the mandate holds, the refresh works (and rotates).
    let first = refresh_once(tokens["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(first.status(), 200);
    let rotated: serde_json::Value = first.json().await.unwrap();
    let refresh = rotated["refresh_token"].as_str().unwrap().to_owned();

    // The legal representative revokes the mandate: the next refresh is refused.
    let member = org_page
        .split("name=\"member\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    assert!(member.ends_with(":agent"));
    let revoked = boss
        .post(
            &format!("{}/account/org/{CODE}/revoke", s.base),
            &[("csrf", &hidden(&org_page, "csrf")), ("member", &member)],
        )
        .await;
    assert_eq!(revoked.status(), 200);
    assert!(revoked.text().await.unwrap().contains("role_revoked"));
    let response = refresh_once(refresh).await;
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    // The agent may not manage the enterprise.
    let (agent_browser, agent_page) = signed_in(&s, AGENT).await;
    let _ = agent_page;
    let r = agent_browser
        .get(&format!("{}/account/org/{CODE}", s.base))
        .await;
    assert_eq!(r.status(), 403, "no role any more");
}
