//! The OpenID Connect endpoints: discovery, JWKS, authorization (with the login and consent pages),
//! token and userinfo. Handlers decode HTTP, call the rules in `protocol`, and encode the answer.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::AppState;
use super::pages::{
    self, ConsentPage, FormPostPage, LoginPage, OrgPage, Texts, error_page, render,
};
use crate::app::{App, epoch_now};
use crate::crypto::random_token;
use crate::crypto::subject::sector_of;
use crate::domain::account::AccountId;
use crate::domain::client::{Client, ClientId};
use crate::domain::organisation::{Membership, OrgStatus, Organisation, Role};
use crate::domain::password::Password;
use crate::protocol::accounts::LoginError;
use crate::protocol::audit::{Audit, AuditEvent, EventType, RequestContext};
use crate::protocol::authorize::{
    self, AuthorizeError, AuthorizePolicy, AuthorizeRequest, ResponseMode,
};
use crate::protocol::claims::{describe, org_claim, user_claims};
use crate::protocol::session::{self, CodeGrant, Interaction, Session, SessionPolicy};
use crate::protocol::token::{self, Presented, TokenIssuer};
use crate::protocol::{ErrorCode, OAuthError};
use crate::protocol::{discovery, lifecycle, limits};

/// The highest level a password login establishes (DOMAIN.md §2).
const PASSWORD_CEILING: u8 = 2;

pub(super) fn policy(app: &App) -> SessionPolicy {
    app.session_policy()
}

/// Over TLS the cookies get `Secure` and the `__Host-` prefix; on a plain-http (loopback) issuer
/// neither, or browsers would drop them (DESIGN.md §4).
fn secure(app: &App) -> bool {
    app.config.server.issuer.starts_with("https://")
}

fn cookie_name(app: &App, base: &str) -> String {
    if secure(app) {
        format!("__Host-{base}")
    } else {
        base.to_owned()
    }
}

pub(super) fn set_cookie(app: &App, base: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
    let mut c = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax",
        cookie_name(app, base)
    );
    if secure(app) {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub(super) fn cookie(app: &App, headers: &HeaderMap, base: &str) -> Option<String> {
    let name = cookie_name(app, base);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
}

pub(super) fn pairs(raw: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw).into_owned().collect()
}

/// A form field's value, `""` when absent.
pub(super) fn field<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    form.iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.as_str())
}

pub(super) fn server_error(t: &Texts, cause: impl std::fmt::Display) -> Response {
    tracing::error!(cause = %cause, "request failed");
    error_page(
        t,
        StatusCode::INTERNAL_SERVER_ERROR,
        if t.chinese {
            "服务器内部错误。"
        } else {
            "The server failed."
        },
    )
}

pub(super) async fn find_client(
    app: &App,
    id: Option<&str>,
) -> Result<Option<Client>, crate::store::StoreError> {
    match id.and_then(|id| ClientId::parse(id).ok()) {
        Some(id) => app.clients.client(&id).await,
        None => Ok(None),
    }
}

/// `GET|POST /authorize` (RFC 6749 §4.1.1; OIDC Core §3.1.2.1: both methods MUST be supported).
pub async fn authorize(
    State(app): State<AppState>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let params = if method == Method::POST {
        pairs(&body)
    } else {
        pairs(query.unwrap_or_default().as_bytes())
    };
    let t0 = pages::texts(&[], &headers);
    let client_id = params
        .iter()
        .find(|(n, _)| n == "client_id")
        .map(|(_, v)| v.as_str());
    let client = match find_client(&app, client_id).await {
        Ok(c) => c,
        Err(e) => return server_error(t0, e),
    };
    let request = match authorize::check(
        &params,
        client.as_ref(),
        AuthorizePolicy {
            require_pkce: app.config.tokens.require_pkce,
        },
    ) {
        Ok(r) => r,
        Err(e) => return authorize_error(&app, t0, e),
    };
    let Some(client) = client else {
        return server_error(t0, "client vanished");
    };
    let t = pages::texts(&request.ui_locales, &headers);
    proceed(&app, t, &headers, &client, request, None).await
}

/// Decides what the request needs next: a login, a consent, or its code.
async fn proceed(
    app: &App,
    t: &'static Texts,
    headers: &HeaderMap,
    client: &Client,
    request: AuthorizeRequest,
    fresh: Option<(String, Session)>,
) -> Response {
    let now = epoch_now();
    let fresh_login = fresh.is_some();
    let current = match fresh {
        Some(s) => Some(s),
        None => match cookie(app, headers, "yihao_session") {
            Some(secret) => {
                match session::load(app.ephemeral.as_ref(), &secret, policy(app), now).await {
                    Ok(s) => s,
                    Err(e) => return server_error(t, e),
                }
            }
            None => None,
        },
    };
    let needs_login = match &current {
        None => true,
        // The person has just authenticated for this very request: whatever level that reached is
        // what this request gets (acr_values are voluntary, OIDC Core §3.1.2.1), and asking again
        // would loop.
        Some(_) if fresh_login => false,
        Some((_, s)) => {
            // OIDC Core §3.1.2.1: prompt=login forces a new authentication; max_age bounds the age of the
            // last one; acr_values above the session's level need a step-up; id_token_hint must name the
            // session's person.
            request.prompt.login
                || request.prompt.select_account
                || request.max_age.is_some_and(|m| now - s.auth_time > m)
                || request
                    .min_level()
                    .is_some_and(|l| l > s.level && s.level < PASSWORD_CEILING)
                || hint_mismatch(app, client, &request, s)
        }
    };
    if needs_login {
        if request.prompt.none {
            return redirect_error(
                app,
                &request,
                ErrorCode::LoginRequired,
                "the person must log in",
            );
        }
        return start_interaction(app, t, headers, client, request, None, Step::Login).await;
    }
    let Some((sid, session)) = current else {
        return server_error(t, "no session");
    };
    let granted = match app
        .store
        .consented_scopes(&session.account_id, client.id().as_str())
        .await
    {
        Ok(g) => g,
        Err(e) => return server_error(t, e),
    };
    let covered = request.scopes.iter().all(|s| granted.contains(s));
    // OIDC Core §3.1.2.1: prompt=consent asks even a first-party client's user.
    if request.prompt.consent || (!client.first_party() && !covered) {
        if request.prompt.none {
            return redirect_error(
                app,
                &request,
                ErrorCode::ConsentRequired,
                "the person must consent",
            );
        }
        return start_interaction(
            app,
            t,
            headers,
            client,
            request,
            Some(session.account_id.clone()),
            Step::Consent,
        )
        .await;
    }
    choose_org_then_code(app, t, headers, client, request, &sid, session).await
}

