//! HTTP with axum: the router (one line per route), middleware, health and metrics endpoints, and
//! the one mapping of errors to responses ([`error`]). Handlers are extract -> protocol -> respond;
//! they hold no rules of their own.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};

use crate::protocol::discovery;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::app::App;

pub mod client_ip;
pub mod error;
pub mod health;
pub mod logout;
pub mod middleware;
pub mod oidc;
pub mod pages;

/// The shared state every handler receives.
pub type AppState = Arc<App>;

/// All routes of the server with their middleware.
pub fn router(app: AppState) -> Router {
    with_middleware(routes(), app)
}

/// The routes alone, still waiting for their state: tests add routes of their own before
/// [`with_middleware`].
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/.well-known/openid-configuration", get(oidc::discovery))
        .route(
            "/.well-known/oauth-authorization-server",
            get(oidc::discovery),
        )
        .route(discovery::JWKS, get(oidc::jwks))
        .route(
            discovery::AUTHORIZE,
            get(oidc::authorize).post(oidc::authorize),
        )
        .route("/login", post(oidc::login))
        .route("/consent", post(oidc::consent))
        .route("/select-org", post(oidc::select_org))
        .route(discovery::TOKEN, post(oidc::token))
        .route(discovery::INTROSPECT, post(oidc::introspect))
        .route(
            discovery::END_SESSION,
            get(logout::end_session).post(logout::end_session),
        )
        .route("/logout/confirm", post(logout::confirm))
        .route(discovery::REVOKE, post(oidc::revoke))
        .route(
            discovery::USERINFO,
            get(oidc::userinfo).post(oidc::userinfo),
        )
        .route("/static/yihao.css", get(pages::stylesheet))
        .route("/static/form_post.js", get(pages::form_post_script))
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
