//! Metadata: `GET /.well-known/openid-configuration` (OIDC Discovery §4) and
//! `/.well-known/oauth-authorization-server` (RFC 8414 §3), the same document, rendered once at
//! start-up; and `GET /jwks` (RFC 7517 §5), the keys that verify yihao's tokens.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::AppState;

/// `GET /jwks`: every published key (keys published before they sign, and kept after they retire).
pub async fn jwks(State(app): State<AppState>) -> Response {
    let mut response = axum::Json(app.keys.ring().jwks(app.now())).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

/// `GET /.well-known/openid-configuration` and `/.well-known/oauth-authorization-server`.
pub async fn discovery(State(app): State<AppState>) -> Response {
    let mut response = app.discovery.clone().into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}