/// True when `id_token_hint` does not name the session's person (or is not ours).
fn hint_mismatch(app: &App, client: &Client, request: &AuthorizeRequest, s: &Session) -> bool {
    let Some(hint) = &request.id_token_hint else {
        return false;
    };
    // OIDC Core §3.1.2.1: an expired ID token is still a valid hint.
    let mut validation = jsonwebtoken::Validation {
        validate_exp: false,
        validate_aud: false,
        ..Default::default()
    };
    validation.set_issuer(&[app.config.server.issuer.as_str()]);
    match app.keys.ring().verify::<Value>(hint, validation) {
        Ok((_, claims)) => {
            claims["sub"].as_str()
                != Some(
                    app.subjects
                        .encode(&sector_of(client), &s.account_id)
                        .as_str(),
                )
        }
        Err(_) => true,
    }
}

/// Which page an interaction shows.
enum Step {
    Login,
    Consent,
    /// `(value, label)` of each organisation role the person may act in.
    ChooseOrg(Vec<(String, String)>),
}

async fn start_interaction(
    app: &App,
    t: &'static Texts,
    headers: &HeaderMap,
    client: &Client,
    request: AuthorizeRequest,
    account_id: Option<String>,
    step: Step,
) -> Response {
    let id = random_token();
    let csrf = random_token();
    let browser = BrowserBinding::of(app, headers);
    let login_hint = request.login_hint.clone().unwrap_or_default();
    let interaction = Interaction {
        request,
        csrf: csrf.clone(),
        browser: browser.hash.clone(),
        account_id: account_id.clone(),
        created_at: epoch_now(),
    };
    if let Err(e) = session::save_interaction(app.ephemeral.as_ref(), &id, &interaction).await {
        return server_error(t, e);
    }
    let mut response = match step {
        Step::Login => render(
            StatusCode::OK,
            &LoginPage {
                t,
                client_name: client.name(),
                interaction: &id,
                csrf: &csrf,
                identifier: &login_hint,
                error: None,
            },
        ),
        Step::Consent => consent_page(t, client, &interaction.request, &id, &csrf),
        Step::ChooseOrg(choices) => render(
            StatusCode::OK,
            &OrgPage {
                t,
                client_name: client.name(),
                interaction: &id,
                csrf: &csrf,
                choices,
            },
        ),
    };
    allow_form_target(&mut response, &interaction.request.redirect_uri);
    browser.apply(&mut response);
    response
}

/// The CSP of a login or consent page: its form posts to this server, whose answer redirects to the
/// client; browsers apply `form-action` to that redirect too, so the client's origin must be allowed.
pub(super) fn allow_form_target(response: &mut Response, redirect_uri: &str) {
    let target = match url::Url::parse(redirect_uri) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => u.origin().ascii_serialization(),
        Ok(u) => format!("{}:", u.scheme()),
        Err(_) => return,
    };
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         form-action 'self' {target}; frame-ancestors 'none'; base-uri 'none'"
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, v);
    }
}

fn consent_page(
    t: &'static Texts,
    client: &Client,
    request: &AuthorizeRequest,
    id: &str,
    csrf: &str,
) -> Response {
    let items: Vec<&str> = request
        .scopes
        .iter()
        .filter_map(|s| describe(s, t.chinese))
        .collect();
    render(
        StatusCode::OK,
        &ConsentPage {
            t,
            client_name: client.name(),
            interaction: id,
            csrf,
            items,
        },
    )
}

/// The browser a form is bound to: the hash of its `yihao_browser` cookie, and the cookie to set
/// when the browser had none yet.
pub(super) struct BrowserBinding {
    pub hash: String,
    set: Option<HeaderValue>,
}

impl BrowserBinding {
    pub(super) fn of(app: &App, headers: &HeaderMap) -> Self {
        match cookie(app, headers, "yihao_browser").filter(|b| b.len() == 43) {
            Some(known) => Self {
                hash: session::sid_of(&known),
                set: None,
            },
            None => {
                let fresh = random_token();
                Self {
                    hash: session::sid_of(&fresh),
                    set: Some(set_cookie(app, "yihao_browser", &fresh, None)),
                }
            }
        }
    }

