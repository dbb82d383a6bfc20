//! `POST /api/v1/proofing/face`: the app or a kiosk reports a live face capture for the signed-in
//! person (docs/assurance.md, "Proofing"; docs/gateways.md for the service behind it). The caller
//! presents the person's access token (RFC 6750 §2.1) from a client on the `app` or `kiosk` channel
//! and a JSON body `{"liveness": "<the platform's capture token>", "consent": "<version>"}`; the
//! answer is the account's level, or an error in the OAuth error shape.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::json;

use super::api::token_person;
use super::error::{api_error, bearer_error};
use super::request;
use super::{AppState, no_store_json};
use crate::domain::client::Channel;
use crate::protocol::proofing::ProofingError;

/// `POST /api/v1/proofing/face`.
pub async fn face(
    State(app): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let now = app.now();
    let channels = [Channel::App, Channel::Kiosk];
    let refusal = "face verification is taken only from clients on the app or kiosk channel";
    let account = match token_person(&app, &headers, &channels, refusal).await {
        Ok((account, _)) => account,
        Err(answer) => return answer,
    };
    if !app.face_enabled() {
        return api_error(
            StatusCode::NOT_FOUND,
            "not_supported",
            "face verification is not offered here",
        );
    }
    #[derive(serde::Deserialize)]
    struct Body {
        liveness: String,
        consent: String,
    }
    let Ok(body) = serde_json::from_slice::<Body>(&body) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body is JSON with the strings liveness and consent",
        );
    };
    let context = request::context(&headers, &extensions);
    let checked = app
        .face_proofing(&context)
        .verify(&account, &body.liveness, &body.consent, now)
        .await;
    match checked {
        Ok(level) => no_store_json(
            StatusCode::OK,
            json!({ "level": level.get(), "acr": level.acr() }),
        ),
        Err(e) => {
            let (status, code) = match &e {
                ProofingError::NoConsent { .. } => (StatusCode::BAD_REQUEST, "consent_required"),
                ProofingError::BadCapture => (StatusCode::BAD_REQUEST, "invalid_request"),
                ProofingError::NoDocument => (StatusCode::CONFLICT, "no_document"),
                ProofingError::NoMatch => (StatusCode::UNPROCESSABLE_ENTITY, "no_match"),
                ProofingError::NotFound => (StatusCode::UNPROCESSABLE_ENTITY, "not_found"),
                ProofingError::RateLimited { .. } => {
                    (StatusCode::TOO_MANY_REQUESTS, "too_many_requests")
                }
                ProofingError::Unavailable(_) => {
                    (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
                }
                ProofingError::Server(e) => return bearer_error(e.clone()),
            };
            let mut response = api_error(status, code, &e.to_string());
            if let ProofingError::RateLimited { retry_after } = e {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, retry_after.into());
            }
            response
        }
    }
}
