//! The Device Authorization Grant (RFC 8628) for kiosks and other devices without a keyboard-friendly
//! browser: the device asks for a code (`/device_authorization`), shows the person a short user code
//! and a URL (or its QR code), and polls the token endpoint while the person approves on their phone
//! through yihao's own pages (SSO, step-up and a consent page that names the device).
//!
//! State lives in the ephemeral store only: the grant under a hash of the device code, the user code
//! pointing to it, and the polling clock apart, so that a poll never overwrites an approval. A
//! pending poll reads two keys and writes one; it touches no database (the client comes from the
//! in-memory registry).
//!
//! RFC 8628 §3.5: "authorization_pending ... slow_down: A variant of "authorization_pending", the
//! authorization request is still pending and polling should continue, but the interval MUST be
//! increased by 5 seconds for this and all subsequent requests. access_denied ... expired_token:
//! The "device_code" has expired".

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::grants::{GrantPorts, id_token_claims, invalid_grant};
use super::issuer::TokenIssuer;
use super::session::CodeGrant;
use super::{ErrorCode, OAuthError};
use crate::crypto::random_token;
use crate::domain::client::{Client, GrantType};
use crate::store::{Ephemeral, StoreError};

/// The grant type's URN (RFC 8628 §3.4).
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// User-code characters: RFC 8628 §6.1 "a base-20 character set of consonants" without vowels
/// (no words) and without look-alikes: "BCDFGHJKLMNPQRSTVWXZ".
const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Eight characters, shown as XXXX-XXXX: 20^8 ≈ 2^34.6 codes.
const USER_CODE_LEN: usize = 8;
/// How long an expired grant is still told apart (`expired_token`) from one never issued.
const TOMBSTONE_SECS: u64 = 600;
/// RFC 8628 §3.5: the interval grows by 5 seconds at each `slow_down`.
const SLOW_DOWN_SECS: i64 = 5;

/// The settings of the grant.
#[derive(Debug, Clone, Copy)]
pub struct DeviceSettings {
    /// `expires_in` of a device code.
    pub expires_secs: u64,
    /// The polling interval a device starts with.
    pub interval_secs: u64,
}

/// Where a grant stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceState {
    Pending,
    /// Approved: what the token request issues (the person, the session, the level).
    Approved(Box<CodeGrant>),
    Denied,
}

/// A device grant as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceGrant {
    pub client_id: String,
    pub scopes: Vec<String>,
    pub user_code: String,
    pub expires_at: i64,
    pub state: DeviceState,
}

fn grant_key(device_code_hash: &str) -> String {
    format!("device:{device_code_hash}")
}

fn poll_key(device_code_hash: &str) -> String {
    format!("device-poll:{device_code_hash}")
}

fn user_key(user_code: &str) -> String {
    format!("device-user:{user_code}")
}

fn hash(device_code: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(device_code.as_bytes()))
}

/// A user code as typed: upper case, without spaces or hyphens; `None` when it cannot be one.
pub fn normalise_user_code(raw: &str) -> Option<String> {
    let code: String = raw
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect();
    (code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)))
        .then_some(code)
}

/// XXXX-XXXX.
pub fn display_user_code(code: &str) -> String {
    if code.len() == USER_CODE_LEN {
        format!("{}-{}", &code[..4], &code[4..])
    } else {
        code.to_owned()
    }
}

fn new_user_code() -> String {
    let mut rng = rand::rng();
    (0..USER_CODE_LEN)
        .map(|_| char::from(USER_CODE_ALPHABET[rng.random_range(0..USER_CODE_ALPHABET.len())]))
        .collect()
}

fn ttl(settings: DeviceSettings) -> Duration {
    Duration::from_secs(settings.expires_secs + TOMBSTONE_SECS)
}

fn decode(raw: &[u8]) -> Result<DeviceGrant, StoreError> {
    serde_json::from_slice(raw).map_err(|e| StoreError::backend("device grant", e))
}

fn encode(grant: &DeviceGrant) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(grant).map_err(|e| StoreError::backend("device grant", e))
}

