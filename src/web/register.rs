//! Registration pages: `GET /register` (the form, reached from the login page with its pending
//! interaction), `POST /register` (check, send the code), `POST /register/resend`,
//! `POST /register/complete` (create the account, sign in, return to the interaction). Forms carry
//! a CSRF token bound to the browser (`cookies::form_token`); `protocol::registration` decides.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::AppState;
use super::authorize::{Page, continue_signed_in, find_client};
use super::cookies::{self, BrowserBinding, checked_browser, cookie, form_token};
use super::error::{expired, server_error_page};
use super::interaction::{interaction_in_browser, pending, retry_after};
use super::pages::{self, NoticePage, RegisterConfirmPage, RegisterPage, Texts, render};
use super::request::{self, field, pairs};
use super::sms_login::{code_refusal, send_refusal};
use crate::app::App;
use crate::domain::password::{Password, PolicyError};
use crate::protocol::OAuthError;
use crate::protocol::audit::RequestContext;
use crate::protocol::registration::{Application, Completion, Field, RegisterRefused};
use crate::protocol::session::Step;
use crate::protocol::sms_login::SMS_CEILING;

/// The message for a password the policy refuses.
pub(super) fn policy_message(t: &Texts, e: &PolicyError) -> String {
    match e {
        PolicyError::TooShort(n) => t.pw_too_short.replace("{n}", &n.to_string()),
        PolicyError::TooLong(n) => t.pw_too_long.replace("{n}", &n.to_string()),
        PolicyError::TooFewClasses(n) => t.pw_classes.replace("{n}", &n.to_string()),
        PolicyError::ContainsPersonalNumber => t.pw_personal.to_owned(),
        PolicyError::ControlCharacter => t.pw_control.to_owned(),
        PolicyError::Reused(n) => t.pw_reused.replace("{n}", &n.to_string()),
    }
}

/// A refused step as status, message, `Retry-After`; or the server error behind it.
fn message(
    t: &'static Texts,
    refused: RegisterRefused,
) -> Result<(StatusCode, String, Option<u64>), OAuthError> {
    let plain = |status, text: &str| Ok((status, text.to_owned(), None));
    match refused {
        RegisterRefused::Invalid { field, error } => match field {
            Field::Document => plain(
                StatusCode::BAD_REQUEST,
                &format!("{}{}", t.bad_document, error.0),
            ),
            Field::Name => plain(StatusCode::BAD_REQUEST, t.bad_name),
            Field::Phone => plain(StatusCode::BAD_REQUEST, t.bad_phone),
        },
        RegisterRefused::AlreadyRegistered { phone: Some(p) } => plain(
            StatusCode::CONFLICT,
            &t.already_registered_phone.replace("{phone}", &p),
        ),
        RegisterRefused::AlreadyRegistered { phone: None } => {
            plain(StatusCode::CONFLICT, t.already_registered)
        }
        RegisterRefused::PhoneTaken => plain(StatusCode::CONFLICT, t.phone_taken),
        RegisterRefused::ConsentMissing(_) => plain(StatusCode::BAD_REQUEST, t.consent_missing),
        RegisterRefused::Password(e) => Ok((StatusCode::BAD_REQUEST, policy_message(t, &e), None)),
        RegisterRefused::Mismatch => plain(StatusCode::UNPROCESSABLE_ENTITY, t.register_mismatch),
        RegisterRefused::NotFound => plain(StatusCode::UNPROCESSABLE_ENTITY, t.register_not_found),
        RegisterRefused::RegisterUnavailable(_) => {
            plain(StatusCode::SERVICE_UNAVAILABLE, t.register_down)
        }
        RegisterRefused::DraftExpired => plain(StatusCode::BAD_REQUEST, t.draft_expired),
        RegisterRefused::Send(e) => send_refusal(t, e),
        RegisterRefused::Code(e) => code_refusal(t, e),
        RegisterRefused::RateLimited { retry_after } => Ok((
            StatusCode::TOO_MANY_REQUESTS,
            t.too_many.to_owned(),
            Some(retry_after),
        )),
        RegisterRefused::Busy(_) => plain(StatusCode::SERVICE_UNAVAILABLE, t.busy),
        RegisterRefused::Server(e) => Err(e),
    }
}

