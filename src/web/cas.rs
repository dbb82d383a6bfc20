//! The CAS 3.0 endpoints under `/cas` (docs/integration/cas.md); the rules are in `protocol::cas`.
//!
//! - `GET /cas/login` (§2.1): a CAS login runs as an authorization request of the client whose CAS
//!   services admit `service` (`web::authorize::proceed`), so it shares the SSO session, the sign-in
//!   pages, the second factor, consent and the organisation picker; it ends in `issue_ticket`.
//! - `GET /cas/serviceValidate`, `/cas/p3/serviceValidate` (§2.5, §2.8), `/cas/proxyValidate`,
//!   `/cas/p3/proxyValidate` (§2.6; this server issues no proxy tickets) and `/cas/validate` (§2.4).
//!   §2.5: `/serviceValidate` returns the user; `/p3/serviceValidate` "MUST perform the same
//!   validation tasks ... and additionally return user attributes".
//! - `GET /cas/logout` (§2.3): ends the session (every service gets its single logout through the
//!   outbox) and, §2.3.2, "the CAS server MUST ensure that only registered \[service\] parameter
//!   Service URLs are accepted for redirection".

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::AppState;
use super::authorize::{Page, authorization_response, proceed};
use super::cookies::{self, cookie};
use super::error::{error_page, server_error_page};
use super::pages::{self, Texts};
use super::request;
use crate::app::App;
use crate::crypto::subject::sector_of;
use crate::domain::account::AccountId;
use crate::domain::client::Client;
use crate::protocol::OAuthError;
use crate::protocol::audit::{AuditEvent, EventType};
use crate::protocol::authorize::{AuthorizeRequest, Prompt, ResponseMode};
use crate::protocol::cas::{self, CasLogin, Endpoint, Failure, LoginError, TicketGrant};
use crate::protocol::session::Session;
use crate::store::CasTicketRecord;

/// The client registered for `service`, among those this node holds.
fn service_client(app: &App, service: &str) -> Option<Client> {
    app.clients
        .pick(|clients| cas::find_service(clients, service))
}

fn login_error(t: &Texts, e: &LoginError) -> Response {
    let message = match (e, t.chinese) {
        (LoginError::UnknownService, true) => {
            "该业务系统（service）未在本平台登记，不能通过统一身份认证登录。请联系该系统的管理部门。"
        }
        (LoginError::BadService, true) => "service 参数不是有效的 http 或 https 地址。",
        (LoginError::Repeated(_), true) => "请求中的参数重复。",
        (LoginError::Method, true) => "method 参数只能是 GET 或 POST。",
        _ => "",
    };
    let message = if message.is_empty() {
        e.to_string()
    } else {
        message.to_owned()
    };
    error_page(t, StatusCode::BAD_REQUEST, &message)
}

/// `GET /cas/login`.
pub async fn login(
    State(app): State<AppState>,
    method: Method,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let params = request::params(&method, query.as_deref(), &body);
    let t = pages::texts(&[], &headers);
    let login = match cas::login_params(&params) {
        Ok(l) => l,
        Err(e) => return login_error(t, &e),
    };
    // §2.1.1: "If a `service` is not specified and a single sign-on session does not yet exist, CAS
    // SHOULD request credentials ... If ... already exists, CAS SHOULD display a message notifying the
    // client that it is already logged in": the personal page does both.
    let Some(service) = login.service else {
        return Redirect::to("/account").into_response();
    };
    let Some(client) = service_client(&app, &service) else {
        return login_error(t, &LoginError::UnknownService);
    };
    let now = app.now();
    let force_login = app
        .config
        .session
        .channel(client.settings().channel)
        .force_login;
    // What the person consents to and the service receives: their pairwise identifier and the
    // person scopes the client was registered with (no offline access, no API scopes).
    let scopes = std::iter::once("openid".to_owned())
        .chain(
            client
                .scopes()
                .iter()
                .map(|s| s.as_str())
                .filter(|s| ["profile", "phone", "email", "idcard", "org"].contains(s))
                .map(str::to_owned),
        )
        .collect();
    let prompt = Prompt {
        none: login.gateway,
        login: login.renew || force_login,
        ..Prompt::default()
    };
    let request = AuthorizeRequest {
        cas: Some(CasLogin {
            service: service.clone(),
            fresh: false,
            gateway: login.gateway,
            post: login.post,
        }),
        ..AuthorizeRequest::internal(client.id().as_str(), service, scopes, prompt)
    };
    let secret = cookie(&app, &headers, cookies::SESSION);
    let ring = app.keys.ring();
    let current = match app
        .interactions(&ring)
        .session(secret.as_deref(), now)
        .await
    {
        Ok(s) => s,
        Err(e) => return server_error_page(t, &e),
    };
    let context = request::context(&headers, &extensions);
    let page = Page {
        t,
        headers: &headers,
        context: &context,
    };
    let mut response = proceed(&app, &page, &client, request, current, false).await;
    no_store(&mut response);
    response
}

