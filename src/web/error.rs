//! The one place that maps errors to HTTP responses. OAuth errors become RFC 6749 §5.2 JSON bodies
//! (`invalid_client` -> 401 with `WWW-Authenticate`); a server error is logged with its cause and the
//! client sees only `server_error`. Later: authorize errors redirect only after the redirect URI
//! matched (`AuthorizeError::{ShowToUser, RedirectToClient}`).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::protocol::{ErrorCode, OAuthError};

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = match self.code {
            _ if self.retry_after.is_some() => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::InvalidClient | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
            ErrorCode::InsufficientScope | ErrorCode::AccessDenied => StatusCode::FORBIDDEN,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        if let Some(cause) = &self.cause {
            if status.is_server_error() {
                tracing::error!(code = %self.code, cause = %cause, "request failed");
            } else {
                tracing::info!(code = %self.code, cause = %cause, "request refused");
            }
        }
        let body = json!({ "error": self.code.as_str(), "error_description": self.description });
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        // RFC 6749 §5.1: responses carrying tokens or errors about them are not cached.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            let challenge = match self.code {
                ErrorCode::InvalidToken => "Bearer error=\"invalid_token\"",
                _ => "Basic realm=\"yihao\"",
            };
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

/// Unknown paths: 404 with a JSON body naming the problem.
pub async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "error": "not_found", "error_description": "no such endpoint" })),
    )
        .into_response()
}
