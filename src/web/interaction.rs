//! The forms of an interaction: `POST /login`, `POST /consent` and `POST /select-org`. Each form
//! belongs to a pending authorization request (its interaction), carries its CSRF token and must
//! come from the browser the page was shown in; then one protocol operation decides, and the
//! request goes on (`web::authorize`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use subtle::ConstantTimeEq;

use super::AppState;
use super::authorize::{Page, continue_signed_in, find_client, issue_code, show};
use super::cookies::{self, cookie, genuine_form};
use super::error::{expired, server_error_page};
use super::pages::{self, LoginPage, Texts, allow_form_target, render};
use super::request::{self, field, pairs};
use super::step_up::passkey_options;
use crate::app::App;
use crate::domain::client::Client;
use crate::domain::password::Password;
use crate::protocol::OAuthError;
use crate::protocol::accounts::LoginError;
use crate::protocol::interaction::Choice;
use crate::protocol::login::{Attempt, Refused};
use crate::protocol::session::{self, Interaction, Session, Step};

/// Loads the interaction a form of page `step` belongs to; `None` when it expired, was started for
/// another page, or when the form's CSRF token or browser is not the one the page was made for.
pub(super) async fn interaction_for(
    app: &App,
    headers: &HeaderMap,
    form: &[(String, String)],
    step: Step,
) -> Option<(String, Interaction)> {
    let id = field(form, "interaction");
    let interaction = session::load_interaction(app.ephemeral.as_ref(), id)
        .await
        .ok()
        .flatten()
        .filter(|i| i.step == step)?;
    genuine_form(
        app,
        headers,
        field(form, "csrf"),
        &interaction.csrf,
        &interaction.browser,
    )
    .then(|| (id.to_owned(), interaction))
}

/// A posted form of an interaction's page, checked ([`interaction_for`]): its fields, the
/// interaction, the person's language and the client.
pub(super) struct InteractionForm {
    pub form: Vec<(String, String)>,
    pub id: String,
    pub interaction: Interaction,
    pub t: &'static Texts,
    pub client: Client,
}

/// The form of page `step` posted as `body`, or the page to answer instead (expired, or a server
/// error).
pub(super) async fn interaction_form(
    app: &App,
    headers: &HeaderMap,
    body: &Bytes,
    step: Step,
) -> Result<InteractionForm, Response> {
    let form = pairs(body);
    let t0 = pages::texts(&[], headers);
    let Some((id, interaction)) = interaction_for(app, headers, &form, step).await else {
        return Err(expired(t0));
    };
    let t = pages::texts(&interaction.request.ui_locales, headers);
    let client = match find_client(app, Some(&interaction.request.client_id)).await {
        Ok(Some(c)) => c,
        Ok(None) => return Err(expired(t)),
        Err(e) => return Err(server_error_page(t, &e)),
    };
    Ok(InteractionForm {
        form,
        id,
        interaction,
        t,
        client,
    })
}

/// `POST /login`: the login form.
pub async fn login(
    State(app): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let InteractionForm {
        form,
        id,
        interaction,
        t,
        client,
    } = match interaction_form(&app, &headers, &body, Step::Login).await {
        Ok(f) => f,
        Err(page) => return page,
    };
    let context = request::context(&headers, &extensions);
    let previous = cookie(&app, &headers, cookies::SESSION);
    let password = Password::new(field(&form, "password"));
    let attempt = Attempt {
        client: &client,
        identifier: field(&form, "identifier"),
        password: &password,
        previous: previous.as_deref(),
    };
    let now = app.now();
    let signed_in = match app.password_login(&context).login(&attempt, now).await {
        Ok(signed_in) => signed_in,
        Err(refused) => {
            let passkey = passkey_options(&app, &context, &id, None).await;
            return refused_page(
                &app,
                t,
                &client,
                (&id, &interaction),
                &attempt,
                refused,
                passkey,
            );
        }
    };
    let page = Page {
        t,
        headers: &headers,
        context: &context,
    };
    continue_signed_in(&app, &page, &client, &id, interaction.request, signed_in).await
}

