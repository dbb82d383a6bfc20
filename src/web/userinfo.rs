//! `GET|POST /userinfo` (OIDC Core §5.3: "The Client sends the UserInfo Request using either HTTP
//! GET or HTTP POST") with the access token in the `Authorization: Bearer` header (RFC 6750 §2.1).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::error::bearer_error;
use super::request;
use super::{AppState, no_store_json};
use crate::protocol::userinfo::userinfo as claims_of;

/// `GET|POST /userinfo`.
pub async fn userinfo(
    State(app): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Response {
    let context = request::context(&headers, &extensions);
    let authorization = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    let ring = app.keys.ring();
    let now = app.now();
    let result = async {
        let token = app
            .bearer(&ring)
            .validate(authorization, Some("openid"), now)
            .await?;
        claims_of(
            &token,
            &app.subjects,
            &app.identities,
            &app.audit(&context),
            now,
        )
        .await
    }
    .await;
    match result {
        Ok(body) => no_store_json(StatusCode::OK, body),
        Err(e) => bearer_error(e),
    }
}
