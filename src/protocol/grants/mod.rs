//! The grants of the token endpoint (RFC 6749 §3.2), one file each: `authorization_code`
//! ([`code`]), `refresh_token` ([`refresh`]) and `client_credentials` ([`client_credentials`]).
//! [`grant`] picks one by `grant_type`.

pub mod client_credentials;
pub mod code;
pub mod refresh;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::accounts::Identities;
use super::claims::user_claims;
use super::issuer::TokenIssuer;
use super::session::CodeGrant;
use super::{ErrorCode, OAuthError};
use crate::domain::account::{Account, AccountId};
use crate::domain::client::Client;
use crate::store::{Ephemeral, RefreshStore, RevocationStore};

/// What the grants read and write besides the issuer.
pub struct GrantPorts<'a> {
    pub identities: &'a Identities,
    pub ephemeral: &'a dyn Ephemeral,
    pub refresh: &'a dyn RefreshStore,
    pub revocations: &'a dyn RevocationStore,
    /// The device authorization grant's settings.
    pub device: super::device::DeviceSettings,
}

/// RFC 6749 §5.2: `unsupported_grant_type` "The authorization grant type is not supported by the
/// authorization server."; a missing `grant_type` is `invalid_request`.
pub async fn grant(
    issuer: &TokenIssuer<'_>,
    ports: &GrantPorts<'_>,
    client: &Client,
    params: &[(String, String)],
    now: i64,
) -> Result<Value, OAuthError> {
    match super::param(params, "grant_type") {
        Some("authorization_code") => code::exchange_code(issuer, ports, client, params, now).await,
        Some("refresh_token") => {
            refresh::refresh_grant(issuer, ports, client, params, issuer.refresh_policy(), now)
                .await
        }
        Some("client_credentials") => {
            client_credentials::client_credentials(issuer, client, params, now).await
        }
        Some(super::identity_code::GRANT_TYPE) => {
            super::identity_code::exchange(issuer, ports, client, params, now).await
        }
        Some(super::device::GRANT_TYPE) => {
            super::device::device_grant(issuer, ports, ports.device, client, params, now).await
        }
        None => Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "grant_type is missing",
        )),
        Some(_) => Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            "this grant type is not supported",
        )),
    }
}

impl GrantPorts<'_> {
    /// The account a grant stands for, as it is now (its status is the caller's to judge).
    pub(crate) async fn account_of(&self, grant: &CodeGrant) -> Result<Account, OAuthError> {
        let id = AccountId::parse(&grant.account_id).map_err(OAuthError::server)?;
        self.identities
            .account(&id)
            .await
            .map_err(OAuthError::server)?
            .ok_or_else(|| invalid_grant("the account no longer exists"))
    }
}

/// The person's claims the ID token carries: those of the granted scopes that the `claims`
/// parameter asked for in the ID token (OIDC Core §5.5), except the ID number, whatever is asked,
/// and the mobile number only masked. An ID token travels in URLs (`id_token_hint` in logout and
/// authorization requests, and so in proxy and server logs); the ID number and the full mobile
/// number go out through userinfo only, over a back channel (security review 16).
pub(crate) fn id_token_claims(account: &Account, grant: &CodeGrant) -> Map<String, Value> {
    user_claims(account, &grant.scopes, false)
        .into_iter()
        .filter(|(k, _)| !USERINFO_ONLY.contains(&k.as_str()))
        .filter(|(k, _)| grant.claims_id_token.iter().any(|c| c == k))
        .collect()
}

/// Claims released through userinfo only, never in an ID token.
pub const USERINFO_ONLY: [&str; 2] = ["id_number", "id_type"];

pub(crate) fn invalid_grant(description: &str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidGrant, description)
}

/// Refresh tokens are stored as their SHA-256 (a 256-bit random token needs no slow hash).
pub(crate) fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}
