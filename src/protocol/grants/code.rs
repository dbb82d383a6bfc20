//! The authorization code grant at the token endpoint (RFC 6749 §4.1.3-4.1.4, OIDC Core §3.1.3):
//! the code is taken once, bound to its client and redirect URI, checked against the PKCE verifier,
//! and exchanged for the access token, the ID token and (with `offline_access`) a refresh token.

use std::time::Duration;

use serde_json::{Value, json};

use super::super::audit::{AuditEvent, EventType};
use super::super::issuer::TokenIssuer;
use super::super::pkce::check_pkce;
use super::super::session::{self, Redeemed};
use super::super::{ErrorCode, OAuthError};
use super::{GrantPorts, id_token_claims, invalid_grant};
use crate::domain::client::{Client, GrantType};

/// RFC 6749 §4.1.3 with RFC 7636 §4.6: redeems a code for `client`. A code used twice is refused
/// and what its first use issued is revoked (RFC 6749 §4.1.2: "If an authorization code is used more
/// than once, the authorization server MUST deny the request and SHOULD revoke (when possible) all
/// tokens previously issued based on that authorization code.").
pub async fn exchange_code(
    issuer: &TokenIssuer<'_>,
    ports: &GrantPorts<'_>,
    client: &Client,
    params: &[(String, String)],
    now: i64,
) -> Result<Value, OAuthError> {
    let get = |name: &str| super::super::param(params, name);
    let ephemeral = ports.ephemeral;
    if !client.grant_types().contains(&GrantType::AuthorizationCode) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use authorization_code",
        ));
    }
    let code =
        get("code").ok_or_else(|| OAuthError::new(ErrorCode::InvalidRequest, "code is missing"))?;
    let access_ttl = Duration::from_secs(issuer.access_secs(client));
    let redeemed = session::redeem_code(ephemeral, code, access_ttl)
        .await
        .map_err(OAuthError::server)?;
    let (grant, issuance) = match redeemed {
        Redeemed::Grant { grant, issuance } => (*grant, issuance),
        Redeemed::Unknown => {
            return Err(invalid_grant(
                "the code is invalid, expired or already used",
            ));
        }
        Redeemed::Replayed(first) => {
            // First mark the replay, so an exchange of this code still in flight revokes what it
            // issues after this; then revoke what the first use was to issue.
            session::mark_replayed(ephemeral, code, access_ttl)
                .await
                .map_err(OAuthError::server)?;
            revoke_issuance(ports, &first, access_ttl, now).await?;
            tracing::warn!(client = %client.id(), "authorization code replayed; what it issued is revoked");
            issuer
                .audit
                .record(
                    AuditEvent::failure(EventType::CodeReplay, "code_replayed")
                        .actor(client.id().as_str())
                        .client(client.id().as_str())
                        .details(json!({
                            "revoked_jti": first.jti,
                            "revoked_family": first.family,
                        })),
                )
                .await?;
            return Err(invalid_grant(
                "the code is invalid, expired or already used",
            ));
        }
    };
    if grant.client_id != client.id().as_str() {
        return Err(invalid_grant("the code was issued to another client"));
    }
    // RFC 6749 §4.1.3: redirect_uri is REQUIRED if it was in the authorization request, and must be identical.
    if get("redirect_uri") != Some(grant.redirect_uri.as_str()) {
        return Err(invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    check_pkce(grant.code_challenge.as_deref(), get("code_verifier"))?;
    let account = ports.account_of(&grant).await?;
    if account.status != crate::domain::account::AccountStatus::Active {
        return Err(invalid_grant("the account is not active"));
    }
    let id_claims = id_token_claims(&account, &grant);
    let issued = issuer.issue_as(issuance.jti.clone(), &grant, client, id_claims, now)?;
    let mut body = issued.body;
    if super::refresh::wants_refresh(client, &grant)
        && let Some(family) = &issuance.family
    {
        let policy = issuer.refresh_policy();
        let refresh = super::refresh::issue_refresh(
            ports.refresh,
            &grant,
            Some((family.clone(), now + policy.absolute_secs)),
            policy,
            now,
        )
        .await?;
        body["refresh_token"] = Value::from(refresh);
    }
    // A replay that came while this exchange ran found nothing issued yet to revoke: revoke it here.
    if session::was_replayed(ephemeral, code)
        .await
        .map_err(OAuthError::server)?
    {
        revoke_issuance(ports, &issuance, access_ttl, now).await?;
        return Err(invalid_grant(
            "the code is invalid, expired or already used",
        ));
    }
    issuer
        .audit_issue(
            client,
            Some(&account),
            "authorization_code",
            &body,
            &issued.jti,
            &issued.released,
        )
        .await?;
    Ok(body)
}

/// Revokes what a code's exchange issued: its access token (until it would expire) and its refresh
/// family.
async fn revoke_issuance(
    ports: &GrantPorts<'_>,
    issuance: &session::Issuance,
    access_ttl: Duration,
    now: i64,
) -> Result<(), OAuthError> {
    // Until the access token would have expired (it was issued at about `now`).
    let expires_at = now + i64::try_from(access_ttl.as_secs()).unwrap_or(i64::MAX / 2) + 60;
    ports
        .revocations
        .revoke_token(&issuance.jti, expires_at)
        .await
        .map_err(OAuthError::server)?;
    if let Some(family) = &issuance.family {
        ports
            .refresh
            .revoke_family(family, now)
            .await
            .map_err(OAuthError::server)?;
    }
    Ok(())
}