    pub(super) fn apply(self, response: &mut Response) {
        if let Some(c) = self.set {
            response.headers_mut().append(header::SET_COOKIE, c);
        }
    }
}

/// A posted form is genuine when it carries the expected CSRF token and comes from the browser the
/// page was made for (both compared in constant time).
pub(super) fn genuine_form(
    app: &App,
    headers: &HeaderMap,
    csrf: &str,
    expected_csrf: &str,
    expected_browser: &str,
) -> bool {
    let browser = session::sid_of(&cookie(app, headers, "yihao_browser").unwrap_or_default());
    let form_ok: bool = csrf.as_bytes().ct_eq(expected_csrf.as_bytes()).into();
    let browser_ok: bool = browser.as_bytes().ct_eq(expected_browser.as_bytes()).into();
    form_ok && browser_ok
}

/// Loads the interaction a form belongs to and checks its CSRF token and that it comes from the
/// browser that started it.
async fn interaction_for(
    app: &App,
    headers: &HeaderMap,
    form: &[(String, String)],
) -> Result<(String, Interaction), &'static str> {
    let get = |name: &str| field(form, name);
    let id = get("interaction");
    let interaction = session::load_interaction(app.ephemeral.as_ref(), id)
        .await
        .ok()
        .flatten()
        .ok_or("expired")?;
    if !genuine_form(
        app,
        headers,
        get("csrf"),
        &interaction.csrf,
        &interaction.browser,
    ) {
        return Err("csrf");
    }
    Ok((id.to_owned(), interaction))
}

/// `POST /login`: the login form.
pub async fn login(
    State(app): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let form = pairs(&body);
    let t0 = pages::texts(&[], &headers);
    let (id, interaction) = match interaction_for(&app, &headers, &form).await {
        Ok(x) => x,
        Err(_) => return error_page(t0, StatusCode::BAD_REQUEST, t0.expired),
    };
    let t = pages::texts(&interaction.request.ui_locales, &headers);
    let client = match find_client(&app, Some(&interaction.request.client_id)).await {
        Ok(Some(c)) => c,
        Ok(None) => return error_page(t, StatusCode::BAD_REQUEST, t.expired),
        Err(e) => return server_error(t, e),
    };
    let get = |name: &str| field(&form, name);
    let identifier = get("identifier");
    let now = epoch_now();
    let context = request_context(&headers, &extensions);
    // Rate limits before any password work: per source address, per account as typed (a keyed hash,
    // never the number), and a ceiling over all logins.
    let typed = app
        .identities
        .pii
        .blind_index("login-limit", identifier.trim())
        .hex();
    let per_min = |name, limit| limits::Rule {
        name,
        limit,
        window_secs: 60,
    };
    let l = &app.config.limits;
    let mut checks = vec![
        (
            per_min("login_account", l.login_per_account_per_min),
            typed.as_str(),
        ),
        (
            limits::Rule {
                name: "login_global",
                limit: l.login_global_per_sec,
                window_secs: 1,
            },
            "all",
        ),
    ];
    if let Some(ip) = &context.ip {
        checks.push((per_min("login_ip", l.login_per_ip_per_min), ip.as_str()));
    }
    match limits::hit_all(app.ephemeral.as_ref(), &checks, now).await {
        Ok(Ok(())) => {}
        Ok(Err(limited)) => {
            tracing::info!(
                retry_after = limited.retry_after,
                rule = limited.rule,
                "login rate-limited"
            );
            if limited.first {
                let event = AuditEvent::failure(EventType::RateLimited, limited.rule)
                    .details(json!({ "retry_after": limited.retry_after }));
                if let Err(cause) =
                    audit_login_events(&app, &context, &client, identifier, vec![event], now).await
                {
                    return server_error(t, cause);
                }
            }
            let page = LoginPage {
                t,
                client_name: client.name(),
                interaction: &id,
                csrf: &interaction.csrf,
                identifier,
                error: Some(t.too_many),
            };
            let mut response = render(StatusCode::TOO_MANY_REQUESTS, &page);
            allow_form_target(&mut response, &interaction.request.redirect_uri);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(limited.retry_after));
            return response;
        }
        Err(e) => return server_error(t, e),
    }
    let account = match app
        .identities
        .login(identifier, &Password::new(get("password")), now)
        .await
    {
        Ok(a) => a,
        Err(e) => {
            if let Err(cause) =
                audit_login_failure(&app, &context, &client, identifier, &e, now).await
            {
                return server_error(t, cause);
            }
            let message = match e {
                LoginError::InvalidCredentials => t.invalid_credentials,
                LoginError::LockedOut { .. } => t.locked_out,
                LoginError::Unavailable(_) => t.unavailable,
                LoginError::Busy(_) => t.busy,
                LoginError::Store(cause) => return server_error(t, cause),
            };
            let status = if matches!(e, LoginError::Busy(_)) {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::OK
            };
            let page = LoginPage {
                t,
                client_name: client.name(),
                interaction: &id,
                csrf: &interaction.csrf,
                identifier,
                error: Some(message),
            };
            let mut response = render(status, &page);
            allow_form_target(&mut response, &interaction.request.redirect_uri);
            if matches!(e, LoginError::InvalidCredentials) {
                *response.status_mut() = StatusCode::UNAUTHORIZED;
            }
            return response;
        }
    };
    // DOMAIN.md §2: the level of a login is min(account's proofing level, the method's ceiling).
    let level = account.evidence.level().get().min(PASSWORD_CEILING);
    let fresh = Session {
        account_id: account.id.as_str().to_owned(),
        auth_time: now,
        level,
        amr: vec!["pwd".into()],
        created_at: now,
        clients: Vec::new(),
    };
    // A new secret at every login: a session id planted before login is worth nothing after it. The
    // browser's previous session ends (its services get a back-channel logout).
    if let Some(old) = cookie(&app, &headers, "yihao_session") {
        let ended = app
            .sessions()
            .end(&session::sid_of(&old), session::EndReason::Replaced, now)
            .await;
        if let Err(e) = ended {
            return server_error(t, e);
        }
    }
    let (secret, sid) = match session::create(app.ephemeral.as_ref(), &fresh, policy(&app)).await {
        Ok(x) => x,
        Err(e) => return server_error(t, e),
    };
    let record = crate::store::SessionRecord {
        sid: sid.clone(),
        account_id: fresh.account_id.clone(),
        channel: client.settings().channel.as_str().to_owned(),
        client_id: client.id().as_str().to_owned(),
        clients: "[]".into(),
        ip: context.ip.clone(),
        user_agent: context.user_agent.clone(),
        level: i64::from(level),
        amr: fresh.amr.join(" "),
        created_at: now,
        last_seen_at: now,
        expires_at: now + app.config.session.absolute_secs as i64,
        ended_at: None,
        end_reason: None,
    };
    if let Err(e) = app.sessions().record(&record).await {
        let _ = session::end(app.ephemeral.as_ref(), &sid).await;
        return server_error(t, e);
    }
    let success = AuditEvent {
        channel: Some(record.channel.clone()),
        acr: Some(format!("urn:yihao:loa:{level}")),
        ..AuditEvent::success(EventType::LoginSuccess)
            .actor(account.id.as_str())
            .client(client.id().as_str())
            .target(sid.as_str())
            .details(json!({ "amr": fresh.amr }))
    };
    if let Err(e) = audit(&app, &context).record(success).await {
        let _ = session::end(app.ephemeral.as_ref(), &sid).await;
        return server_error(t, e);
    }
    let _ = session::end_interaction(app.ephemeral.as_ref(), &id).await;
    tracing::info!(account = %account.id, client = %client.id(), acr = level, "login succeeded");
    let mut response = proceed(
        &app,
        t,
        &headers,
        &client,
        interaction.request,
        Some((sid, fresh)),
    )
    .await;
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&app, "yihao_session", &secret, None),
    );
    response
}

