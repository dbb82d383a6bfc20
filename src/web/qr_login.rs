//! Scan to sign in (`protocol::qr_login`): the login page's QR tab (`GET /login/qr`), the waiting
//! page's refresh (`GET /login/qr/wait`, a `<meta http-equiv="refresh">` every 2 s: no script, so the
//! pages' CSP stays as it is), what the QR code holds (`GET /qr`, a page telling a browser to use the
//! app), and the app's API (`GET|POST /api/v1/qr/{ticket}`, with the person's access token from a
//! client on the `app` channel): see what is asking, then confirm or refuse.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::api::token_person;
use super::authorize::{Page, continue_signed_in, find_client};
use super::cookies::{self, cookie};
use super::error::{api_error, bearer_error, expired, server_error_page};
use super::interaction::interaction_in_browser;
use super::pages::{self, NoticePage, QrLoginPage, Texts, allow_form_target, render};
use super::request::{self, field, pairs};
use super::{AppState, no_store_json};
use crate::app::App;
use crate::domain::account::{AccountId, AccountStatus};
use crate::domain::client::{Channel, Client};
use crate::domain::date::rfc3339;
use crate::protocol::audit::{AuditEvent, EventType};
use crate::protocol::qr_login::{self, Redeemed};
use crate::protocol::session::{Interaction, Step};

/// A new ticket and the page that shows it.
#[allow(clippy::too_many_arguments)]
async fn show_ticket(
    app: &App,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
    t: &'static Texts,
    client: &Client,
    id: &str,
    interaction: &Interaction,
    error: Option<&'static str>,
) -> Response {
    let context = request::context(headers, extensions);
    let opened = qr_login::open(
        app.ephemeral.as_ref(),
        id,
        &cookies::browser_hash(app, headers),
        client.id().as_str(),
        context.ip.clone(),
        app.now(),
    )
    .await;
    let ticket = match opened {
        Ok(t) => t,
        Err(e) => return server_error_page(t, &e),
    };
    ticket_page(app, t, client, (id, interaction), &ticket, error)
}

/// The QR tab showing `ticket`, refreshing itself every 2 s.
fn ticket_page(
    app: &App,
    t: &'static Texts,
    client: &Client,
    (id, interaction): (&str, &Interaction),
    ticket: &str,
    error: Option<&'static str>,
) -> Response {
    let base = app.config.server.issuer.trim_end_matches('/');
    let mut response = render(
        StatusCode::OK,
        &QrLoginPage {
            t,
            client_name: client.name(),
            interaction: id,
            ticket,
            qr_svg: pages::qr_svg(&format!("{base}/qr?ticket={ticket}")),
            error,
            sms: app.sms_enabled(),
        },
    );
    allow_form_target(&mut response, &interaction.request.redirect_uri);
    response
}

/// The pending login of this browser named by `id`, its language and its client; or the page to
/// answer with.
async fn pending_login(
    app: &App,
    headers: &HeaderMap,
    id: &str,
) -> Result<(Interaction, &'static Texts, Client), Response> {
    let t0 = pages::texts(&[], headers);
    let Some(interaction) = interaction_in_browser(app, headers, id, Step::Login).await else {
        return Err(expired(t0));
    };
    let t = pages::texts(&interaction.request.ui_locales, headers);
    match find_client(app, Some(&interaction.request.client_id)).await {
        Ok(Some(client)) => Ok((interaction, t, client)),
        Ok(None) => Err(expired(t)),
        Err(e) => Err(server_error_page(t, &e)),
    }
}

/// `GET /login/qr?interaction=...`.
pub async fn tab(
    State(app): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    RawQuery(query): RawQuery,
) -> Response {
    let params = pairs(query.as_deref().unwrap_or("").as_bytes());
    let id = field(&params, "interaction");
    let (interaction, t, client) = match pending_login(&app, &headers, id).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    show_ticket(
        &app,
        &headers,
        &extensions,
        t,
        &client,
        id,
        &interaction,
        None,
    )
    .await
}

