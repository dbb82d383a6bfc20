//! Client authentication at the token, introspection and revocation endpoints (RFC 6749 §2.3):
//! `client_secret_basic`, `client_secret_post`, `none` for public clients, and JWT assertions
//! (RFC 7523 §2.2; OIDC Core §9 `private_key_jwt` and `client_secret_jwt`). A client uses the one
//! method it registered; a failure is audited with the client id as presented.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::{ErrorCode, OAuthError};
use crate::crypto::client_secret::ClientSecretBox;
use crate::crypto::secret_matches;
use crate::domain::client::{AuthMethod, Client, ClientId};
use crate::store::{ClientLookup, Ephemeral};

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
    async fn fetch(&self, uri: &str, fresh: bool) -> Result<jsonwebtoken::jwk::JwkSet, FetchError>;
}

/// Why a client's JWK Set could not be had.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The HTTP client's error (its URL already removed).
    #[error(transparent)]
    Transport(Box<dyn std::error::Error + Send + Sync>),
    #[error("{uri} answered {status}")]
    Status { uri: String, status: String },
    #[error("the JWK Set is larger than 256 KiB")]
    TooLarge,
    #[error("not a JWK Set")]
    NotJwks(#[source] serde_json::Error),
}

/// What JWT client authentication checks the assertion against.
pub struct AssertionContext<'a> {
    pub keys: &'a dyn ClientKeys,
    /// Opens the secrets of `client_secret_jwt` clients.
    pub secrets: &'a ClientSecretBox,
    pub ephemeral: &'a dyn Ephemeral,
    /// Acceptable `aud` values: the issuer and the endpoint URLs (RFC 7523 §3).
    pub audiences: &'a [String],
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
    // The caller is not authenticated yet: it learns that the keys could not be had, not the
    // URI's answer (security review 11); the reason goes to the log.
    let fetch_error = |e: FetchError| {
        tracing::info!(
            client = %client.id(),
            error = %crate::telemetry::ErrorChain(&e),
            "client keys not fetched"
        );
        invalid_client("cannot fetch the client's keys")
    };
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
        ctx.audiences,
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
    const LEEWAY: i64 = 30;
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    // `exp` is checked below on `now`, with the same leeway.
    validation.validate_exp = false;
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
    // One audience (security review 10, after the OpenID Foundation's 2025 advice on
    // private_key_jwt audiences): the issuer identifier, or the URL of this server's endpoint,
    // alone. An assertion addressed to several parties at once could have been made for another
    // server and replayed here.
    let single_audience = match &claims["aud"] {
        Value::String(_) => true,
        Value::Array(values) => values.len() == 1,
        _ => false,
    };
    if !single_audience {
        return Err(invalid_client("client_assertion must name one audience"));
    }
    let Some(exp) = claims["exp"].as_i64() else {
        return Err(invalid_client("client_assertion needs an integer exp"));
    };
    if super::expired(&claims, now, LEEWAY) {
        return Err(invalid_client(
            "client_assertion rejected: ExpiredSignature",
        ));
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pairs(raw: &[(&str, &str)]) -> Vec<(String, String)> {
        raw.iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
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

#[cfg(test)]
mod exp_tests {
    use super::*;

    fn assertion(exp: serde_json::Value) -> (String, jsonwebtoken::Header) {
        let claims = serde_json::json!({
            "iss": "dept", "sub": "dept", "aud": "https://id.example", "jti": "j1", "exp": exp,
        });
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        let token = jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
        )
        .unwrap();
        (token, header)
    }

    /// Security review 9: `exp` was read with `as_i64().unwrap_or(0)`, so a float or a number past
    /// i64 passed the five-minute rule. It must be an integer, within five minutes, not past.
    #[test]
    fn an_assertion_needs_an_integer_exp_within_five_minutes_and_one_audience() {
        const NOW: i64 = 1_800_000_000;
        let key = [jsonwebtoken::DecodingKey::from_secret(
            b"0123456789abcdef0123456789abcdef",
        )];
        let audiences = ["https://id.example".to_owned()];
        let check = |exp: serde_json::Value| {
            let (token, header) = assertion(exp);
            verify_assertion(&token, &header, "dept", &HMAC, &key, &audiences, NOW)
        };
        assert_eq!(check(serde_json::json!(NOW + 60)).unwrap().1, NOW + 60);
        // One audience only (security review 10).
        let claims = serde_json::json!({
            "iss": "dept", "sub": "dept", "jti": "j2", "exp": NOW + 60,
            "aud": ["https://id.example", "https://elsewhere.example"],
        });
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        let two = jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
        )
        .unwrap();
        let refused =
            verify_assertion(&two, &header, "dept", &HMAC, &key, &audiences, NOW).unwrap_err();
        assert_eq!(
            refused.description,
            "client_assertion must name one audience"
        );
        for bad in [
            serde_json::json!(1.0e30),
            serde_json::json!(18_446_744_073_709_551_615_u64),
            serde_json::json!((NOW + 60) as f64 + 0.5),
            serde_json::json!(NOW + 301),
            serde_json::json!(NOW - 31),
        ] {
            assert_eq!(
                check(bad.clone()).unwrap_err().code,
                ErrorCode::InvalidClient,
                "{bad}"
            );
        }
    }
}