/// Audits a refused login: whom it counted against (an account id, or a keyed hash of an unknown
/// identifier; never the number), why, and a lockout when this attempt started one.
async fn audit_login_failure(
    app: &App,
    context: &RequestContext,
    client: &Client,
    identifier: &str,
    error: &LoginError,
    now: i64,
) -> Result<(), OAuthError> {
    let (reason, started) = match error {
        LoginError::InvalidCredentials => ("invalid_credentials", false),
        LoginError::LockedOut { started, .. } => ("locked_out", *started),
        LoginError::Unavailable(_) => ("account_unavailable", false),
        LoginError::Busy(_) => ("busy", false),
        LoginError::Store(_) => ("server_error", false),
    };
    let mut events = vec![AuditEvent::failure(EventType::LoginFailure, reason)];
    if started {
        events.push(AuditEvent::failure(EventType::Lockout, "too_many_failures"));
    }
    audit_login_events(app, context, client, identifier, events, now).await
}

/// Audits `events` about a login attempt with `identifier` at `client`: the target is the person as
/// `Identities::login_subject` names them (an account id or a keyed hash, never the number), with
/// the client and its channel.
async fn audit_login_events(
    app: &App,
    context: &RequestContext,
    client: &Client,
    identifier: &str,
    events: Vec<AuditEvent>,
    now: i64,
) -> Result<(), OAuthError> {
    let subject = app
        .identities
        .login_subject(identifier, now)
        .await
        .unwrap_or_else(|_| "unknown".into());
    let sink = audit(app, context);
    for event in events {
        sink.record(AuditEvent {
            channel: Some(client.settings().channel.as_str().to_owned()),
            ..event.target(subject.as_str()).client(client.id().as_str())
        })
        .await?;
    }
    Ok(())
}

/// A form posted after login (consent, organisation choice), checked: its interaction, the live
/// session of the person who logged in during it, and the client.
struct Step2 {
    t: &'static Texts,
    interaction: Interaction,
    sid: String,
    session: Session,
    client: Client,
    now: i64,
}

async fn logged_in_step(
    app: &App,
    headers: &HeaderMap,
    form: &[(String, String)],
) -> Result<Step2, Response> {
    let t0 = pages::texts(&[], headers);
    let (id, interaction) = interaction_for(app, headers, form)
        .await
        .map_err(|_| error_page(t0, StatusCode::BAD_REQUEST, t0.expired))?;
    let t = pages::texts(&interaction.request.ui_locales, headers);
    let now = epoch_now();
    let current = match cookie(app, headers, "yihao_session") {
        Some(secret) => session::load(app.ephemeral.as_ref(), &secret, policy(app), now)
            .await
            .ok()
            .flatten(),
        None => None,
    };
    let Some((sid, session)) =
        current.filter(|(_, s)| Some(&s.account_id) == interaction.account_id.as_ref())
    else {
        return Err(error_page(t, StatusCode::BAD_REQUEST, t.expired));
    };
    let client = match find_client(app, Some(&interaction.request.client_id)).await {
        Ok(Some(c)) => c,
        Ok(None) => return Err(error_page(t, StatusCode::BAD_REQUEST, t.expired)),
        Err(e) => return Err(server_error(t, e)),
    };
    let _ = session::end_interaction(app.ephemeral.as_ref(), &id).await;
    Ok(Step2 {
        t,
        interaction,
        sid,
        session,
        client,
        now,
    })
}

