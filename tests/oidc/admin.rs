//! The admin API (docs/administration.md): who may call it (a token of an administrator signed in at
//! level 3 with two factors, or a client acting in its one administrator role), the separation of
//! duties route by route, bad input on every route that takes any, the OpenAPI document checked by an
//! independent validator, and the flows: a security administrator locks an account and its sessions
//! end; the audit administrator sees and verifies that; a reveal reaches the person's ledger.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Value, json};
use yihao::clock::ManualClock;
use yihao::domain::account::ProofMethod;
use yihao::domain::client::{AuthMethod, GrantType};
use yihao::protocol::admin::Actor;
use yihao::protocol::audit::RequestContext;

use crate::common::clients::machine;
use crate::common::people::Person;
use crate::second_factor::{code_at, submit_factor};
use crate::{
    Browser, ID_NUMBER, PASSWORD, SECRET, Setup, authorize_url, client_spec, code_exchange,
    post_form, redirect_params, register, setup_on,
};

/// The department of the department administrator (a government organ's credit code).
const DEPARTMENT: &str = "11110000000000000N";
const TOOL: &str = "admin-tool";
const TOOL_REDIRECT: &str = "http://127.0.0.1:9/admin-tool";

/// An administrator signed in: their account, browser and access token.
struct Signed {
    account: String,
    token: String,
}

/// The server on a manual clock, a first-party client administrators sign in at (every
/// administrator scope; a person's token carries only their own role's), and the test person.
async fn setup_admin() -> (Setup, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::starting_now());
    let s = setup_on(|_| {}, Some(clock.clone())).await;
    let app = &s._server.test_app.app;
    let mut tool = client_spec(TOOL, TOOL_REDIRECT, AuthMethod::ClientSecretBasic, true);
    tool.scopes.extend(
        [
            "admin:system",
            "admin:security",
            "admin:audit",
            "admin:department",
        ]
        .map(|s| yihao::domain::client::Scope::parse(s).unwrap()),
    );
    register(app, tool, SECRET).await;
    app.clients.reload().await.unwrap();
    (s, clock)
}

fn now(clock: &ManualClock) -> i64 {
    yihao::clock::Clock::now(clock)
}

/// A person at real-name level 3 (checked at a service window).
async fn person(s: &Setup, number: &str, name: &str) -> String {
    let app = &s._server.test_app.app;
    Person {
        level: 3,
        method: ProofMethod::FaceCheck,
        source: "window",
        ..Person::new(number, name)
    }
    .create(app, Some(PASSWORD))
    .await
    .as_str()
    .to_owned()
}

/// The operator grants `role` (`yihao admin grant`).
async fn grant(s: &Setup, account: &str, role: &str, department: Option<&str>, at: i64) {
    let app = &s._server.test_app.app;
    let context = RequestContext::default();
    app.administration(&Actor::Operator, &context)
        .grant_role(account, role, department, at)
        .await
        .unwrap();
}

/// Signs `number` in at the admin tool asking for `scope`: the password, then the authenticator app
/// the two-factor rule makes them enrol; the token exchanged for the code.
async fn sign_in(s: &Setup, clock: &ManualClock, number: &str, scope: &str) -> String {
    let browser = Browser::new();
    let url = authorize_url(
        &s.base,
        TOOL,
        TOOL_REDIRECT,
        &[("scope", scope), ("nonce", "n")],
    );
    let login = browser.page(&url).await;
    let next = browser.login(&s.base, &login, number, PASSWORD).await;
    assert_eq!(next.status(), 200);
    let enrol = next.text().await.unwrap();
    assert!(enrol.contains("value=\"enrol\""), "{enrol}");
    let secret = crate::second_factor::element(&enrol, "totp-secret");
    SECRETS.with(|m| m.borrow_mut().insert(number.to_owned(), secret.clone()));
    let shown = submit_factor(s, &browser, &enrol, "enrol", &code_at(&secret, now(clock))).await;
    assert_eq!(shown.status(), 200);
    let shown = shown.text().await.unwrap();
    let done = submit_factor(s, &browser, &shown, "continue", "").await;
    let code = redirect_params(&done)["code"].clone();
    let (status, body) = code_exchange(s, TOOL, TOOL_REDIRECT, &code).await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let claims = crate::jwt_part(&token, 1);
    assert_eq!(claims["acr"], "urn:yihao:loa:3", "{claims}");
    token
}

/// A new administrator in `role`, signed in with a token for it.
async fn admin(
    s: &Setup,
    clock: &ManualClock,
    number: &str,
    name: &str,
    role: &str,
    department: Option<&str>,
) -> Signed {
    let account = person(s, number, name).await;
    grant(s, &account, role, department, now(clock)).await;
    let token = sign_in(s, clock, number, &format!("openid admin:{role}")).await;
    Signed { account, token }
}

/// A call to the admin API: status and JSON answer (`Null` for an empty one).
async fn call(
    s: &Setup,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let url = format!("{}{path}", s.base);
    let http = reqwest::Client::new();
    let mut request = http.request(method.parse().unwrap(), url);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    if let Some(b) = body {
        request = request.json(&b);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The four administrators, and a citizen with an open session.
struct World {
    s: Setup,
    clock: Arc<ManualClock>,
    system: Signed,
    security: Signed,
    audit: Signed,
    department: Signed,
    citizen: String,
}

async fn world() -> World {
    let (s, clock) = setup_admin().await;
    let id = crate::common::resident_id;
    let system = admin(&s, &clock, &id(1), "系统管理员", "system", None).await;
    let security = admin(&s, &clock, &id(2), "安全管理员", "security", None).await;
    let audit = admin(&s, &clock, &id(3), "审计管理员", "audit", None).await;
    let department = admin(
        &s,
        &clock,
        &id(4),
        "部门管理员",
        "department",
        Some(DEPARTMENT),
    )
    .await;
    let app = &s._server.test_app.app;
    let citizen = app
        .identities
        .find(ID_NUMBER, now(&clock))
        .await
        .unwrap()
        .unwrap()
        .id
        .as_str()
        .to_owned();
    World {
        s,
        clock,
        system,
        security,
        audit,
        department,
        citizen,
    }
}

#[tokio::test]
async fn the_admin_api_refuses_tokens_that_are_not_an_administrators_at_level_3() {
    let (s, clock) = setup_admin().await;
    let app = &s._server.test_app.app;

    // No token: 401 with the Bearer challenge; a token that is not one: invalid_token.
    let (status, body) = call(&s, None, "GET", "/admin/api/v1/me", None).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_request");
    let (status, body) = call(&s, Some("not-a-token"), "GET", "/admin/api/v1/me", None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_token"))
    );

    // A citizen's token (no administrator scope): insufficient_scope.
    let browser = Browser::new();
    let code = browser
        .authorize(
            &s.base,
            &authorize_url(&s.base, "tax", "http://127.0.0.1:9/tax", &[]),
        )
        .await["code"]
        .clone();
    let citizen = crate::tax_exchange(&s, &code).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = call(&s, Some(&citizen), "GET", "/admin/api/v1/clients", None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("insufficient_scope"))
    );

    // A citizen who asks the admin tool for an administrator scope signs in at level 2: too weak.
    let code = browser
        .authorize(
            &s.base,
            &authorize_url(
                &s.base,
                TOOL,
                TOOL_REDIRECT,
                &[("scope", "openid admin:security")],
            ),
        )
        .await["code"]
        .clone();
    let (_, tokens) = code_exchange(&s, TOOL, TOOL_REDIRECT, &code).await;
    let weak_citizen = tokens["access_token"].as_str().unwrap();
    let (status, body) = call(&s, Some(weak_citizen), "GET", "/admin/api/v1/roles", None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("insufficient_user_authentication"))
    );

    // An administrator whose token comes from a level-2 sign-in: the password alone, before the
    // role (and with it the two-factor rule) was granted.
    let number = crate::common::resident_id(1);
    let account = person(&s, &number, "系统管理员").await;
    let early = Browser::new();
    let url = authorize_url(
        &s.base,
        TOOL,
        TOOL_REDIRECT,
        &[("scope", "openid admin:system")],
    );
    let login = early.page(&url).await;
    let done = early.login(&s.base, &login, &number, PASSWORD).await;
    let (_, tokens) = code_exchange(&s, TOOL, TOOL_REDIRECT, &redirect_params(&done)["code"]).await;
    let weak = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(crate::jwt_part(&weak, 1)["acr"], "urn:yihao:loa:2");
    grant(&s, &account, "system", None, now(&clock)).await;
    let response = reqwest::Client::new()
        .get(format!("{}/admin/api/v1/clients", s.base))
        .bearer_auth(&weak)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains("error=\"insufficient_user_authentication\"")
            && challenge.contains("acr_values=\"urn:yihao:loa:3\""),
        "RFC 9470 §3: {challenge}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_user_authentication");

    // At level 3 the same person is let in.
    let strong = sign_in(&s, &clock, &number, "openid admin:system").await;
    let (status, me) = call(&s, Some(&strong), "GET", "/admin/api/v1/me", None).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["role"], "system");
    assert_eq!(me["actor"], account.as_str());
    assert!(
        me["allowed"]
            .as_array()
            .unwrap()
            .contains(&json!("clients.write"))
    );
    // A token for another role than the one held: refused.
    let other = sign_in_again(&s, &clock, &number, "openid admin:security").await;
    let (status, body) = call(&s, Some(&other), "GET", "/admin/api/v1/roles", None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("access_denied"))
    );
    // Once the role is revoked, the token still valid is refused at once.
    let context = RequestContext::default();
    app.administration(&Actor::Operator, &context)
        .revoke_role(&account, now(&clock))
        .await
        .unwrap();
    let (status, body) = call(&s, Some(&strong), "GET", "/admin/api/v1/me", None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("access_denied"))
    );
    // And an expired token is no token.
    let lifetime = app.config.tokens.access_token_secs as i64;
    clock.advance(lifetime + 1);
    let (status, body) = call(&s, Some(&strong), "GET", "/admin/api/v1/me", None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_token"))
    );
}

