//! RP-Initiated Logout 1.0: `GET|POST /logout` (the `end_session_endpoint`) and the confirmation
//! form behind it, with the front-channel iframes on the way out. The rules are in
//! `protocol::logout`.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::AppState;
use super::cookies::{self, BrowserBinding, cookie, genuine_form, set_cookie};
use super::error::{error_page, expired, server_error_page};
use super::pages::{
    self, LoggedOutPage, LogoutPage, MessagePage, Texts, allow_form_target, render,
};
use super::request::{field, pairs, params};
use crate::app::App;
use crate::crypto::random_token;
use crate::protocol::logout::{Decision, Ending, LogoutError, return_to};
use crate::protocol::session::{self, PendingLogout};

/// `GET|POST /logout`.
pub async fn end_session(
    State(app): State<AppState>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let params = params(&method, query.as_deref(), &body);
    let ui_locales: Vec<String> = crate::protocol::param(&params, "ui_locales")
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let t = pages::texts(&ui_locales, &headers);
    let secret = cookie(&app, &headers, cookies::SESSION);
    let ring = app.keys.ring();
    let decided = app
        .logouts(&ring)
        .decide(&params, secret.as_deref(), app.now())
        .await;
    let decision = match decided {
        Ok(d) => d,
        Err(LogoutError::Store(e)) => return server_error_page(t, &e),
        Err(e) => return error_page(t, StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let Decision {
        next,
        redirect,
        state,
    } = decision;
    if let Ending::Now { sid } = next {
        return finish(&app, t, sid, redirect, state).await;
    }
    ask(&app, t, &headers, redirect, state, ui_locales).await
}

/// Asks the person whether to log out (the confirmation posts to `/logout/confirm`), then goes
/// to `redirect`.
pub(super) async fn ask(
    app: &App,
    t: &'static Texts,
    headers: &HeaderMap,
    redirect: Option<String>,
    state: Option<String>,
    ui_locales: Vec<String>,
) -> Response {
    let id = random_token();
    let csrf = random_token();
    let browser = BrowserBinding::of(app, headers);
    let pending = PendingLogout {
        redirect: redirect.clone(),
        state,
        csrf: csrf.clone(),
        browser: browser.hash.clone(),
        ui_locales,
    };
    if let Err(e) = session::save_logout(app.ephemeral.as_ref(), &id, &pending).await {
        return server_error_page(t, &e);
    }
    let mut response = render(
        StatusCode::OK,
        &LogoutPage {
            t,
            interaction: &id,
            csrf: &csrf,
        },
    );
    if let Some(uri) = &redirect {
        allow_form_target(&mut response, uri);
    }
    browser.apply(&mut response);
    response
}

/// `POST /logout/confirm`.
pub async fn confirm(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = pairs(&body);
    let get = |name: &str| field(&form, name);
    let t0 = pages::texts(&[], &headers);
    let pending = match session::take_logout(app.ephemeral.as_ref(), get("interaction")).await {
        Ok(Some(p)) => p,
        Ok(None) => return expired(t0),
        Err(e) => return server_error_page(t0, &e),
    };
    let t = pages::texts(&pending.ui_locales, &headers);
    if !genuine_form(&app, &headers, get("csrf"), &pending.csrf, &pending.browser) {
        return expired(t);
    }
    if get("decision") != "logout" {
        return render(
            StatusCode::OK,
            &MessagePage {
                t,
                title: t.logout_title,
                message: t.stay_button,
            },
        );
    }
    let sid = cookie(&app, &headers, cookies::SESSION).map(|secret| session::sid_of(&secret));
    finish(&app, t, sid, pending.redirect, pending.state).await
}

/// Ends the session (if any), clears the cookie, and goes back to the client or says so here; when
/// clients asked for front-channel logout, the page loads their iframes first and then continues.
pub(super) async fn finish(
    app: &App,
    t: &'static Texts,
    sid: Option<String>,
    redirect: Option<String>,
    state: Option<String>,
) -> Response {
    let frames = match &sid {
        Some(sid) => {
            let ring = app.keys.ring();
            match app.logouts(&ring).end(sid, app.now()).await {
                Ok(frames) => frames,
                Err(e) => return server_error_page(t, &e),
            }
        }
        None => Vec::new(),
    };
    let next = return_to(redirect, state.as_deref());
    let mut response = match (next, frames.is_empty()) {
        (Some(target), true) => Redirect::to(&target).into_response(),
        (None, true) => render(
            StatusCode::OK,
            &MessagePage {
                t,
                title: t.logout_title,
                message: t.logged_out,
            },
        ),
        (next, false) => {
            let origins: Vec<String> = frames
                .iter()
                .filter_map(|f| {
                    url::Url::parse(f)
                        .ok()
                        .map(|u| u.origin().ascii_serialization())
                })
                .collect();
            let mut page = render(StatusCode::OK, &LoggedOutPage { t, frames, next });
            let csp = format!(
                "default-src 'none'; style-src 'self'; frame-src {}; frame-ancestors 'none'; base-uri 'none'",
                origins.join(" ")
            );
            if let Ok(v) = axum::http::HeaderValue::from_str(&csp) {
                page.headers_mut()
                    .insert(header::CONTENT_SECURITY_POLICY, v);
            }
            page
        }
    };
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(app, cookies::SESSION, "", Some(0)),
    );
    response
}