/// `POST /consent`: the consent form.
pub async fn consent(
    State(app): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let form = pairs(&body);
    let context = request_context(&headers, &extensions);
    let Step2 {
        t,
        interaction,
        sid,
        session: s,
        client,
        now,
    } = match logged_in_step(&app, &headers, &form).await {
        Ok(step) => step,
        Err(response) => return response,
    };
    let decision = form
        .iter()
        .find(|(n, _)| n == "decision")
        .map(|(_, v)| v.as_str());
    let allowed = decision == Some("allow");
    let event = if allowed {
        AuditEvent::success(EventType::ConsentGiven)
    } else {
        AuditEvent::failure(EventType::ConsentRefused, "declined")
    }
    .actor(s.account_id.as_str())
    .client(client.id().as_str())
    .details(json!({ "scopes": interaction.request.scopes }));
    if let Err(e) = audit(&app, &context).record(event).await {
        return server_error(t, e);
    }
    if !allowed {
        return redirect_error(
            &app,
            &interaction.request,
            ErrorCode::AccessDenied,
            "the person declined",
        );
    }
    let mut scopes = match app
        .store
        .consented_scopes(&s.account_id, client.id().as_str())
        .await
    {
        Ok(g) => g,
        Err(e) => return server_error(t, e),
    };
    for scope in &interaction.request.scopes {
        if !scopes.contains(scope) {
            scopes.push(scope.clone());
        }
    }
    scopes.sort();
    if let Err(e) = app
        .store
        .save_consent(&s.account_id, client.id().as_str(), &scopes, now)
        .await
    {
        return server_error(t, e);
    }
    choose_org_then_code(&app, t, &headers, &client, interaction.request, &sid, s).await
}

/// For `org` requests from a person who holds roles, asks whom they act for (DOMAIN.md §3);
/// otherwise issues the code.
async fn choose_org_then_code(
    app: &App,
    t: &'static Texts,
    headers: &HeaderMap,
    client: &Client,
    request: AuthorizeRequest,
    sid: &str,
    s: Session,
) -> Response {
    if !request.scopes.iter().any(|x| x == "org") {
        return issue_code(app, t, client, &request, sid, s, None).await;
    }
    let choices = match org_choices(app, &s.account_id, epoch_now()).await {
        Ok(c) => c,
        Err(e) => return server_error(t, e),
    };
    if choices.is_empty() {
        return issue_code(app, t, client, &request, sid, s, None).await;
    }
    if request.prompt.none {
        return redirect_error(
            app,
            &request,
            ErrorCode::InteractionRequired,
            "the person must choose whom to act for",
        );
    }
    let labels = choices
        .iter()
        .map(|(org, m)| {
            let role = match m.role {
                Role::LegalRepresentative => t.roles[0],
                Role::Administrator => t.roles[1],
                Role::Agent => t.roles[2],
            };
            (
                format!("{}|{}", org.id, m.role.as_str()),
                format!("{}（{role}）", org.name),
            )
        })
        .collect();
    start_interaction(
        app,
        t,
        headers,
        client,
        request,
        Some(s.account_id.clone()),
        Step::ChooseOrg(labels),
    )
    .await
}

/// The organisation roles an account holds now.
async fn org_choices(
    app: &App,
    account_id: &str,
    now: i64,
) -> Result<Vec<(Organisation, Membership)>, crate::store::StoreError> {
    let Ok(account) = AccountId::parse(account_id) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for m in app.store.memberships_of(&account).await? {
        if !m.is_active(now) {
            continue;
        }
        if let Some(org) = app.store.org(&m.org_id).await?
            && org.status == OrgStatus::Active
        {
            out.push((org, m));
        }
    }
    Ok(out)
}

/// `POST /select-org`: whom the person acts for, or `none`.
pub async fn select_org(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = pairs(&body);
    let Step2 {
        t,
        interaction,
        sid,
        session: s,
        client,
        now,
    } = match logged_in_step(&app, &headers, &form).await {
        Ok(step) => step,
        Err(response) => return response,
    };
    let chosen = form
        .iter()
        .find(|(n, _)| n == "org")
        .map(|(_, v)| v.as_str())
        .unwrap_or("none");
    let org = if chosen == "none" {
        None
    } else {
        let choices = match org_choices(&app, &s.account_id, now).await {
            Ok(c) => c,
            Err(e) => return server_error(t, e),
        };
        let Some((org, m)) = choices
            .into_iter()
            .find(|(o, m)| format!("{}|{}", o.id, m.role.as_str()) == chosen)
        else {
            return error_page(t, StatusCode::BAD_REQUEST, t.expired);
        };
        let sector = sector_of(&client);
        let granted_by = m
            .granted_by
            .as_ref()
            .map(|g| app.subjects.encode(&sector, g.as_str()));
        Some(org_claim(&org, &m, granted_by))
    };
    issue_code(&app, t, &client, &interaction.request, &sid, s, org).await
}