/// RFC 8628 §3.1-3.2: a new device code and user code for `client`, scopes within its own. The
/// answer of the device authorization endpoint.
pub async fn start(
    ephemeral: &dyn Ephemeral,
    settings: DeviceSettings,
    issuer: &str,
    client: &Client,
    params: &[(String, String)],
    now: i64,
) -> Result<Value, OAuthError> {
    if !client.grant_types().contains(&GrantType::DeviceCode) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use the device authorization grant",
        ));
    }
    let scopes: Vec<String> = super::param(params, "scope")
        .unwrap_or("openid")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(unknown) = scopes
        .iter()
        .find(|s| !client.scopes().iter().any(|c| c.as_str() == s.as_str()))
    {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            format!("the client may not ask for {unknown:?}"),
        ));
    }
    let device_code = random_token();
    let key = hash(&device_code);
    // A new user code until one is free (collisions are rare: 2^34 codes).
    let mut user_code = new_user_code();
    for _ in 0..4 {
        if ephemeral
            .get(&user_key(&user_code))
            .await
            .map_err(OAuthError::server)?
            .is_none()
        {
            break;
        }
        user_code = new_user_code();
    }
    let expires_at = now + i64::try_from(settings.expires_secs).unwrap_or(600);
    let grant = DeviceGrant {
        client_id: client.id().as_str().to_owned(),
        scopes,
        user_code: user_code.clone(),
        expires_at,
        state: DeviceState::Pending,
    };
    let life = ttl(settings);
    ephemeral
        .put(
            &grant_key(&key),
            &encode(&grant).map_err(OAuthError::server)?,
            life,
        )
        .await
        .map_err(OAuthError::server)?;
    ephemeral
        .put(
            &user_key(&user_code),
            key.as_bytes(),
            Duration::from_secs(settings.expires_secs),
        )
        .await
        .map_err(OAuthError::server)?;
    let base = issuer.trim_end_matches('/');
    let shown = display_user_code(&user_code);
    Ok(json!({
        "device_code": device_code,
        "user_code": shown,
        "verification_uri": format!("{base}/device"),
        "verification_uri_complete": format!("{base}/device?user_code={shown}"),
        "expires_in": settings.expires_secs,
        "interval": settings.interval_secs,
    }))
}

/// The pending grant a typed user code names: its key and the grant. `None` when no such code is
/// pending (never issued, expired, already approved or denied).
pub async fn pending(
    ephemeral: &dyn Ephemeral,
    user_code: &str,
    now: i64,
) -> Result<Option<(String, DeviceGrant)>, StoreError> {
    let Some(code) = normalise_user_code(user_code) else {
        return Ok(None);
    };
    let Some(key) = ephemeral.get(&user_key(&code)).await? else {
        return Ok(None);
    };
    let key = String::from_utf8_lossy(&key).into_owned();
    let Some(raw) = ephemeral.get(&grant_key(&key)).await? else {
        return Ok(None);
    };
    let grant = decode(&raw)?;
    Ok((grant.state == DeviceState::Pending && now < grant.expires_at).then_some((key, grant)))
}

/// Records the person's decision for the grant `key`: approved with what the token request will
/// issue, or denied. The user code stops working either way. `false` when it was no longer pending.
pub async fn decide(
    ephemeral: &dyn Ephemeral,
    settings: DeviceSettings,
    key: &str,
    approved: Option<CodeGrant>,
    now: i64,
) -> Result<bool, StoreError> {
    let Some(raw) = ephemeral.get(&grant_key(key)).await? else {
        return Ok(false);
    };
    let mut grant = decode(&raw)?;
    if grant.state != DeviceState::Pending || now >= grant.expires_at {
        return Ok(false);
    }
    ephemeral.delete(&user_key(&grant.user_code)).await?;
    grant.state = match approved {
        Some(code_grant) => DeviceState::Approved(Box::new(code_grant)),
        None => DeviceState::Denied,
    };
    ephemeral
        .put(&grant_key(key), &encode(&grant)?, ttl(settings))
        .await?;
    Ok(true)
}

