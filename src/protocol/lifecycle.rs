//! The token lifecycle after the first code exchange: refresh with rotation and reuse detection
//! (RFC 6749 §6, RFC 9700 §4.14), client credentials for department systems (RFC 6749 §4.4, RFC
//! 8707 resource indicators), introspection (RFC 7662) and revocation (RFC 7009).

use std::time::Duration;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::accounts::Identities;
use super::audit::{AuditEvent, EventType};
use super::claims::user_claims;
use super::session::{self, CodeGrant};
use super::token::TokenIssuer;
use super::{ErrorCode, OAuthError};
use crate::crypto::random_token;
use crate::crypto::subject::sector_of;
use crate::domain::account::{AccountId, AccountStatus};
use crate::domain::client::{Client, GrantType};
use crate::store::{Ephemeral, RefreshRecord, Rotation, Store};

/// Scopes about a person: never granted to a machine client.
const PERSON_SCOPES: [&str; 7] = [
    "openid",
    "profile",
    "phone",
    "email",
    "idcard",
    "org",
    "offline_access",
];

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn invalid_grant(description: &str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidGrant, description)
}

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
    store: &dyn Store,
    grant: &CodeGrant,
    family: Option<(String, i64)>,
    policy: RefreshPolicy,
    now: i64,
) -> Result<String, OAuthError> {
    let token = random_token();
    let (family_id, family_expires_at) =
        family.unwrap_or_else(|| (random_token(), now + policy.absolute_secs));
    let record = RefreshRecord {
        token_hash: hash(&token),
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
    store
        .insert_refresh(&record)
        .await
        .map_err(OAuthError::server)?;
    Ok(token)
}

/// RFC 6749 §6: `grant_type=refresh_token`. Rotates the token; a token used before revokes its
/// whole family (RFC 9700 §4.14.2: "If a refresh token is compromised and subsequently used by both
/// the attacker and the legitimate client, one of them will present an invalidated refresh token,
/// which will inform the authorization server of the breach."). `scope` may narrow, never widen.
pub async fn refresh_grant(
    issuer: &TokenIssuer<'_>,
    ids: &Identities,
    store: &dyn Store,
    client: &Client,
    params: &[(String, String)],
    policy: RefreshPolicy,
    now: i64,
) -> Result<Value, OAuthError> {
    let get = |name: &str| super::param(params, name);
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
        .refresh(&hash(token))
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
        .rotate_refresh(&hash(token), now)
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
    let account_id = AccountId::parse(&grant.account_id).map_err(OAuthError::server)?;
    let account = ids
        .account(&account_id)
        .await
        .map_err(OAuthError::server)?
        .ok_or_else(|| invalid_grant("the account no longer exists"))?;
    if account.status != AccountStatus::Active {
        store
            .revoke_family(&record.family_id, now)
            .await
            .map_err(OAuthError::server)?;
        return Err(invalid_grant("the account is not active"));
    }
    // OIDC Core §12.2: the refreshed ID token keeps the original authentication's claims, without nonce.
    grant.nonce = None;
    let id_claims: Map<String, Value> =
        user_claims(&account, &grant.scopes, client.settings().full_phone)
            .into_iter()
            .filter(|(k, _)| grant.claims_id_token.iter().any(|c| c == k))
            .collect();
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

/// The pure part of a client_credentials request (RFC 6749 §4.4.2): may the client use the grant,
/// which scopes (its own, never a person's; all of them when none are named), and for which
/// audience (RFC 8707 §2: each `resource` must be one the client may address; the client itself
/// when none is named).
pub fn read_client_credentials(
    client: &Client,
    params: &[(String, String)],
) -> Result<(Vec<String>, Value), OAuthError> {
    if client.is_public() || !client.grant_types().contains(&GrantType::ClientCredentials) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use client_credentials",
        ));
    }
    let get_all = |name: &str| {
        params
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
    };
    let allowed: Vec<&str> = client
        .scopes()
        .iter()
        .map(|s| s.as_str())
        .filter(|s| !PERSON_SCOPES.contains(s))
        .collect();
    let scopes: Vec<String> = match get_all("scope").first() {
        None => allowed.iter().map(|s| (*s).to_owned()).collect(),
        Some(requested) => {
            let requested: Vec<String> = requested
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if let Some(bad) = requested.iter().find(|s| !allowed.contains(&s.as_str())) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    format!("the client may not request {bad}"),
                ));
            }
            requested
        }
    };
    // RFC 8707 §2: "resource" may be repeated; each must be one the client may address.
    let resources = get_all("resource");
    if let Some(bad) = resources
        .iter()
        .find(|r| !client.settings().resources.iter().any(|a| a == *r))
    {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            format!("the client may not ask for {bad}"),
        ));
    }
    let aud: Value = match resources.as_slice() {
        [] => Value::from(client.id().as_str()),
        [one] => Value::from(*one),
        many => Value::from(many.to_vec()),
    };
    Ok((scopes, aud))
}

