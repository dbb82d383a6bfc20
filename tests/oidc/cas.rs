//! CAS 3.0 (docs/integration/cas.md): a CAS login shares the SSO session with OpenID Connect both
//! ways; tickets are single use, short-lived and bound to their service; attributes are released as
//! claims are; every validation error code of §2.5.3 has its cause; gateway, renew and method=POST;
//! logout and single logout through the outbox. python-cas (PyPI) validates tickets and reads the
//! single-logout message in `a_real_cas_client_validates_tickets_and_reads_single_logout`.

use std::collections::HashMap;
use std::sync::Arc;

use yihao::domain::client::{AuthMethod, CasService, ClientId, ClientSettings, ClientSpec, Scope};

use crate::common::people::{ID_NUMBER, NAME, PASSWORD};
use crate::{Browser, SECRET, Setup, authorize_url, code_for, register, setup, setup_on};

/// A legacy system known to CAS by `services` (no redirect URI, no OAuth grant), releasing the
/// person scopes `scopes`; not first party, so the person consents once.
fn cas_client(id: &str, services: &[&str], scopes: &[&str]) -> ClientSpec {
    ClientSpec {
        id: ClientId::parse(id).unwrap(),
        name: format!("旧系统 {id}"),
        auth_method: AuthMethod::None,
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        grant_types: vec![],
        scopes: scopes.iter().map(|s| Scope::parse(s).unwrap()).collect(),
        first_party: false,
        settings: ClientSettings {
            cas_services: services
                .iter()
                .map(|s| CasService::parse(s).unwrap())
                .collect(),
            ..ClientSettings::default()
        },
    }
}

/// Registers a CAS client and makes the running node hold it at once.
async fn register_cas(s: &Setup, spec: ClientSpec) {
    let app = &s._server.test_app.app;
    register(app, spec, SECRET).await;
    app.clients.reload().await.unwrap();
}

fn login_url(base: &str, params: &[(&str, &str)]) -> String {
    let mut u = url::Url::parse(&format!("{base}/cas/login")).unwrap();
    u.query_pairs_mut().extend_pairs(params);
    u.to_string()
}

/// Follows a CAS login through the login and consent pages to the redirect back to the service;
/// its location.
async fn cas_login(s: &Setup, browser: &Browser, params: &[(&str, &str)]) -> String {
    let mut response = browser.get(&login_url(&s.base, params)).await;
    loop {
        if response.status().is_redirection() {
            return response.headers()["location"].to_str().unwrap().to_owned();
        }
        let body = response.text().await.unwrap();
        response = if body.contains("action=\"/login\"") {
            browser.login(&s.base, &body, ID_NUMBER, PASSWORD).await
        } else if body.contains("action=\"/consent\"") {
            browser.consent(&s.base, &body, "allow").await
        } else {
            panic!("unexpected page: {body}");
        };
    }
}

/// A ticket for [`LEGACY`] through the browser's session.
async fn fresh_ticket(s: &Setup, browser: &Browser) -> String {
    ticket_of(&cas_login(s, browser, &[("service", LEGACY)]).await, LEGACY)
}

/// The ticket appended (last) to `service` in `location`.
fn ticket_of(location: &str, service: &str) -> String {
    let rest = location
        .strip_prefix(service)
        .unwrap_or_else(|| panic!("{location} does not go back to {service}"));
    let ticket = rest
        .strip_prefix(if service.contains('?') {
            "&ticket="
        } else {
            "?ticket="
        })
        .unwrap_or_else(|| panic!("no ticket last in {location}"));
    assert!(ticket.starts_with("ST-") && ticket.len() <= 32, "{ticket}");
    ticket.to_owned()
}

async fn validate(s: &Setup, path: &str, params: &[(&str, &str)]) -> (String, String) {
    let mut u = url::Url::parse(&format!("{}/cas/{path}", s.base)).unwrap();
    u.query_pairs_mut().extend_pairs(params);
    let response = reqwest::get(u.as_str()).await.unwrap();
    assert_eq!(response.status(), 200, "CAS answers 200, success or not");
    let kind = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    (kind, response.text().await.unwrap())
}