/// `GET /login/qr/wait?interaction=...&ticket=...`: still waiting (the same page), refused or
/// expired (a new code), or confirmed: the browser signs in at the app session's level.
pub async fn wait(
    State(app): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    RawQuery(query): RawQuery,
) -> Response {
    let params = pairs(query.as_deref().unwrap_or("").as_bytes());
    let id = field(&params, "interaction");
    let ticket = field(&params, "ticket");
    let (interaction, t, client) = match pending_login(&app, &headers, id).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let now = app.now();
    let redeemed = qr_login::redeem(
        app.ephemeral.as_ref(),
        ticket,
        &cookies::browser_hash(&app, &headers),
        now,
    )
    .await;
    let (account_id, level) = match redeemed {
        Ok(Redeemed::SignIn { account_id, level }) => (account_id, level),
        Ok(Redeemed::Waiting) => {
            return ticket_page(&app, t, &client, (id, &interaction), ticket, None);
        }
        Ok(Redeemed::Refused) => {
            let error = Some(t.qr_refused);
            return show_ticket(
                &app,
                &headers,
                &extensions,
                t,
                &client,
                id,
                &interaction,
                error,
            )
            .await;
        }
        Ok(Redeemed::Gone) => {
            let error = Some(t.qr_expired);
            return show_ticket(
                &app,
                &headers,
                &extensions,
                t,
                &client,
                id,
                &interaction,
                error,
            )
            .await;
        }
        Err(e) => return server_error_page(t, &e),
    };
    let account = match AccountId::parse(&account_id) {
        Ok(aid) => match app.identities.account(&aid).await {
            Ok(Some(a)) if a.status == AccountStatus::Active => a,
            Ok(_) => return expired(t),
            Err(e) => return server_error_page(t, &e),
        },
        Err(_) => return expired(t),
    };
    let context = request::context(&headers, &extensions);
    let previous = cookie(&app, &headers, cookies::SESSION);
    let opened = app
        .password_login(&context)
        .open_session(
            &account,
            &client,
            previous.as_deref(),
            vec!["qr".into()],
            level.min(crate::protocol::assurance::TWO_FACTOR_CEILING),
            now,
        )
        .await;
    let signed_in = match opened {
        Ok(s) => s,
        Err(crate::protocol::login::Refused::Server(e)) => return server_error_page(t, &e),
        Err(_) => return expired(t),
    };
    let page = Page {
        t,
        headers: &headers,
        context: &context,
    };
    continue_signed_in(&app, &page, &client, id, interaction.request, signed_in).await
}

/// `GET /qr?ticket=...`: what the QR code holds, opened by a browser instead of the app.
pub async fn scanned_elsewhere(headers: HeaderMap) -> Response {
    let t = pages::texts(&[], &headers);
    render(
        StatusCode::OK,
        &NoticePage {
            t,
            title: t.tab_qr,
            message: t.qr_app_only,
            link: None,
        },
    )
}

/// `GET /api/v1/qr/{ticket}`: what is asking, for the app to show before the person confirms.
pub async fn api_view(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(ticket): Path<String>,
) -> Response {
    if let Err(r) = token_person(
        &app,
        &headers,
        &[Channel::App],
        "sign-in codes are confirmed only from the app",
    )
    .await
    {
        return r;
    }
    let waiting = match qr_login::waiting(app.ephemeral.as_ref(), &ticket, app.now()).await {
        Ok(w) => w,
        Err(e) => return bearer_error(crate::protocol::OAuthError::server(e)),
    };
    let Some(waiting) = waiting else {
        return api_error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such code, or it expired",
        );
    };
    let client = find_client(&app, Some(&waiting.client_id))
        .await
        .ok()
        .flatten();
    no_store_json(
        StatusCode::OK,
        json!({
            "service": client.as_ref().map(|c| c.name().to_owned()),
            "channel": client.as_ref().map(|c| c.settings().channel.as_str()),
            "address": waiting.ip,
            "time": rfc3339(waiting.created_at),
            "expires_in": (waiting.created_at + qr_login::TICKET_SECS as i64 - app.now()).max(0),
        }),
    )
}

/// `POST /api/v1/qr/{ticket}` with `{"decision": "confirm" | "refuse"}`.
pub async fn api_answer(
    State(app): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Path(ticket): Path<String>,
    body: Bytes,
) -> Response {
    let (account, level) = match token_person(
        &app,
        &headers,
        &[Channel::App],
        "sign-in codes are confirmed only from the app",
    )
    .await
    {
        Ok(p) => p,
        Err(r) => return r,
    };
    #[derive(serde::Deserialize)]
    struct Body {
        decision: String,
    }
    let confirm = match serde_json::from_slice::<Body>(&body).map(|b| b.decision) {
        Ok(d) if d == "confirm" => true,
        Ok(d) if d == "refuse" => false,
        _ => {
            return api_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the body is {\"decision\": \"confirm\" | \"refuse\"}",
            );
        }
    };
    let answer = confirm.then_some((account.as_str(), level));
    let answered = qr_login::answer(app.ephemeral.as_ref(), &ticket, answer, app.now()).await;
    match answered {
        Ok(true) => {}
        Ok(false) => {
            return api_error(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such code, or it expired",
            );
        }
        Err(e) => return bearer_error(crate::protocol::OAuthError::server(e)),
    }
    let context = request::context(&headers, &extensions);
    let event = if confirm {
        AuditEvent::success(EventType::QrLogin)
    } else {
        AuditEvent::failure(EventType::QrLogin, "refused")
    }
    .actor(account.as_str());
    if let Err(e) = app.audit(&context).record(event).await {
        return bearer_error(e);
    }
    no_store_json(
        StatusCode::OK,
        json!({ "status": if confirm { "confirmed" } else { "refused" } }),
    )
}
