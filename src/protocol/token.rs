//! The token endpoint for `authorization_code` (RFC 6749 §4.1.3-4.1.4, OIDC Core §3.1.3), client
//! authentication (RFC 6749 §2.3.1), and the tokens: the ID token (OIDC Core §2) and the access token
//! as a signed JWT (RFC 9068) that department systems verify offline.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256, Sha512};

use super::accounts::Identities;
use super::audit::{Audit, AuditEvent, EventType};
use super::claims::user_claims;
use super::session::{self, CodeGrant};
use super::{ErrorCode, OAuthError};
use crate::config::TokensConfig;
use crate::crypto::client_secret::ClientSecretBox;
use crate::crypto::signing::{Alg, KeyRing, SigningKey};
use crate::crypto::subject::{SubjectCodec, sector_of};
use crate::crypto::{random_token, secret_matches};
use crate::domain::account::AccountId;
use crate::domain::client::{AuthMethod, Client, ClientId, GrantType};
use crate::store::Ephemeral;
use crate::store::client_cache::ClientLookup;

/// Credentials as the client presented them.
#[derive(Debug, Default)]
pub struct Presented {
    /// From `Authorization: Basic` (already form-decoded, RFC 6749 §2.3.1).
    pub basic: Option<(String, String)>,
    pub form_client_id: Option<String>,
    pub form_client_secret: Option<String>,
    /// RFC 7523 §2.2: `client_assertion_type` and `client_assertion`.
    pub assertion_type: Option<String>,
    pub assertion: Option<String>,
}

impl Presented {
    /// Reads the client's credentials from a token, introspection or revocation request: its
    /// decoded parameters and its `Authorization` header, if any. RFC 6749 §3.2: "Request and
    /// response parameters MUST NOT be included more than once" (`resource` may repeat, RFC 8707
    /// §2).
    pub fn read(
        params: &[(String, String)],
        authorization: Option<&[u8]>,
    ) -> Result<Self, OAuthError> {
        let mut names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1] && w[0] != "resource") {
            return Err(OAuthError::new(
                ErrorCode::InvalidRequest,
                "a parameter is repeated",
            ));
        }
        let get = |name: &str| super::param(params, name).map(str::to_owned);
        Ok(Self {
            basic: authorization.map(basic_credentials).transpose()?,
            form_client_id: get("client_id"),
            form_client_secret: get("client_secret"),
            assertion_type: get("client_assertion_type"),
            assertion: get("client_assertion"),
        })
    }
}

/// RFC 6749 §2.3.1: `Authorization: Basic base64(urlencode(id) ":" urlencode(secret))`.
fn basic_credentials(value: &[u8]) -> Result<(String, String), OAuthError> {
    let bad = || OAuthError::new(ErrorCode::InvalidClient, "malformed Basic credentials");
    let value = std::str::from_utf8(value).map_err(|_| bad())?;
    let Some(encoded) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    else {
        return Err(bad());
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Ok((
        unescape(id).ok_or_else(bad)?,
        unescape(secret).ok_or_else(bad)?,
    ))
}

/// Where clients' public keys come from when they registered a `jwks_uri`: fetched with a time
/// limit and cached; `fresh` skips the cache (an assertion named a key id not seen before).
#[async_trait::async_trait]
pub trait ClientKeys: Send + Sync {
    async fn fetch(&self, uri: &str, fresh: bool) -> Result<jsonwebtoken::jwk::JwkSet, String>;
}

/// What JWT client authentication checks the assertion against.
pub struct AssertionContext<'a> {
    pub keys: &'a dyn ClientKeys,
    /// Opens the secrets of `client_secret_jwt` clients.
    pub secrets: &'a ClientSecretBox,
    pub ephemeral: &'a dyn Ephemeral,
    /// Acceptable `aud` values: the issuer and the endpoint URLs (RFC 7523 §3).
    pub audiences: Vec<String>,
}