/// Signs in again someone who has an authenticator app already (enrolled by [`sign_in`]): the
/// password, then a code. Codes are good once per step, so the clock moves to the next one.
async fn sign_in_again(s: &Setup, clock: &ManualClock, number: &str, scope: &str) -> String {
    clock.advance(30);
    let secret = SECRETS.with(|m| m.borrow().get(number).cloned()).unwrap();
    let browser = Browser::new();
    let url = authorize_url(
        &s.base,
        TOOL,
        TOOL_REDIRECT,
        &[("scope", scope), ("nonce", "n")],
    );
    let login = browser.page(&url).await;
    let page = browser.login(&s.base, &login, number, PASSWORD).await;
    let page = page.text().await.unwrap();
    assert!(page.contains("value=\"totp\""), "{page}");
    let done = submit_factor(s, &browser, &page, "totp", &code_at(&secret, now(clock))).await;
    let code = redirect_params(&done)["code"].clone();
    let (status, body) = code_exchange(s, TOOL, TOOL_REDIRECT, &code).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

thread_local! {
    /// The authenticator keys enrolled by [`sign_in`], by ID number (each test runs on its thread).
    static SECRETS: std::cell::RefCell<std::collections::HashMap<String, String>> =
        Default::default();
}

/// One route of the API with a request each allowed role can make, and what it answers them.
struct Route {
    method: &'static str,
    /// The path as the OpenAPI document names it.
    template: &'static str,
    /// The path called.
    path: String,
    body: Option<Value>,
    /// The roles allowed, with the status each gets.
    allowed: Vec<(&'static str, u16)>,
}

fn route(
    method: &'static str,
    template: &'static str,
    path: impl Into<String>,
    body: Option<Value>,
    allowed: &[(&'static str, u16)],
) -> Route {
    Route {
        method,
        template,
        path: path.into(),
        body,
        allowed: allowed.to_vec(),
    }
}

#[tokio::test]
async fn every_route_lets_in_the_roles_it_names_and_refuses_the_others() {
    let w = world().await;
    let s = &w.s;
    let app = &s._server.test_app.app;
    // A client of the department, and one each role may delete.
    for id in ["dept-app", "victim-system", "victim-department"] {
        let mut spec = client_spec(
            id,
            "https://dept.example.gov.cn/cb",
            AuthMethod::ClientSecretBasic,
            false,
        );
        spec.settings.department =
            Some(yihao::domain::identifiers::CreditCode::parse(DEPARTMENT).unwrap());
        register(app, spec, SECRET).await;
    }
    let victim = person(s, &crate::common::resident_id(8), "测试王五").await;
    // An enterprise with an administrator (the victim), for the organisation routes.
    const ORG: &str = "911101051234567883";
    let org = app
        .identities
        .create_org(
            yihao::domain::organisation::OrgId::parse(&uuid::Uuid::new_v4().to_string()).unwrap(),
            yihao::domain::identifiers::CreditCode::parse(ORG).unwrap(),
            "某某科技有限公司",
            1,
        )
        .await
        .unwrap();
    crate::common::people::grant(
        &app.identities,
        &org,
        &yihao::domain::account::AccountId::parse(&victim).unwrap(),
        yihao::domain::organisation::Role::Agent,
        yihao::domain::organisation::Scope::All,
        Some(now(&w.clock) + 86_400),
        None,
        1,
    )
    .await
    .unwrap();
    let citizen = w.citizen.clone();
    let c = |p: &str| format!("/admin/api/v1{p}");
    let sys_dept = |ok: u16| vec![("system", ok), ("department", ok)];
    let routes = vec![
        route(
            "GET",
            "/admin/api/v1/me",
            c("/me"),
            None,
            &[
                ("system", 200),
                ("security", 200),
                ("audit", 200),
                ("department", 200),
            ],
        ),
        route(
            "GET",
            "/admin/api/v1/clients",
            c("/clients"),
            None,
            &sys_dept(200),
        ),
        route(
            "POST",
            "/admin/api/v1/clients",
            c("/clients"),
            None,
            &sys_dept(201),
        ),
        route(
            "GET",
            "/admin/api/v1/clients/{id}",
            c("/clients/dept-app"),
            None,
            &sys_dept(200),
        ),
        route(
            "PATCH",
            "/admin/api/v1/clients/{id}",
            c("/clients/dept-app"),
            Some(json!({"location": "大厅"})),
            &sys_dept(200),
        ),
        route(
            "DELETE",
            "/admin/api/v1/clients/{id}",
            String::new(),
            None,
            &sys_dept(204),
        ),
        route(
            "POST",
            "/admin/api/v1/clients/{id}/secret",
            c("/clients/dept-app/secret"),
            Some(json!({"previous_valid_secs": 60})),
            &sys_dept(200),
        ),
        // Only a pending client can be approved, and never by a department (403).
        route(
            "POST",
            "/admin/api/v1/clients/{id}/approve",
            c("/clients/dept-app/approve"),
            None,
            &[("system", 409)],
        ),
        route(
            "GET",
            "/admin/api/v1/clients/{id}/check",
            c("/clients/dept-app/check"),
            None,
            &sys_dept(200),
        ),
        route(
            "POST",
            "/admin/api/v1/registration-tokens",
            c("/registration-tokens"),
            Some(json!({"expires_in": 3600})),
            &sys_dept(200),
        ),
        route(
            "GET",
            "/admin/api/v1/accounts",
            c(&format!("/accounts?q={ID_NUMBER}")),
            None,
            &[("security", 200)],
        ),
        route(
            "GET",
            "/admin/api/v1/accounts/{id}",
            c(&format!("/accounts/{citizen}")),
            None,
            &[("security", 200)],
        ),
        route(
            "POST",
            "/admin/api/v1/accounts/{id}/reveal",
            c(&format!("/accounts/{citizen}/reveal")),
            Some(json!({"reason": "核对办件材料"})),
            &[("security", 200)],
        ),
        route(
            "POST",
            "/admin/api/v1/accounts/{id}/status",
            c(&format!("/accounts/{citizen}/status")),
            Some(json!({"status": "active"})),
            &[("security", 200)],
        ),
        route(
            "POST",
            "/admin/api/v1/accounts/{id}/level",
            c(&format!("/accounts/{citizen}/level")),
            Some(json!({"level": 2, "proof_method": "register_check", "proof_source": "register"})),
            &[("security", 200)],
        ),
        route(
            "POST",
            "/admin/api/v1/accounts/{id}/recovery-code",
            c(&format!("/accounts/{citizen}/recovery-code")),
            None,
            &[("security", 200)],
        ),
        route(
            "GET",
            "/admin/api/v1/accounts/{id}/sessions",
            c(&format!("/accounts/{citizen}/sessions")),
            None,
            &[("security", 200)],
        ),
        route(
            "DELETE",
            "/admin/api/v1/accounts/{id}/sessions",
            c(&format!("/accounts/{citizen}/sessions")),
            None,
            &[("security", 200)],
        ),
        route(
            "DELETE",
            "/admin/api/v1/accounts/{id}/sessions/{sid}",
            c(&format!("/accounts/{citizen}/sessions/nosuch")),
            None,
            &[("security", 404)],
        ),
        route(
            "GET",
            "/admin/api/v1/orgs",
            c("/orgs"),
            None,
            &[("security", 200)],
        ),
        route(
            "POST",
            "/admin/api/v1/orgs",
            c("/orgs"),
            Some(json!({"credit_code": "9144030071526726XG", "name": "上海某某有限公司"})),
            &[("security", 201)],
        ),
        route(
            "POST",
            "/admin/api/v1/orgs/{org}/members",
            c("/orgs/9144030071526726XG/members"),
            Some(
                json!({"account_id": citizen, "role": "agent", "scope": ["tax.filing"], "expires_at": now(&w.clock) + 86_400, "expires_on": null}),
            ),
            &[("security", 200)],
        ),
        route(
            "GET",
            "/admin/api/v1/orgs/{org}",
            c(&format!("/orgs/{ORG}")),
            None,
            &[("security", 200)],
        ),
        route(
            "DELETE",
            "/admin/api/v1/orgs/{org}/members/{account_id}",
            c(&format!("/orgs/{ORG}/members/{victim}?role=agent")),
            None,
            &[("security", 200)],
        ),
        route(
            "POST",
            "/admin/api/v1/orgs/{org}/suspend",
            c(&format!("/orgs/{ORG}/suspend")),
            None,
            &[("security", 200)],
        ),
        route(
            "GET",
            "/admin/api/v1/roles",
            c("/roles"),
            None,
            &[("security", 200)],
        ),
        route(
            "PUT",
            "/admin/api/v1/roles/{account_id}",
            c(&format!("/roles/{victim}")),
            Some(json!({"role": "audit"})),
            &[("security", 200)],
        ),
        route(
            "DELETE",
            "/admin/api/v1/roles/{account_id}",
            c(&format!("/roles/{victim}")),
            None,
            &[("security", 204)],
        ),
        route(
            "GET",
            "/admin/api/v1/keys",
            c("/keys"),
            None,
            &[("system", 200)],
        ),
        route(
            "POST",
            "/admin/api/v1/keys",
            c("/keys"),
            Some(json!({"alg": "ES256"})),
            &[("system", 201)],
        ),
        route(
            "POST",
            "/admin/api/v1/keys/{kid}/retire",
            c("/keys/nosuch/retire"),
            None,
            &[("system", 404)],
        ),
        route(
            "POST",
            "/admin/api/v1/keys/{kid}/revoke",
            c("/keys/nosuch/revoke"),
            None,
            &[("system", 404)],
        ),
        route(
            "GET",
            "/admin/api/v1/audit",
            c("/audit?event=admin_client"),
            None,
            &[("audit", 200)],
        ),
        route(
            "GET",
            "/admin/api/v1/audit/export",
            c("/audit/export?since=0&limit=10"),
            None,
            &[("audit", 200)],
        ),
        route(
            "POST",
            "/admin/api/v1/audit/verify",
            c("/audit/verify"),
            Some(json!({})),
            &[("audit", 200)],
        ),
        route(
            "GET",
            "/admin/api/v1/reports",
            c("/reports?days=7"),
            None,
            &[("system", 200)],
        ),
        route(
            "GET",
            "/admin/api/v1/clients/{id}/stats",
            c("/clients/dept-app/stats"),
            None,
            &sys_dept(200),
        ),
        route(
            "GET",
            "/admin/api/v1/settings",
            c("/settings"),
            None,
            &[("system", 200)],
        ),
    ];

    // Every route of the OpenAPI document is in this table, and nothing else is.
    let (_, doc) = call(s, None, "GET", "/admin/api/openapi.json", None).await;
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let tested: BTreeSet<(String, String)> = routes
        .iter()
        .map(|r| (r.method.to_owned(), r.template.to_owned()))
        .collect();
    assert_eq!(documented, tested);

    let tokens = [
        ("system", &w.system),
        ("security", &w.security),
        ("audit", &w.audit),
        ("department", &w.department),
    ];
    for r in &routes {
        for (role, who) in &tokens {
            let path = match (r.method, r.template) {
                ("DELETE", "/admin/api/v1/clients/{id}") => c(&format!("/clients/victim-{role}")),
                _ => r.path.clone(),
            };
            let body = match (r.method, r.template) {
                ("POST", "/admin/api/v1/clients") => Some(json!({
                    "client_id": format!("made-by-{role}"),
                    "client_name": "新系统",
                    "redirect_uris": ["https://new.example.gov.cn/cb"],
                })),
                _ => r.body.clone(),
            };
            let (status, answer) = call(s, Some(&who.token), r.method, &path, body).await;
            match r.allowed.iter().find(|(a, _)| a == role) {
                Some((_, expected)) => {
                    assert_eq!(status, *expected, "{role} {} {path}: {answer}", r.method)
                }
                None => {
                    assert_eq!(status, 403, "{role} {} {path}: {answer}", r.method);
                    assert_eq!(answer["error"], "access_denied", "{answer}");
                }
            }
        }
    }

    // The department administrator's client belongs to the department; it sees no other.
    let (_, made) = call(
        s,
        Some(&w.system.token),
        "GET",
        "/admin/api/v1/clients/made-by-department",
        None,
    )
    .await;
    assert_eq!(made["department"], DEPARTMENT);
    let (_, listed) = call(
        s,
        Some(&w.department.token),
        "GET",
        "/admin/api/v1/clients?limit=200",
        None,
    )
    .await;
    let ids: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["dept-app", "made-by-department"], "{listed}");
    let (status, _) = call(
        s,
        Some(&w.department.token),
        "GET",
        "/admin/api/v1/clients/tax",
        None,
    )
    .await;
    assert_eq!(
        status, 404,
        "another department's client does not exist for it"
    );

    // Every refusal is in the audit log with its actor and role.
    let refused = app
        .store
        .audit_records(1, 100_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.event == "admin_read" && r.reason.as_deref() == Some("denied"))
        .filter(|r| r.actor.as_deref() == Some(w.audit.account.as_str()))
        .count();
    let expected = routes
        .iter()
        .filter(|r| !r.allowed.iter().any(|(a, _)| *a == "audit"))
        .count();
    assert_eq!(refused, expected);
    assert!(crate::common::verify_audit(app).await.is_ok());
    let _ = &w.clock;
}

/// A bad request: token, method, path, body, the status expected and a word its description names.
type Case<'a> = (&'a str, &'a str, String, Option<Value>, u16, &'a str);

#[tokio::test]
async fn bad_input_gets_a_specific_error_and_changes_nothing() {
    let w = world().await;
    let s = &w.s;
    let app = &s._server.test_app.app;
    let (sys, sec, aud) = (&w.system.token, &w.security.token, &w.audit.token);
    let citizen = &w.citizen;
    let before = app.store.clients().await.unwrap();
    let c = |p: &str| format!("/admin/api/v1{p}");
    let nobody = "00000000-0000-4000-8000-000000000000";
    let cases: Vec<Case> = vec![
        (sys, "GET", c("/clients?limit=x"), None, 400, "query"),
        (
            sys,
            "GET",
            c("/clients?q=a&colour=red"),
            None,
            400,
            "colour",
        ),
        (sys, "GET", c("/clients/bad%20id"), None, 400, "client_id"),
        (
            sys,
            "GET",
            c("/clients/tax/stats?days=x"),
            None,
            400,
            "query",
        ),
        (
            sec,
            "POST",
            c(&format!("/accounts/{nobody}/recovery-code")),
            None,
            404,
            nobody,
        ),
        (
            sec,
            "DELETE",
            c(&format!("/accounts/{nobody}/sessions")),
            None,
            404,
            nobody,
        ),
        (
            sec,
            "GET",
            c(&format!("/accounts/{nobody}/sessions")),
            None,
            404,
            nobody,
        ),
        (
            sec,
            "POST",
            c(&format!("/accounts/{nobody}/level")),
            Some(json!({"level": 2, "proof_method": "register_check", "proof_source": "r"})),
            404,
            nobody,
        ),
        (
            sec,
            "GET",
            c("/orgs/911101051234567883"),
            None,
            404,
            "911101051234567883",
        ),
        (sec, "GET", c("/orgs?limit=x"), None, 400, "query"),
        (
            sec,
            "POST",
            c("/orgs"),
            Some(json!({"credit_code": "91110105123456788I", "name": "x"})),
            400,
            "credit_code",
        ),
        (
            sec,
            "POST",
            c("/orgs"),
            Some(json!({"credit_code": "911101051234567883", "name": ""})),
            400,
            "name",
        ),
        (
            sec,
            "POST",
            c("/orgs/911101051234567883/members"),
            Some(json!({"account_id": citizen, "role": "agent"})),
            404,
            "911101051234567883",
        ),
        (sec, "POST", c("/orgs/nosuch/suspend"), None, 404, "nosuch"),
        (
            sec,
            "DELETE",
            c("/orgs/911101051234567883/members/x"),
            None,
            400,
            "role",
        ),
        (
            sec,
            "DELETE",
            c("/orgs/911101051234567883/members/x?role=boss"),
            None,
            400,
            "role",
        ),
        (sys, "GET", c("/reports?days=0"), None, 400, "days"),
        (sys, "GET", c("/reports?days=31"), None, 400, "days"),
        (sys, "GET", c("/reports?day=3"), None, 400, "day"),
        (sys, "GET", c("/clients/nosuch/stats"), None, 404, "nosuch"),
        // (token, method, path, body, status, a word the description names)
        (
            sys,
            "POST",
            c("/clients"),
            Some(json!({"client_name": 5})),
            400,
            "body",
        ),
        (
            sys,
            "POST",
            c("/clients"),
            Some(json!({"client_name": "x", "colour": "red"})),
            400,
            "colour",
        ),
        (
            sys,
            "POST",
            c("/clients"),
            Some(json!({"redirect_uris": ["https://a.example/cb"]})),
            400,
            "client_name",
        ),
        (
            sys,
            "POST",
            c("/clients"),
            Some(json!({"client_name": "x", "redirect_uris": ["not a uri"]})),
            400,
            "redirect_uri",
        ),
        (
            sys,
            "POST",
            c("/clients"),
            Some(
                json!({"client_name": "x", "redirect_uris": ["https://a.example/cb"], "grant_types": ["password"]}),
            ),
            400,
            "grant",
        ),
        (
            sys,
            "POST",
            c("/clients"),
            Some(
                json!({"client_name": "x", "redirect_uris": ["https://a.example/cb"], "department": "123"}),
            ),
            400,
            "department",
        ),
        (
            sys,
            "POST",
            c("/clients"),
            Some(
                json!({"client_name": "x", "redirect_uris": ["https://a.example/cb"], "min_level": 7}),
            ),
            400,
            "min_level",
        ),
        (
            sys,
            "POST",
            c("/clients"),
            Some(
                json!({"client_name": "x", "grant_types": ["client_credentials"], "scope": "admin:security"}),
            ),
            403,
            "admin:security",
        ),
        (
            sys,
            "POST",
            c("/clients"),
            Some(
                json!({"client_id": "tax", "client_name": "x", "redirect_uris": ["https://a.example/cb"]}),
            ),
            409,
            "exists",
        ),
        (
            sys,
            "PATCH",
            c("/clients/nosuch"),
            Some(json!({"location": "x"})),
            404,
            "nosuch",
        ),
        (
            sys,
            "PATCH",
            c("/clients/tax"),
            Some(json!({"token_endpoint_auth_method": "none"})),
            400,
            "token_endpoint_auth_method",
        ),
        (
            sys,
            "PATCH",
            c("/clients/tax"),
            Some(json!({"access_token_lifetime": 5})),
            400,
            "access_token_lifetime",
        ),
        (
            sys,
            "PATCH",
            c("/clients/bad%20id"),
            Some(json!({})),
            400,
            "client_id",
        ),
        (
            sys,
            "POST",
            c("/clients/tax/secret"),
            Some(json!({"previous_valid_secs": 99999999})),
            400,
            "previous_valid_secs",
        ),
        (
            sys,
            "POST",
            c("/clients/app/secret"),
            Some(json!({})),
            409,
            "none",
        ),
        (sys, "DELETE", c("/clients/nosuch"), None, 404, "nosuch"),
        (sec, "GET", c("/accounts?q="), None, 400, "q"),
        (sec, "GET", c("/accounts"), None, 400, "q"),
        (sec, "GET", c("/accounts?q=1&x=2"), None, 400, "x"),
        (sec, "GET", c("/accounts/not-an-id"), None, 404, "not-an-id"),
        (
            sec,
            "GET",
            c("/accounts/00000000-0000-4000-8000-000000000000"),
            None,
            404,
            "account",
        ),
        (
            sec,
            "POST",
            c(&format!("/accounts/{citizen}/reveal")),
            Some(json!({"reason": "看"})),
            400,
            "reason",
        ),
        (
            sec,
            "POST",
            c(&format!("/accounts/{citizen}/reveal")),
            Some(json!({})),
            400,
            "reason",
        ),
        (
            sec,
            "POST",
            c(&format!("/accounts/{citizen}/status")),
            Some(json!({"status": "closed"})),
            400,
            "status",
        ),
        (
            sec,
            "POST",
            c(&format!("/accounts/{citizen}/status")),
            Some(json!({"status": "frozen"})),
            400,
            "status",
        ),
        (
            sec,
            "POST",
            c(&format!("/accounts/{citizen}/level")),
            Some(json!({"level": 9, "proof_method": "counter", "proof_source": "w"})),
            400,
            "level",
        ),
        (
            sec,
            "POST",
            c(&format!("/accounts/{citizen}/level")),
            Some(json!({"level": 3, "proof_method": "guess", "proof_source": "w"})),
            400,
            "proof_method",
        ),
        (
            sec,
            "GET",
            c(&format!("/accounts/{citizen}/sessions?include_ended=maybe")),
            None,
            400,
            "query",
        ),
        (
            sec,
            "PUT",
            c(&format!("/roles/{citizen}")),
            Some(json!({"role": "root"})),
            400,
            "role",
        ),
        (
            sec,
            "PUT",
            c(&format!("/roles/{citizen}")),
            Some(json!({"role": "system", "department": DEPARTMENT})),
            400,
            "department",
        ),
        (
            sec,
            "PUT",
            c(&format!("/roles/{citizen}")),
            Some(json!({"role": "department"})),
            400,
            "department",
        ),
        (
            sec,
            "PUT",
            c(&format!("/roles/{}", w.audit.account)),
            Some(json!({"role": "system"})),
            409,
            "one role per account",
        ),
        (
            sec,
            "PUT",
            c(&format!("/roles/{}", w.security.account)),
            Some(json!({"role": "audit"})),
            403,
            "own",
        ),
        (
            sec,
            "DELETE",
            c(&format!("/roles/{citizen}")),
            None,
            404,
            "role",
        ),
        (
            sec,
            "DELETE",
            c(&format!("/roles/{}", w.security.account)),
            None,
            403,
            "own",
        ),
        (
            sys,
            "POST",
            c("/keys"),
            Some(json!({"alg": "HS256"})),
            400,
            "alg",
        ),
        (sys, "POST", c("/keys"), Some(json!({})), 400, "body"),
        (
            aud,
            "GET",
            c("/audit?since=100&until=50"),
            None,
            400,
            "until",
        ),
        (aud, "GET", c("/audit?before=0"), None, 400, "before"),
        (aud, "GET", c("/audit?limit=lots"), None, 400, "query"),
        (aud, "GET", c("/audit/export"), None, 400, "since"),
        (
            aud,
            "POST",
            c("/audit/verify"),
            Some(json!({"from": "start"})),
            400,
            "body",
        ),
    ];
    for (token, method, path, body, status, word) in cases {
        let (got, answer) = call(s, Some(token), method, &path, body.clone()).await;
        assert_eq!(got, status, "{method} {path} {body:?}: {answer}");
        let description = answer["error_description"].as_str().unwrap_or_default();
        assert!(
            answer["error"].is_string() && description.contains(word),
            "{method} {path}: {answer} should name {word}"
        );
    }
    // A body that is not JSON is refused before any handler.
    let response = reqwest::Client::new()
        .post(format!("{}/admin/api/v1/keys", s.base))
        .bearer_auth(sys)
        .header("content-type", "text/plain")
        .body("alg=ES256")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    // The only key of its algorithm cannot be retired.
    let (_, keys) = call(s, Some(sys), "GET", "/admin/api/v1/keys", None).await;
    let only = keys["items"][0]["kid"].as_str().unwrap();
    let (status, answer) = call(
        s,
        Some(sys),
        "POST",
        &format!("/admin/api/v1/keys/{only}/retire"),
        None,
    )
    .await;
    assert_eq!(status, 409, "{answer}");

    // Clients through which other roles act are the operator's: the admin tool (every admin
    // scope) and yihao's own console.
    for (method, path, body) in [
        (
            "PATCH",
            "/admin/api/v1/clients/admin-tool",
            Some(json!({"redirect_uris": ["https://evil.example/cb"]})),
        ),
        (
            "POST",
            "/admin/api/v1/clients/admin-tool/secret",
            Some(json!({})),
        ),
        ("DELETE", "/admin/api/v1/clients/admin-tool", None),
        (
            "PATCH",
            "/admin/api/v1/clients/yihao-console",
            Some(json!({"location": "x"})),
        ),
    ] {
        let (status, answer) = call(s, Some(sys), method, path, body).await;
        assert_eq!(status, 403, "{method} {path}: {answer}");
        assert!(
            answer["error_description"]
                .as_str()
                .unwrap()
                .contains("operator")
        );
    }
    // A department administrator cannot skip consent or release full phone numbers.
    let (status, answer) = call(
        s,
        Some(&w.department.token),
        "POST",
        "/admin/api/v1/clients",
        Some(json!({"client_name": "x", "redirect_uris": ["https://a.example/cb"], "first_party": true})),
    )
    .await;
    assert_eq!(status, 403, "{answer}");

    // Nothing changed: the same clients, the citizen still active at level 2, no new role.
    let after = app.store.clients().await.unwrap();
    assert_eq!(before, after);
    let account = app
        .identities
        .find(ID_NUMBER, now(&w.clock))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.status.as_str(), "active");
    assert_eq!(account.evidence.level().get(), 2);
    assert_eq!(app.store.admin_roles().await.unwrap().len(), 4);
}

#[tokio::test]
async fn the_openapi_document_is_valid_openapi_3_1() {
    let (s, _) = setup_admin().await;
    let response = reqwest::get(format!("{}/admin/api/openapi.json", s.base))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    // Checked by an independent implementation: openapi-spec-validator (PyPI), which .ci/run
    // installs and names with YIHAO_TEST_OPENAPI_VALIDATOR.
    const VAR: &str = "YIHAO_TEST_OPENAPI_VALIDATOR";
    let Some(validator) = std::env::var(VAR).ok().filter(|v| !v.is_empty()) else {
        crate::common::not_configured(VAR);
        return;
    };
    let file = std::env::temp_dir().join(format!("yihao-openapi-{}.json", std::process::id()));
    std::fs::write(&file, &text).unwrap();
    let out = std::process::Command::new(validator)
        .arg(&file)
        .output()
        .expect("the validator runs");
    let _ = std::fs::remove_file(&file);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // And it refuses a broken document (the check can fail).
    let broken =
        std::env::temp_dir().join(format!("yihao-openapi-bad-{}.json", std::process::id()));
    std::fs::write(
        &broken,
        text.replacen("\"openapi\":\"3.1.0\"", "\"openapi\":3", 1),
    )
    .unwrap();
    let bad = std::process::Command::new(std::env::var(VAR).unwrap())
        .arg(&broken)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&broken);
    assert!(!bad.status.success());
}

