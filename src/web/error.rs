//! Every HTTP error response is built here:
//! - OAuth errors as RFC 6749 §5.2 JSON (`invalid_client` -> 401 with `WWW-Authenticate`, a rate
//!   limit -> 429 with `Retry-After`);
//! - bearer-token errors as RFC 6750 §3 (`WWW-Authenticate: Bearer`);
//! - authorization errors, shown to the person until the client and its redirect URI are known,
//!   redirected to the client after (RFC 6749 §4.1.2.1);
//! - the strict-parameters refusals (400, 413, 415);
//! - error pages for people, and 404.
//!
//! A server error is logged with its cause and the cause's sources; the client sees only
//! `server_error`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::pages::{ErrorPage, Texts, render};
use crate::protocol::authorize::AuthorizeError;
use crate::protocol::{ErrorCode, OAuthError};
use crate::telemetry::ErrorChain;

fn log(e: &OAuthError, status: StatusCode) {
    if let Some(cause) = &e.cause {
        let cause = ErrorChain(cause.as_ref());
        if status.is_server_error() {
            tracing::error!(code = %e.code, cause = %cause, "request failed");
        } else {
            tracing::info!(code = %e.code, cause = %cause, "request refused");
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = match self.code {
            _ if self.retry_after.is_some() => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
            ErrorCode::InsufficientScope | ErrorCode::AccessDenied => StatusCode::FORBIDDEN,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        log(&self, status);
        let body = json!({ "error": self.code.as_str(), "error_description": self.description });
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        // RFC 6749 §5.1: responses carrying tokens or errors about them are not cached.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        response
    }
}

/// An error of an endpoint that authenticates clients (token, introspection, revocation).
/// RFC 6749 §5.2 `invalid_client`: "If the client attempted to authenticate via the "Authorization"
/// request header field, the authorization server MUST respond with an HTTP 401 (Unauthorized)
/// status code and include the "WWW-Authenticate" response header field matching the
/// authentication scheme used by the client" — here with the error in the challenge (RFC 6750
/// §3-style `error` and `error_description` parameters), so a client library can tell
/// `invalid_client` from anything else (security review 21). A client that authenticated in the
/// body (or not at all) gets 400, as §5.2 allows: a 401 must carry a challenge (RFC 9110 §15.5.2),
/// and a challenge for a scheme the client did not use would be wrong.
pub fn client_error(e: OAuthError, used_authorization_header: bool) -> Response {
    let challenge = (e.code == ErrorCode::InvalidClient && used_authorization_header).then(|| {
        let quoted = e.description.replace('\\', "\\\\").replace('"', "\\\"");
        format!("Basic realm=\"yihao\", error=\"invalid_client\", error_description=\"{quoted}\"")
    });
    let mut response = e.into_response();
    if let Some(challenge) = challenge
        && let Ok(value) = HeaderValue::from_str(&challenge)
    {
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// RFC 6750 §3: 401 with `WWW-Authenticate: Bearer` (with the error code when a token was given),
/// 403 for insufficient_scope.
pub fn bearer_error(e: OAuthError) -> Response {
    let (status, challenge) = match e.code {
        ErrorCode::InvalidRequest => (
            StatusCode::UNAUTHORIZED,
            "Bearer realm=\"yihao\"".to_owned(),
        ),
        ErrorCode::InsufficientScope => (
            StatusCode::FORBIDDEN,
            "Bearer realm=\"yihao\", error=\"insufficient_scope\"".to_owned(),
        ),
        ErrorCode::ServerError => return e.into_response(),
        _ => (
            StatusCode::UNAUTHORIZED,
            format!("Bearer realm=\"yihao\", error=\"{}\"", e.code.as_str()),
        ),
    };
    log(&e, status);
    let mut response = super::no_store_json(
        status,
        json!({"error": e.code.as_str(), "error_description": e.description}),
    );
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
}

/// A refused request before any handler (strict parameters): `invalid_request` with `status`
/// (400, 413 or 415).
pub fn refused(status: StatusCode, description: String) -> Response {
    let mut response = OAuthError::new(ErrorCode::InvalidRequest, description).into_response();
    *response.status_mut() = status;
    response
}

/// An error shown to the person (never redirected).
pub fn error_page(t: &Texts, status: StatusCode, message: &str) -> Response {
    render(status, &ErrorPage { t, message })
}

/// The page for a form whose interaction expired, or that came from another browser or without its
/// CSRF token: 400, saying only that the page expired.
/// An error of the JSON APIs of the app and kiosks (`/api/`), in the OAuth error shape.
pub fn api_error(status: StatusCode, code: &str, description: &str) -> Response {
    crate::web::no_store_json(
        status,
        serde_json::json!({ "error": code, "error_description": description }),
    )
}

pub fn expired(t: &Texts) -> Response {
    error_page(t, StatusCode::BAD_REQUEST, t.expired)
}

/// 429 with `Retry-After`: the person's address opened too many pages (RFC 6585 §4).
pub fn too_many(t: &Texts, retry_after: u64) -> Response {
    let mut response = error_page(t, StatusCode::TOO_MANY_REQUESTS, t.too_many);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

/// A page for a server failure: the cause, with its sources, goes to the log only.
pub fn server_error_page(t: &Texts, cause: &(dyn std::error::Error + 'static)) -> Response {
    tracing::error!(cause = %ErrorChain(cause), "request failed");
    error_page(
        t,
        StatusCode::INTERNAL_SERVER_ERROR,
        if t.chinese {
            "服务器内部错误。"
        } else {
            "The server failed."
        },
    )
}

/// An authorization error: shown to the person, or sent to the client's redirect URI in the
/// request's response mode with `state` and `iss` (RFC 9207).
pub fn authorize_error(issuer: &str, t: &'static Texts, e: AuthorizeError) -> Response {
    match e {
        AuthorizeError::ShowToUser(message) => error_page(t, StatusCode::BAD_REQUEST, &message),
        AuthorizeError::RedirectToClient {
            redirect_uri,
            mode,
            state,
            error,
        } => {
            let mut fields = vec![
                ("error", error.code.as_str()),
                ("error_description", error.description.as_str()),
            ];
            if let Some(state) = &state {
                fields.push(("state", state));
            }
            fields.push(("iss", issuer));
            super::authorize::authorization_response(t, &redirect_uri, mode, &fields)
        }
    }
}

/// A page that could not be rendered: 500 in plain text (the page itself is what failed).
pub fn render_failed(e: &askama::Error) -> Response {
    tracing::error!(error = %ErrorChain(e), "cannot render a page");
    (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
}

/// `/metrics` without its token: 401 with a Bearer challenge (RFC 6750 §3).
pub fn metrics_unauthorized() -> Response {
    let mut response = (
        StatusCode::UNAUTHORIZED,
        Json(json!({ "error": "invalid_token", "error_description": "the metrics token is required" })),
    )
        .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"metrics\""),
    );
    response
}

/// Unknown paths: 404 with a JSON body naming the problem.
pub async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "error": "not_found", "error_description": "no such endpoint" })),
    )
        .into_response()
}