/// Algorithms for `private_key_jwt`: asymmetric only.
pub const ASYMMETRIC: [jsonwebtoken::Algorithm; 7] = [
    jsonwebtoken::Algorithm::RS256,
    jsonwebtoken::Algorithm::RS384,
    jsonwebtoken::Algorithm::RS512,
    jsonwebtoken::Algorithm::PS256,
    jsonwebtoken::Algorithm::ES256,
    jsonwebtoken::Algorithm::ES384,
    jsonwebtoken::Algorithm::EdDSA,
];
/// Algorithms for `client_secret_jwt`: HMAC only (OIDC Core §9).
pub const HMAC: [jsonwebtoken::Algorithm; 3] = [
    jsonwebtoken::Algorithm::HS256,
    jsonwebtoken::Algorithm::HS384,
    jsonwebtoken::Algorithm::HS512,
];

/// The `private_key_jwt` client's public key the assertion names (`kid`, or the only key), from its
/// inline `jwks` or its `jwks_uri` (fetched again once when the key id is unknown: a rotation).
async fn client_public_key(
    client: &Client,
    kid: Option<&str>,
    ctx: &AssertionContext<'_>,
) -> Result<jsonwebtoken::DecodingKey, OAuthError> {
    let settings = client.settings();
    let find_key = |set: &jsonwebtoken::jwk::JwkSet| -> Option<jsonwebtoken::jwk::Jwk> {
        match kid {
            Some(kid) => set.find(kid).cloned(),
            None if set.keys.len() == 1 => set.keys.first().cloned(),
            None => None,
        }
    };
    let fetch_error = |e: String| invalid_client(&format!("cannot fetch the client's keys: {e}"));
    let jwk = match (&settings.jwks, &settings.jwks_uri) {
        (Some(raw), _) => {
            let set: jsonwebtoken::jwk::JwkSet =
                serde_json::from_str(raw).map_err(OAuthError::server)?;
            find_key(&set)
        }
        (None, Some(uri)) => {
            let set = ctx.keys.fetch(uri, false).await.map_err(fetch_error)?;
            match find_key(&set) {
                Some(k) => Some(k),
                None => find_key(&ctx.keys.fetch(uri, true).await.map_err(fetch_error)?),
            }
        }
        (None, None) => None,
    }
    .ok_or_else(|| invalid_client("the assertion's key is not one of the client's"))?;
    jsonwebtoken::DecodingKey::from_jwk(&jwk)
        .map_err(|_| invalid_client("the client's key is not usable"))
}

/// RFC 7523 §2.2 / OIDC Core §9 JWT client authentication. `private_key_jwt`: the assertion is
/// signed with one of the client's registered public keys; `client_secret_jwt`: with HMAC keyed by
/// the client secret (the previous secret too during a rotation). Either way `iss` = `sub` =
/// client_id, `aud` this server, `exp` required and at most five minutes ahead, `jti` never seen
/// before within its lifetime (checked in the shared ephemeral store, so across nodes). Each method
/// accepts only its own family of algorithms, so a public key can never serve as an HMAC secret.
async fn authenticate_assertion(
    clients: &dyn ClientLookup,
    presented: &Presented,
    ctx: &AssertionContext<'_>,
    now: i64,
) -> Result<Client, OAuthError> {
    const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
    if presented.assertion_type.as_deref() != Some(JWT_BEARER) {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "client_assertion_type must be jwt-bearer",
        ));
    }
    if presented.basic.is_some() || presented.form_client_secret.is_some() {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "use one client authentication method, not two",
        ));
    }
    let assertion = presented.assertion.as_deref().unwrap_or("");
    let (header, client_id) = read_assertion(assertion)?;
    let client_id = client_id.as_str();
    if presented
        .form_client_id
        .as_deref()
        .is_some_and(|f| f != client_id)
    {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "client_id differs from the assertion's issuer",
        ));
    }
    let id = ClientId::parse(client_id).map_err(|_| invalid_client("unknown client"))?;
    let client = clients
        .client(&id)
        .await
        .map_err(OAuthError::server)?
        .ok_or_else(|| invalid_client("unknown client"))?;
    let algorithms: &[jsonwebtoken::Algorithm] = match client.auth_method() {
        AuthMethod::PrivateKeyJwt => &ASYMMETRIC,
        AuthMethod::ClientSecretJwt => &HMAC,
        _ => {
            return Err(invalid_client(
                "the client must authenticate with the method it registered",
            ));
        }
    };
    let keys = if client.auth_method() == AuthMethod::PrivateKeyJwt {
        vec![client_public_key(&client, header.kid.as_deref(), ctx).await?]
    } else {
        ctx.secrets
            .hmac_keys(&client, now)
            .map_err(OAuthError::server)?
            .iter()
            .map(|k| jsonwebtoken::DecodingKey::from_secret(k))
            .collect()
    };
    let (jti, exp) = verify_assertion(
        assertion,
        &header,
        client_id,
        algorithms,
        &keys,
        &ctx.audiences,
        now,
    )?;
    let ttl = std::time::Duration::from_secs(u64::try_from(exp - now + 60).unwrap_or(60).max(60));
    let fresh = ctx
        .ephemeral
        .put_if_absent(&format!("assertion-jti:{client_id}:{jti}"), b"1", ttl)
        .await
        .map_err(OAuthError::server)?;
    if !fresh {
        tracing::warn!(client = %client_id, "client assertion replayed");
        return Err(invalid_client("client_assertion was already used"));
    }
    Ok(client)
}