#[tokio::test]
async fn the_security_administrator_locks_an_account_and_the_audit_administrator_sees_and_verifies_it()
 {
    let w = world().await;
    let s = &w.s;
    let app = &s._server.test_app.app;

    // The citizen is signed in at "tax".
    let browser = Browser::new();
    browser
        .authorize(
            &s.base,
            &authorize_url(&s.base, "tax", "http://127.0.0.1:9/tax", &[]),
        )
        .await;
    let (_, found) = call(
        s,
        Some(&w.security.token),
        "GET",
        &format!("/admin/api/v1/accounts?q={ID_NUMBER}"),
        None,
    )
    .await;
    let shown = &found["items"][0];
    assert_eq!(shown["account_id"], w.citizen.as_str());
    let masked = shown["documents"][0]["number"].as_str().unwrap();
    assert!(
        masked.contains('*') && masked.ends_with("002X"),
        "masked: {shown}"
    );
    let (_, open) = call(
        s,
        Some(&w.security.token),
        "GET",
        &format!("/admin/api/v1/accounts/{}/sessions", w.citizen),
        None,
    )
    .await;
    assert_eq!(open["items"].as_array().unwrap().len(), 1, "{open}");

    let (status, locked) = call(
        s,
        Some(&w.security.token),
        "POST",
        &format!("/admin/api/v1/accounts/{}/status", w.citizen),
        Some(json!({"status": "locked"})),
    )
    .await;
    assert_eq!((status, locked["status"].as_str()), (200, Some("locked")));
    let (_, open) = call(
        s,
        Some(&w.security.token),
        "GET",
        &format!("/admin/api/v1/accounts/{}/sessions", w.citizen),
        None,
    )
    .await;
    assert!(
        open["items"].as_array().unwrap().is_empty(),
        "the session ended: {open}"
    );
    // The browser's session is gone: the next request asks for a login, which a locked account fails.
    let page = browser
        .page(&authorize_url(
            &s.base,
            "tax",
            "http://127.0.0.1:9/tax",
            &[],
        ))
        .await;
    assert!(page.contains("action=\"/login\""));

    // The system administrator registers a client.
    let (status, made) = call(
        s,
        Some(&w.system.token),
        "POST",
        "/admin/api/v1/clients",
        Some(json!({"client_name": "不动产登记", "redirect_uris": ["https://bdc.example.gov.cn/cb"]})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    assert!(
        made["client_secret"].is_string(),
        "the secret is shown once"
    );
    let (_, again) = call(
        s,
        Some(&w.system.token),
        "GET",
        &format!(
            "/admin/api/v1/clients/{}",
            made["client_id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert!(again.get("client_secret").is_none());
    // ... and may not search accounts.
    let (status, _) = call(
        s,
        Some(&w.system.token),
        "GET",
        &format!("/admin/api/v1/accounts?q={ID_NUMBER}"),
        None,
    )
    .await;
    assert_eq!(status, 403);

    // The reports count what happened, without anyone's data: the sign-ins of today on the web
    // channel (the four administrators and the citizen), and the tokens the admin tool was issued.
    let (status, report) = call(
        s,
        Some(&w.system.token),
        "GET",
        "/admin/api/v1/reports?days=1",
        None,
    )
    .await;
    assert_eq!(status, 200, "{report}");
    let web = report["sign_ins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["channel"] == "web")
        .unwrap();
    assert_eq!(web["count"], 5, "{report}");
    let tool = report["tokens_issued"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == TOOL)
        .unwrap();
    assert_eq!(tool["count"], 4, "{report}");
    let (_, stats) = call(
        s,
        Some(&w.system.token),
        "GET",
        &format!("/admin/api/v1/clients/{TOOL}/stats"),
        None,
    )
    .await;
    assert_eq!(
        (stats["tokens_issued"].as_i64(), stats["sign_ins"].as_i64()),
        (Some(4), Some(4)),
        "{stats}"
    );

    // The audit administrator sees both, with their actors, and verifies the chain.
    let aud = Some(w.audit.token.as_str());
    let (_, lock) = call(
        s,
        aud,
        "GET",
        &format!(
            "/admin/api/v1/audit?event=admin_account&target={}",
            w.citizen
        ),
        None,
    )
    .await;
    let record = &lock["items"][0];
    assert_eq!(record["actor"], w.security.account.as_str());
    assert_eq!(record["details"]["change"], "status:locked");
    assert_eq!(record["details"]["role"], "security");
    assert_eq!(record["details"]["sessions_ended"], 1);
    let (_, created) = call(
        s,
        aud,
        "GET",
        "/admin/api/v1/audit?event=admin_client",
        None,
    )
    .await;
    assert!(
        created["items"].as_array().unwrap().iter().any(|r| {
            r["actor"] == w.system.account.as_str() && r["target"] == made["client_id"]
        }),
        "{created}"
    );
    let (status, verified) = call(
        s,
        aud,
        "POST",
        "/admin/api/v1/audit/verify",
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (status, verified["intact"].as_bool()),
        (200, Some(true)),
        "{verified}"
    );
    // Pages: two at a time, newest first, each page's `next` the cursor of the one after.
    let (_, first) = call(s, aud, "GET", "/admin/api/v1/audit?limit=2", None).await;
    let next = first["next"].as_str().unwrap();
    let (_, second) = call(
        s,
        aud,
        "GET",
        &format!("/admin/api/v1/audit?limit=2&before={next}"),
        None,
    )
    .await;
    assert!(
        second["items"][0]["seq"].as_i64().unwrap()
            < first["items"][1]["seq"].as_i64().unwrap() + 1
    );
    // A locked administrator's token, still valid, opens nothing any more.
    let (status, _) = call(
        s,
        Some(&w.security.token),
        "POST",
        &format!("/admin/api/v1/accounts/{}/status", w.department.account),
        Some(json!({"status": "locked"})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = call(
        s,
        Some(&w.department.token),
        "GET",
        "/admin/api/v1/clients",
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("access_denied"))
    );
    // The audit administrator changes nothing.
    let (status, _) = call(
        s,
        aud,
        "POST",
        &format!("/admin/api/v1/accounts/{}/status", w.citizen),
        Some(json!({"status": "active"})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call(
        s,
        aud,
        "POST",
        "/admin/api/v1/clients",
        Some(json!({"client_name": "x"})),
    )
    .await;
    assert_eq!(status, 403);
    // Its own reads are audited too.
    let (_, reads) = call(
        s,
        Some(&w.audit.token),
        "GET",
        &format!(
            "/admin/api/v1/audit?actor={}&event=admin_read",
            w.audit.account
        ),
        None,
    )
    .await;
    assert!(reads["items"].as_array().unwrap().len() >= 3, "{reads}");
    assert!(crate::common::verify_audit(app).await.is_ok());
}

#[tokio::test]
async fn a_revealed_number_needs_a_reason_and_reaches_the_persons_ledger() {
    let w = world().await;
    let s = &w.s;
    let app = &s._server.test_app.app;
    let (status, shown) = call(
        s,
        Some(&w.security.token),
        "POST",
        &format!("/admin/api/v1/accounts/{}/reveal", w.citizen),
        Some(json!({"reason": "核对不动产登记材料"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(shown["documents"][0]["number"], ID_NUMBER);
    assert_eq!(shown["phone"], crate::PHONE);
    let context = RequestContext::default();
    let ledger = app
        .my_account(&context)
        .ledger(
            &yihao::domain::account::AccountId::parse(&w.citizen).unwrap(),
            50,
        )
        .await
        .unwrap();
    assert!(
        ledger
            .iter()
            .any(|r| r.via == "administrator" && r.claims.contains(&"id_number".to_owned())),
        "{ledger:?}"
    );
    // The administrator's own ledger does not list what they looked at about someone else.
    let own = app
        .my_account(&context)
        .ledger(
            &yihao::domain::account::AccountId::parse(&w.security.account).unwrap(),
            50,
        )
        .await
        .unwrap();
    assert!(own.is_empty(), "{own:?}");
}

#[tokio::test]
async fn a_client_acts_in_the_one_administrator_role_of_its_scope() {
    let (s, _) = setup_admin().await;
    let app = &s._server.test_app.app;
    register(
        app,
        machine("audit-bot", AuthMethod::ClientSecretBasic, &["admin:audit"]),
        SECRET,
    )
    .await;
    // Two administrator scopes on a client that gets tokens for itself are refused.
    let mut greedy = machine("greedy", AuthMethod::ClientSecretBasic, &["admin:audit"]);
    greedy
        .scopes
        .push(yihao::domain::client::Scope::parse("admin:system").unwrap());
    assert!(yihao::domain::client::Client::register(greedy, None, 0).is_err());
    app.clients.reload().await.unwrap();
    let (status, body) = post_form(
        &s.base,
        "/token",
        ("audit-bot", SECRET),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap();
    let (status, me) = call(&s, Some(token), "GET", "/admin/api/v1/me", None).await;
    assert_eq!(status, 200);
    assert_eq!(me["actor"], "client:audit-bot");
    assert_eq!(me["role"], "audit");
    let (status, _) = call(&s, Some(token), "GET", "/admin/api/v1/audit", None).await;
    assert_eq!(status, 200);
    let (status, _) = call(&s, Some(token), "GET", "/admin/api/v1/clients", None).await;
    assert_eq!(status, 403);
    let _ = GrantType::ClientCredentials;
}

/// Opens the console in `browser` (speaking `language`) as `number`, who enrolled an authenticator
/// app already: the password, then a code; the console's home page.
async fn console_sign_in(
    s: &Setup,
    clock: &ManualClock,
    browser: &Browser,
    number: &str,
) -> reqwest::Response {
    let start = browser.get(&format!("{}/admin", s.base)).await;
    assert_eq!(start.status(), 303, "no console session: to the sign-in");
    let location = start.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.contains("client_id=yihao-console") && location.contains("prompt=login"),
        "{location}"
    );
    let login = browser.page(&location).await;
    let page = browser.login(&s.base, &login, number, PASSWORD).await;
    let page = page.text().await.unwrap();
    clock.advance(30);
    let secret = SECRETS.with(|m| m.borrow().get(number).cloned()).unwrap();
    let done = submit_factor(s, browser, &page, "totp", &code_at(&secret, now(clock))).await;
    let back = done.headers()["location"].to_str().unwrap().to_owned();
    assert!(back.contains("/admin/callback?"), "{back}");
    browser.get(&back).await
}

#[tokio::test]
async fn the_console_signs_administrators_in_afresh_and_out_after_the_idle_limit() {
    let w = world().await;
    let s = &w.s;
    let app = &s._server.test_app.app;
    let number = crate::common::resident_id(2);

    let browser = Browser::new();
    let opened = console_sign_in(s, &w.clock, &browser, &number).await;
    assert_eq!(opened.headers()["location"], "/admin");
    let home = browser.page(&format!("{}/admin", s.base)).await;
    assert!(home.contains("安全管理员"), "{home}");
    // Within the idle limit every request renews it...
    let idle = app.config.admin.console_idle_secs as i64;
    w.clock.advance(idle - 5);
    let page = browser.get(&format!("{}/admin/accounts", s.base)).await;
    assert_eq!(page.status(), 200);
    w.clock.advance(idle - 5);
    assert_eq!(
        browser.get(&format!("{}/admin", s.base)).await.status(),
        200
    );
    // ...and past it the administrator signs in again, password and second factor.
    w.clock.advance(idle + 1);
    let lapsed = browser.get(&format!("{}/admin", s.base)).await;
    assert_eq!(lapsed.status(), 303);
    let location = lapsed.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.contains("prompt=login"));
    // Leaving prompt=login out reuses the browser's SSO session (still alive): a code, but not a
    // fresh sign-in, so the console stays shut.
    let reused = browser.get(&location.replace("&prompt=login", "")).await;
    let back = reused.headers()["location"].to_str().unwrap().to_owned();
    assert!(back.contains("/admin/callback?code="), "{back}");
    let shut = browser.get(&back).await;
    assert_eq!(shut.status(), 400, "not a fresh sign-in");
    assert_eq!(
        browser.get(&format!("{}/admin", s.base)).await.status(),
        303
    );

    // A callback's code opens nothing in another browser, nor twice, nor with a made-up state.
    let again = Browser::new();
    let start = again.get(&format!("{}/admin", s.base)).await;
    let location = start.headers()["location"].to_str().unwrap().to_owned();
    let login = again.page(&location).await;
    let page = again.login(&s.base, &login, &number, PASSWORD).await;
    let page = page.text().await.unwrap();
    w.clock.advance(30);
    let secret = SECRETS.with(|m| m.borrow().get(&number).cloned()).unwrap();
    let done = submit_factor(s, &again, &page, "totp", &code_at(&secret, now(&w.clock))).await;
    let back = done.headers()["location"].to_str().unwrap().to_owned();
    let thief = Browser::new();
    let stolen = thief.get(&back).await;
    assert_eq!(stolen.status(), 400, "another browser");
    let used = again.get(&back).await;
    assert_eq!(used.status(), 400, "the state is spent");
    let made_up = again
        .get(&format!("{}/admin/callback?code=x&state=y", s.base))
        .await;
    assert_eq!(made_up.status(), 400);

    // A citizen who signs in at the console is told it is not for them.
    let citizen = Browser::new();
    let start = citizen.get(&format!("{}/admin", s.base)).await;
    let location = start.headers()["location"].to_str().unwrap().to_owned();
    let login = citizen.page(&location).await;
    let page = citizen.login(&s.base, &login, ID_NUMBER, PASSWORD).await;
    // Level 2 cannot reach the console's level 3 (no second factor, no face check here): the
    // request ends unmet, and the console says why.
    let back = page.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        back.contains("/admin/callback?error=unmet_authentication_requirements"),
        "{back}"
    );
    let told = citizen.get(&back).await;
    assert_eq!(told.status(), 403);
    assert!(told.text().await.unwrap().contains("两重身份验证"));
}

/// A page's path and its `<h1>` in Chinese and in English.
type Titles<'a> = (&'a str, &'a str, &'a str);

#[tokio::test]
async fn every_console_page_speaks_chinese_and_english() {
    let w = world().await;
    let s = &w.s;
    // The system administrator's pages, then the security and audit administrators'.
    let search = format!("/admin/accounts?q={ID_NUMBER}");
    // (the administrator's resident id, [(path, Chinese title, English title)])
    let by_role: [(u32, Vec<Titles>); 3] = [
        (
            1,
            vec![
                ("/admin", "管理控制台", "Administration console"),
                ("/admin/clients", "接入系统", "Connected systems"),
                ("/admin/keys", "签名密钥", "Signing keys"),
                ("/admin/reports", "统计报表", "Reports"),
                ("/admin/settings", "运行配置", "Settings"),
                ("/admin/clients/tax", "服务 tax", "服务 tax"),
                ("/admin/clients/tax?check=1", "服务 tax", "服务 tax"),
                ("/admin/audit", "无权操作", "Not allowed"),
            ],
        ),
        (
            2,
            vec![
                (search.as_str(), "用户账号", "Accounts"),
                ("/admin/roles", "管理员", "Administrators"),
                ("/admin/orgs", "单位", "Organisations"),
            ],
        ),
        (3, vec![("/admin/audit", "审计日志", "Audit log")]),
    ];
    for (i, pages) in by_role {
        let number = crate::common::resident_id(i);
        let browser = Browser::new();
        console_sign_in(s, &w.clock, &browser, &number).await;
        for (path, chinese, english) in pages {
            let url = format!("{}{path}", s.base);
            let zh = browser.page(&url).await;
            assert!(
                zh.contains("lang=\"zh-CN\"") && zh.contains(&format!("<h1>{chinese}</h1>")),
                "{path}: {zh}"
            );
            let en = browser
                .http
                .get(&url)
                .header("accept-language", "en")
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert!(
                en.contains("lang=\"en\"") && en.contains(&format!("<h1>{english}</h1>")),
                "{path}: {en}"
            );
            assert!(!zh.contains("<script"), "no script on console pages");
            if path == "/admin/clients/tax?check=1" {
                // The client's self-check: its loopback redirect URI is reported as plain http.
                assert!(
                    zh.contains("<h2 id=\"check\">自检</h2>") && zh.contains("有问题"),
                    "{zh}"
                );
                assert!(
                    en.contains("<h2 id=\"check\">Self-check</h2>") && en.contains("plain http"),
                    "{en}"
                );
            }
        }
    }
}

#[tokio::test]
async fn accounts_are_found_by_the_beginning_of_a_name_page_by_page() {
    let w = world().await;
    let s = &w.s;
    let app = &s._server.test_app.app;
    for i in 0..5 {
        Person::new(
            &crate::common::resident_id(100 + i),
            &format!("欧阳测试{i}"),
        )
        .create(app, None)
        .await;
    }
    Person::new(&crate::common::resident_id(200), "欧阳")
        .create(app, None)
        .await;
    let sec = Some(w.security.token.as_str());
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let path = format!("/admin/api/v1/accounts?name=欧阳测&limit=2{after}");
        let (status, page) = call(s, sec, "GET", &path, None).await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        for a in items {
            let name = a["name"].as_str().unwrap();
            assert!(name.contains('*'), "masked: {name}");
            seen.push(a["account_id"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "each once, and not 欧阳 alone");
    let unique: BTreeSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), 5);
    // One of q and name; a name's beginning is short and printable.
    for bad in [
        "?q=1&name=x",
        "?name=",
        "?name=%01",
        "?name=一二三四五六七八九十一二三四五六七八九十一",
    ] {
        let (status, answer) =
            call(s, sec, "GET", &format!("/admin/api/v1/accounts{bad}"), None).await;
        assert_eq!(status, 400, "{bad}: {answer}");
    }
    // The search is audited with its prefix (who looked for whom), like a look-up by number.
    let records = app.store.audit_records(1, 100_000).await.unwrap();
    let searches: Vec<_> = records
        .iter()
        .filter(|r| {
            r.details
                .as_deref()
                .is_some_and(|d| d.contains("\"by\":\"name\""))
        })
        .collect();
    assert_eq!(searches.len(), 3);
    assert!(searches.iter().all(|r| {
        r.details
            .as_deref()
            .unwrap()
            .contains("\"prefix\":\"欧阳测\"")
    }));
}

#[tokio::test]
async fn the_service_desk_sends_a_recovery_code_the_person_uses_at_recover() {
    let w = world().await;
    let s = &w.s;
    let app = &s._server.test_app.app;
    let sec = Some(w.security.token.as_str());
    let path = format!("/admin/api/v1/accounts/{}/recovery-code", w.citizen);
    let (status, sent) = call(s, sec, "POST", &path, None).await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["phone"], "138****1234");
    let code = crate::common::people::last_sms_code(app, crate::PHONE);
    // Not twice within the resend gate; not for an account without a phone.
    let (status, again) = call(s, sec, "POST", &path, None).await;
    assert_eq!(status, 409, "{again}");
    let (status, _) = call(
        s,
        sec,
        "POST",
        &format!("/admin/api/v1/accounts/{}/recovery-code", w.system.account),
        None,
    )
    .await;
    assert_eq!(status, 409, "no phone on file");
    // The person recovers with it at /recover: their document and name, the desk's code.
    let browser = Browser::new();
    let form = crate::recovery::recover_form(s, &browser).await;
    let page = crate::recovery::ask(s, &browser, &form, ID_NUMBER, crate::NAME).await;
    let page = page.text().await.unwrap();
    let done = crate::recovery::reset(s, &browser, &page, &code, "Moonrise-2027?").await;
    assert_eq!(done.status(), 200);
    assert!(done.text().await.unwrap().contains("密码已重设"));
    // Audited with the administrator as actor.
    let records = app.store.audit_records(1, 100_000).await.unwrap();
    assert!(records.iter().any(|r| r.event == "sms_code_sent"
        && r.actor.as_deref() == Some(w.security.account.as_str())
        && r.target.as_deref() == Some(w.citizen.as_str())));
}

#[tokio::test]
async fn the_console_grants_and_revokes_roles_and_rotates_keys() {
    let w = world().await;
    let s = &w.s;
    let app = &s._server.test_app.app;
    let newcomer = person(s, &crate::common::resident_id(9), "新任审计员").await;

    let security = Browser::new();
    console_sign_in(s, &w.clock, &security, &crate::common::resident_id(2)).await;
    let page = security.page(&format!("{}/admin/roles", s.base)).await;
    let csrf = crate::hidden(&page, "csrf");
    let granted = security
        .post(
            &format!("{}/admin/roles", s.base),
            &[
                ("csrf", &csrf),
                ("account", &newcomer),
                ("role", "audit"),
                ("department", ""),
            ],
        )
        .await;
    assert_eq!(granted.status(), 200);
    assert!(granted.text().await.unwrap().contains(&newcomer));
    assert_eq!(
        app.store.role_of(&newcomer).await.unwrap().unwrap().role,
        "audit"
    );
    // Without the form's token nothing happens.
    let forged = security
        .post(
            &format!("{}/admin/roles/revoke", s.base),
            &[("csrf", "forged"), ("account", &newcomer)],
        )
        .await;
    assert_eq!(forged.status(), 400);
    assert!(app.store.role_of(&newcomer).await.unwrap().is_some());
    let revoked = security
        .post(
            &format!("{}/admin/roles/revoke", s.base),
            &[("csrf", &csrf), ("account", &newcomer)],
        )
        .await;
    assert_eq!(revoked.status(), 200);
    assert!(app.store.role_of(&newcomer).await.unwrap().is_none());
    // The security administrator's console has no keys.
    let refused = security.get(&format!("{}/admin/keys", s.base)).await;
    assert_eq!(refused.status(), 403);

    let system = Browser::new();
    console_sign_in(s, &w.clock, &system, &crate::common::resident_id(1)).await;
    let page = system.page(&format!("{}/admin/keys", s.base)).await;
    let before = page.matches("<tr>").count();
    let rotated = system
        .post(
            &format!("{}/admin/keys", s.base),
            &[("csrf", &crate::hidden(&page, "csrf")), ("alg", "ES256")],
        )
        .await;
    assert_eq!(rotated.status(), 200);
    let after = rotated.text().await.unwrap();
    assert_eq!(after.matches("<tr>").count(), before + 1, "{after}");
}

#[tokio::test]
async fn the_console_registers_an_organisation_appoints_revokes_and_suspends() {
    let w = world().await;
    let s = &w.s;
    let app = &s._server.test_app.app;
    let security = Browser::new();
    console_sign_in(s, &w.clock, &security, &crate::common::resident_id(2)).await;
    let page = security.page(&format!("{}/admin/orgs", s.base)).await;
    let csrf = crate::hidden(&page, "csrf");
    let post = |path: &str, form: Vec<(&'static str, String)>| {
        let url = format!("{}{path}", s.base);
        let security = &security;
        async move {
            let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let r = security.post(&url, &pairs).await;
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    const CODE: &str = "9144030071526726XG";
    let (status, page) = post(
        "/admin/orgs",
        vec![
            ("csrf", csrf.clone()),
            ("credit_code", CODE.into()),
            ("name", "深圳某公司".into()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<h1>深圳某公司</h1>"));
    // A mandate without its last day is refused, with the reason.
    let base = format!("/admin/orgs/{CODE}/members");
    let (status, _) = post(
        &base,
        vec![
            ("csrf", csrf.clone()),
            ("account", w.citizen.clone()),
            ("role", "agent".into()),
            ("scope", "tax.filing".into()),
            ("expires_on", "".into()),
        ],
    )
    .await;
    assert_eq!(status, 400);
    let (status, page) = post(
        &base,
        vec![
            ("csrf", csrf.clone()),
            ("account", w.citizen.clone()),
            ("role", "agent".into()),
            ("scope", "tax.filing".into()),
            ("expires_on", "2099-12-31".into()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(&w.citizen) && page.contains("tax.filing"),
        "{page}"
    );
    let org = app
        .store
        .org_by_code(&yihao::domain::identifiers::CreditCode::parse(CODE).unwrap())
        .await
        .unwrap()
        .unwrap();
    let members = app.store.members(&org.id).await.unwrap();
    assert_eq!(members.len(), 1);
    let last_day = yihao::domain::date::Date::parse_iso("2099-12-31")
        .unwrap()
        .cst_midnight_epoch()
        + 86_400;
    assert_eq!(members[0].expires_at, Some(last_day));
    let (status, _) = post(
        &format!("/admin/orgs/{CODE}/revoke"),
        vec![
            ("csrf", csrf.clone()),
            ("account", w.citizen.clone()),
            ("role", "agent".into()),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert!(app.store.members(&org.id).await.unwrap().is_empty());
    let (status, page) = post(
        &format!("/admin/orgs/{CODE}/suspend"),
        vec![("csrf", csrf.clone())],
    )
    .await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"org-status\">suspended"), "{page}");
    // The service desk's recovery code from the accounts page.
    let (status, page) = post(
        "/admin/accounts/recovery-code",
        vec![
            ("csrf", csrf.clone()),
            ("account", w.citizen.clone()),
            ("q", "".into()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("验证码已发送"));
    crate::common::people::last_sms_code(app, crate::PHONE);
}

#[tokio::test]
async fn an_administrators_token_from_a_client_that_is_not_first_party_opens_nothing() {
    let w = world().await;
    let s = &w.s;
    let app = &s._server.test_app.app;
    // A client people sign in at with the security scope, not first party (a department's could be
    // like this): whoever holds its secret would collect administrators' tokens.
    let mut other = client_spec(
        "dept-tool",
        "http://127.0.0.1:9/dept-tool",
        AuthMethod::ClientSecretBasic,
        false,
    );
    other
        .scopes
        .push(yihao::domain::client::Scope::parse("admin:security").unwrap());
    register(app, other, SECRET).await;
    app.clients.reload().await.unwrap();
    w.clock.advance(30);
    let number = crate::common::resident_id(2);
    let secret = SECRETS.with(|m| m.borrow().get(&number).cloned()).unwrap();
    let browser = Browser::new();
    let url = authorize_url(
        &s.base,
        "dept-tool",
        "http://127.0.0.1:9/dept-tool",
        &[
            ("scope", "openid admin:security"),
            ("acr_values", "urn:yihao:loa:3"),
        ],
    );
    let login = browser.page(&url).await;
    let page = browser
        .login(&s.base, &login, &number, PASSWORD)
        .await
        .text()
        .await
        .unwrap();
    let consent = submit_factor(s, &browser, &page, "totp", &code_at(&secret, now(&w.clock))).await;
    let consent = consent.text().await.unwrap();
    let done = browser.consent(&s.base, &consent, "allow").await;
    let code = redirect_params(&done)["code"].clone();
    let (status, body) = code_exchange(s, "dept-tool", "http://127.0.0.1:9/dept-tool", &code).await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(crate::jwt_part(token, 1)["acr"], "urn:yihao:loa:3");
    let (status, answer) = call(s, Some(token), "GET", "/admin/api/v1/roles", None).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (403, Some("access_denied")),
        "{answer}"
    );
}