#[allow(clippy::too_many_arguments)]
async fn issue_code(
    app: &App,
    t: &'static Texts,
    client: &Client,
    request: &AuthorizeRequest,
    sid: &str,
    mut s: Session,
    org: Option<Value>,
) -> Response {
    let grant = CodeGrant {
        client_id: client.id().as_str().to_owned(),
        redirect_uri: request.redirect_uri.clone(),
        account_id: s.account_id.clone(),
        scopes: request.scopes.clone(),
        nonce: request.nonce.clone(),
        code_challenge: request.code_challenge.clone(),
        auth_time: s.auth_time,
        level: s.level,
        amr: s.amr.clone(),
        sid: sid.to_owned(),
        claims_userinfo: request.claims_userinfo.clone(),
        claims_id_token: request.claims_id_token.clone(),
        org,
    };
    let ttl = Duration::from_secs(app.config.tokens.code_secs);
    let code = match session::issue_code(app.ephemeral.as_ref(), &grant, ttl).await {
        Ok(c) => c,
        Err(e) => return server_error(t, e),
    };
    if !s.clients.iter().any(|c| c == client.id().as_str()) {
        s.clients.push(client.id().as_str().to_owned());
        if let Err(e) = session::save(app.ephemeral.as_ref(), sid, &s, policy(app)).await {
            return server_error(t, e);
        }
        // The durable row names every client to notify at logout, whichever node ends the session.
        if let Err(e) = app.store.touch_session(sid, &s.clients, epoch_now()).await {
            return server_error(t, e);
        }
    }
    let mut fields = vec![("code", code.as_str())];
    if let Some(state) = &request.state {
        fields.push(("state", state));
    }
    // RFC 9207 §2: the iss parameter in every authorization response.
    fields.push(("iss", &app.config.server.issuer));
    respond(t, &request.redirect_uri, request.response_mode, &fields)
}

fn authorize_error(app: &App, t: &'static Texts, e: AuthorizeError) -> Response {
    match e {
        AuthorizeError::ShowToUser(message) => error_page(t, StatusCode::BAD_REQUEST, &message),
        AuthorizeError::RedirectToClient {
            redirect_uri,
            mode,
            state,
            error,
        } => {
            let mut fields = vec![
                ("error", error.code.as_str()),
                ("error_description", error.description.as_str()),
            ];
            if let Some(state) = &state {
                fields.push(("state", state));
            }
            fields.push(("iss", &app.config.server.issuer));
            respond(t, &redirect_uri, mode, &fields)
        }
    }
}

fn redirect_error(
    app: &App,
    request: &AuthorizeRequest,
    code: ErrorCode,
    description: &str,
) -> Response {
    authorize_error(
        app,
        &pages::ZH,
        AuthorizeError::RedirectToClient {
            redirect_uri: request.redirect_uri.clone(),
            mode: request.response_mode,
            state: request.state.clone(),
            error: OAuthError::new(code, description),
        },
    )
}

/// Sends the authorization response in its response mode.
fn respond(
    t: &'static Texts,
    redirect_uri: &str,
    mode: ResponseMode,
    fields: &[(&str, &str)],
) -> Response {
    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    match mode {
        ResponseMode::Query => {
            let sep = if redirect_uri.contains('?') { '&' } else { '?' };
            Redirect::to(&format!("{redirect_uri}{sep}{encoded}")).into_response()
        }
        ResponseMode::Fragment => {
            Redirect::to(&format!("{redirect_uri}#{encoded}")).into_response()
        }
        ResponseMode::FormPost => {
            let mut response = render(
                StatusCode::OK,
                &FormPostPage {
                    t,
                    action: redirect_uri,
                    fields: fields.to_vec(),
                },
            );
            // The form goes to the client: let this page's CSP allow exactly that target.
            let origin = url::Url::parse(redirect_uri)
                .map(|u| u.origin().ascii_serialization())
                .unwrap_or_default();
            let csp = format!(
                "default-src 'none'; script-src 'self'; style-src 'self'; form-action {origin}; frame-ancestors 'none'; base-uri 'none'"
            );
            if let Ok(v) = HeaderValue::from_str(&csp) {
                response
                    .headers_mut()
                    .insert(header::CONTENT_SECURITY_POLICY, v);
            }
            response
        }
    }
}

/// `POST /token` (RFC 6749 §3.2).
pub async fn token(
    State(app): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let context = request_context(&headers, &extensions);
    match token_inner(&app, &headers, &context, &body).await {
        Ok(body) => no_store_json(StatusCode::OK, body),
        Err(e) => e.into_response(),
    }
}

async fn token_inner(
    app: &App,
    headers: &HeaderMap,
    context: &RequestContext,
    body: &[u8],
) -> Result<Value, OAuthError> {
    let params = pairs(body);
    let now = epoch_now();
    let client = authenticated(app, headers, context, &params, now).await?;
    limit_client(app, context, &client, now).await?;
    let get = |name: &str| crate::protocol::param(&params, name).map(str::to_owned);
    match get("grant_type").as_deref() {
        Some("authorization_code") => {
            let ring = app.keys.ring();
            let issuer = token_issuer(app, &ring, context);
            token::exchange_code(
                &issuer,
                &app.identities,
                app.ephemeral.as_ref(),
                &client,
                &params,
                now,
            )
            .await
        }
        Some("refresh_token") => {
            let ring = app.keys.ring();
            let issuer = token_issuer(app, &ring, context);
            let policy = issuer.refresh_policy();
            lifecycle::refresh_grant(
                &issuer,
                &app.identities,
                app.store.as_ref(),
                &client,
                &params,
                policy,
                now,
            )
            .await
        }
        Some("client_credentials") => {
            let ring = app.keys.ring();
            let issuer = token_issuer(app, &ring, context);
            lifecycle::client_credentials(&issuer, &client, &params, now).await
        }
        None => Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "grant_type is missing",
        )),
        Some(_) => Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            "this grant type is not supported",
        )),
    }
}

