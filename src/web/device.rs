//! The person's side of the device authorization grant (RFC 8628 §3.3): `GET /device` (type the
//! user code, or arrive with it from `verification_uri_complete`), `GET /device/qr.svg` (the QR code
//! of `verification_uri_complete`, for kiosks that cannot draw one), and the end of the approval.
//!
//! A user code found pending becomes an authorization request made by yihao for the device's
//! client, so the person goes through the same pages as any sign-in: SSO, step-up to the level the
//! client needs, and a consent page that always shows and names the device and where it stands
//! (RFC 8628 §5.4, remote phishing: "the authorization server SHOULD ... display information about
//! the device"). It ends on a page here instead of at a redirect URI.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::authorize::{Page, find_client, proceed};
use super::cookies::{self, cookie};
use super::error::{server_error_page, too_many};
use super::pages::{self, DevicePage, NoticePage, Texts, render};
use super::request::{self, field, pairs};
use crate::app::App;
use crate::domain::client::Client;
use crate::protocol::OAuthError;
use crate::protocol::audit::{AuditEvent, EventType};
use crate::protocol::authorize::{AuthorizeRequest, Prompt};
use crate::protocol::device;
use crate::protocol::limits::{self, Verdict};
use crate::protocol::session::Session;

/// `GET /device` and `GET /device?user_code=...`.
pub async fn page(
    State(app): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    RawQuery(query): RawQuery,
) -> Response {
    let params = pairs(query.as_deref().unwrap_or("").as_bytes());
    let typed = field(&params, "user_code").trim();
    let t = pages::texts(&[], &headers);
    let show = |status: StatusCode, error: Option<&'static str>| {
        render(
            status,
            &DevicePage {
                t,
                user_code: typed,
                error,
            },
        )
    };
    if typed.is_empty() {
        return show(StatusCode::OK, None);
    }
    let context = request::context(&headers, &extensions);
    let now = app.now();
    // Guessing user codes: at most `limits.device_user_codes_per_ip_per_min` per address.
    if let Some(source) = context.source() {
        let rule = limits::Rule {
            name: "device_user_code",
            limit: app.config.limits.device_user_codes_per_ip_per_min,
            window_secs: 60,
        };
        match limits::hit(app.ephemeral.as_ref(), rule, &source, now).await {
            Ok(Verdict::Allowed) => {}
            Ok(Verdict::Limited(limited)) => return too_many(t, limited.retry_after),
            Err(e) => return server_error_page(t, &e),
        }
    }
    let found = match device::pending(app.ephemeral.as_ref(), typed, now).await {
        Ok(found) => found,
        Err(e) => return server_error_page(t, &e),
    };
    let Some((key, grant)) = found else {
        let audited = app
            .audit(&context)
            .record(AuditEvent::failure(
                EventType::DeviceApproval,
                "unknown_user_code",
            ))
            .await;
        if let Err(e) = audited {
            return server_error_page(t, &e);
        }
        return show(StatusCode::NOT_FOUND, Some(t.device_code_unknown));
    };
    let client = match find_client(&app, Some(&grant.client_id)).await {
        Ok(Some(c)) => c,
        Ok(None) => return show(StatusCode::NOT_FOUND, Some(t.device_code_unknown)),
        Err(e) => return server_error_page(t, &e),
    };
    // The consent page always shows: it names the device (RFC 8628 §5.4).
    let prompt = Prompt {
        consent: true,
        ..Prompt::default()
    };
    let request = AuthorizeRequest {
        device: Some(key),
        ..AuthorizeRequest::internal(&grant.client_id, String::new(), grant.scopes, prompt)
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
    let page = Page {
        t,
        headers: &headers,
        context: &context,
    };
    proceed(&app, &page, &client, request, current, false).await
}

/// The approval: the device grant records what the token request will issue, and the person is
/// told to go back to the device.
pub(super) async fn approve(
    app: &App,
    t: &'static Texts,
    client: &Client,
    request: &AuthorizeRequest,
    key: &str,
    (sid, session): (&str, Session),
    org: Option<serde_json::Value>,
) -> Response {
    let now = app.now();
    let ring = app.keys.ring();
    let grant = app
        .interactions(&ring)
        .grant_for(client, request, sid, session, org, now)
        .await;
    let decided = match grant {
        Ok(grant) => {
            device::decide(
                app.ephemeral.as_ref(),
                app.device_settings(),
                key,
                Some(grant),
                now,
            )
            .await
        }
        Err(e) => Err(e),
    };
    match decided {
        Ok(true) => notice(t, t.device_approved_title, t.device_approved),
        Ok(false) => notice(t, t.device_denied_title, t.device_code_unknown),
        Err(e) => server_error_page(t, &e),
    }
}

/// The person declined (or the request cannot go on): the device's next poll is `access_denied`.
pub(super) async fn deny(
    app: &App,
    t: &'static Texts,
    request: &AuthorizeRequest,
    error: &OAuthError,
) -> Response {
    if let Some(key) = &request.device {
        let denied = device::decide(
            app.ephemeral.as_ref(),
            app.device_settings(),
            key,
            None,
            app.now(),
        )
        .await;
        if let Err(e) = denied {
            return server_error_page(t, &e);
        }
    }
    tracing::info!(error = error.code.as_str(), "device grant not approved");
    notice(t, t.device_denied_title, t.device_denied)
}

fn notice(t: &'static Texts, title: &str, message: &str) -> Response {
    render(
        StatusCode::OK,
        &NoticePage {
            t,
            title,
            message,
            link: None,
        },
    )
}

/// `GET /device/qr.svg?user_code=...`: the QR code of `verification_uri_complete` for a code that
/// is pending (a kiosk shows it; the person's phone opens it).
pub async fn qr(State(app): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let params = pairs(query.as_deref().unwrap_or("").as_bytes());
    let Some(code) = device::normalise_user_code(field(&params, "user_code")) else {
        return (StatusCode::NOT_FOUND, "no such code").into_response();
    };
    match device::pending(app.ephemeral.as_ref(), &code, app.now()).await {
        Ok(Some(_)) => {}
        Ok(None) => return (StatusCode::NOT_FOUND, "no such code").into_response(),
        Err(_) => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
    let base = app.config.server.issuer.trim_end_matches('/');
    let url = format!(
        "{base}/device?user_code={}",
        device::display_user_code(&code)
    );
    let mut response = pages::qr_svg(&url).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
