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
    let grant = match session::redeem_code(ephemeral, code)
        .await
        .map_err(OAuthError::server)?
    {
        Redeemed::Grant(grant) => *grant,
        Redeemed::Unknown => {
            return Err(invalid_grant(
                "the code is invalid, expired or already used",
            ));
        }
        Redeemed::Replayed { first_jti: jti } => {
            session::revoke_jti(
                ephemeral,
                &jti,
                Duration::from_secs(issuer.access_secs(client)),
            )
            .await
            .map_err(OAuthError::server)?;
            tracing::warn!(client = %client.id(), "authorization code replayed; its access token is revoked");
            issuer
                .audit
                .record(
                    AuditEvent::failure(EventType::CodeReplay, "code_replayed")
                        .actor(client.id().as_str())
                        .client(client.id().as_str())
                        .details(json!({ "revoked_jti": jti })),
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
    let id_claims = id_token_claims(&account, &grant, client);
    let issued = issuer.issue(&grant, client, id_claims, now)?;
    let mut body = issued.body;
    if super::refresh::wants_refresh(client, &grant) {
        let refresh = super::refresh::issue_refresh(
            ports.refresh,
            &grant,
            None,
            issuer.refresh_policy(),
            now,
        )
        .await?;
        body["refresh_token"] = Value::from(refresh);
    }
    session::remember_redeemed(
        ephemeral,
        code,
        &issued.jti,
        Duration::from_secs(issuer.access_secs(client)),
    )
    .await
    .map_err(OAuthError::server)?;
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
