//! What the JSON APIs of the app and kiosks share: the person an access token stands for.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::error::{api_error, bearer_error};
use crate::app::App;
use crate::crypto::subject::sector_of;
use crate::domain::account::AccountId;
use crate::domain::client::Channel;
use crate::protocol::authorize::level_of_acr;

/// The person of the request's access token (RFC 6750 §2.1) and the level of the session it was
/// issued in, when its client is on one of `channels`; else the error answer (`refusal` says why
/// the channel is refused).
pub(super) async fn token_person(
    app: &App,
    headers: &HeaderMap,
    channels: &[Channel],
    refusal: &str,
) -> Result<(AccountId, u8), Response> {
    let authorization = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    let ring = app.keys.ring();
    let token = app
        .bearer(&ring)
        .validate(authorization, Some("openid"), app.now())
        .await
        .map_err(bearer_error)?;
    if !channels.contains(&token.client.settings().channel) {
        return Err(api_error(StatusCode::FORBIDDEN, "invalid_client", refusal));
    }
    let account = app
        .subjects
        .decode(&sector_of(&token.client), &token.sub)
        .and_then(|id| AccountId::parse(&id).ok())
        .ok_or_else(|| {
            api_error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the token names nobody",
            )
        })?;
    let level = token.claims["acr"]
        .as_str()
        .and_then(level_of_acr)
        .unwrap_or(1);
    Ok((account, level))
}
