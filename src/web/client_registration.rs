//! Dynamic Client Registration: `POST /connect/register` (RFC 7591 §3) and the client configuration
//! endpoint `GET|PUT|DELETE /connect/register/{client_id}` (RFC 7592 §2). The rules are in
//! `protocol::admin::registration`; docs/integration/registration.md.
//!
//! RFC 7591 §3: "The client sends an HTTP POST to the client registration endpoint with a content
//! type of "application/json"" and, where the server requires one, the initial access token as a
//! bearer token (RFC 6750). §2: "The authorization server MUST ignore any client metadata sent by
//! the client that it does not understand". §3.2.1: the answer is 201 with the client's information.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use crate::app::App;
use crate::protocol::admin::Actor;
use crate::protocol::admin::clients::ClientChange;
use crate::protocol::admin::registration::{Registered, RegistrationError};
use crate::protocol::discovery::REGISTRATION;

/// The metadata this server understands (RFC 7591 §2 and the OpenID and logout registrations'
/// names); every other member is ignored, as §2 requires.
const UNDERSTOOD: [&str; 24] = [
    "client_id",
    "client_name",
    "redirect_uris",
    "post_logout_redirect_uris",
    "grant_types",
    "scope",
    "token_endpoint_auth_method",
    "first_party",
    "id_token_signed_response_alg",
    "access_token_signed_response_alg",
    "access_token_lifetime",
    "id_token_lifetime",
    "full_phone",
    "pkce_optional",
    "min_level",
    "jwks",
    "jwks_uri",
    "backchannel_logout_uri",
    "backchannel_logout_session_required",
    "frontchannel_logout_uri",
    "frontchannel_logout_session_required",
    "cas_services",
    "channel",
    "department",
];

/// The bearer token of `Authorization` (RFC 6750 §2.1).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("Bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The registration request's JSON as a change: members this server does not understand dropped,
/// `response_types` checked (RFC 7591 §2.1: this server has the code response type only).
fn metadata(body: &Bytes) -> Result<ClientChange, RegistrationError> {
    let bad = |why: String| RegistrationError::InvalidClientMetadata(why);
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| bad(format!("the body is not a JSON object ({e})")))?;
    let Value::Object(mut members) = value else {
        return Err(bad("the body is not a JSON object".into()));
    };
    if let Some(types) = members.get("response_types") {
        let only_code = types
            .as_array()
            .is_some_and(|t| t.iter().all(|v| v == "code"));
        if !only_code {
            return Err(bad(
                "response_types: this server answers the code response type only".into(),
            ));
        }
    }
    members.retain(|name, _| UNDERSTOOD.contains(&name.as_str()));
    serde_json::from_value(Value::Object(members)).map_err(|e| bad(e.to_string()))
}

/// The registration access token of a management request (RFC 7592 §3).
fn access_token(headers: &HeaderMap) -> Result<&str, RegistrationError> {
    bearer(headers).ok_or(RegistrationError::InvalidToken(
        "the registration access token is required",
    ))
}

fn answer(status: StatusCode, registered: &Registered) -> Response {
    let mut response = (status, axum::Json(registered)).into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// RFC 7591 §3.2.2 and RFC 6750 §3.1.
fn refused(e: RegistrationError) -> Response {
    let (status, code) = match &e {
        RegistrationError::InvalidToken(_) => (StatusCode::UNAUTHORIZED, "invalid_token"),
        RegistrationError::InvalidRedirectUri(_) => {
            (StatusCode::BAD_REQUEST, "invalid_redirect_uri")
        }
        RegistrationError::InvalidClientMetadata(_) => {
            (StatusCode::BAD_REQUEST, "invalid_client_metadata")
        }
        RegistrationError::Server(inner) => {
            tracing::error!(error = %crate::telemetry::ErrorChain(inner), "client registration failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "server_error")
        }
    };
    let description = match &e {
        RegistrationError::Server(_) => "the server failed; try again".to_owned(),
        other => other.to_string(),
    };
    let mut response = super::no_store_json(
        status,
        json!({ "error": code, "error_description": description }),
    );
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"yihao\", error=\"invalid_token\""),
        );
    }
    response
}

fn base(app: &App) -> String {
    format!("{}{REGISTRATION}", app.config.server.issuer)
}

/// `POST /connect/register`.
pub async fn register(
    State(app): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let Some(token) = bearer(&headers) else {
        return refused(RegistrationError::InvalidToken(
            "an initial access token from an administrator is required",
        ));
    };
    let change = match metadata(&body) {
        Ok(c) => c,
        Err(e) => return refused(e),
    };
    let context = super::request::context(&headers, &extensions);
    let ops = app.administration(&Actor::Operator, &context);
    match ops
        .register_client(token, &change, &base(&app), app.now())
        .await
    {
        Ok(registered) => answer(StatusCode::CREATED, &registered),
        Err(e) => refused(e),
    }
}

/// `GET /connect/register/{client_id}` (RFC 7592 §2.1).
pub async fn read(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Response {
    let token = match access_token(&headers) {
        Ok(t) => t,
        Err(e) => return refused(e),
    };
    let context = super::request::context(&headers, &extensions);
    let ops = app.administration(&Actor::Operator, &context);
    match ops.registered_client(&id, token, &base(&app)).await {
        Ok(registered) => answer(StatusCode::OK, &registered),
        Err(e) => refused(e),
    }
}

/// `PUT /connect/register/{client_id}` (RFC 7592 §2.2).
pub async fn replace(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let token = match access_token(&headers) {
        Ok(t) => t,
        Err(e) => return refused(e),
    };
    let change = match metadata(&body) {
        Ok(c) => c,
        Err(e) => return refused(e),
    };
    let context = super::request::context(&headers, &extensions);
    let ops = app.administration(&Actor::Operator, &context);
    match ops
        .replace_registered_client(&id, token, &change, &base(&app), app.now())
        .await
    {
        Ok(registered) => answer(StatusCode::OK, &registered),
        Err(e) => refused(e),
    }
}

/// `DELETE /connect/register/{client_id}` (RFC 7592 §2.3: "204 No Content").
pub async fn delete(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Response {
    let token = match access_token(&headers) {
        Ok(t) => t,
        Err(e) => return refused(e),
    };
    let context = super::request::context(&headers, &extensions);
    let ops = app.administration(&Actor::Operator, &context);
    match ops.delete_registered_client(&id, token).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => refused(e),
    }
}
