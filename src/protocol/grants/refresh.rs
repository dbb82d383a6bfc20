//! The refresh grant (RFC 6749 §6) with rotation and reuse detection (RFC 9700 §4.14). Refresh
//! tokens live in the durable store as hashes, in families: rotation and reuse detection are one
//! atomic update in the store, and every check that can refuse runs before it, so a refused request
//! does not spend the token.

use serde_json::{Value, json};

use super::super::audit::{AuditEvent, EventType};
use super::super::issuer::TokenIssuer;
use super::super::roles::RoleCheck;
use super::super::session::CodeGrant;
use super::super::{ErrorCode, OAuthError};
use super::{GrantPorts, id_token_claims, invalid_grant, token_hash};
use crate::crypto::random_token;
use crate::domain::account::AccountStatus;
use crate::domain::client::{Client, GrantType};
use crate::store::{RefreshRecord, RefreshStore, Rotation, StoreError};

/// Refresh lifetimes.
#[derive(Debug, Clone, Copy)]
pub struct RefreshPolicy {
    pub idle_secs: i64,
    pub absolute_secs: i64,
}

/// Whether a code exchange gets a refresh token: the client may use the grant and the person granted
/// `offline_access`.
pub fn wants_refresh(client: &Client, grant: &CodeGrant) -> bool {
    client.grant_types().contains(&GrantType::RefreshToken)
        && grant.scopes.iter().any(|s| s == "offline_access")
}

/// Issues a refresh token for `grant`, in a new family or in `family` (id, absolute expiry).
pub async fn issue_refresh(
    store: &dyn RefreshStore,
    grant: &CodeGrant,
    family: Option<(String, i64)>,
    policy: RefreshPolicy,
    now: i64,
) -> Result<String, OAuthError> {
    let token = random_token();
    let (family_id, family_expires_at) =
        family.unwrap_or_else(|| (random_token(), now + policy.absolute_secs));
    let record = RefreshRecord {
        token_hash: token_hash(&token),
        family_id,
        client_id: grant.client_id.clone(),
        account_id: grant.account_id.clone(),
        grant_json: serde_json::to_string(grant).map_err(OAuthError::server)?,
        issued_at: now,
        expires_at: (now + policy.idle_secs).min(family_expires_at),
        family_expires_at,
        used_at: None,
        revoked_at: None,
    };
    match store.insert_refresh(&record).await {
        Ok(()) => Ok(token),
        // The family was revoked while this rotation ran (a reuse of one of its tokens).
        Err(StoreError::Conflict(_)) => Err(invalid_grant(
            "the refresh token was already used; every token of this login is revoked",
        )),
        Err(e) => Err(OAuthError::server(e)),
    }
}

/// RFC 6749 §6: `grant_type=refresh_token`. Rotates the token; a token used before revokes its
/// whole family (RFC 9700 §4.14.2: "If a refresh token is compromised and subsequently used by both
/// the attacker and the legitimate client, one of them will present an invalidated refresh token,
/// which will inform the authorization server of the breach."). `scope` may narrow, never widen.
pub async fn refresh_grant(
    issuer: &TokenIssuer<'_>,
    ports: &GrantPorts<'_>,
    client: &Client,
    params: &[(String, String)],
    policy: RefreshPolicy,
    now: i64,
) -> Result<Value, OAuthError> {
    let get = |name: &str| super::super::param(params, name);
    let store = ports.refresh;
    if !client.grant_types().contains(&GrantType::RefreshToken) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use refresh_token",
        ));
    }
    let token = get("refresh_token")
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidRequest, "refresh_token is missing"))?;
    // Every check that can refuse comes before rotation: a refused request must not spend the token,
    // and another client's token must not be spent or revoked.
    let current = match store
        .refresh(&token_hash(token))
        .await
        .map_err(OAuthError::server)?
    {
        Some(r) if r.client_id == client.id().as_str() => r,
        _ => {
            return Err(invalid_grant(
                "the refresh token is invalid, expired or revoked",
            ));
        }
    };
    let family_grant: CodeGrant =
        serde_json::from_str(&current.grant_json).map_err(OAuthError::server)?;
    let mut grant = family_grant.clone();
    if let Some(requested) = get("scope") {
        let requested: Vec<String> = requested
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if let Some(extra) = requested.iter().find(|s| !family_grant.scopes.contains(s)) {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                format!("{extra} was not granted"),
            ));
        }
        grant.scopes = requested;
    }
    let record = match store
        .rotate_refresh(&token_hash(token), now)
        .await
        .map_err(OAuthError::server)?
    {
        Rotation::Rotated(r) => r,
        Rotation::Reused(r) => {
            tracing::warn!(client = %client.id(), family = %r.family_id, "refresh token reused; its family is revoked");
            issuer
                .audit
                .record(
                    AuditEvent::failure(EventType::RefreshReuse, "refresh_token_reused")
                        .actor(r.account_id.as_str())
                        .client(client.id().as_str())
                        .details(json!({ "family": r.family_id, "family_revoked": true })),
                )
                .await?;
            return Err(invalid_grant(
                "the refresh token was already used; every token of this login is revoked",
            ));
        }
        Rotation::Invalid => {
            return Err(invalid_grant(
                "the refresh token is invalid, expired or revoked",
            ));
        }
    };
    let account = ports.account_of(&grant).await?;
    if account.status != AccountStatus::Active {
        store
            .revoke_family(&record.family_id, now)
            .await
            .map_err(OAuthError::server)?;
        return Err(invalid_grant("the account is not active"));
    }
    // A role claimed for an organisation must still be held (security review 1).
    if let Some(org) = &grant.org {
        let roles = RoleCheck {
            orgs: ports.identities.orgs.as_ref(),
        };
        if !roles
            .holds(&grant.account_id, org, now)
            .await
            .map_err(OAuthError::server)?
        {
            store
                .revoke_family(&record.family_id, now)
                .await
                .map_err(OAuthError::server)?;
            return Err(invalid_grant(
                "the organisation role of this login has ended",
            ));
        }
    }
    // OIDC Core §12.2: the refreshed ID token keeps the original authentication's claims, without nonce.
    grant.nonce = None;
    let id_claims = id_token_claims(&account, &grant);
    let issued = issuer.issue(&grant, client, id_claims, now)?;
    let mut body = issued.body;
    let next = issue_refresh(
        store,
        &family_grant,
        Some((record.family_id, record.family_expires_at)),
        policy,
        now,
    )
    .await?;
    body["refresh_token"] = Value::from(next);
    issuer
        .audit_issue(
            client,
            Some(&account),
            "refresh_token",
            &body,
            &issued.jti,
            &issued.released,
        )
        .await?;
    Ok(body)
}
