//! The login page's SMS tab: `GET /login/sms` (the tab), `POST /login/sms/send` (a code to the
//! number) and `POST /login/sms` (sign in with it). Each form belongs to the pending interaction,
//! carries its CSRF token and comes from its browser; `protocol::sms_login` decides.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::AppState;
use super::authorize::{Page, continue_signed_in, find_client};
use super::cookies::{self, cookie};
use super::error::{expired, server_error_page};
use super::interaction::{interaction_for, interaction_in_browser, refusal, retry_after};
use super::pages::{self, SmsLoginPage, Texts, allow_form_target, render};
use super::request::{self, field, pairs};
use crate::app::App;
use crate::domain::client::Client;
use crate::domain::identifiers::Phone;
use crate::protocol::OAuthError;
use crate::protocol::session::{Interaction, Step};
use crate::protocol::sms_code::{CodeRefused, SendRefused};
use crate::protocol::sms_login::SmsRefused;

/// What the SMS tab shows.
struct Shown<'a> {
    phone: &'a str,
    code_sent: bool,
    error: Option<String>,
    notice: Option<String>,
    status: StatusCode,
    retry_after: Option<u64>,
}

fn page(
    t: &'static Texts,
    client: &Client,
    id: &str,
    interaction: &Interaction,
    shown: Shown<'_>,
) -> Response {
    let mut response = render(
        shown.status,
        &SmsLoginPage {
            t,
            client_name: client.name(),
            interaction: id,
            csrf: &interaction.csrf,
            phone: shown.phone,
            code_sent: shown.code_sent,
            error: shown.error.as_deref(),
            notice: shown.notice.as_deref(),
        },
    );
    allow_form_target(&mut response, &interaction.request.redirect_uri);
    retry_after(&mut response, shown.retry_after);
    response
}

/// The message of a refused SMS step: status, text, `Retry-After`; or a page to show instead.
pub(super) fn sms_refusal(
    t: &'static Texts,
    refused: SmsRefused,
) -> Result<(StatusCode, String, Option<u64>), OAuthError> {
    let plain = |status, text: &str| Ok((status, text.to_owned(), None));
    match refused {
        SmsRefused::BadPhone(_) => plain(StatusCode::BAD_REQUEST, t.bad_phone),
        SmsRefused::Send(e) => send_refusal(t, e),
        SmsRefused::Code(e) => code_refusal(t, e),
        SmsRefused::Unavailable(_) => plain(StatusCode::OK, t.unavailable),
        SmsRefused::Login(e) => {
            refusal(t, e).map(|(status, text, after)| (status, text.to_owned(), after))
        }
    }
}

pub(super) fn send_refusal(
    t: &'static Texts,
    e: SendRefused,
) -> Result<(StatusCode, String, Option<u64>), OAuthError> {
    Ok(match e {
        SendRefused::TooSoon { retry_after } => (
            StatusCode::TOO_MANY_REQUESTS,
            t.sms_too_soon.replace("{s}", &retry_after.to_string()),
            Some(retry_after),
        ),
        SendRefused::DailyCap { retry_after, .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            t.sms_daily_cap.to_owned(),
            Some(retry_after),
        ),
        SendRefused::Gateway(_) => (StatusCode::SERVICE_UNAVAILABLE, t.sms_down.to_owned(), None),
        SendRefused::Store(e) => return Err(OAuthError::server(e)),
    })
}

pub(super) fn code_refusal(
    t: &'static Texts,
    e: CodeRefused,
) -> Result<(StatusCode, String, Option<u64>), OAuthError> {
    let text = match e {
        CodeRefused::Wrong { tries_left } => t.code_wrong.replace("{n}", &tries_left.to_string()),
        CodeRefused::Expired => t.code_expired.to_owned(),
        CodeRefused::Used => t.code_used.to_owned(),
        CodeRefused::TooManyTries => t.code_too_many.to_owned(),
        CodeRefused::Malformed => {
            return Ok((StatusCode::BAD_REQUEST, t.code_malformed.to_owned(), None));
        }
        CodeRefused::Store(e) => return Err(OAuthError::server(e)),
    };
    Ok((StatusCode::UNAUTHORIZED, text, None))
}

