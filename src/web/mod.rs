//! HTTP with axum: the router (one line per route), one file per endpoint group ([`metadata`],
//! [`authorize`], [`interaction`], [`token`], [`userinfo`], [`logout`], [`health`]), request and
//! cookie helpers ([`request`], [`cookies`]), pages ([`pages`]), middleware, and every error
//! response ([`error`]). Handlers are extract -> protocol -> respond; they hold no rules of their
//! own and read the time only from the app's clock.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::protocol::cas::Endpoint;

use crate::protocol::discovery;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::app::App;

pub mod account;
pub mod account_factors;
pub mod admin_api;
pub mod api;
pub mod authorize;
pub mod cas;
pub mod client_ip;
pub mod client_registration;
pub mod console;
pub mod cookies;
pub mod device;
pub mod enterprise;
pub mod error;
pub mod health;
pub mod identity_code;
pub mod interaction;
pub mod logout;
pub mod metadata;
pub mod middleware;
pub mod pages;
pub mod proofing;
pub mod qr_login;
pub mod recover;
pub mod register;
pub mod request;
pub mod sms_login;
pub mod step_up;
pub mod token;
pub mod userinfo;

/// The shared state every handler receives.
pub type AppState = Arc<App>;

/// All routes of the server with their middleware.
pub fn router(app: AppState) -> Router {
    with_middleware(routes(), app)
}