/// Authenticates the client of a token-endpoint-like request (token, introspection, revocation).
async fn authenticated(
    app: &App,
    headers: &HeaderMap,
    context: &RequestContext,
    params: &[(String, String)],
    now: i64,
) -> Result<Client, OAuthError> {
    let presented = Presented::read(
        params,
        headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()),
    )?;
    let base = app.config.server.issuer.trim_end_matches('/');
    let audiences = [
        app.config.server.issuer.clone(),
        format!("{base}{}", discovery::TOKEN),
        format!("{base}{}", discovery::INTROSPECT),
        format!("{base}{}", discovery::REVOKE),
    ];
    let ctx = token::AssertionContext {
        keys: &app.client_keys,
        secrets: &app.client_secrets,
        ephemeral: app.ephemeral.as_ref(),
        audiences: audiences.to_vec(),
    };
    let outcome = token::authenticate_client(&app.clients, &presented, &ctx, now).await;
    if let Err(e) = &outcome
        && e.code == ErrorCode::InvalidClient
    {
        // The claimed client id, as presented (not trusted: it failed).
        let claimed = presented
            .basic
            .as_ref()
            .map(|(id, _)| id.clone())
            .or(presented.form_client_id.clone());
        let mut event = AuditEvent::failure(EventType::ClientAuthFailure, "invalid_client")
            .details(json!({ "error": e.description }));
        event.target = claimed.map(|c| c.chars().take(128).collect());
        audit(app, context).record(event).await?;
    }
    outcome
}

/// The per-client rate limit of the token, introspection and revocation endpoints; the first refusal
/// of each window is audited.
async fn limit_client(
    app: &App,
    context: &RequestContext,
    client: &Client,
    now: i64,
) -> Result<(), OAuthError> {
    let rule = limits::Rule {
        name: "token_client",
        limit: app.config.limits.token_per_client_per_sec,
        window_secs: 1,
    };
    let outcome = limits::hit(app.ephemeral.as_ref(), rule, client.id().as_str(), now)
        .await
        .map_err(OAuthError::server)?;
    if let Err(limited) = outcome {
        if limited.first {
            audit(app, context)
                .record(
                    AuditEvent::failure(EventType::RateLimited, limited.rule)
                        .actor(client.id().as_str())
                        .client(client.id().as_str())
                        .details(json!({ "retry_after": limited.retry_after })),
                )
                .await?;
        }
        return Err(OAuthError::rate_limited(limited));
    }
    Ok(())
}

/// The token issuer of this node, over the current key ring, auditing with the request's context.
fn token_issuer<'a>(
    app: &'a App,
    ring: &'a crate::crypto::signing::KeyRing,
    context: &'a RequestContext,
) -> TokenIssuer<'a> {
    TokenIssuer {
        issuer: &app.config.server.issuer,
        ring,
        subjects: &app.subjects,
        tokens: &app.config.tokens,
        audit: audit(app, context),
    }
}

/// The audit sink with this request's context.
pub(super) fn audit<'a>(app: &'a App, context: &'a RequestContext) -> Audit<'a> {
    Audit {
        sink: &app.audit,
        context,
    }
}

/// Where the request came from, for audit records: the client address (the peer, or what a trusted
/// proxy says), the user agent (at most 256 characters), the request id.
pub(super) fn request_context(
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
) -> RequestContext {
    RequestContext {
        ip: extensions
            .get::<super::client_ip::ClientIp>()
            .map(|c| c.0.to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(256).collect()),
        request_id: extensions
            .get::<super::middleware::RequestId>()
            .map(|r| r.0.clone()),
    }
}

/// What an endpoint that takes a client-authenticated `token` does with it.
enum TokenAction {
    Introspect,
    Revoke,
}

/// `POST /introspect` (RFC 7662 §2).
pub async fn introspect(
    State(app): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let context = request_context(&headers, &extensions);
    token_endpoint_action(&app, &headers, &context, &body, TokenAction::Introspect).await
}

/// `POST /revoke` (RFC 7009 §2).
pub async fn revoke(
    State(app): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let context = request_context(&headers, &extensions);
    token_endpoint_action(&app, &headers, &context, &body, TokenAction::Revoke).await
}

/// Authenticates the client, then introspects or revokes the `token` it names.
async fn token_endpoint_action(
    app: &App,
    headers: &HeaderMap,
    context: &RequestContext,
    body: &[u8],
    action: TokenAction,
) -> Response {
    let params = pairs(body);
    let now = epoch_now();
    let result = async {
        let client = authenticated(app, headers, context, &params, now).await?;
        limit_client(app, context, &client, now).await?;
        let token = lifecycle::token_param(&params)?;
        let ring = app.keys.ring();
        let issuer = token_issuer(app, &ring, context);
        let (store, ephemeral) = (app.store.as_ref(), app.ephemeral.as_ref());
        match action {
            TokenAction::Introspect => {
                lifecycle::introspect(&issuer, store, ephemeral, &client, token, now).await
            }
            TokenAction::Revoke => {
                lifecycle::revoke(&issuer, store, ephemeral, &client, token, now)
                    .await
                    .map(|()| json!({}))
            }
        }
    }
    .await;
    match result {
        Ok(body) => no_store_json(StatusCode::OK, body),
        Err(e) => e.into_response(),
    }
}

