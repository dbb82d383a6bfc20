//! The tokens: the access token as a signed JWT (RFC 9068) that department systems verify offline,
//! and the ID token (OIDC Core §2), each signed with the client's registered algorithm or the
//! server's default; every issue is audited with the claims it released.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256, Sha512};

use super::OAuthError;
use super::audit::{Audit, AuditEvent, EventType};
use super::grants::refresh::RefreshPolicy;
use super::session::CodeGrant;
use crate::config::TokensConfig;
use crate::crypto::random_token;
use crate::crypto::signing::{Alg, KeyRing, SigningError, SigningKey};
use crate::crypto::subject::{SubjectCodec, sector_of};
use crate::domain::client::Client;

/// What the token issuer needs.
pub struct TokenIssuer<'a> {
    pub issuer: &'a str,
    pub ring: &'a KeyRing,
    pub subjects: &'a SubjectCodec,
    pub tokens: &'a TokensConfig,
    /// Every issue, refresh, revocation and detected replay is audited.
    pub audit: Audit<'a>,
}

fn signer(ring: &KeyRing, alg: Alg, now: i64) -> Result<&SigningKey, OAuthError> {
    ring.signer(alg, now)
        .ok_or_else(|| OAuthError::server(SigningError::NoActiveKey(alg)))
}

/// OIDC Core §3.1.3.6: the left half of the hash of the access token, with the hash of the ID
/// token's algorithm (SHA-512 for Ed25519, as node-oidc-provider and the openidconnect crate do).
pub fn at_hash(alg: Alg, access_token: &str) -> String {
    let digest: Vec<u8> = match alg {
        Alg::RS256 | Alg::ES256 => Sha256::digest(access_token.as_bytes()).to_vec(),
        Alg::EdDSA => Sha512::digest(access_token.as_bytes()).to_vec(),
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

/// The token response (RFC 6749 §5.1) and the access token's `jti`.
pub struct Issued {
    pub body: Value,
    pub jti: String,
    /// The person's claims the ID token carries (for the audit log's attribute release).
    pub released: Vec<String>,
}

impl TokenIssuer<'_> {
    /// Audits tokens issued to `client` (for `account`, unless a machine token): token_refreshed for the
    /// refresh grant, token_issued otherwise, with grant type, scope and
    /// access-token id; and, when the ID token carries a person's claims, their release.
    pub async fn audit_issue(
        &self,
        client: &Client,
        account: Option<&crate::domain::account::Account>,
        grant_type: &str,
        body: &Value,
        jti: &str,
        released: &[String],
    ) -> Result<(), OAuthError> {
        let actor = account.map_or(client.id().as_str(), |a| a.id.as_str());
        let base = |e: AuditEvent| e.actor(actor).client(client.id().as_str());
        let event = if grant_type == "refresh_token" {
            EventType::TokenRefreshed
        } else {
            EventType::TokenIssued
        };
        self.audit
            .record(base(AuditEvent::success(event)).details(json!({
                "grant_type": grant_type,
                "scope": body["scope"],
                "jti": jti,
            })))
            .await?;
        if !released.is_empty() {
            self.audit
                .record(
                    base(AuditEvent::success(EventType::AttributeRelease))
                        .details(json!({ "via": "id_token", "claims": released })),
                )
                .await?;
        }
        Ok(())
    }

    /// The access-token lifetime for `client`: its own, or the server's.
    pub fn access_secs(&self, client: &Client) -> u64 {
        client
            .settings()
            .access_token_secs
            .map_or(self.tokens.access_token_secs, u64::from)
    }

    fn alg(configured: &str) -> Result<Alg, OAuthError> {
        Alg::parse(configured).map_err(OAuthError::server)
    }

    /// Signs access-token claims (RFC 9068 `typ: at+jwt`) with the client's algorithm or the default.
    pub fn sign_access(
        &self,
        client: &Client,
        claims: &Value,
        now: i64,
    ) -> Result<String, OAuthError> {
        let alg = match client.settings().access_token_alg {
            Some(alg) => alg,
            None => Self::alg(&self.tokens.access_token_alg)?,
        };
        signer(self.ring, alg, now)?
            .sign_jwt("at+jwt", claims)
            .map_err(OAuthError::server)
    }

    pub fn refresh_policy(&self) -> RefreshPolicy {
        RefreshPolicy {
            idle_secs: self.tokens.refresh_idle_secs as i64,
            absolute_secs: self.tokens.refresh_absolute_secs as i64,
        }
    }

    /// Signs the access token (RFC 9068 §2.2) and, for `openid` requests, the ID token (OIDC Core
    /// §2) for `grant`'s account and `client`.
    pub fn issue(
        &self,
        grant: &CodeGrant,
        client: &Client,
        id_claims: Map<String, Value>,
        now: i64,
    ) -> Result<Issued, OAuthError> {
        self.issue_as(random_token(), grant, client, id_claims, now)
    }

    /// [`TokenIssuer::issue`] with the access token's `jti` chosen by the caller.
    pub fn issue_as(
        &self,
        jti: String,
        grant: &CodeGrant,
        client: &Client,
        id_claims: Map<String, Value>,
        now: i64,
    ) -> Result<Issued, OAuthError> {
        let sub = self.subjects.encode(&sector_of(client), &grant.account_id);
        let mut released = Vec::new();
        let access_secs = self.access_secs(client) as i64;
        let acr = format!("urn:yihao:loa:{}", grant.level);
        let mut access = json!({
            "iss": self.issuer,
            "sub": sub,
            "aud": client.id().as_str(),
            "client_id": client.id().as_str(),
            "scope": grant.scopes.join(" "),
            "jti": jti,
            "iat": now,
            "exp": now + access_secs,
            "auth_time": grant.auth_time,
            "acr": acr,
        });
        if let Some(org) = &grant.org {
            access["org"] = org.clone();
        }
        let access_token = self.sign_access(client, &access, now)?;
        let mut body = json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": access_secs,
            "scope": grant.scopes.join(" "),
        });
        if grant.scopes.iter().any(|s| s == "openid") {
            // OIDC Dynamic Registration §2: the client's id_token_signed_response_alg, else the default.
            let alg = match client.settings().id_token_alg {
                Some(alg) => alg,
                None => Self::alg(&self.tokens.id_token_alg)?,
            };
            let key = signer(self.ring, alg, now)?;
            let id_secs = client
                .settings()
                .id_token_secs
                .map_or(self.tokens.id_token_secs, u64::from);
            let mut claims = json!({
                "iss": self.issuer,
                "sub": sub,
                "aud": client.id().as_str(),
                "azp": client.id().as_str(),
                "exp": now + id_secs as i64,
                "iat": now,
                "auth_time": grant.auth_time,
                "acr": acr,
                "amr": grant.amr,
                "sid": grant.sid,
                "at_hash": at_hash(key.alg, &access_token),
            });
            if let Some(nonce) = &grant.nonce {
                claims["nonce"] = Value::from(nonce.as_str());
            }
            if let Some(org) = &grant.org {
                claims["org"] = org.clone();
                released.push("org".to_owned());
            }
            released.extend(id_claims.keys().cloned());
            if let Value::Object(map) = &mut claims {
                map.extend(id_claims);
            }
            body["id_token"] =
                Value::from(key.sign_jwt("JWT", &claims).map_err(OAuthError::server)?);
        }
        Ok(Issued {
            body,
            jti,
            released,
        })
    }
}