/// RFC 6749 §4.4 with RFC 8707: a token for the client itself. Only confidential clients; scopes
/// within the client's allowed set (person scopes excluded); `resource` among the client's own.
pub async fn client_credentials(
    issuer: &TokenIssuer<'_>,
    client: &Client,
    params: &[(String, String)],
    now: i64,
) -> Result<Value, OAuthError> {
    let (scopes, aud) = read_client_credentials(client, params)?;
    let secs = issuer.access_secs(client) as i64;
    let claims = json!({
        "iss": issuer.issuer,
        "sub": client.id().as_str(),
        "aud": aud,
        "client_id": client.id().as_str(),
        "scope": scopes.join(" "),
        "jti": random_token(),
        "iat": now,
        "exp": now + secs,
    });
    let token = issuer.sign_access(client, &claims, now)?;
    let body = json!({ "access_token": token, "token_type": "Bearer", "expires_in": secs, "scope": scopes.join(" ") });
    let jti = claims["jti"].as_str().unwrap_or_default();
    issuer
        .audit_issue(client, None, "client_credentials", &body, jti, &[])
        .await?;
    Ok(body)
}

/// What a presented token turned out to be.
enum Found {
    Access(Value),
    Refresh(RefreshRecord),
    Nothing,
}

async fn find(
    issuer: &TokenIssuer<'_>,
    store: &dyn Store,
    token: &str,
) -> Result<Found, OAuthError> {
    if token.len() > 8192 {
        return Ok(Found::Nothing);
    }
    if token.matches('.').count() == 2 {
        let mut validation = jsonwebtoken::Validation {
            validate_aud: false,
            leeway: 0,
            ..Default::default()
        };
        validation.set_issuer(&[issuer.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        if let Ok((header, claims)) = issuer.ring.verify::<Value>(token, validation)
            && header.typ.as_deref() == Some("at+jwt")
        {
            return Ok(Found::Access(claims));
        }
        return Ok(Found::Nothing);
    }
    Ok(store
        .refresh(&hash(token))
        .await
        .map_err(OAuthError::server)?
        .map_or(Found::Nothing, Found::Refresh))
}

/// Whether `client` may see this access token: issued to it, or addressed to it.
fn concerns(claims: &Value, client: &Client) -> bool {
    let id = client.id().as_str();
    let aud_has = match &claims["aud"] {
        Value::String(a) => a == id,
        Value::Array(list) => list.iter().any(|a| a.as_str() == Some(id)),
        _ => false,
    };
    claims["client_id"].as_str() == Some(id) || aud_has
}

/// RFC 7662 §2.2: `{"active": false}` for anything expired, revoked, malformed or not the
/// client's business; the token's fields otherwise.
pub async fn introspect(
    issuer: &TokenIssuer<'_>,
    store: &dyn Store,
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
    match find(issuer, store, token).await? {
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

/// RFC 7009 §2.1: revokes a refresh token (its whole family) or an access token (its `jti` is denied
/// until it would expire, in the shared ephemeral store, so on every node). Tokens of other clients
/// and unknown tokens are left alone and still answered 200 (§2.2).
pub async fn revoke(
    issuer: &TokenIssuer<'_>,
    store: &dyn Store,
    ephemeral: &dyn Ephemeral,
    client: &Client,
    token: &str,
    now: i64,
) -> Result<(), OAuthError> {
    let revoked = match find(issuer, store, token).await? {
        Found::Access(claims) if concerns(&claims, client) => {
            let jti = claims["jti"].as_str().unwrap_or("");
            let left = claims["exp"].as_i64().unwrap_or(now) - now;
            if !jti.is_empty() && left > 0 {
                session::revoke_jti(ephemeral, jti, Duration::from_secs(left as u64))
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

/// The token a revocation or introspection request names.
pub fn token_param(params: &[(String, String)]) -> Result<&str, OAuthError> {
    super::param(params, "token")
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidRequest, "token is missing"))
}
