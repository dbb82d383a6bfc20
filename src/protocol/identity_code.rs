//! The citizen's identity code (亮码) at a service window: the mobile app, signed in, shows a
//! short-lived code (one use, [`CODE_SECS`]) for what the person chose to show; the window's
//! business system, a confidential client on the `window` channel, redeems it at the token
//! endpoint through token exchange (RFC 8693) and receives an access token for the person, with
//! which userinfo releases the claims of the scopes the person chose (recorded in the disclosure
//! ledger like any release).
//!
//! RFC 8693 §2.1: `grant_type` `urn:ietf:params:oauth:grant-type:token-exchange`, `subject_token`
//! (the code), `subject_token_type` (here `urn:yihao:params:oauth:token-type:identity-code`). §2.2.1:
//! the answer carries `access_token`, `issued_token_type`, `token_type`, `expires_in`, `scope`.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::audit::{AuditEvent, EventType};
use super::grants::{GrantPorts, id_token_claims, invalid_grant};
use super::issuer::TokenIssuer;
use super::session::CodeGrant;
use super::{ErrorCode, OAuthError};
use crate::crypto::random_token;
use crate::domain::client::{Channel, Client};
use crate::store::{Ephemeral, StoreError};

/// RFC 8693 §2.1.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The `subject_token_type` of an identity code.
pub const TOKEN_TYPE: &str = "urn:yihao:params:oauth:token-type:identity-code";
/// How long a code is shown before the app replaces it.
pub const CODE_SECS: u64 = 60;

/// A code as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stored {
    account_id: String,
    /// The level of the app session that showed it.
    level: u8,
    /// What the person chose to show.
    scopes: Vec<String>,
    created_at: i64,
}

fn key(code: &str) -> String {
    format!(
        "idcode:{}",
        URL_SAFE_NO_PAD.encode(Sha256::digest(code.as_bytes()))
    )
}

/// A new code for the person signed in to the app at `level`, showing `scopes`.
pub async fn issue(
    ephemeral: &dyn Ephemeral,
    account_id: &str,
    level: u8,
    scopes: Vec<String>,
    now: i64,
) -> Result<String, StoreError> {
    let code = random_token();
    let stored = Stored {
        account_id: account_id.to_owned(),
        level,
        scopes,
        created_at: now,
    };
    let value = serde_json::to_vec(&stored).map_err(|e| StoreError::backend("identity code", e))?;
    ephemeral
        .put(&key(&code), &value, Duration::from_secs(CODE_SECS))
        .await?;
    Ok(code)
}

/// The token exchange of a window system: refused (and audited) for a client not on the `window`
/// channel, for a code spent, late or unknown.
pub async fn exchange(
    issuer: &TokenIssuer<'_>,
    ports: &GrantPorts<'_>,
    client: &Client,
    params: &[(String, String)],
    now: i64,
) -> Result<Value, OAuthError> {
    let refuse = async |reason: &str, error: OAuthError| -> Result<Value, OAuthError> {
        issuer
            .audit
            .record(
                AuditEvent::failure(EventType::IdentityCode, reason)
                    .actor(client.id().as_str())
                    .client(client.id().as_str()),
            )
            .await?;
        Err(error)
    };
    if client.settings().channel != Channel::Window || client.is_public() {
        return refuse(
            "not_a_window",
            OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "identity codes are redeemed only by service-window systems",
            ),
        )
        .await;
    }
    if super::param(params, "subject_token_type") != Some(TOKEN_TYPE) {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "subject_token_type must be urn:yihao:params:oauth:token-type:identity-code",
        ));
    }
    let code = super::param(params, "subject_token")
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidRequest, "subject_token is missing"))?;
    if code.len() > 128 {
        return refuse(
            "unknown_code",
            invalid_grant("the code is invalid, expired or used"),
        )
        .await;
    }
    let taken = ports
        .ephemeral
        .take(&key(code))
        .await
        .map_err(OAuthError::server)?;
    let Some(stored) = taken.and_then(|raw| serde_json::from_slice::<Stored>(&raw).ok()) else {
        return refuse(
            "unknown_code",
            invalid_grant("the code is invalid, expired or used"),
        )
        .await;
    };
    if now >= stored.created_at + CODE_SECS as i64 {
        return refuse(
            "expired_code",
            invalid_grant("the code is invalid, expired or used"),
        )
        .await;
    }
    // What the person chose to show, within what the department is registered for.
    let scopes: Vec<String> = stored
        .scopes
        .iter()
        .filter(|s| client.scopes().iter().any(|c| c.as_str() == s.as_str()))
        .cloned()
        .collect();
    let mut grant = CodeGrant {
        client_id: client.id().as_str().to_owned(),
        redirect_uri: String::new(),
        account_id: stored.account_id.clone(),
        scopes,
        nonce: None,
        code_challenge: None,
        auth_time: stored.created_at,
        level: stored.level,
        amr: vec!["qr".into()],
        sid: String::new(),
        claims_userinfo: Vec::new(),
        claims_id_token: Vec::new(),
        org: None,
    };
    let account = ports.account_of(&grant).await?;
    if account.status != crate::domain::account::AccountStatus::Active {
        return refuse(
            "account_inactive",
            invalid_grant("the account is not active"),
        )
        .await;
    }
    // Never more than the account's proofing level now (an operator may have lowered it).
    grant.level = grant.level.min(account.evidence.level().get());
    let issued = issuer.issue_as(
        random_token(),
        &grant,
        client,
        id_token_claims(&account, &grant),
        now,
    )?;
    let mut body = issued.body;
    // RFC 8693 §2.2.1: the token issued is an access token; no ID token (there is no sign-in here).
    if let Some(map) = body.as_object_mut() {
        map.remove("id_token");
        map.insert(
            "issued_token_type".into(),
            json!("urn:ietf:params:oauth:token-type:access_token"),
        );
    }
    issuer
        .audit_issue(client, Some(&account), GRANT_TYPE, &body, &issued.jti, &[])
        .await?;
    issuer
        .audit
        .record(
            AuditEvent::success(EventType::IdentityCode)
                .actor(client.id().as_str())
                .client(client.id().as_str())
                .target(account.id.as_str())
                .details(json!({ "scopes": grant.scopes })),
        )
        .await?;
    Ok(body)
}