/// The assertion's header and its unverified issuer, which names the client whose keys must then
/// verify it.
pub fn read_assertion(assertion: &str) -> Result<(jsonwebtoken::Header, String), OAuthError> {
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|_| invalid_client("client_assertion is not a JWT"))?;
    let unverified: Value = assertion
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| invalid_client("client_assertion is not a JWT"))?;
    let client_id = unverified["iss"]
        .as_str()
        .ok_or_else(|| invalid_client("client_assertion has no iss"))?;
    Ok((header, client_id.to_owned()))
}

/// Checks the assertion's algorithm (one of the client's method's `algorithms`), its signature with
/// one of `keys` and its claims (RFC 7523 §3): `iss` = `sub` = the client, `aud` one of
/// `audiences`, `exp` present and at most five minutes ahead, a `jti`. Returns the `jti` and `exp`,
/// for the replay check.
pub fn verify_assertion(
    assertion: &str,
    header: &jsonwebtoken::Header,
    client_id: &str,
    algorithms: &[jsonwebtoken::Algorithm],
    keys: &[jsonwebtoken::DecodingKey],
    audiences: &[String],
    now: i64,
) -> Result<(String, i64), OAuthError> {
    if !algorithms.contains(&header.alg) {
        return Err(invalid_client("the assertion's algorithm is not accepted"));
    }
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.leeway = 30;
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    validation.set_issuer(&[client_id]);
    validation.sub = Some(client_id.to_owned());
    validation.set_audience(audiences);
    let mut outcome = Err(invalid_client(
        "the client has no key to check the assertion",
    ));
    for key in keys {
        outcome = jsonwebtoken::decode::<Value>(assertion, key, &validation)
            .map(|d| d.claims)
            .map_err(|e| invalid_client(&format!("client_assertion rejected: {e}")));
        if outcome.is_ok() {
            break;
        }
    }
    let claims = outcome?;
    let exp = claims["exp"].as_i64().unwrap_or(0);
    if exp - now > 300 {
        return Err(invalid_client(
            "client_assertion must expire within five minutes",
        ));
    }
    let jti = claims["jti"]
        .as_str()
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| invalid_client("client_assertion needs a jti"))?;
    Ok((jti.to_owned(), exp))
}

fn invalid_client(description: &str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClient, description)
}