/// The code of an `authenticationFailure`, or "" for a success.
fn failure_code(xml: &str) -> &str {
    xml.split("code=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or("")
}

const LEGACY: &str = "http://127.0.0.1:9/legacy/";

#[tokio::test]
async fn a_person_signed_in_through_openid_connect_is_signed_in_for_cas_and_the_ticket_works_once()
{
    let s = setup(|_| {}).await;
    register_cas(
        &s,
        cas_client(
            "legacy",
            &["http://127.0.0.1:9/legacy/*"],
            &["profile", "phone"],
        ),
    )
    .await;
    let browser = Browser::new();
    // Signed in through OpenID Connect at "tax".
    code_for(&s, &browser, "tax", "http://127.0.0.1:9/tax", &[]).await;
    // The CAS login needs no password: only the consent of this new service.
    let service = format!("{LEGACY}page?x=1&y=a%20b");
    let mut response = browser
        .get(&login_url(&s.base, &[("service", &service)]))
        .await;
    let page = response.text().await.unwrap();
    assert!(page.contains("action=\"/consent\""), "{page}");
    assert!(!page.contains("action=\"/login\""));
    response = browser.consent(&s.base, &page, "allow").await;
    assert!(response.status().is_redirection());
    assert_eq!(response.headers()["cache-control"], "no-store");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let ticket = ticket_of(&location, &service);

    let (kind, xml) = validate(
        &s,
        "p3/serviceValidate",
        &[("service", &service), ("ticket", &ticket)],
    )
    .await;
    assert!(kind.starts_with("application/xml"), "{kind}");
    assert!(
        xml.starts_with("<cas:serviceResponse xmlns:cas=\"http://www.yale.edu/tp/cas\">"),
        "{xml}"
    );
    let user = xml
        .split("<cas:user>")
        .nth(1)
        .unwrap()
        .split("</cas:user>")
        .next()
        .unwrap();
    assert!(
        !user.is_empty() && !user.contains(ID_NUMBER),
        "a pairwise subject: {user}"
    );
    assert!(
        xml.contains(&format!("<cas:name>{NAME}</cas:name>")),
        "{xml}"
    );
    assert!(xml.contains("<cas:phone_number>138****"), "masked: {xml}");
    assert!(
        xml.contains("<cas:isFromNewLogin>false</cas:isFromNewLogin>"),
        "from the SSO session: {xml}"
    );
    assert!(xml.contains("<cas:acr>urn:yihao:loa:"), "{xml}");
    assert!(
        !xml.contains("id_number"),
        "the ID number goes only to a service granted idcard"
    );
    // Once only, whatever the outcome (§3.1.1).
    let (_, again) = validate(
        &s,
        "p3/serviceValidate",
        &[("service", &service), ("ticket", &ticket)],
    )
    .await;
    assert_eq!(failure_code(&again), "INVALID_TICKET", "{again}");

    // The SSO session gives the next ticket at once; /serviceValidate names the user only; the
    // JSON format.
    let location = cas_login(&s, &browser, &[("service", &service)]).await;
    let ticket = ticket_of(&location, &service);
    let (_, plain) = validate(
        &s,
        "serviceValidate",
        &[("service", &service), ("ticket", &ticket)],
    )
    .await;
    assert!(
        plain.contains(&format!("<cas:user>{user}</cas:user>")),
        "the same pairwise subject: {plain}"
    );
    assert!(
        !plain.contains(NAME),
        "attributes only at /p3/serviceValidate: {plain}"
    );
    let location = cas_login(&s, &browser, &[("service", &service)]).await;
    let ticket = ticket_of(&location, &service);
    let (kind, json) = validate(
        &s,
        "p3/serviceValidate",
        &[
            ("service", &service),
            ("ticket", &ticket),
            ("format", "JSON"),
        ],
    )
    .await;
    assert_eq!(kind, "application/json");
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        json["serviceResponse"]["authenticationSuccess"]["user"],
        user
    );
    assert_eq!(
        json["serviceResponse"]["authenticationSuccess"]["attributes"]["name"],
        NAME
    );
    // CAS 1.0.
    let location = cas_login(&s, &browser, &[("service", &service)]).await;
    let ticket = ticket_of(&location, &service);
    let (kind, v1) = validate(
        &s,
        "validate",
        &[("service", &service), ("ticket", &ticket)],
    )
    .await;
    assert!(kind.starts_with("text/plain"));
    assert_eq!(v1, format!("yes\n{user}\n"));
    // The release is in the person's ledger, as a userinfo release would be.
    let records = s
        ._server
        .test_app
        .app
        .store
        .audit_records(1, 10_000)
        .await
        .unwrap();
    assert!(records.iter().any(|r| {
        r.event == "attribute_release"
            && r.client_id.as_deref() == Some("legacy")
            && r.details
                .as_deref()
                .is_some_and(|d| d.contains("\"via\":\"cas\"") && d.contains("\"name\""))
    }));
}