/// The status, message and `Retry-After` of a refused login, or the error page to show instead:
/// 429 when rate limited, 401 for wrong credentials, 503 when the hashing pool is full, 200
/// otherwise.
pub(super) fn refusal(
    t: &'static Texts,
    refused: Refused,
) -> Result<(StatusCode, &'static str, Option<u64>), OAuthError> {
    Ok(match refused {
        Refused::Server(e) => return Err(e),
        Refused::RateLimited { retry_after } => {
            (StatusCode::TOO_MANY_REQUESTS, t.too_many, Some(retry_after))
        }
        Refused::Credentials(e) => match e {
            LoginError::InvalidCredentials => {
                (StatusCode::UNAUTHORIZED, t.invalid_credentials, None)
            }
            LoginError::LockedOut { .. } => (StatusCode::OK, t.locked_out, None),
            LoginError::Unavailable(_) => (StatusCode::OK, t.unavailable, None),
            LoginError::Busy(_) => (StatusCode::SERVICE_UNAVAILABLE, t.busy, None),
            // `PasswordLogin` reports store failures as `Refused::Server`; kept for completeness.
            LoginError::Store(e) => return Err(OAuthError::server(e)),
        },
    })
}

/// Sets `Retry-After` when there is one.
pub(super) fn retry_after(response: &mut Response, secs: Option<u64>) {
    if let Some(secs) = secs {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
}

/// The login page again, saying why the login was refused.
fn refused_page(
    app: &App,
    t: &'static Texts,
    client: &Client,
    (id, interaction): (&str, &Interaction),
    attempt: &Attempt<'_>,
    refused: Refused,
    passkey: Option<String>,
) -> Response {
    let (status, message, after) = match refusal(t, refused) {
        Ok(r) => r,
        Err(e) => return server_error_page(t, &e),
    };
    let page = LoginPage {
        t,
        client_name: client.name(),
        interaction: id,
        csrf: &interaction.csrf,
        identifier: attempt.identifier,
        error: Some(message),
        sms: app.sms_enabled(),
        register: app.registration_enabled(),
        passkey,
    };
    let mut response = render(status, &page);
    allow_form_target(&mut response, &interaction.request.redirect_uri);
    retry_after(&mut response, after);
    response
}

/// The pending interaction `id` at `step`, when this browser is the one it was started in (for
/// the pages reached by a link: the login tabs, registration, recovery).
pub(super) async fn interaction_in_browser(
    app: &App,
    headers: &HeaderMap,
    id: &str,
    step: Step,
) -> Option<Interaction> {
    let interaction = session::load_interaction(app.ephemeral.as_ref(), id)
        .await
        .ok()
        .flatten()
        .filter(|i| i.step == step)?;
    let browser = cookies::browser_hash(app, headers);
    bool::from(browser.as_bytes().ct_eq(interaction.browser.as_bytes())).then_some(interaction)
}

/// The interaction id named by a form or link (registration, recovery), when it is pending in this
/// browser: the flow returns to it at the end.
pub(super) async fn pending(app: &App, headers: &HeaderMap, id: &str) -> Option<String> {
    if id.is_empty() {
        return None;
    }
    interaction_in_browser(app, headers, id, Step::Login)
        .await
        .map(|_| id.to_owned())
}

/// `GET /login?interaction=...`: the password tab of a pending login.
pub async fn login_page(
    State(app): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    uri: axum::http::Uri,
) -> Response {
    let query = uri.query().unwrap_or("").as_bytes();
    let params = pairs(query);
    let id = field(&params, "interaction");
    let t0 = pages::texts(&[], &headers);
    let Some(interaction) = interaction_in_browser(&app, &headers, id, Step::Login).await else {
        return expired(t0);
    };
    let t = pages::texts(&interaction.request.ui_locales, &headers);
    let client = match find_client(&app, Some(&interaction.request.client_id)).await {
        Ok(Some(c)) => c,
        Ok(None) => return expired(t),
        Err(e) => return server_error_page(t, &e),
    };
    let page = LoginPage {
        t,
        client_name: client.name(),
        interaction: id,
        csrf: &interaction.csrf,
        identifier: interaction.request.login_hint.as_deref().unwrap_or(""),
        error: None,
        sms: app.sms_enabled(),
        register: app.registration_enabled(),
        passkey: passkey_options(&app, &request::context(&headers, &extensions), id, None).await,
    };
    let mut response = render(StatusCode::OK, &page);
    allow_form_target(&mut response, &interaction.request.redirect_uri);
    response
}

/// A form posted after login (consent, organisation choice), checked: its interaction, the live
/// session of the person who logged in during it, and the client.
struct AfterLogin {
    t: &'static Texts,
    interaction: Interaction,
    sid: String,
    session: Session,
    client: Client,
    now: i64,
}

async fn after_login(
    app: &App,
    headers: &HeaderMap,
    form: &[(String, String)],
    step: Step,
) -> Result<AfterLogin, Response> {
    let t0 = pages::texts(&[], headers);
    let (id, interaction) = interaction_for(app, headers, form, step)
        .await
        .ok_or_else(|| expired(t0))?;
    let t = pages::texts(&interaction.request.ui_locales, headers);
    let now = app.now();
    let ring = app.keys.ring();
    let secret = cookie(app, headers, cookies::SESSION);
    let current = app
        .interactions(&ring)
        .session(secret.as_deref(), now)
        .await
        .ok()
        .flatten();
    let Some((sid, session)) =
        current.filter(|(_, s)| Some(&s.account_id) == interaction.account_id.as_ref())
    else {
        return Err(expired(t));
    };
    let client = match find_client(app, Some(&interaction.request.client_id)).await {
        Ok(Some(c)) => c,
        Ok(None) => return Err(expired(t)),
        Err(e) => return Err(server_error_page(t, &e)),
    };
    let _ = session::end_interaction(app.ephemeral.as_ref(), &id).await;
    Ok(AfterLogin {
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
    let context = request::context(&headers, &extensions);
    let step = match after_login(&app, &headers, &form, Step::Consent).await {
        Ok(step) => step,
        Err(response) => return response,
    };
    let allowed = form
        .iter()
        .find(|(n, _)| n == "decision")
        .is_some_and(|(_, v)| v == "allow");
    let ring = app.keys.ring();
    let request = step.interaction.request;
    let next = app
        .interactions(&ring)
        .consent(
            &app.audit(&context),
            &step.client,
            &request,
            step.sid,
            step.session,
            allowed,
            step.now,
        )
        .await;
    match next {
        Ok(next) => {
            let page = Page {
                t: step.t,
                headers: &headers,
                context: &context,
            };
            show(&app, &page, &step.client, request, next).await
        }
        Err(e) => server_error_page(step.t, &e),
    }
}

/// `POST /select-org`: whom the person acts for, or `none`.
pub async fn select_org(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = pairs(&body);
    let AfterLogin {
        t,
        interaction,
        sid,
        session,
        client,
        now,
    } = match after_login(&app, &headers, &form, Step::ChooseOrganisation).await {
        Ok(step) => step,
        Err(response) => return response,
    };
    let chosen = form
        .iter()
        .find(|(n, _)| n == "org")
        .map_or("none", |(_, v)| v.as_str());
    let ring = app.keys.ring();
    let choice = app
        .interactions(&ring)
        .choose_org(&client, &session.account_id, chosen, now)
        .await;
    let org = match choice {
        Ok(Choice::Nobody) => None,
        Ok(Choice::Organisation(claim)) => Some(claim),
        Ok(Choice::NotOffered) => return expired(t),
        Err(e) => return server_error_page(t, &e),
    };
    issue_code(&app, t, &client, &interaction.request, &sid, session, org).await
}
