//! Bearer access tokens presented to yihao's own resource endpoints (userinfo, and every later
//! endpoint that takes an access token): RFC 6750 §2.1 (the `Authorization: Bearer` header; a token
//! in the query is never read, RFC 9700 §4.3.2) and RFC 9068 (a JWT signed by this server with
//! `typ: at+jwt`, not expired, not revoked, for a client that still exists).

use serde_json::Value;

use super::{ErrorCode, OAuthError};
use crate::crypto::signing::KeyRing;
use crate::domain::client::{Client, ClientId};
use crate::store::{ClientLookup, RevocationStore};

/// A validated access token.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub claims: Value,
    /// The client it was issued to.
    pub client: Client,
    pub scopes: Vec<String>,
    /// The subject as the client knows it (pairwise).
    pub sub: String,
}

/// What validating a bearer token reads.
pub struct BearerCheck<'a> {
    pub issuer: &'a str,
    pub ring: &'a KeyRing,
    pub revocations: &'a dyn RevocationStore,
    pub clients: &'a dyn ClientLookup,
}

fn invalid(description: &str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidToken, description)
}

/// The token of an `Authorization` header value `Bearer <token>` (RFC 6750 §2.1; the scheme is
/// case-insensitive); `invalid_request` when there is none (§3.1).
pub fn token_of(authorization: Option<&[u8]>) -> Result<&str, OAuthError> {
    // An HTTP header value of visible ASCII (and tabs): RFC 9110 §5.5; anything else carries no token.
    let visible = |v: &[u8]| v.iter().all(|b| *b == b'\t' || (0x20..0x7f).contains(b));
    authorization
        .filter(|v| visible(v))
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidRequest, "no access token"))
}

impl BearerCheck<'_> {
    /// Validates the bearer token of `authorization` at `now`: signature, issuer, expiry (no leeway),
    /// `typ`, revocation, then `required_scope` (`insufficient_scope`, RFC 6750 §3.1), then its client.
    pub async fn validate(
        &self,
        authorization: Option<&[u8]>,
        required_scope: Option<&str>,
        now: i64,
    ) -> Result<AccessToken, OAuthError> {
        let token = token_of(authorization)?;
        let mut validation = jsonwebtoken::Validation {
            validate_aud: false,
            validate_exp: false,
            leeway: 0,
            ..Default::default()
        };
        validation.set_issuer(&[self.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        let (header, claims) = self
            .ring
            .verify_token::<Value>(token, validation, now)
            .ok()
            .filter(|(_, claims)| !super::expired(claims, now, 0))
            .ok_or_else(|| invalid("the access token is invalid or expired"))?;
        // RFC 9068 §4: the typ header MUST be checked so ID tokens are not taken for access tokens.
        if header.typ.as_deref() != Some("at+jwt") {
            return Err(invalid("not an access token"));
        }
        let jti = claims["jti"]
            .as_str()
            .ok_or_else(|| invalid("the access token has no jti"))?;
        if self
            .revocations
            .token_revoked(jti, now)
            .await
            .map_err(OAuthError::server)?
        {
            return Err(invalid("the access token has been revoked"));
        }
        let scopes: Vec<String> = claims["scope"]
            .as_str()
            .unwrap_or("")
            .split(' ')
            .map(str::to_owned)
            .collect();
        if let Some(required) = required_scope
            && !scopes.iter().any(|s| s == required)
        {
            return Err(OAuthError::new(
                ErrorCode::InsufficientScope,
                format!("the access token has no {required} scope"),
            ));
        }
        let client_id = claims["client_id"]
            .as_str()
            .and_then(|c| ClientId::parse(c).ok())
            .ok_or_else(|| invalid("no client_id"))?;
        let client = self
            .clients
            .client(&client_id)
            .await
            .map_err(OAuthError::server)?
            .ok_or_else(|| invalid("the client no longer exists"))?;
        let sub = claims["sub"].as_str().unwrap_or("").to_owned();
        Ok(AccessToken {
            claims,
            client,
            scopes,
            sub,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bearer_header_carries_a_token() {
        assert_eq!(token_of(Some(b"Bearer abc")).unwrap(), "abc");
        assert_eq!(token_of(Some(b"bearer abc ")).unwrap(), "abc");
        for bad in [
            None,
            Some(&b"Basic abc"[..]),
            Some(&b"Bearerabc"[..]),
            Some(&[0xff][..]),
        ] {
            assert_eq!(token_of(bad).unwrap_err().code, ErrorCode::InvalidRequest);
        }
    }
}