pub(super) fn no_store_json(status: StatusCode, body: Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    let h = response.headers_mut();
    // RFC 6749 §5.1.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// `GET|POST /userinfo` (OIDC Core §5.3) with Bearer tokens (RFC 6750 §2.1).
pub async fn userinfo(
    State(app): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Response {
    let context = request_context(&headers, &extensions);
    match userinfo_inner(&app, &headers, &context).await {
        Ok(body) => no_store_json(StatusCode::OK, body),
        Err(e) => bearer_error(e),
    }
}

async fn userinfo_inner(
    app: &App,
    headers: &HeaderMap,
    context: &RequestContext,
) -> Result<Value, OAuthError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidRequest, "no access token"))?;
    let invalid = |d: &str| OAuthError::new(ErrorCode::InvalidToken, d);
    let mut validation = jsonwebtoken::Validation {
        validate_aud: false,
        leeway: 0,
        ..Default::default()
    };
    validation.set_issuer(&[app.config.server.issuer.as_str()]);
    validation.set_required_spec_claims(&["exp", "iss", "sub"]);
    let (header, claims) = app
        .keys
        .ring()
        .verify::<Value>(token, validation)
        .map_err(|_| invalid("the access token is invalid or expired"))?;
    // RFC 9068 §4: the typ header MUST be checked so ID tokens are not taken for access tokens.
    if header.typ.as_deref() != Some("at+jwt") {
        return Err(invalid("not an access token"));
    }
    let jti = claims["jti"]
        .as_str()
        .ok_or_else(|| invalid("the access token has no jti"))?;
    if session::is_revoked(app.ephemeral.as_ref(), jti)
        .await
        .map_err(OAuthError::server)?
    {
        return Err(invalid("the access token has been revoked"));
    }
    let scopes: Vec<String> = claims["scope"]
        .as_str()
        .unwrap_or("")
        .split(' ')
        .map(str::to_owned)
        .collect();
    if !scopes.iter().any(|s| s == "openid") {
        return Err(OAuthError::new(
            ErrorCode::InsufficientScope,
            "the access token has no openid scope",
        ));
    }
    let client_id = claims["client_id"]
        .as_str()
        .and_then(|c| ClientId::parse(c).ok())
        .ok_or_else(|| invalid("no client_id"))?;
    let client = app
        .clients
        .client(&client_id)
        .await
        .map_err(OAuthError::server)?
        .ok_or_else(|| invalid("the client no longer exists"))?;
    let sub = claims["sub"].as_str().unwrap_or("");
    let account_id = app
        .subjects
        .decode(&sector_of(&client), sub)
        .ok_or_else(|| invalid("unknown subject"))?;
    let account_id = AccountId::parse(&account_id).map_err(OAuthError::server)?;
    let account = app
        .identities
        .account(&account_id)
        .await
        .map_err(OAuthError::server)?
        .ok_or_else(|| invalid("unknown subject"))?;
    if account.status != crate::domain::account::AccountStatus::Active {
        return Err(invalid("the account is not active"));
    }
    let mut body = json!({ "sub": sub });
    if let Value::Object(map) = &mut body {
        map.extend(user_claims(&account, &scopes, client.settings().full_phone));
    }
    if scopes.iter().any(|s| s == "org") && claims.get("org").is_some_and(Value::is_object) {
        body["org"] = claims["org"].clone();
    }
    // Attribute release (DOMAIN.md §5): which of the person's claims went to which client.
    let released: Vec<&String> = body
        .as_object()
        .map(|m| m.keys().filter(|k| *k != "sub").collect())
        .unwrap_or_default();
    if !released.is_empty() {
        audit(app, context)
            .record(
                AuditEvent::success(EventType::AttributeRelease)
                    .actor(account.id.as_str())
                    .client(client.id().as_str())
                    .details(json!({ "via": "userinfo", "claims": released })),
            )
            .await?;
    }
    Ok(body)
}

/// RFC 6750 §3: 401 with `WWW-Authenticate: Bearer` (with the error code when a token was given),
/// 403 for insufficient_scope.
fn bearer_error(e: OAuthError) -> Response {
    let (status, challenge) = match e.code {
        ErrorCode::InvalidRequest => (
            StatusCode::UNAUTHORIZED,
            "Bearer realm=\"yihao\"".to_owned(),
        ),
        ErrorCode::InsufficientScope => (
            StatusCode::FORBIDDEN,
            "Bearer realm=\"yihao\", error=\"insufficient_scope\"".to_owned(),
        ),
        ErrorCode::ServerError => return e.into_response(),
        _ => (
            StatusCode::UNAUTHORIZED,
            format!("Bearer realm=\"yihao\", error=\"{}\"", e.code.as_str()),
        ),
    };
    let mut response = no_store_json(
        status,
        json!({"error": e.code.as_str(), "error_description": e.description}),
    );
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
}

/// `GET /jwks`.
pub async fn jwks(State(app): State<AppState>) -> Response {
    let mut response = axum::Json(app.keys.ring().jwks(epoch_now())).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

/// `GET /.well-known/openid-configuration` and `/.well-known/oauth-authorization-server`.
pub async fn discovery(State(app): State<AppState>) -> Response {
    let mut response = app.discovery.clone().into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}
