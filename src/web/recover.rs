//! Password recovery pages: `GET /recover` (document and name), `POST /recover` (a code to the
//! phone on file), `POST /recover/resend`, `POST /recover/complete` (code and new password). Forms
//! carry a CSRF token bound to the browser; `protocol::recovery` decides.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::AppState;
use super::cookies::{BrowserBinding, checked_browser, form_token};
use super::error::{expired, server_error_page};
use super::interaction::{pending, retry_after};
use super::pages::{self, NoticePage, RecoverConfirmPage, RecoverPage, Texts, render};
use super::register::policy_message;
use super::request::{self, field, pairs};
use super::sms_login::{code_refusal, send_refusal};
use crate::domain::password::Password;
use crate::protocol::OAuthError;
use crate::protocol::recovery::RecoverRefused;
use crate::protocol::registration::Field;

fn message(
    t: &'static Texts,
    refused: RecoverRefused,
) -> Result<(StatusCode, String, Option<u64>), OAuthError> {
    let plain = |status, text: &str| Ok((status, text.to_owned(), None));
    match refused {
        RecoverRefused::Invalid { field, error } => match field {
            Field::Name => plain(StatusCode::BAD_REQUEST, t.bad_name),
            _ => plain(
                StatusCode::BAD_REQUEST,
                &format!("{}{}", t.bad_document, error.0),
            ),
        },
        RecoverRefused::DraftExpired => plain(StatusCode::BAD_REQUEST, t.recover_expired),
        RecoverRefused::Send(e) => send_refusal(t, e),
        RecoverRefused::Code(e) => code_refusal(t, e),
        RecoverRefused::Password(e) => Ok((StatusCode::BAD_REQUEST, policy_message(t, &e), None)),
        RecoverRefused::RateLimited { retry_after } => Ok((
            StatusCode::TOO_MANY_REQUESTS,
            t.too_many.to_owned(),
            Some(retry_after),
        )),
        RecoverRefused::Busy(_) => plain(StatusCode::SERVICE_UNAVAILABLE, t.busy),
        RecoverRefused::Server(e) => Err(e),
    }
}

/// `GET /recover[?interaction=...]`.
pub async fn form(
    State(app): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let t = pages::texts(&[], &headers);
    if !app.sms_enabled() {
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
        &RecoverPage {
            t,
            interaction: &interaction,
            csrf: &csrf,
            kind: "resident_id",
            country: "",
            number: "",
            name: "",
            error: None,
            field: "",
        },
    );
    binding.apply(&mut response);
    response
}

fn confirm_page(
    t: &Texts,
    draft: &str,
    csrf: &str,
    said: Result<String, (StatusCode, String, Option<u64>)>,
) -> Response {
    let (status, error, notice, after) = match &said {
        Ok(notice) => (StatusCode::OK, None, Some(notice.as_str()), None),
        Err((status, text, after)) => (*status, Some(text.as_str()), None, *after),
    };
    let mut response = render(
        status,
        &RecoverConfirmPage {
            t,
            draft,
            csrf,
            error,
            notice,
        },
    );
    retry_after(&mut response, after);
    response
}

/// `POST /recover`: the document and name; a code to the phone on file when they match.
pub async fn start(
    State(app): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let form = pairs(&body);
    let t = pages::texts(&[], &headers);
    if !app.sms_enabled() {
        return expired(t);
    }
    let Some(browser) = checked_browser(&app, &headers, field(&form, "csrf")) else {
        return expired(t);
    };
    let context = request::context(&headers, &extensions);
    let interaction = pending(&app, &headers, field(&form, "interaction")).await;
    let (kind, country, number, name) = (
        field(&form, "kind"),
        field(&form, "country"),
        field(&form, "number"),
        field(&form, "name"),
    );
    let started = app
        .recovery(&context)
        .start(
            kind,
            country,
            number,
            name,
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
                .recover_sent
                .replace("{s}", &started.resend_after.to_string());
            confirm_page(t, &started.draft, &csrf, Ok(notice))
        }
        Err(refused) => {
            let field_name = match &refused {
                RecoverRefused::Invalid {
                    field: Field::Name, ..
                } => "name",
                RecoverRefused::Invalid { .. } => "document",
                _ => "",
            };
            let (status, text, after) = match message(t, refused) {
                Ok(m) => m,
                Err(e) => return server_error_page(t, &e),
            };
            let mut response = render(
                status,
                &RecoverPage {
                    t,
                    interaction: interaction.as_deref().unwrap_or(""),
                    csrf: &csrf,
                    kind,
                    country,
                    number,
                    name,
                    error: Some(&text),
                    field: field_name,
                },
            );
            retry_after(&mut response, after);
            response
        }
    }
}

/// `POST /recover/resend`.
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
    let csrf = form_token(&app, &browser);
    let sent = app
        .recovery(&context)
        .resend(
            draft,
            &browser,
            pages::sms_text(&app.config.sms, t),
            app.now(),
        )
        .await;
    match sent {
        Ok(after) => confirm_page(
            t,
            draft,
            &csrf,
            Ok(t.recover_sent.replace("{s}", &after.to_string())),
        ),
        Err(refused) => match message(t, refused) {
            Ok(m) => confirm_page(t, draft, &csrf, Err(m)),
            Err(e) => server_error_page(t, &e),
        },
    }
}

/// `POST /recover/complete`: the code and the new password.
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
    let draft = field(&form, "draft");
    if field(&form, "password") != field(&form, "password2") {
        let said = Err((StatusCode::BAD_REQUEST, t.passwords_differ.to_owned(), None));
        return confirm_page(t, draft, &csrf, said);
    }
    let context = request::context(&headers, &extensions);
    let password = Password::new(field(&form, "password"));
    let done = app
        .recovery(&context)
        .reset(draft, &browser, field(&form, "code"), &password, app.now())
        .await;
    match done {
        Ok((_, interaction)) => {
            let href = interaction
                .map(|i| format!("/login?interaction={i}"))
                .unwrap_or_default();
            let link = (!href.is_empty()).then_some((href.as_str(), t.continue_login));
            render(
                StatusCode::OK,
                &NoticePage {
                    t,
                    title: t.recovered_title,
                    message: t.recovered_text,
                    link,
                },
            )
        }
        Err(RecoverRefused::DraftExpired) => render(
            StatusCode::BAD_REQUEST,
            &NoticePage {
                t,
                title: t.recover_title,
                message: t.recover_expired,
                link: Some(("/recover", t.recover_link)),
            },
        ),
        Err(refused) => match message(t, refused) {
            Ok(m) => confirm_page(t, draft, &csrf, Err(m)),
            Err(e) => server_error_page(t, &e),
        },
    }
}
