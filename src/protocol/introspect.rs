//! Token introspection (RFC 7662) for resource servers.

use serde_json::{Value, json};

use super::issuer::TokenIssuer;
use super::session::{self, CodeGrant};
use super::token_lookup::{Found, concerns, find};
use super::{ErrorCode, OAuthError};
use crate::crypto::subject::sector_of;
use crate::domain::client::Client;
use crate::store::{Ephemeral, RefreshStore};

/// RFC 7662 §2.2: `{"active": false}` for anything expired, revoked, malformed or not the
/// client's business; the token's fields otherwise.
pub async fn introspect(
    issuer: &TokenIssuer<'_>,
    store: &dyn RefreshStore,
    ephemeral: &dyn Ephemeral,
    client: &Client,
    token: &str,
    now: i64,
) -> Result<Value, OAuthError> {
    // RFC 7662 §2.1: the protected resource authenticates; a public client cannot.
    if client.is_public() {
        return Err(OAuthError::new(
            ErrorCode::InvalidClient,
            "introspection needs a confidential client",
        ));
    }
    let inactive = json!({ "active": false });
    match find(issuer, store, token, now).await? {
        Found::Access(claims) => {
            let jti = claims["jti"].as_str().unwrap_or("");
            if !concerns(&claims, client)
                || session::is_revoked(ephemeral, jti)
                    .await
                    .map_err(OAuthError::server)?
            {
                return Ok(inactive);
            }
            let mut out = json!({ "active": true, "token_type": "Bearer" });
            for field in [
                "scope",
                "client_id",
                "sub",
                "aud",
                "iss",
                "exp",
                "iat",
                "jti",
                "auth_time",
                "acr",
                "org",
            ] {
                if let Some(v) = claims.get(field) {
                    out[field] = v.clone();
                }
            }
            Ok(out)
        }
        Found::Refresh(r) => {
            let live = r.used_at.is_none()
                && r.revoked_at.is_none()
                && now < r.expires_at
                && now < r.family_expires_at;
            if !live || r.client_id != client.id().as_str() {
                return Ok(inactive);
            }
            let grant: CodeGrant =
                serde_json::from_str(&r.grant_json).map_err(OAuthError::server)?;
            Ok(json!({
                "active": true,
                "token_type": "refresh_token",
                "scope": grant.scopes.join(" "),
                "client_id": r.client_id,
                "sub": issuer.subjects.encode(&sector_of(client), &r.account_id),
                "iss": issuer.issuer,
                "iat": r.issued_at,
                "exp": r.expires_at.min(r.family_expires_at),
            }))
        }
        Found::Nothing => Ok(inactive),
    }
}