#[tokio::test]
async fn a_cas_login_signs_the_person_in_for_openid_connect_clients_too() {
    let s = setup(|_| {}).await;
    register_cas(&s, cas_client("legacy", &[LEGACY], &["profile"])).await;
    let browser = Browser::new();
    let location = cas_login(&s, &browser, &[("service", LEGACY)]).await;
    let ticket = ticket_of(&location, LEGACY);
    let (_, xml) = validate(
        &s,
        "p3/serviceValidate",
        &[("service", LEGACY), ("ticket", &ticket)],
    )
    .await;
    assert!(
        xml.contains("<cas:isFromNewLogin>true</cas:isFromNewLogin>"),
        "{xml}"
    );
    // renew=true at validation accepts a ticket from a new login...
    let location = cas_login(&s, &browser, &[("service", LEGACY), ("renew", "true")]).await;
    let ticket = ticket_of(&location, LEGACY);
    let (_, xml) = validate(
        &s,
        "p3/serviceValidate",
        &[("service", LEGACY), ("ticket", &ticket), ("renew", "true")],
    )
    .await;
    assert_eq!(failure_code(&xml), "", "{xml}");
    // ...and refuses one from the SSO session.
    let location = cas_login(&s, &browser, &[("service", LEGACY)]).await;
    let ticket = ticket_of(&location, LEGACY);
    let (_, xml) = validate(
        &s,
        "serviceValidate",
        &[("service", LEGACY), ("ticket", &ticket), ("renew", "true")],
    )
    .await;
    assert_eq!(failure_code(&xml), "INVALID_TICKET", "{xml}");
    assert!(xml.contains("did not come from a new login"), "{xml}");
    // The OpenID Connect client gets its code without a login page.
    let first = browser
        .get(&authorize_url(
            &s.base,
            "tax",
            "http://127.0.0.1:9/tax",
            &[],
        ))
        .await;
    assert!(
        first.status().is_redirection(),
        "SSO from the CAS login: {}",
        first.status()
    );
    assert!(
        first.headers()["location"]
            .to_str()
            .unwrap()
            .contains("code=")
    );
}

