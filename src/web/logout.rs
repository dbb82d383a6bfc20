//! RP-Initiated Logout 1.0: `GET|POST /logout` (the `end_session_endpoint`) and the confirmation
//! form behind it.
//!
//! §2: "At the Logout Endpoint, the OP SHOULD ask the End-User whether to log out of the OP as well.
//! ... If the OP is not able to validate the ID Token Hint or to determine that the logout request was
//! actually sent by the RP, the OP SHOULD ask the End-User". A request whose `id_token_hint` names the
//! current session (its `sid`) logs out at once; any other asks first. §3: the
//! `post_logout_redirect_uri` must exactly match one the client registered, and the client must be
//! identified (by the hint or `client_id`); otherwise the browser stays here.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::Value;

use super::AppState;
use super::authorize::find_client;
use super::cookies::{self, BrowserBinding, cookie, genuine_form, set_cookie};
use super::error::{error_page, server_error_page};
use super::pages::{
    self, LoggedOutPage, LogoutPage, MessagePage, Texts, allow_form_target, render,
};
use super::request::{field, pairs, params};
use crate::app::App;
use crate::crypto::random_token;
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
    let get = |name: &str| crate::protocol::param(&params, name);
    let ui_locales: Vec<String> = get("ui_locales")
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let t = pages::texts(&ui_locales, &headers);
    let mut names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return error_page(t, StatusCode::BAD_REQUEST, "a parameter is repeated");
    }
    // The hint may have expired: logout must still work (§2).
    let hint = match get("id_token_hint") {
        None => None,
        Some(token) => {
            let mut validation = jsonwebtoken::Validation {
                validate_exp: false,
                validate_aud: false,
                ..Default::default()
            };
            validation.set_issuer(&[app.config.server.issuer.as_str()]);
            match app.keys.ring().verify::<Value>(token, validation) {
                Ok((_, claims)) => Some(claims),
                Err(_) => {
                    return error_page(
                        t,
                        StatusCode::BAD_REQUEST,
                        "id_token_hint is not an ID token from this server",
                    );
                }
            }
        }
    };
    let hinted_client = hint.as_ref().and_then(|c| match &c["aud"] {
        Value::String(a) => Some(a.clone()),
        Value::Array(list) => list.first().and_then(Value::as_str).map(str::to_owned),
        _ => None,
    });
    let client_id = match (get("client_id"), hinted_client.as_deref()) {
        (Some(a), Some(b)) if a != b => {
            return error_page(
                t,
                StatusCode::BAD_REQUEST,
                "client_id does not match the id_token_hint",
            );
        }
        (Some(a), _) => Some(a.to_owned()),
        (None, b) => b.map(str::to_owned),
    };
    let client = match find_client(&app, client_id.as_deref()).await {
        Ok(c) => c,
        Err(e) => return server_error_page(t, &e),
    };
    let redirect = match get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => match &client {
            Some(c)
                if c.post_logout_redirect_uris()
                    .iter()
                    .any(|r| r.as_str() == uri) =>
            {
                Some(uri.to_owned())
            }
            _ => {
                return error_page(
                    t,
                    StatusCode::BAD_REQUEST,
                    "post_logout_redirect_uri is not registered for this client",
                );
            }
        },
    };
    let state = get("state").map(str::to_owned);
    let now = app.now();
    let secret = cookie(&app, &headers, cookies::SESSION);
    let current = match secret {
        Some(secret) => {
            match session::load(app.ephemeral.as_ref(), &secret, app.session_policy(), now).await {
                Ok(s) => s,
                Err(e) => return server_error_page(t, &e),
            }
        }
        None => None,
    };
    let tied = match (&hint, &current) {
        (Some(claims), Some((sid, _))) => claims["sid"].as_str() == Some(sid.as_str()),
        _ => false,
    };
    if tied || current.is_none() {
        // Nothing to ask: the RP proved the session, or there is no session to end.
        return finish(&app, t, current.map(|(sid, _)| sid), redirect, state).await;
    }
    let id = random_token();
    let csrf = random_token();
    let browser = BrowserBinding::of(&app, &headers);
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
        Ok(None) => return error_page(t0, StatusCode::BAD_REQUEST, t0.expired),
        Err(e) => return server_error_page(t0, &e),
    };
    let t = pages::texts(&pending.ui_locales, &headers);
    if !genuine_form(&app, &headers, get("csrf"), &pending.csrf, &pending.browser) {
        return error_page(t, StatusCode::BAD_REQUEST, t.expired);
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

/// Front-Channel Logout 1.0 §2: the iframes for the clients of the ending session that registered a
/// `frontchannel_logout_uri` (with `iss` and `sid` when they asked for them).
async fn front_channel_frames(app: &App, sid: &str) -> Vec<String> {
    let Ok(Some(session)) = session::get(app.ephemeral.as_ref(), sid).await else {
        return Vec::new();
    };
    let mut frames = Vec::new();
    for client_id in &session.clients {
        let Ok(id) = crate::domain::client::ClientId::parse(client_id) else {
            continue;
        };
        let Ok(Some(client)) = app.clients.client(&id).await else {
            continue;
        };
        let settings = client.settings();
        let Some(uri) = &settings.frontchannel_logout_uri else {
            continue;
        };
        let Ok(mut url) = url::Url::parse(uri) else {
            continue;
        };
        if settings.frontchannel_logout_session_required {
            url.query_pairs_mut()
                .append_pair("iss", &app.config.server.issuer)
                .append_pair("sid", sid);
        }
        frames.push(url.to_string());
    }
    frames
}

/// Ends the session (if any), clears the cookie, and goes back to the client or says so here; when
/// clients asked for front-channel logout, the page loads their iframes first and then continues.
async fn finish(
    app: &App,
    t: &'static Texts,
    sid: Option<String>,
    redirect: Option<String>,
    state: Option<String>,
) -> Response {
    let frames = match &sid {
        Some(sid) => front_channel_frames(app, sid).await,
        None => Vec::new(),
    };
    if let Some(sid) = &sid {
        let ended = app
            .sessions()
            .end(sid, session::EndReason::Logout, app.now())
            .await;
        if let Err(e) = ended {
            return server_error_page(t, &e);
        }
        tracing::info!(sid = %sid, "session ended by logout");
    }
    let next = redirect.map(|uri| {
        let mut target = uri;
        if let Some(state) = &state {
            let encoded = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("state", state)
                .finish();
            target.push(if target.contains('?') { '&' } else { '?' });
            target.push_str(&encoded);
        }
        target
    });
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
