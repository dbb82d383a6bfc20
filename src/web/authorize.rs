//! `GET|POST /authorize` (RFC 6749 §4.1.1; OIDC Core §3.1.2.1: "Authorization Servers MUST support
//! the use of the HTTP GET and POST methods") and the pages and answers an authorization request
//! leads to: the login, consent and organisation pages (each bound to an interaction), and the
//! authorization response in the request's response mode.
//!
//! What comes next is decided in `protocol::interaction`; this file renders it.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::AppState;
use super::cookies::{self, BrowserBinding, cookie};
use super::error::{authorize_error, server_error_page, too_many};
use super::pages::{
    self, ConsentPage, FormPostPage, LoginPage, OrgPage, ProofingPage, SecondFactorPage, Texts,
    allow_form_target, render,
};
use super::request;
use crate::app::App;
use crate::crypto::random_token;
use crate::domain::client::{Client, ClientId};
use crate::domain::organisation::Role;
use crate::protocol::OAuthError;
use crate::protocol::audit::RequestContext;
use crate::protocol::authorize::{
    self, AuthorizeError, AuthorizePolicy, AuthorizeRequest, ResponseMode,
};
use crate::protocol::claims::describe;
use crate::protocol::interaction::{Next, choice_value};
use crate::protocol::limits::Verdict;
use crate::protocol::session::{self, Interaction, Session};
use crate::store::StoreError;

/// The registered client named by `id`, if the id is well-formed and registered.
pub(super) async fn find_client(app: &App, id: Option<&str>) -> Result<Option<Client>, StoreError> {
    match id.and_then(|id| ClientId::parse(id).ok()) {
        Some(id) => app.clients.client(&id).await,
        None => Ok(None),
    }
}

/// `GET|POST /authorize`.
pub async fn authorize(
    State(app): State<AppState>,
    method: Method,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let params = request::params(&method, query.as_deref(), &body);
    let t0 = pages::texts(&[], &headers);
    let client_id = params
        .iter()
        .find(|(n, _)| n == "client_id")
        .map(|(_, v)| v.as_str());
    let client = match find_client(&app, client_id).await {
        Ok(c) => c,
        Err(e) => return server_error_page(t0, &e),
    };
    let policy = AuthorizePolicy {
        require_pkce: app.config.tokens.require_pkce,
    };
    let issuer = &app.config.server.issuer;
    let (mut request, client) = match (authorize::check(&params, client.as_ref(), policy), client) {
        (Ok(r), Some(client)) => (r, client),
        (Err(e), _) => return authorize_error(issuer, t0, e),
        // `check` accepts no request without its client.
        (Ok(_), None) => {
            let unknown = AuthorizeError::ShowToUser("unknown client_id".into());
            return authorize_error(issuer, t0, unknown);
        }
    };
    // A shared device's channel (a kiosk, a service window) asks everyone to sign in: no silent
    // single sign-on into a session the previous person left (`session.<channel>.force_login`).
    if app
        .config
        .session
        .channel(client.settings().channel)
        .force_login
    {
        request.prompt.login = true;
    }
    let t = pages::texts(&request.ui_locales, &headers);
    let secret = cookie(&app, &headers, cookies::SESSION);
    let now = app.now();
    let ring = app.keys.ring();
    let interactions = app.interactions(&ring);
    let current = match interactions.session(secret.as_deref(), now).await {
        Ok(s) => s,
        Err(e) => return server_error_page(t, &e),
    };
    let context = request::context(&headers, &extensions);
    let page = Page {
        t,
        headers: &headers,
        context: &context,
    };
    proceed(&app, &page, &client, request, current, false).await
}

/// What showing a page needs from the request: the language, the headers (cookies) and where it
/// came from.
pub(super) struct Page<'a> {
    pub t: &'static Texts,
    pub headers: &'a HeaderMap,
    pub context: &'a RequestContext,
}