#[tokio::test]
async fn gateway_renew_and_post_behave_as_the_specification_says() {
    let s = setup(|_| {}).await;
    register_cas(&s, cas_client("legacy", &[LEGACY], &["profile"])).await;
    let browser = Browser::new();
    // gateway without a session: back to the service with no ticket.
    let bare = browser
        .get(&login_url(
            &s.base,
            &[("service", LEGACY), ("gateway", "true")],
        ))
        .await;
    assert!(bare.status().is_redirection());
    assert_eq!(bare.headers()["location"], LEGACY);
    // Signed in (and consented), gateway gives a ticket without a page.
    cas_login(&s, &browser, &[("service", LEGACY)]).await;
    let gw = browser
        .get(&login_url(
            &s.base,
            &[("service", LEGACY), ("gateway", "true")],
        ))
        .await;
    ticket_of(gw.headers()["location"].to_str().unwrap(), LEGACY);
    // renew asks for the password again, even with gateway set (renew wins).
    let renew = browser
        .page(&login_url(
            &s.base,
            &[("service", LEGACY), ("renew", "true"), ("gateway", "true")],
        ))
        .await;
    assert!(renew.contains("action=\"/login\""), "{renew}");
    // method=POST: the ticket comes back in a form posted to the service.
    let posted = browser
        .get(&login_url(
            &s.base,
            &[("service", LEGACY), ("method", "POST")],
        ))
        .await;
    assert_eq!(posted.status(), 200);
    let csp = posted.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let form = posted.text().await.unwrap();
    assert!(form.contains(&format!("action=\"{LEGACY}\"")), "{form}");
    assert!(form.contains("name=\"ticket\" value=\"ST-"), "{form}");
    assert!(csp.contains("form-action http://127.0.0.1:9"), "{csp}");
    // Refused: a service nobody registered (also with gateway: no open redirect), a bad URL, an
    // unknown method, a repeated service.
    for params in [
        vec![("service", "http://127.0.0.1:9/elsewhere/")],
        vec![
            ("service", "http://127.0.0.1:9/elsewhere/"),
            ("gateway", "true"),
        ],
        vec![("service", "http://127.0.0.1:9/legacy")],
        vec![("service", "javascript:alert(1)")],
        vec![("service", LEGACY), ("method", "HEADER")],
        vec![("service", LEGACY), ("service", LEGACY)],
    ] {
        let r = browser.get(&login_url(&s.base, &params)).await;
        assert_eq!(r.status(), 400, "{params:?}");
        assert!(r.headers().get("location").is_none(), "{params:?}");
    }
    let unknown = browser
        .page(&login_url(&s.base, &[("service", "https://evil.example/")]))
        .await;
    assert!(unknown.contains("未在本平台登记"), "{unknown}");
    // No service: the personal page (which signs in, or says who is signed in).
    let none = browser.get(&format!("{}/cas/login", s.base)).await;
    assert_eq!(none.headers()["location"], "/account");
}

