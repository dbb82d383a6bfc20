//! Token introspection (RFC 7662) for resource servers.

use serde_json::{Value, json};

use super::issuer::TokenIssuer;
use super::roles::RoleCheck;
use super::session::CodeGrant;
use super::token_lookup::{Found, concerns, find};
use super::{ErrorCode, OAuthError};
use crate::crypto::subject::sector_of;
use crate::domain::account::AccountStatus;
use crate::domain::client::{Client, ClientId};
use crate::store::{AccountStore, ClientLookup, RefreshStore, RevocationStore};

/// RFC 7662 §2.2: `{"active": false}` for anything expired, revoked, malformed or not the
/// client's business; the token's fields otherwise.
/// A token acting for an organisation is active only while its role is held (security review 1).
#[allow(clippy::too_many_arguments)]
pub async fn introspect(
    issuer: &TokenIssuer<'_>,
    store: &dyn RefreshStore,
    revocations: &dyn RevocationStore,
    clients: &dyn ClientLookup,
    accounts: &dyn AccountStore,
    roles: &RoleCheck<'_>,
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
                || revocations
                    .token_revoked(jti, now)
                    .await
                    .map_err(OAuthError::server)?
            {
                return Ok(inactive);
            }
            // A person's token (a machine token has no authentication time): the person must still
            // be active, and hold any role it claims.
            if claims.get("auth_time").is_some() {
                let Some(account_id) = access_account(issuer, clients, &claims).await? else {
                    return Ok(inactive);
                };
                if !active_holder(accounts, roles, &account_id, claims.get("org"), now).await? {
                    return Ok(inactive);
                }
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
            if !active_holder(accounts, roles, &r.account_id, grant.org.as_ref(), now).await? {
                return Ok(inactive);
            }
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

/// The account behind an access token: its pairwise `sub`, decoded in the sector of the client it
/// was issued to.
async fn access_account(
    issuer: &TokenIssuer<'_>,
    clients: &dyn ClientLookup,
    claims: &Value,
) -> Result<Option<String>, OAuthError> {
    let issued_to = match claims["client_id"].as_str().map(ClientId::parse) {
        Some(Ok(id)) => clients.client(&id).await.map_err(OAuthError::server)?,
        _ => None,
    };
    let Some(issued_to) = issued_to else {
        return Ok(None);
    };
    let sub = claims["sub"].as_str().unwrap_or("");
    Ok(issuer.subjects.decode(&sector_of(&issued_to), sub))
}

/// Whether `account_id` is active (security review 17) and, for a token acting for an
/// organisation, still holds the role its `org` claim names (security review 1).
async fn active_holder(
    accounts: &dyn AccountStore,
    roles: &RoleCheck<'_>,
    account_id: &str,
    org: Option<&Value>,
    now: i64,
) -> Result<bool, OAuthError> {
    let active = accounts
        .account(account_id)
        .await
        .map_err(OAuthError::server)?
        .is_some_and(|a| a.status == AccountStatus::Active.as_str());
    if !active {
        return Ok(false);
    }
    match org.filter(|o| o.is_object()) {
        Some(org) => roles
            .holds(account_id, org, now)
            .await
            .map_err(OAuthError::server),
        None => Ok(true),
    }
}