/// After a sign-in during interaction `id` (password, SMS code, passkey, QR code, registration):
/// the interaction ends, the request goes on in the new session, and the browser gets its cookie.
pub(super) async fn continue_signed_in(
    app: &App,
    page: &Page<'_>,
    client: &Client,
    id: &str,
    request: AuthorizeRequest,
    signed_in: crate::protocol::login::SignedIn,
) -> Response {
    let _ = session::end_interaction(app.ephemeral.as_ref(), id).await;
    let mut request = request;
    if let Some(cas) = &mut request.cas {
        cas.fresh = true;
    }
    let current = Some((signed_in.sid, signed_in.session));
    let mut response = proceed(app, page, client, request, current, true).await;
    response.headers_mut().append(
        header::SET_COOKIE,
        cookies::set_cookie(app, cookies::SESSION, &signed_in.secret, None),
    );
    response
}

/// Runs the stages of `request` with the browser's session (`fresh` when a login for this request
/// has just created it) and shows what comes next.
pub(super) async fn proceed(
    app: &App,
    page: &Page<'_>,
    client: &Client,
    request: AuthorizeRequest,
    current: Option<(String, Session)>,
    fresh: bool,
) -> Response {
    let now = app.now();
    let ring = app.keys.ring();
    let next = app
        .interactions(&ring)
        .next(client, &request, current, fresh, now)
        .await;
    match next {
        Ok(next) => show(app, page, client, request, next).await,
        Err(e) => server_error_page(page.t, &e),
    }
}

/// Shows what the request needs next: a page, an error for the client, or the code.
pub(super) async fn show(
    app: &App,
    page: &Page<'_>,
    client: &Client,
    request: AuthorizeRequest,
    next: Next,
) -> Response {
    let t = page.t;
    match next {
        Next::Login => start_interaction(app, page, client, request, None, Step::Login).await,
        Next::Consent { account_id } => {
            start_interaction(app, page, client, request, Some(account_id), Step::Consent).await
        }
        Next::ChooseOrganisation {
            account_id,
            choices,
        } => {
            let labels = choices
                .iter()
                .map(|(org, m)| {
                    let role = match m.role {
                        Role::LegalRepresentative => t.roles[0],
                        Role::Administrator => t.roles[1],
                        Role::Agent => t.roles[2],
                    };
                    (choice_value(org, m), format!("{}（{role}）", org.name))
                })
                .collect();
            let step = Step::ChooseOrg(labels);
            start_interaction(app, page, client, request, Some(account_id), step).await
        }
        Next::SecondFactor { account_id, enrol } => {
            let step = Step::SecondFactor { enrol };
            start_interaction(app, page, client, request, Some(account_id), step).await
        }
        Next::Proofing { account_id } => {
            start_interaction(app, page, client, request, Some(account_id), Step::Proofing).await
        }
        Next::Refuse(error) if request.device.is_some() => {
            super::device::deny(app, t, &request, &error).await
        }
        Next::Code { sid, session } => {
            issue_code(app, t, client, &request, &sid, session, None).await
        }
        Next::Refuse(error) => redirect_error(app, &request, error),
    }
}

/// Which page an interaction shows.
enum Step {
    Login,
    /// `enrol`: the account must enrol a second factor first.
    SecondFactor {
        enrol: bool,
    },
    Proofing,
    Consent,
    /// `(value, label)` of each organisation role the person may act in.
    ChooseOrg(Vec<(String, String)>),
}