#[tokio::test]
async fn every_validation_error_code_is_answered_for_its_cause() {
    let clock = Arc::new(yihao::clock::ManualClock::starting_now());
    let s = setup_on(|_| {}, Some(clock.clone())).await;
    register_cas(
        &s,
        cas_client(
            "legacy",
            &[LEGACY, "http://127.0.0.1:9/other/"],
            &["profile"],
        ),
    )
    .await;
    let browser = Browser::new();
    let t = fresh_ticket(&s, &browser).await;
    // (endpoint, parameters, the code expected)
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "serviceValidate",
            vec![("ticket", t.clone())],
            "INVALID_REQUEST",
        ),
        (
            "serviceValidate",
            vec![("service", LEGACY.into())],
            "INVALID_REQUEST",
        ),
        (
            "serviceValidate",
            vec![
                ("service", LEGACY.into()),
                ("ticket", t.clone()),
                ("format", "YAML".into()),
            ],
            "INVALID_REQUEST",
        ),
        (
            "serviceValidate",
            vec![("service", LEGACY.into()), ("ticket", "PT-1-abc".into())],
            "INVALID_TICKET_SPEC",
        ),
        (
            "serviceValidate",
            vec![("service", LEGACY.into()), ("ticket", "ST-made-up".into())],
            "INVALID_TICKET",
        ),
        (
            "proxyValidate",
            vec![("service", LEGACY.into()), ("ticket", "PT-1-abc".into())],
            "INVALID_TICKET",
        ),
        (
            "serviceValidate",
            vec![
                ("service", LEGACY.into()),
                ("ticket", t.clone()),
                ("pgtUrl", "http://127.0.0.1:9/pgt".into()),
            ],
            "INVALID_PROXY_CALLBACK",
        ),
    ];
    for (path, params, code) in &cases {
        let params: Vec<(&str, &str)> = params.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let (_, xml) = validate(&s, path, &params).await;
        assert_eq!(failure_code(&xml), *code, "{path} {params:?}: {xml}");
    }
    // The parameters are checked after the ticket is taken.
    let (_, xml) = validate(
        &s,
        "serviceValidate",
        &[
            ("service", LEGACY),
            ("ticket", &t),
            ("pgtUrl", "https://127.0.0.1:9/pgt"),
        ],
    )
    .await;
    assert_eq!(failure_code(&xml), "UNAUTHORIZED_SERVICE_PROXY", "{xml}");
    // Refused for its parameters, the ticket was used up all the same (§3.1.1).
    let (_, xml) = validate(
        &s,
        "serviceValidate",
        &[("service", LEGACY), ("ticket", &t)],
    )
    .await;
    assert_eq!(failure_code(&xml), "INVALID_TICKET", "{xml}");
    // A wrong service: INVALID_SERVICE, and the ticket is gone (§2.5.3: "CAS MUST invalidate the
    // ticket").
    let t = fresh_ticket(&s, &browser).await;
    let (_, xml) = validate(
        &s,
        "serviceValidate",
        &[("service", "http://127.0.0.1:9/other/"), ("ticket", &t)],
    )
    .await;
    assert_eq!(failure_code(&xml), "INVALID_SERVICE", "{xml}");
    let (_, xml) = validate(
        &s,
        "serviceValidate",
        &[("service", LEGACY), ("ticket", &t)],
    )
    .await;
    assert_eq!(failure_code(&xml), "INVALID_TICKET", "{xml}");
    // Expired: the default life is 30 seconds.
    let t = fresh_ticket(&s, &browser).await;
    clock.advance(31);
    let (_, xml) = validate(
        &s,
        "serviceValidate",
        &[("service", LEGACY), ("ticket", &t)],
    )
    .await;
    assert_eq!(failure_code(&xml), "INVALID_TICKET", "{xml}");
    assert!(xml.contains("has expired"), "{xml}");
    // JSON failures have the specification's shape.
    let (_, json) = validate(
        &s,
        "serviceValidate",
        &[("service", LEGACY), ("ticket", "ST-x"), ("format", "JSON")],
    )
    .await;
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        json["serviceResponse"]["authenticationFailure"]["code"],
        "INVALID_TICKET"
    );
    // CAS 1.0 answers "no".
    let (_, v1) = validate(&s, "validate", &[("service", LEGACY), ("ticket", "ST-x")]).await;
    assert_eq!(v1, "no\n\n");
    // Refusals naming a registered service are audited with its client (the client self-check
    // shows them).
    let records = s
        ._server
        .test_app
        .app
        .store
        .audit_records(1, 10_000)
        .await
        .unwrap();
    assert!(records.iter().any(|r| r.event == "cas_ticket"
        && r.reason.as_deref() == Some("INVALID_SERVICE")
        && r.client_id.as_deref() == Some("legacy")));
}

/// A CAS service's single-logout endpoint on `listener`: each `logoutRequest` POSTed arrives on the
/// receiver (any path: mod_auth_cas takes it on every protected URL).
fn slo_receiver(
    listener: tokio::net::TcpListener,
) -> tokio::sync::mpsc::Receiver<(String, String)> {
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tokio::spawn(async move {
        let app = axum::Router::new().fallback(
            move |uri: axum::http::Uri, axum::Form(form): axum::Form<HashMap<String, String>>| {
                let tx = tx.clone();
                async move {
                    let _ = tx
                        .send((
                            uri.to_string(),
                            form.get("logoutRequest").cloned().unwrap_or_default(),
                        ))
                        .await;
                    // As mod_auth_cas does: a redirect, which counts as delivered.
                    axum::response::Redirect::to("/cas/login")
                }
            },
        );
        axum::serve(listener, app).await.unwrap();
    });
    rx
}