/// `GET /login/sms?interaction=...`: the SMS tab of a pending login.
pub async fn tab(
    State(app): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let params = pairs(uri.query().unwrap_or("").as_bytes());
    let id = field(&params, "interaction");
    let t0 = pages::texts(&[], &headers);
    if !app.sms_enabled() {
        return expired(t0);
    }
    let Some(interaction) = interaction_in_browser(&app, &headers, id, Step::Login).await else {
        return expired(t0);
    };
    let (t, client) = match start(&app, &headers, &interaction).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let shown = Shown {
        phone: "",
        code_sent: false,
        error: None,
        notice: None,
        status: StatusCode::OK,
        retry_after: None,
    };
    page(t, &client, id, &interaction, shown)
}

/// The texts and client of an interaction.
async fn start(
    app: &App,
    headers: &HeaderMap,
    interaction: &Interaction,
) -> Result<(&'static Texts, Client), Response> {
    let t = pages::texts(&interaction.request.ui_locales, headers);
    match find_client(app, Some(&interaction.request.client_id)).await {
        Ok(Some(c)) => Ok((t, c)),
        Ok(None) => Err(expired(t)),
        Err(e) => Err(server_error_page(t, &e)),
    }
}

/// `POST /login/sms/send`: a sign-in code to the number typed.
pub async fn send(
    State(app): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let form = pairs(&body);
    let t0 = pages::texts(&[], &headers);
    if !app.sms_enabled() {
        return expired(t0);
    }
    let Some((id, interaction)) = interaction_for(&app, &headers, &form, Step::Login).await else {
        return expired(t0);
    };
    let (t, client) = match start(&app, &headers, &interaction).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let context = request::context(&headers, &extensions);
    let phone = field(&form, "phone");
    let text = pages::sms_text(&app.config.sms, t);
    let sent = app
        .sms_login(&context)
        .send(&client, phone, text, app.now())
        .await;
    let shown = match sent {
        Ok(sent) => {
            let masked = Phone::parse(phone).map(|p| p.masked()).unwrap_or_default();
            Shown {
                phone,
                code_sent: true,
                error: None,
                notice: Some(
                    t.code_sent
                        .replace("{phone}", &masked)
                        .replace("{s}", &sent.resend_after.to_string()),
                ),
                status: StatusCode::OK,
                retry_after: None,
            }
        }
        Err(refused) => {
            // After "too soon" the earlier code is still good: keep its field.
            let code_sent = matches!(refused, SmsRefused::Send(SendRefused::TooSoon { .. }));
            match sms_refusal(t, refused) {
                Ok((status, text, after)) => Shown {
                    phone,
                    code_sent,
                    error: Some(text),
                    notice: None,
                    status,
                    retry_after: after,
                },
                Err(e) => return server_error_page(t, &e),
            }
        }
    };
    page(t, &client, &id, &interaction, shown)
}

/// `POST /login/sms`: sign in with the number and the code.
pub async fn login(
    State(app): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let form = pairs(&body);
    let t0 = pages::texts(&[], &headers);
    let Some((id, interaction)) = interaction_for(&app, &headers, &form, Step::Login).await else {
        return expired(t0);
    };
    let (t, client) = match start(&app, &headers, &interaction).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let context = request::context(&headers, &extensions);
    let previous = cookie(&app, &headers, cookies::SESSION);
    let phone = field(&form, "phone");
    let signed_in = app
        .sms_login(&context)
        .login(
            &client,
            phone,
            field(&form, "code"),
            previous.as_deref(),
            app.now(),
        )
        .await;
    let signed_in = match signed_in {
        Ok(signed_in) => signed_in,
        Err(refused) => {
            let (status, text, after) = match sms_refusal(t, refused) {
                Ok(r) => r,
                Err(e) => return server_error_page(t, &e),
            };
            let shown = Shown {
                phone,
                code_sent: true,
                error: Some(text),
                notice: None,
                status,
                retry_after: after,
            };
            return page(t, &client, &id, &interaction, shown);
        }
    };
    let next = Page {
        t,
        headers: &headers,
        context: &context,
    };
    continue_signed_in(&app, &next, &client, &id, interaction.request, signed_in).await
}