/// RFC 8628 §3.4-3.5: the token request of a polling device. Pending answers come from the
/// ephemeral store alone; an approved grant is taken once and issued like an authorization code.
pub async fn device_grant(
    issuer: &TokenIssuer<'_>,
    ports: &GrantPorts<'_>,
    settings: DeviceSettings,
    client: &Client,
    params: &[(String, String)],
    now: i64,
) -> Result<Value, OAuthError> {
    if !client.grant_types().contains(&GrantType::DeviceCode) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use the device authorization grant",
        ));
    }
    let device_code = super::param(params, "device_code")
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidRequest, "device_code is missing"))?;
    let key = hash(device_code);
    let ephemeral = ports.ephemeral;
    let Some(raw) = ephemeral
        .get(&grant_key(&key))
        .await
        .map_err(OAuthError::server)?
    else {
        return Err(invalid_grant("the device code is invalid or was used"));
    };
    let grant = decode(&raw).map_err(OAuthError::server)?;
    if grant.client_id != client.id().as_str() {
        return Err(invalid_grant(
            "the device code was issued to another client",
        ));
    }
    match &grant.state {
        DeviceState::Denied => {
            return Err(OAuthError::new(
                ErrorCode::AccessDenied,
                "the person declined",
            ));
        }
        DeviceState::Pending if now >= grant.expires_at => {
            return Err(OAuthError::new(
                ErrorCode::ExpiredToken,
                "the device code has expired",
            ));
        }
        DeviceState::Pending => {
            poll(ephemeral, settings, &key, now).await?;
            return Err(OAuthError::new(
                ErrorCode::AuthorizationPending,
                "the person has not answered yet",
            ));
        }
        DeviceState::Approved(_) => {}
    }
    // Approved: taken once, so two polls racing issue one set of tokens.
    let Some(raw) = ephemeral
        .take(&grant_key(&key))
        .await
        .map_err(OAuthError::server)?
    else {
        return Err(invalid_grant("the device code is invalid or was used"));
    };
    let DeviceState::Approved(code_grant) = decode(&raw).map_err(OAuthError::server)?.state else {
        return Err(invalid_grant("the device code is invalid or was used"));
    };
    let _ = ephemeral.delete(&poll_key(&key)).await;
    let account = ports.account_of(&code_grant).await?;
    if account.status != crate::domain::account::AccountStatus::Active {
        return Err(invalid_grant("the account is not active"));
    }
    let id_claims = id_token_claims(&account, &code_grant);
    let issued = issuer.issue_as(random_token(), &code_grant, client, id_claims, now)?;
    let mut body = issued.body;
    if super::grants::refresh::wants_refresh(client, &code_grant) {
        let refresh = super::grants::refresh::issue_refresh(
            ports.refresh,
            &code_grant,
            None,
            issuer.refresh_policy(),
            now,
        )
        .await?;
        body["refresh_token"] = Value::from(refresh);
    }
    issuer
        .audit_issue(
            client,
            Some(&account),
            GRANT_TYPE,
            &body,
            &issued.jti,
            &issued.released,
        )
        .await?;
    Ok(body)
}

/// Counts a poll: `slow_down` (and a longer interval from now on) when it came before the interval
/// since the last one.
async fn poll(
    ephemeral: &dyn Ephemeral,
    settings: DeviceSettings,
    key: &str,
    now: i64,
) -> Result<(), OAuthError> {
    let interval = i64::try_from(settings.interval_secs).unwrap_or(5);
    let (last, mut current) = match ephemeral
        .get(&poll_key(key))
        .await
        .map_err(OAuthError::server)?
    {
        Some(raw) => {
            let text = String::from_utf8_lossy(&raw).into_owned();
            let mut parts = text.split(',').map(|p| p.parse::<i64>().unwrap_or(0));
            (parts.next(), parts.next().unwrap_or(interval).max(interval))
        }
        None => (None, interval),
    };
    let too_soon = last.is_some_and(|l| now - l < current);
    if too_soon {
        current += SLOW_DOWN_SECS;
    }
    ephemeral
        .put(
            &poll_key(key),
            format!("{now},{current}").as_bytes(),
            ttl(settings),
        )
        .await
        .map_err(OAuthError::server)?;
    if too_soon {
        return Err(OAuthError::new(
            ErrorCode::SlowDown,
            "polling too fast: wait longer between requests",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_typed_loosely_and_shown_in_two_groups() {
        let code = new_user_code();
        assert_eq!(code.len(), 8);
        assert_eq!(
            normalise_user_code(&display_user_code(&code)),
            Some(code.clone())
        );
        assert_eq!(
            normalise_user_code(&format!(" {} ", code.to_lowercase())),
            Some(code)
        );
        assert_eq!(
            normalise_user_code("BCDF-GHJA"),
            None,
            "A is not in the alphabet"
        );
        assert_eq!(normalise_user_code("BCDF-GHJ"), None);
        assert_eq!(display_user_code("BCDFGHJK"), "BCDF-GHJK");
    }
}
