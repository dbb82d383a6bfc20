//! What a token presented to introspection or revocation is: one of our access tokens (a JWT
//! signed by this server with `typ: at+jwt`), a refresh token (by its hash), or nothing we know.

use serde_json::Value;

use super::issuer::TokenIssuer;
use super::{ErrorCode, OAuthError};
use crate::domain::client::Client;
use crate::store::{RefreshRecord, RefreshStore};

/// What a presented token turned out to be.
pub enum Found {
    Access(Value),
    Refresh(RefreshRecord),
    Nothing,
}

pub async fn find(
    issuer: &TokenIssuer<'_>,
    store: &dyn RefreshStore,
    token: &str,
    now: i64,
) -> Result<Found, OAuthError> {
    if token.len() > 8192 {
        return Ok(Found::Nothing);
    }
    if token.matches('.').count() == 2 {
        let mut validation = jsonwebtoken::Validation {
            validate_aud: false,
            validate_exp: false,
            leeway: 0,
            ..Default::default()
        };
        validation.set_issuer(&[issuer.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        if let Ok((header, claims)) = issuer.ring.verify_token::<Value>(token, validation, now)
            && header.typ.as_deref() == Some("at+jwt")
            && !super::expired(&claims, now, 0)
        {
            return Ok(Found::Access(claims));
        }
        return Ok(Found::Nothing);
    }
    Ok(store
        .refresh(&super::grants::token_hash(token))
        .await
        .map_err(OAuthError::server)?
        .map_or(Found::Nothing, Found::Refresh))
}

/// Whether `client` may see this access token: issued to it, or addressed to it.
pub fn concerns(claims: &Value, client: &Client) -> bool {
    let id = client.id().as_str();
    let aud_has = match &claims["aud"] {
        Value::String(a) => a == id,
        Value::Array(list) => list.iter().any(|a| a.as_str() == Some(id)),
        _ => false,
    };
    claims["client_id"].as_str() == Some(id) || aud_has
}

/// The token a revocation or introspection request names.
pub fn token_param(params: &[(String, String)]) -> Result<&str, OAuthError> {
    super::param(params, "token")
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidRequest, "token is missing"))
}