/// RFC 6749 §2.3: authenticates the client by the one method it used, which must be the method it
/// registered. "The client MUST NOT use more than one authentication method in each request."
pub async fn authenticate_client(
    clients: &dyn ClientLookup,
    presented: &Presented,
    assertions: &AssertionContext<'_>,
    now: i64,
) -> Result<Client, OAuthError> {
    if presented.assertion.is_some() || presented.assertion_type.is_some() {
        return authenticate_assertion(clients, presented, assertions, now).await;
    }
    let (client_id, secret, method) = match (&presented.basic, &presented.form_client_secret) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::new(
                ErrorCode::InvalidRequest,
                "use one client authentication method, not two",
            ));
        }
        (Some((id, secret)), None) => {
            if presented.form_client_id.as_ref().is_some_and(|f| f != id) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidRequest,
                    "client_id differs from the authenticated client",
                ));
            }
            (
                id.clone(),
                Some(secret.clone()),
                AuthMethod::ClientSecretBasic,
            )
        }
        (None, Some(secret)) => {
            let id = presented
                .form_client_id
                .clone()
                .ok_or_else(|| invalid_client("client_id is missing"))?;
            (id, Some(secret.clone()), AuthMethod::ClientSecretPost)
        }
        (None, None) => {
            let id = presented
                .form_client_id
                .clone()
                .ok_or_else(|| invalid_client("client authentication is missing"))?;
            (id, None, AuthMethod::None)
        }
    };
    let id = ClientId::parse(&client_id).map_err(|_| invalid_client("unknown client"))?;
    let client = clients
        .client(&id)
        .await
        .map_err(OAuthError::server)?
        .ok_or_else(|| invalid_client("unknown client"))?;
    if client.auth_method() != method {
        return Err(invalid_client(
            "the client must authenticate with the method it registered",
        ));
    }
    if let Some(secret) = secret {
        let secrets = client
            .secrets()
            .ok_or_else(|| invalid_client("the client has no secret"))?;
        let current = secret_matches(&secret, &secrets.current);
        let previous = secrets
            .previous
            .is_some_and(|(hash, until)| now < until && secret_matches(&secret, &hash));
        if !(current | previous) {
            return Err(invalid_client("client authentication failed"));
        }
    }
    Ok(client)
}

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
        .ok_or_else(|| OAuthError::server(format!("no {alg} signing key is active")))
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

    pub fn refresh_policy(&self) -> super::lifecycle::RefreshPolicy {
        super::lifecycle::RefreshPolicy {
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
        let sub = self.subjects.encode(&sector_of(client), &grant.account_id);
        let jti = random_token();
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

/// RFC 7636 §4.6: "BASE64URL-ENCODE(SHA256(ASCII(code_verifier))) == code_challenge", the verifier
/// 43 to 128 unreserved characters (§4.1). A verifier without a challenge is refused too: it would
/// mean the code was requested without PKCE (RFC 9700 §4.8.2, PKCE downgrade).
pub fn check_pkce(challenge: Option<&str>, verifier: Option<&str>) -> Result<(), OAuthError> {
    match (challenge, verifier) {
        (Some(challenge), Some(verifier)) => {
            let valid_shape = (43..=128).contains(&verifier.len())
                && verifier
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            if !valid_shape
                || !bool::from(subtle::ConstantTimeEq::ct_eq(
                    computed.as_bytes(),
                    challenge.as_bytes(),
                ))
            {
                return Err(invalid_grant(
                    "code_verifier does not match the code_challenge",
                ));
            }
            Ok(())
        }
        (Some(_), None) => Err(invalid_grant("code_verifier is missing")),
        (None, Some(_)) => Err(invalid_grant(
            "code_verifier sent but no code_challenge was",
        )),
        (None, None) => Ok(()),
    }
}

fn invalid_grant(description: &str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidGrant, description)
}

/// RFC 6749 §4.1.3 with RFC 7636 §4.6: redeems a code for `client`. A code used twice is refused
/// and what its first use issued is revoked (RFC 6749 §4.1.2: "If an authorization code is used more
/// than once, the authorization server MUST deny the request and SHOULD revoke (when possible) all
/// tokens previously issued based on that authorization code.").
pub async fn exchange_code(
    issuer: &TokenIssuer<'_>,
    ids: &Identities,
    ephemeral: &dyn Ephemeral,
    client: &Client,
    params: &[(String, String)],
    now: i64,
) -> Result<Value, OAuthError> {
    let get = |name: &str| super::param(params, name);
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
        Ok(grant) => grant,
        Err(first_use) => {
            if let Some(jti) = first_use {
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
            }
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
    let account_id = AccountId::parse(&grant.account_id).map_err(OAuthError::server)?;
    let account = ids
        .account(&account_id)
        .await
        .map_err(OAuthError::server)?
        .ok_or_else(|| invalid_grant("the account no longer exists"))?;
    if account.status != crate::domain::account::AccountStatus::Active {
        return Err(invalid_grant("the account is not active"));
    }
    let all = user_claims(&account, &grant.scopes, client.settings().full_phone);
    let id_claims: Map<String, Value> = all
        .into_iter()
        .filter(|(k, _)| grant.claims_id_token.iter().any(|c| c == k))
        .collect();
    let issued = issuer.issue(&grant, client, id_claims, now)?;
    let mut body = issued.body;
    if super::lifecycle::wants_refresh(client, &grant) {
        let refresh = super::lifecycle::issue_refresh(
            ids.store.as_ref(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn pairs(raw: &[(&str, &str)]) -> Vec<(String, String)> {
        raw.iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn pkce_follows_rfc_7636() {
        assert!(check_pkce(Some(CHALLENGE), Some(VERIFIER)).is_ok());
        assert!(check_pkce(None, None).is_ok());
        for (challenge, verifier) in [
            (Some(CHALLENGE), None),
            (None, Some(VERIFIER)),
            (Some(CHALLENGE), Some(&VERIFIER[1..])),
            // The plain method's "verifier == challenge" is not S256.
            (Some(CHALLENGE), Some(CHALLENGE)),
        ] {
            assert_eq!(
                check_pkce(challenge, verifier).unwrap_err().code,
                ErrorCode::InvalidGrant
            );
        }
    }

    #[test]
    fn basic_credentials_are_form_decoded_and_repeats_refused() {
        // RFC 6749 §2.3.1: id and secret are form-encoded before base64.
        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("h%C3%A0ll:s%3Ac+r%25t")
        );
        let presented = Presented::read(&[], Some(header.as_bytes())).unwrap();
        assert_eq!(
            presented.basic,
            Some(("hàll".to_owned(), "s:c r%t".to_owned()))
        );
        for bad in ["Bearer x", "Basic !!", "Basic aGFsbA=="] {
            assert_eq!(
                Presented::read(&[], Some(bad.as_bytes())).unwrap_err().code,
                ErrorCode::InvalidClient,
                "{bad}"
            );
        }
        let repeated = pairs(&[("client_id", "a"), ("client_id", "a")]);
        assert_eq!(
            Presented::read(&repeated, None).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
        let resources = pairs(&[("resource", "https://a"), ("resource", "https://b")]);
        assert!(Presented::read(&resources, None).is_ok());
    }

    proptest! {
        /// Only the verifier whose S256 hash is the challenge passes.
        #[test]
        fn pkce_accepts_only_the_verifier(verifier in "[A-Za-z0-9._~-]{0,130}") {
            prop_assert_eq!(
                check_pkce(Some(CHALLENGE), Some(&verifier)).is_ok(),
                verifier == VERIFIER
            );
        }

        /// Any parameters and any Authorization bytes: an answer, never a panic; a repeated name
        /// other than `resource` is always refused.
        #[test]
        fn presented_reads_anything(
            params in proptest::collection::vec(("(client_id|client_secret|resource|scope|[a-z]{1,3})", ".{0,12}"), 0..8),
            authorization in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        ) {
            let outcome = Presented::read(&params, authorization.as_deref());
            let mut names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
            names.sort_unstable();
            if names.windows(2).any(|w| w[0] == w[1] && w[0] != "resource") {
                prop_assert!(outcome.is_err());
            }
        }

        /// Any text as a client assertion: read or refused, never a panic.
        #[test]
        fn assertions_of_any_shape_are_read_or_refused(
            parts in proptest::collection::vec("[A-Za-z0-9_=-]{0,24}", 0..5),
        ) {
            let _ = read_assertion(&parts.join("."));
        }
    }
}