/// The routes alone, still waiting for their state: tests add routes of their own before
/// [`with_middleware`].
pub fn routes() -> Router<AppState> {
    let (admin, openapi) = admin_api::routes();
    // Rendered once: the document describes the routes, which do not change while serving.
    let openapi = openapi.to_json().unwrap_or_default();
    Router::new()
        .merge(admin)
        .route(
            admin_api::OPENAPI,
            get(move || std::future::ready(openapi_document(openapi.clone()))),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route(
            "/.well-known/openid-configuration",
            get(metadata::discovery),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(metadata::discovery),
        )
        .route(discovery::JWKS, get(metadata::jwks))
        .route(
            discovery::AUTHORIZE,
            get(authorize::authorize).post(authorize::authorize),
        )
        .route(
            "/login",
            get(interaction::login_page).post(interaction::login),
        )
        .route("/login/sms", get(sms_login::tab).post(sms_login::login))
        .route("/login/sms/send", post(sms_login::send))
        .route("/login/qr", get(qr_login::tab))
        .route("/login/qr/wait", get(qr_login::wait))
        .route("/qr", get(qr_login::scanned_elsewhere))
        .route(
            "/api/v1/qr/{ticket}",
            get(qr_login::api_view).post(qr_login::api_answer),
        )
        .route("/api/v1/identity-code", post(identity_code::issue))
        .route("/api/v1/releases", get(identity_code::releases))
        .route("/device", get(device::page))
        .route("/device/qr.svg", get(device::qr))
        .route("/login/second-factor", post(step_up::second_factor))
        .route("/login/passkey", post(step_up::login))
        .route("/login/proofing", post(step_up::proofing))
        .route("/api/v1/proofing/face", post(proofing::face))
        .route(
            discovery::REGISTRATION,
            axum::routing::post(client_registration::register),
        )
        .route(
            "/connect/register/{client_id}",
            get(client_registration::read)
                .put(client_registration::replace)
                .delete(client_registration::delete),
        )
        .route("/cas/login", get(cas::login))
        .route("/cas/logout", get(cas::logout))
        .route("/cas/validate", cas::validation(Endpoint::Validate, false))
        .route(
            "/cas/serviceValidate",
            cas::validation(Endpoint::ServiceValidate, false),
        )
        .route(
            "/cas/p3/serviceValidate",
            cas::validation(Endpoint::ServiceValidate, true),
        )
        .route(
            "/cas/proxyValidate",
            cas::validation(Endpoint::ProxyValidate, false),
        )
        .route(
            "/cas/p3/proxyValidate",
            cas::validation(Endpoint::ProxyValidate, true),
        )
        .route("/register", get(register::form).post(register::start))
        .route("/register/resend", post(register::resend))
        .route("/register/complete", post(register::complete))
        .route("/recover", get(recover::form).post(recover::start))
        .route("/admin", get(console::home))
        .route("/admin/callback", get(console::callback))
        .route("/admin/logout", post(console::logout))
        .route(
            "/admin/clients",
            get(console::clients).post(console::create_client),
        )
        .route("/admin/accounts", get(console::accounts))
        .route(
            "/admin/accounts/recovery-code",
            post(console::account_recovery_code),
        )
        .route("/admin/clients/{id}", get(console::client))
        .route("/admin/clients/{id}/approve", post(console::approve_client))
        .route("/admin/orgs", get(console::orgs).post(console::create_org))
        .route("/admin/orgs/{org}", get(console::org))
        .route("/admin/orgs/{org}/{change}", post(console::org_change))
        .route("/admin/settings", get(console::settings))
        .route("/admin/accounts/status", post(console::account_status))
        .route("/admin/accounts/reveal", post(console::account_reveal))
        .route("/admin/keys", get(console::keys).post(console::rotate_key))
        .route("/admin/keys/retire", post(console::retire_key))
        .route(
            "/admin/roles",
            get(console::roles).post(console::grant_role),
        )
        .route("/admin/roles/revoke", post(console::revoke_role))
        .route("/admin/reports", get(console::reports))
        .route("/admin/audit", get(console::audit))
        .route("/admin/audit/verify", post(console::audit_verify))
        .route("/account", get(account::page))
        .route("/account/callback", get(account::callback))
        .route("/account/sessions/end", post(account::end_session))
        .route("/account/services/withdraw", post(account::withdraw))
        .route("/account/password", post(account::change_password))
        .route("/account/phone", post(account::phone_start))
        .route("/account/close", post(account::close))
        .route("/account/factors", post(account_factors::manage))
        .route(
            "/account/factors/totp/confirm",
            post(account_factors::confirm_totp),
        )
        .route(
            "/account/factors/passkey/confirm",
            post(account_factors::confirm_passkey),
        )
        .route("/account/phone/confirm", post(account::phone_confirm_post))
        .route("/account/ledger.csv", get(account::ledger_export))
        .route("/account/org", post(enterprise::register))
        .route("/account/org/{code}", get(enterprise::page))
        .route("/account/org/{code}/appoint", post(enterprise::appoint))
        .route("/account/org/{code}/revoke", post(enterprise::revoke))
        .route("/account/ledger.json", get(account::ledger_export))
        .route("/recover/resend", post(recover::resend))
        .route("/recover/complete", post(recover::complete))
        .route("/consent", post(interaction::consent))
        .route("/select-org", post(interaction::select_org))
        .route(discovery::TOKEN, post(token::token))
        .route(
            discovery::DEVICE_AUTHORIZATION,
            post(token::device_authorization),
        )
        .route(discovery::INTROSPECT, post(token::introspect))
        .route(
            discovery::END_SESSION,
            get(logout::end_session).post(logout::end_session),
        )
        .route("/logout/confirm", post(logout::confirm))
        .route(discovery::REVOKE, post(token::revoke))
        .route(
            discovery::USERINFO,
            get(userinfo::userinfo).post(userinfo::userinfo),
        )
        .route("/static/yihao.css", get(pages::stylesheet))
        .route("/static/form_post.js", get(pages::form_post_script))
        .route("/static/passkey.js", get(pages::passkey_script))
        .fallback(error::not_found)
}

/// Finishes a router built from [`routes`]: state, then the middleware stack. Outermost first:
/// request id + span + metrics + access log; security headers (HSTS when serving TLS); time limit;
/// body size limit; strict parameters (UTF-8, length, number, form content type).
pub fn with_middleware(routes: Router<AppState>, app: AppState) -> Router {
    let server = &app.config.server;
    // `Router::layer` wraps what is already there, so the innermost layer comes first.
    let router = routes
        .with_state(app.clone())
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            middleware::strict_params,
        ))
        .layer(RequestBodyLimitLayer::new(server.body_limit_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(server.request_timeout_secs),
        ))
        .layer(middleware::security_headers());
    let router = match middleware::hsts(&server.tls) {
        Some(hsts) => router.layer(hsts),
        None => router,
    };
    router.layer(axum::middleware::from_fn_with_state(
        app,
        middleware::observe,
    ))
}

/// The admin API's OpenAPI document.
fn openapi_document(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A JSON answer that is never cached (RFC 6749 §5.1: "Cache-Control: no-store" and "Pragma:
/// no-cache" on responses carrying tokens or other sensitive information).
pub fn no_store_json(status: StatusCode, body: serde_json::Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
