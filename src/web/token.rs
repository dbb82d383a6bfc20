//! The endpoints clients call with their credentials: `POST /token` (RFC 6749 §3.2),
//! `POST /introspect` (RFC 7662 §2) and `POST /revoke` (RFC 7009 §2). Each is one call to
//! `protocol::token_endpoint`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::Value;

use super::error::client_error;
use super::request::{self, pairs};
use super::{AppState, no_store_json};
use crate::protocol::OAuthError;

/// Which of the three endpoints.
#[derive(Clone, Copy)]
enum Endpoint {
    Token,
    DeviceAuthorization,
    Introspect,
    Revoke,
}

async fn answer(
    app: AppState,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
    endpoint: Endpoint,
) -> Response {
    let context = request::context(&headers, &extensions);
    let params = pairs(&body);
    let authorization = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    let ring = app.keys.ring();
    let calls = app.token_endpoint(&ring, &context);
    let now = app.now();
    let result: Result<Value, OAuthError> = match endpoint {
        Endpoint::Token => calls.token(&params, authorization, now).await,
        Endpoint::DeviceAuthorization => {
            calls
                .device_authorization(&params, authorization, now)
                .await
        }
        Endpoint::Introspect => calls.introspect(&params, authorization, now).await,
        Endpoint::Revoke => calls.revoke(&params, authorization, now).await,
    };
    match result {
        Ok(body) => no_store_json(StatusCode::OK, body),
        Err(e) => client_error(e, authorization.is_some()),
    }
}

/// `POST /token`.
pub async fn token(
    State(app): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    answer(app, headers, extensions, body, Endpoint::Token).await
}

/// `POST /device_authorization` (RFC 8628 §3.1).
pub async fn device_authorization(
    State(app): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    answer(
        app,
        headers,
        extensions,
        body,
        Endpoint::DeviceAuthorization,
    )
    .await
}

/// `POST /introspect`.
pub async fn introspect(
    State(app): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    answer(app, headers, extensions, body, Endpoint::Introspect).await
}

/// `POST /revoke`.
pub async fn revoke(
    State(app): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    answer(app, headers, extensions, body, Endpoint::Revoke).await
}