/// Appendix B: responses of `/login` carry `Cache-Control: no-store`, `Pragma: no-cache` and an
/// `Expires` in the past.
fn no_store(response: &mut Response) {
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(header::EXPIRES, HeaderValue::from_static("0"));
}

/// The end of a CAS login: a service ticket for the session, remembered for single logout, sent to
/// the service (§2.2.4: "The request MUST include a valid service ticket, passed as the HTTP
/// request parameter, "ticket"").
#[allow(clippy::too_many_arguments)]
pub(super) async fn issue_ticket(
    app: &App,
    t: &'static Texts,
    client: &Client,
    request: &AuthorizeRequest,
    login: &CasLogin,
    sid: &str,
    session: Session,
    org: Option<serde_json::Value>,
) -> Response {
    let now = app.now();
    let ring = app.keys.ring();
    let code = match app
        .interactions(&ring)
        .grant_for(client, request, sid, session, org, now)
        .await
    {
        Ok(c) => c,
        Err(e) => return server_error_page(t, &e),
    };
    let account = match AccountId::parse(&code.account_id) {
        Ok(id) => app.identities.account(&id).await,
        Err(e) => return server_error_page(t, &e),
    };
    let account = match account {
        Ok(Some(a)) => a,
        Ok(None) => return super::error::expired(t),
        Err(e) => return server_error_page(t, &e),
    };
    let user = app.subjects.encode(&sector_of(client), &code.account_id);
    let grant = TicketGrant::of(
        &code,
        login,
        &account,
        user,
        client.settings().full_phone,
        now,
    );
    let ttl = std::time::Duration::from_secs(app.config.cas.ticket_secs);
    let ticket = match cas::issue(app.ephemeral.as_ref(), &grant, ttl).await {
        Ok(ticket) => ticket,
        Err(e) => return server_error_page(t, &e),
    };
    // Kept for single logout, sealed: whoever reads the database cannot redeem a live ticket.
    let sealed = app.cas_sealer.seal(sid, ticket.as_bytes());
    let record = CasTicketRecord {
        ticket: base64::Engine::encode(&base64::engine::general_purpose::STANDARD, sealed),
        stored_key: cas::stored_key(&ticket),
        sid: sid.to_owned(),
        client_id: client.id().as_str().to_owned(),
        service: login.service.clone(),
        created_at: now,
    };
    match app.store.remember_cas_ticket(&record).await {
        // An older ticket no longer kept for single logout validates nothing either.
        Ok(dropped) => {
            for key in dropped {
                if let Err(e) = app.ephemeral.delete(&key).await {
                    return server_error_page(t, &e);
                }
            }
        }
        Err(e) => return server_error_page(t, &e),
    }
    let mut response = if login.post {
        authorization_response(
            t,
            &login.service,
            ResponseMode::FormPost,
            &[("ticket", &ticket)],
        )
    } else {
        Redirect::to(&cas::service_with_ticket(&login.service, &ticket)).into_response()
    };
    no_store(&mut response);
    response
}

/// A CAS login that cannot end in a ticket. §2.1.1 `gateway`: "If the client does not have a single
/// sign-on session with CAS, and a non-interactive authentication cannot be established, CAS MUST
/// redirect the client to the URL specified by the `service` parameter with no "ticket" parameter".
/// Otherwise the person is told why (CAS has no error response to the service).
pub(super) fn refused(t: &'static Texts, login: &CasLogin, error: &OAuthError) -> Response {
    if login.gateway {
        return Redirect::to(&login.service).into_response();
    }
    error_page(t, StatusCode::FORBIDDEN, &error.description)
}

/// A validation endpoint (§2.4-§2.8): `/cas/serviceValidate` and `/cas/proxyValidate` answer the
/// user only, their `/p3/` forms the attributes too, `/cas/validate` (CAS 1.0) `yes` and the user.
pub fn validation(endpoint: Endpoint, attributes: bool) -> axum::routing::MethodRouter<AppState> {
    axum::routing::get(
        move |State(app): State<AppState>,
              headers: HeaderMap,
              extensions: axum::http::Extensions,
              RawQuery(query): RawQuery| async move {
            validate_at(&app, endpoint, attributes, &headers, &extensions, query).await
        },
    )
}