/// `GET /register[?interaction=...]`: the first form.
pub async fn form(
    State(app): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let t = pages::texts(&[], &headers);
    if !app.registration_enabled() {
        return expired(t);
    }
    let params = pairs(uri.query().unwrap_or("").as_bytes());
    let interaction = pending(&app, &headers, field(&params, "interaction"))
        .await
        .unwrap_or_default();
    let binding = BrowserBinding::of(&app, &headers);
    let csrf = form_token(&app, &binding.hash);
    let mut response = render(
        StatusCode::OK,
        &RegisterPage {
            t,
            interaction: &interaction,
            csrf: &csrf,
            kind: "resident_id",
            country: "",
            number: "",
            name: "",
            phone: "",
            error: None,
            field: "",
        },
    );
    binding.apply(&mut response);
    response
}

/// `POST /register`: checks the first form and sends the code.
pub async fn start(
    State(app): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let form = pairs(&body);
    let t = pages::texts(&[], &headers);
    if !app.registration_enabled() {
        return expired(t);
    }
    let Some(browser) = checked_browser(&app, &headers, field(&form, "csrf")) else {
        return expired(t);
    };
    let context = request::context(&headers, &extensions);
    let interaction = pending(&app, &headers, field(&form, "interaction")).await;
    let application = Application {
        kind: field(&form, "kind"),
        country: field(&form, "country"),
        number: field(&form, "number"),
        name: field(&form, "name"),
        phone: field(&form, "phone"),
    };
    let started = app
        .registration(&context)
        .start(
            &application,
            &browser,
            interaction.as_deref(),
            pages::sms_text(&app.config.sms, t),
            app.now(),
        )
        .await;
    let csrf = form_token(&app, &browser);
    match started {
        Ok(started) => {
            let notice = t
                .code_sent_plain
                .replace("{phone}", &started.masked_phone)
                .replace("{s}", &started.sent.resend_after.to_string());
            confirm_page(
                &app,
                t,
                &started.draft,
                &csrf,
                None,
                Some(&notice),
                StatusCode::OK,
                None,
            )
        }
        Err(RegisterRefused::AlreadyRegistered { phone }) => {
            let message = match phone {
                Some(p) => t.already_registered_phone.replace("{phone}", &p),
                None => t.already_registered.to_owned(),
            };
            let href = format!(
                "/recover?interaction={}",
                interaction.as_deref().unwrap_or("")
            );
            render(
                StatusCode::CONFLICT,
                &NoticePage {
                    t,
                    title: t.already_registered_title,
                    message: &message,
                    link: Some((&href, t.recover_link)),
                },
            )
        }
        Err(refused) => {
            let field_name = match &refused {
                RegisterRefused::Invalid { field, .. } => match field {
                    Field::Document => "document",
                    Field::Name => "name",
                    Field::Phone => "phone",
                },
                _ => "",
            };
            let (status, text, after) = match message(t, refused) {
                Ok(m) => m,
                Err(e) => return server_error_page(t, &e),
            };
            let mut response = render(
                status,
                &RegisterPage {
                    t,
                    interaction: interaction.as_deref().unwrap_or(""),
                    csrf: &csrf,
                    kind: application.kind,
                    country: application.country,
                    number: application.number,
                    name: application.name,
                    phone: application.phone,
                    error: Some(&text),
                    field: field_name,
                },
            );
            retry_after(&mut response, after);
            response
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn confirm_page(
    app: &App,
    t: &Texts,
    draft: &str,
    csrf: &str,
    error: Option<&str>,
    notice: Option<&str>,
    status: StatusCode,
    after: Option<u64>,
) -> Response {
    let c = &app.config.registration;
    let mut response = render(
        status,
        &RegisterConfirmPage {
            t,
            draft,
            csrf,
            terms_version: &c.terms_version,
            privacy_version: &c.privacy_version,
            error,
            notice,
        },
    );
    retry_after(&mut response, after);
    response
}

/// `POST /register/resend`: a new code for the draft's number.
pub async fn resend(
    State(app): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let form = pairs(&body);
    let t = pages::texts(&[], &headers);
    let Some(browser) = checked_browser(&app, &headers, field(&form, "csrf")) else {
        return expired(t);
    };
    let context = request::context(&headers, &extensions);
    let draft = field(&form, "draft");
    let sent = app
        .registration(&context)
        .resend(
            draft,
            &browser,
            pages::sms_text(&app.config.sms, t),
            app.now(),
        )
        .await;
    let csrf = form_token(&app, &browser);
    match sent {
        Ok(resent) => {
            let notice = t
                .code_sent_plain
                .replace("{phone}", &resent.masked_phone)
                .replace("{s}", &resent.sent.resend_after.to_string());
            confirm_page(
                &app,
                t,
                draft,
                &csrf,
                None,
                Some(&notice),
                StatusCode::OK,
                None,
            )
        }
        Err(RegisterRefused::DraftExpired) => expired_registration(t),
        Err(refused) => match message(t, refused) {
            Ok((status, text, after)) => {
                confirm_page(&app, t, draft, &csrf, Some(&text), None, status, after)
            }
            Err(e) => server_error_page(t, &e),
        },
    }
}

fn expired_registration(t: &Texts) -> Response {
    render(
        StatusCode::BAD_REQUEST,
        &NoticePage {
            t,
            title: t.register_title,
            message: t.draft_expired,
            link: Some(("/register", t.register_link)),
        },
    )
}

/// `POST /register/complete`: creates the account, signs the person in, and returns to the pending
/// authorization request (or says the account is ready).
pub async fn complete(
    State(app): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let form = pairs(&body);
    let t = pages::texts(&[], &headers);
    let Some(browser) = checked_browser(&app, &headers, field(&form, "csrf")) else {
        return expired(t);
    };
    let csrf = form_token(&app, &browser);
    let draft_id = field(&form, "draft");
    if field(&form, "password") != field(&form, "password2") {
        return confirm_page(
            &app,
            t,
            draft_id,
            &csrf,
            Some(t.passwords_differ),
            None,
            StatusCode::BAD_REQUEST,
            None,
        );
    }
    let context = request::context(&headers, &extensions);
    let password = Password::new(field(&form, "password"));
    let yes = |name| field(&form, name) == "yes";
    let completion = Completion {
        code: field(&form, "code"),
        password: &password,
        terms: yes("terms"),
        privacy: yes("privacy"),
        sensitive: yes("sensitive"),
    };
    let now = app.now();
    let done = app
        .registration(&context)
        .complete(draft_id, &browser, &completion, now)
        .await;
    let (account, draft) = match done {
        Ok(done) => done,
        Err(RegisterRefused::DraftExpired) => return expired_registration(t),
        Err(refused) => {
            return match message(t, refused) {
                Ok((status, text, after)) => {
                    confirm_page(&app, t, draft_id, &csrf, Some(&text), None, status, after)
                }
                Err(e) => server_error_page(t, &e),
            };
        }
    };
    // Back to the authorization request it came from, signed in; else the account is ready.
    if let Some(id) = draft.interaction.as_deref()
        && let Some(response) = sign_in_and_go_on(&app, &headers, &context, id, &account).await
    {
        return response;
    }
    render(
        StatusCode::OK,
        &NoticePage {
            t,
            title: t.registered_title,
            message: t.registered_text,
            link: None,
        },
    )
}

/// Opens the session of the person who just registered (their phone proven by the code: `amr`
/// sms) and goes on with the pending interaction `id`; `None` when it is gone.
async fn sign_in_and_go_on(
    app: &App,
    headers: &HeaderMap,
    context: &RequestContext,
    id: &str,
    account: &crate::domain::account::Account,
) -> Option<Response> {
    let interaction = interaction_in_browser(app, headers, id, Step::Login).await?;
    let t = pages::texts(&interaction.request.ui_locales, headers);
    let client = find_client(app, Some(&interaction.request.client_id))
        .await
        .ok()
        .flatten()?;
    let previous = cookie(app, headers, cookies::SESSION);
    let now = app.now();
    let signed_in = app
        .password_login(context)
        .open_session(
            account,
            &client,
            previous.as_deref(),
            vec!["sms".into()],
            SMS_CEILING,
            now,
        )
        .await;
    let signed_in = match signed_in {
        Ok(s) => s,
        Err(e) => return Some(server_error_page(t, &e)),
    };
    let page = Page {
        t,
        headers,
        context,
    };
    Some(continue_signed_in(app, &page, &client, id, interaction.request, signed_in).await)
}