/// Saves the pending request as an interaction bound to this browser and shows its page.
async fn start_interaction(
    app: &App,
    page: &Page<'_>,
    client: &Client,
    request: AuthorizeRequest,
    account_id: Option<String>,
    step: Step,
) -> Response {
    let (t, headers) = (page.t, page.headers);
    let id = random_token();
    let csrf = random_token();
    let browser = BrowserBinding::of(app, headers);
    let login_hint = request.login_hint.clone().unwrap_or_default();
    let interaction = Interaction {
        request,
        csrf: csrf.clone(),
        browser: browser.hash.clone(),
        account_id,
        created_at: app.now(),
        step: match &step {
            Step::Login => session::Step::Login,
            Step::SecondFactor { .. } => session::Step::SecondFactor,
            Step::Proofing => session::Step::Proofing,
            Step::Consent => session::Step::Consent,
            Step::ChooseOrg(_) => session::Step::ChooseOrganisation,
        },
    };
    let ring = app.keys.ring();
    let opened = app
        .interactions(&ring)
        .open(&id, &interaction, &app.audit(page.context), app.now())
        .await;
    match opened {
        Ok(Verdict::Allowed) => {}
        Ok(Verdict::Limited(limited)) => return too_many(t, limited.retry_after),
        Err(e) => return server_error_page(t, &e),
    }
    let client_name = client.name();
    let mut response = match step {
        Step::Login => render(
            StatusCode::OK,
            &LoginPage {
                t,
                client_name,
                interaction: &id,
                csrf: &csrf,
                identifier: &login_hint,
                error: None,
                sms: app.sms_enabled(),
                register: app.registration_enabled(),
                passkey: super::step_up::passkey_options(app, page.context, &id, None).await,
            },
        ),
        Step::SecondFactor { enrol } => {
            let account_id = interaction.account_id.as_deref().unwrap_or_default();
            let enrol = if enrol {
                match super::step_up::enrolment(app, page.context, account_id).await {
                    Ok(view) => Some(view),
                    Err(e) => return server_error_page(t, &e),
                }
            } else {
                None
            };
            let passkey =
                super::step_up::passkey_options(app, page.context, &id, Some(account_id)).await;
            render(
                StatusCode::OK,
                &SecondFactorPage {
                    t,
                    client_name,
                    interaction: &id,
                    csrf: &csrf,
                    error: None,
                    enrol,
                    recovery_codes: None,
                    passkey,
                    lost_offered: app.registration_enabled(),
                    lost: None,
                },
            )
        }
        Step::Proofing => render(
            StatusCode::OK,
            &ProofingPage {
                t,
                client_name,
                interaction: &id,
                csrf: &csrf,
                error: None,
            },
        ),
        Step::Consent => {
            let items = interaction
                .request
                .scopes
                .iter()
                .filter_map(|s| describe(s, t.chinese, client.settings().full_phone))
                .collect();
            render(
                StatusCode::OK,
                &ConsentPage {
                    t,
                    client_name,
                    interaction: &id,
                    csrf: &csrf,
                    items,
                    device: interaction
                        .request
                        .device
                        .as_ref()
                        .map(|_| client.settings().location.as_deref()),
                },
            )
        }
        Step::ChooseOrg(choices) => render(
            StatusCode::OK,
            &OrgPage {
                t,
                client_name,
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

/// Issues the code (with the chosen `org` claim) and sends the authorization response.
pub(super) async fn issue_code(
    app: &App,
    t: &'static Texts,
    client: &Client,
    request: &AuthorizeRequest,
    sid: &str,
    session: Session,
    org: Option<serde_json::Value>,
) -> Response {
    if let Some(key) = &request.device {
        return super::device::approve(app, t, client, request, key, (sid, session), org).await;
    }
    if let Some(login) = &request.cas {
        return super::cas::issue_ticket(app, t, client, request, login, sid, session, org).await;
    }
    let ring = app.keys.ring();
    let issued = app
        .interactions(&ring)
        .issue_code(client, request, sid, session, org, app.now())
        .await;
    let code = match issued {
        Ok(code) => code,
        Err(e) => return server_error_page(t, &e),
    };
    let mut fields = vec![("code", code.as_str())];
    if let Some(state) = &request.state {
        fields.push(("state", state));
    }
    // RFC 9207 §2: the iss parameter in every authorization response.
    fields.push(("iss", &app.config.server.issuer));
    authorization_response(t, &request.redirect_uri, request.response_mode, &fields)
}

/// An error for the client about a request whose redirect URI is known.
pub(super) fn redirect_error(app: &App, request: &AuthorizeRequest, error: OAuthError) -> Response {
    if let Some(login) = &request.cas {
        return super::cas::refused(&pages::ZH, login, &error);
    }
    authorize_error(
        &app.config.server.issuer,
        &pages::ZH,
        AuthorizeError::RedirectToClient {
            redirect_uri: request.redirect_uri.clone(),
            mode: request.response_mode,
            state: request.state.clone(),
            error,
        },
    )
}

/// The authorization response in its response mode (OAuth 2.0 Multiple Response Type Encoding
/// Practices §2; Form Post Response Mode §2).
pub(super) fn authorization_response(
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