#[tokio::test]
async fn logout_ends_the_session_and_each_service_gets_its_logout_request() {
    let s = setup(|_| {}).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let service = format!(
        "http://127.0.0.1:{}/app/",
        listener.local_addr().unwrap().port()
    );
    let mut received = slo_receiver(listener);
    register_cas(
        &s,
        cas_client("legacy", &[&format!("{service}*")], &["profile"]),
    )
    .await;
    // Nobody else may claim a URL under it.
    let context = yihao::protocol::audit::RequestContext::default();
    let app = &s._server.test_app.app;
    let operator = app.administration(&yihao::protocol::admin::Actor::Operator, &context);
    for overlapping in [
        format!("{service}x/*"),
        format!("{service}index.html"),
        service.replace("/app/", "/*"),
    ] {
        let change = yihao::protocol::admin::clients::ClientChange {
            client_id: Some("squatter".into()),
            client_name: Some("squatter".into()),
            grant_types: Some(vec![]),
            token_endpoint_auth_method: Some("none".into()),
            cas_services: Some(vec![overlapping.clone()]),
            ..Default::default()
        };
        let refused = operator.create_client(&change, 0).await.unwrap_err();
        assert!(
            refused.to_string().contains("overlaps"),
            "{overlapping}: {refused}"
        );
    }
    let browser = Browser::new();
    let page = format!("{service}index.html?a=1");
    let ticket = ticket_of(&cas_login(&s, &browser, &[("service", &page)]).await, &page);
    let (_, xml) = validate(
        &s,
        "p3/serviceValidate",
        &[("service", &page), ("ticket", &ticket)],
    )
    .await;
    assert_eq!(failure_code(&xml), "", "{xml}");
    // Another site's page cannot log the person out with a GET: Chromium says where the navigation
    // came from, and yihao asks first.
    let cross = browser
        .http
        .get(format!("{}/cas/logout", s.base))
        .header("sec-fetch-site", "cross-site")
        .header("referer", "https://evil.example/")
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 200);
    assert!(
        cross
            .text()
            .await
            .unwrap()
            .contains("action=\"/logout/confirm\"")
    );
    let still = browser
        .get(&login_url(&s.base, &[("service", &page)]))
        .await;
    assert!(still.status().is_redirection(), "still signed in");
    let unused = ticket_of(still.headers()["location"].to_str().unwrap(), &page);
    // An unregistered service after logout: the logged-out page, no redirect.
    let out = browser
        .get(&format!(
            "{}/cas/logout?service=https%3A%2F%2Fevil.example%2F",
            s.base
        ))
        .await;
    assert_eq!(out.status(), 200);
    assert!(out.headers().get("location").is_none());
    // The service gets a LogoutRequest naming its ticket, at the URL the ticket was issued for.
    // Two tickets were issued in the session (the second by the "still signed in" check): two
    // LogoutRequests, one naming the first ticket.
    let mut messages = Vec::new();
    for _ in 0..2 {
        let (uri, message) =
            tokio::time::timeout(std::time::Duration::from_secs(10), received.recv())
                .await
                .expect("the single logout arrives")
                .unwrap();
        assert_eq!(uri, "/app/index.html?a=1");
        assert!(
            message.starts_with(
                "<samlp:LogoutRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\""
            ),
            "{message}"
        );
        messages.push(message);
    }
    let named = format!("<samlp:SessionIndex>{ticket}</samlp:SessionIndex>");
    assert!(messages.iter().any(|m| m.contains(&named)), "{messages:?}");
    let deliveries = s
        ._server
        .test_app
        .app
        .store
        .logout_deliveries("legacy")
        .await
        .unwrap();
    assert_eq!(deliveries.len(), 2);
    for d in &deliveries {
        assert_eq!(d.kind, "cas");
        // Sealed in the database, not the ticket itself.
        assert!(
            !d.session_index
                .as_deref()
                .unwrap_or_default()
                .contains("ST-")
        );
    }
    // A ticket of the ended session, never validated, validates nothing now.
    let (_, xml) = validate(
        &s,
        "serviceValidate",
        &[("service", &page), ("ticket", &unused)],
    )
    .await;
    assert_eq!(failure_code(&xml), "INVALID_TICKET", "{xml}");
    // The session is over: the next CAS login asks for the password; a registered service is
    // where logout then goes.
    let again = browser
        .page(&login_url(&s.base, &[("service", &page)]))
        .await;
    assert!(again.contains("action=\"/login\""), "{again}");
    let back = browser
        .get(&format!(
            "{}/cas/logout?service={}",
            s.base,
            urlencode(&page)
        ))
        .await;
    assert!(back.status().is_redirection());
    assert_eq!(back.headers()["location"], page.as_str());
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

