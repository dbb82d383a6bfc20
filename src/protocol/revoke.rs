//! Token revocation (RFC 7009).

use serde_json::json;

use super::OAuthError;
use super::audit::{AuditEvent, EventType};
use super::issuer::TokenIssuer;
use super::token_lookup::{Found, concerns, find};
use crate::domain::client::Client;
use crate::store::{RefreshStore, RevocationStore};

/// RFC 7009 §2.1: revokes a refresh token (its whole family) or an access token (its `jti` is denied
/// until it would expire, recorded in the durable store before the answer, so on every node and
/// whatever happens to the cache). Tokens of other clients and unknown tokens are left alone and
/// still answered 200 (§2.2).
pub async fn revoke(
    issuer: &TokenIssuer<'_>,
    store: &dyn RefreshStore,
    revocations: &dyn RevocationStore,
    client: &Client,
    token: &str,
    now: i64,
) -> Result<(), OAuthError> {
    let revoked = match find(issuer, store, token, now).await? {
        Found::Access(claims) if concerns(&claims, client) => {
            let jti = claims["jti"].as_str().unwrap_or("");
            let exp = claims["exp"].as_i64().unwrap_or(now);
            if !jti.is_empty() && exp > now {
                revocations
                    .revoke_token(jti, exp)
                    .await
                    .map_err(OAuthError::server)?;
            }
            json!({ "kind": "access_token", "jti": jti })
        }
        Found::Refresh(r) if r.client_id == client.id().as_str() => {
            store
                .revoke_family(&r.family_id, now)
                .await
                .map_err(OAuthError::server)?;
            json!({ "kind": "refresh_token", "family": r.family_id })
        }
        // RFC 7009 §2.2: unknown or foreign tokens get 200 too; nothing changed, nothing to audit.
        _ => return Ok(()),
    };
    issuer
        .audit
        .record(
            AuditEvent::success(EventType::TokenRevoked)
                .actor(client.id().as_str())
                .client(client.id().as_str())
                .details(revoked),
        )
        .await
}