async fn validate_at(
    app: &App,
    endpoint: Endpoint,
    attributes: bool,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
    query: Option<String>,
) -> Response {
    let params = request::params(&Method::GET, query.as_deref(), &[]);
    let context = request::context(headers, extensions);
    let audit = app.audit(&context);
    let ttl = app.config.cas.ticket_secs as i64;
    let validated = cas::validate(app.ephemeral.as_ref(), &params, endpoint, ttl, app.now()).await;
    let mut result = match validated {
        Ok(mut grant) => {
            if !attributes {
                grant.attributes.clear();
            }
            Ok(grant)
        }
        Err(refused) => {
            // Refusals of this server's own tickets are audited under their client (its
            // self-check shows them); made-up tickets from anyone are not written down.
            if let Some(client) = &refused.client_id {
                let service: String = crate::protocol::param(&params, "service")
                    .unwrap_or_default()
                    .chars()
                    .take(200)
                    .collect();
                let event = AuditEvent::failure(EventType::CasTicket, refused.failure.code())
                    .client(client.as_str())
                    .details(serde_json::json!({
                        "service": service,
                        "detail": refused.failure.description(),
                    }));
                if audit.record(event).await.is_err() {
                    return answer(endpoint, &params, &Err(Failure::InternalError));
                }
            }
            Err(refused.failure)
        }
    };
    if let Ok(grant) = &result {
        let released = grant.released();
        let event = if released.is_empty() {
            AuditEvent::success(EventType::CasTicket)
        } else {
            AuditEvent::success(EventType::AttributeRelease)
                .details(serde_json::json!({ "via": "cas", "claims": released }))
        };
        let event = event
            .actor(grant.account_id.as_str())
            .client(grant.client_id.as_str());
        if audit.record(event).await.is_err() {
            result = Err(Failure::InternalError);
        }
    }
    answer(endpoint, &params, &result)
}

/// A validation's answer in its endpoint's and format's form. Failures are answered 200 too, as
/// CAS servers do; clients read the body.
fn answer(
    endpoint: Endpoint,
    params: &[(String, String)],
    result: &Result<TicketGrant, Failure>,
) -> Response {
    let (body, content_type) = match (endpoint, cas::format_of(params)) {
        (Endpoint::Validate, _) => (cas::response_v1(result), "text/plain; charset=utf-8"),
        (_, Ok(cas::Format::Json)) => {
            (cas::response(result, cas::Format::Json), "application/json")
        }
        _ => (
            cas::response(result, cas::Format::Xml),
            "application/xml; charset=utf-8",
        ),
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// `GET /cas/logout` (§2.3): "subsequent requests to `/login` will not obtain service tickets until the
/// user again presents primary credentials". `url` (CAS 2.0) is ignored, as §2.3.1 requires.
pub async fn logout(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = request::params(&Method::GET, query.as_deref(), &[]);
    let t = pages::texts(&[], &headers);
    let redirect = crate::protocol::param(&params, "service")
        .filter(|s| service_client(&app, s).is_some())
        .map(str::to_owned);
    let sid = cookie(&app, &headers, cookies::SESSION)
        .map(|secret| crate::protocol::session::sid_of(&secret));
    // A GET that any page could send ends every sign-in, OpenID Connect ones included: from a
    // browser, only a navigation of the person's own (typed, a bookmark), from yihao's pages, or
    // from a registered service's page ends it at once; any other asks first, as `/logout` does.
    let sent_by = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let from_service = || {
        let origin = headers
            .get(header::REFERER)
            .and_then(|v| v.to_str().ok())
            .and_then(|r| url::Url::parse(r).ok())
            .map(|u| u.origin().ascii_serialization());
        origin.is_some_and(|origin| {
            app.clients
                .pick(|mut clients| {
                    Iterator::find(&mut clients, |c| {
                        c.settings().cas_services.iter().any(|s| {
                            url::Url::parse(s.as_str().trim_end_matches('*'))
                                .is_ok_and(|u| u.origin().ascii_serialization() == origin)
                        })
                    })
                })
                .is_some()
        })
    };
    let trusted = match sent_by {
        None | Some("none" | "same-origin") => true,
        Some(_) => from_service(),
    };
    if sid.is_some() && !trusted {
        return super::logout::ask(&app, t, &headers, redirect, None, Vec::new()).await;
    }
    super::logout::finish(&app, t, sid, redirect, None).await
}