/// The admin API's one error shape (docs/administration.md): `{"error", "error_description"}`,
/// as OAuth's (RFC 6749 §5.2), with the codes `invalid_request` (400), `invalid_token` (401),
/// `insufficient_user_authentication` (401, RFC 9470 §3), `insufficient_scope` and `access_denied`
/// (403), `not_found` (404), `conflict` (409), `temporarily_unavailable` (503), `server_error` (500).
pub fn admin_error(e: crate::protocol::admin::AdminError) -> Response {
    use crate::protocol::admin::AdminError as E;
    let (status, code) = match &e {
        E::Invalid { .. } => (StatusCode::BAD_REQUEST, "invalid_request"),
        E::Denied(_) => (StatusCode::FORBIDDEN, "access_denied"),
        E::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        E::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
        E::Busy => (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable"),
        E::Server(..) => {
            tracing::error!(cause = %ErrorChain(&e), "admin request failed");
            return api_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "the server could not complete the request",
            );
        }
    };
    api_error(status, code, &e.to_string())
}

/// RFC 9470 §3: the token's authentication is too weak for the resource: 401 with
/// `WWW-Authenticate: Bearer error="insufficient_user_authentication"` and the `acr_values` needed.
pub fn insufficient_user_authentication(acr: &str, description: &str) -> Response {
    let mut response = api_error(
        StatusCode::UNAUTHORIZED,
        "insufficient_user_authentication",
        description,
    );
    let challenge = format!(
        "Bearer realm=\"yihao\", error=\"insufficient_user_authentication\", \
         error_description=\"{description}\", acr_values=\"{acr}\""
    );
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
}