const PYTHON_VAR: &str = "YIHAO_TEST_PYTHON_CAS";

#[tokio::test]
async fn a_real_cas_client_validates_tickets_and_reads_single_logout() {
    // python-cas (PyPI), in the Python that .ci/run prepares and names with YIHAO_TEST_PYTHON_CAS.
    let Some(python) = std::env::var(PYTHON_VAR).ok().filter(|p| !p.is_empty()) else {
        crate::common::not_configured(PYTHON_VAR);
        return;
    };
    let s = setup(|_| {}).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let service = format!(
        "http://localhost:{}/app/",
        listener.local_addr().unwrap().port()
    );
    let mut received = slo_receiver(listener);
    register_cas(&s, cas_client("legacy", &[&service], &["profile", "email"])).await;
    let browser = Browser::new();
    let ticket = ticket_of(
        &cas_login(&s, &browser, &[("service", &service)]).await,
        &service,
    );
    let script = r#"
import json, sys
import cas
base, service, ticket = sys.argv[1], sys.argv[2], sys.argv[3]
client = cas.CASClient(version=3, service_url=service, server_url=base + "/cas/")
user, attributes, pgtiou = client.verify_ticket(ticket)
again = client.verify_ticket(ticket)
print(json.dumps({"user": user, "attributes": attributes, "again": again[0],
                  "login_url": client.get_login_url(), "logout_url": client.get_logout_url(service)}))
"#;
    // Off the runtime's thread: the server answers python-cas on it.
    let run = |args: Vec<String>, code: &'static str| {
        let python = python.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                std::process::Command::new(python)
                    .arg("-c")
                    .arg(code)
                    .args(args)
                    .output()
                    .expect("python runs")
            })
            .await
            .unwrap()
        }
    };
    let out = run(
        vec![s.base.clone(), service.clone(), ticket.clone()],
        script,
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        seen["user"]
            .as_str()
            .is_some_and(|u| !u.is_empty() && !u.contains(ID_NUMBER)),
        "{seen}"
    );
    assert_eq!(seen["attributes"]["name"], NAME);
    assert_eq!(seen["attributes"]["isFromNewLogin"], "true");
    assert!(seen["again"].is_null(), "a ticket validates once: {seen}");
    // python-cas's own URLs reach yihao's endpoints.
    let login = seen["login_url"].as_str().unwrap();
    assert!(
        login.starts_with(&format!("{}/cas/login?service=", s.base)),
        "{login}"
    );
    let location = browser.get(login).await.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    ticket_of(&location, &service);
    // Single logout: python-cas recognises the LogoutRequest for its ticket.
    browser.get(seen["logout_url"].as_str().unwrap()).await;
    let (_, message) = tokio::time::timeout(std::time::Duration::from_secs(10), received.recv())
        .await
        .expect("the single logout arrives")
        .unwrap();
    let check = r#"
import sys
import cas
client = cas.CASClientV3(service_url=sys.argv[2], server_url=sys.argv[1] + "/cas/")
print(client.verify_logout_request(sys.argv[3], sys.argv[4]), client.verify_logout_request(sys.argv[3], "ST-other"))
"#;
    let named = message
        .split("<samlp:SessionIndex>")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap()
        .to_owned();
    let out = run(
        vec![s.base.clone(), service.clone(), message.clone(), named],
        check,
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "True False",
        "{message}"
    );
}
