//! OAuth 2.0 / OpenID Connect clients (relying services) and the values they are registered with.
//!
//! Field names follow RFC 7591 §2 (Dynamic Client Registration metadata) so that what the CLI prints
//! and what a registration endpoint will accept are the same words.

use std::fmt;

use serde::{Deserialize, Serialize};
use url::Url;

/// A client identifier: 1 to 128 characters of RFC 3986 "unreserved" (`A-Z a-z 0-9 - . _ ~`), so it
/// needs no escaping in a URL, a form body or a Basic authorization header.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    pub fn parse(raw: &str) -> Result<Self, ClientError> {
        if raw.is_empty() || raw.len() > 128 {
            return Err(ClientError::new("client_id", "must be 1 to 128 characters"));
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        {
            return Err(ClientError::new(
                "client_id",
                "may contain only letters, digits and - . _ ~",
            ));
        }
        Ok(Self(raw.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A registered redirect URI (RFC 6749 §3.1.2): absolute, without a fragment. Allowed schemes:
/// `https`; `http` only for loopback hosts (RFC 8252 §7.3) and `localhost`; a private-use scheme in
/// reverse-domain form for native apps (RFC 8252 §7.1, e.g. `cn.gov.example.app:/cb`).
/// Matching is exact string comparison (RFC 9700 §4.1.3); the loopback-port rule of RFC 8252 §7.3 is
/// applied by the authorization endpoint, not here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct RedirectUri(String);

impl RedirectUri {
    pub fn parse(raw: &str) -> Result<Self, ClientError> {
        Self::parse_as("redirect_uris", raw)
    }

    /// A post-logout redirect URI follows the same rules (RP-Initiated Logout 1.0 §3.1).
    pub fn parse_post_logout(raw: &str) -> Result<Self, ClientError> {
        Self::parse_as("post_logout_redirect_uris", raw)
    }

    fn parse_as(field: &'static str, raw: &str) -> Result<Self, ClientError> {
        let bad = |why: &str| ClientError::new(field, format!("{raw:?} {why}"));
        if raw.len() > 2000 {
            return Err(bad("is longer than 2000 characters"));
        }
        let url = Url::parse(raw).map_err(|e| bad(&format!("is not an absolute URI ({e})")))?;
        if url.fragment().is_some() || raw.contains('#') {
            return Err(bad("must not contain a fragment (RFC 6749 §3.1.2)"));
        }
        match url.scheme() {
            "https" => {}
            "http" => {
                let loopback = match url.host() {
                    Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                    Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                    Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                    None => false,
                };
                if !loopback {
                    return Err(bad("uses plain http on a host that is not loopback"));
                }
            }
            "javascript" | "data" | "file" | "vbscript" | "blob" => {
                return Err(bad("uses a scheme that cannot be a redirect target"));
            }
            scheme if scheme.contains('.') => {}
            _ => {
                return Err(bad(
                    "must be https, loopback http, or a reverse-domain private-use scheme (RFC 8252 §7.1)",
                ));
            }
        }
        if url.username() != "" || url.password().is_some() {
            return Err(bad("must not contain user information"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A CAS service URL a client is known by (docs/integration/cas.md). The `service` a CAS login names
/// must equal one exactly, or begin with one written with a final `*` (the prefix rule): the part
/// before the `*` is a URL without query whose path ends in `/`, so `https://a.example/app/*` admits
/// `https://a.example/app/x?y=1` but neither `https://a.example/app-x` nor another host. Otherwise
/// the rules of a redirect URI apply (https, or plain http on a loopback host). No regular expressions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct CasService(String);

impl CasService {
    pub fn parse(raw: &str) -> Result<Self, ClientError> {
        let bad = |why: &str| ClientError::new("cas_services", format!("{raw:?} {why}"));
        let url = raw.strip_suffix('*').unwrap_or(raw);
        RedirectUri::parse_as("cas_services", url)?;
        if !cas_service_url(url) {
            return Err(bad(
                "must be an http or https URL written as browsers resolve it (a path, no `..` or \\, \
                 no fragment, no ticket parameter)",
            ));
        }
        if raw.ends_with('*') && (url.contains('?') || !url.ends_with('/')) {
            return Err(bad(
                "as a prefix (final `*`) must be a URL without query ending in `/`",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// Whether two entries could admit the same service URL (an exact one under a prefix, one
    /// prefix under another): two clients may not claim one URL.
    pub fn overlaps(&self, other: &CasService) -> bool {
        let (a, b) = (self.0.strip_suffix('*'), other.0.strip_suffix('*'));
        match (a, b) {
            (None, None) => self.0 == other.0,
            (Some(p), None) => other.0.starts_with(p),
            (None, Some(p)) => self.0.starts_with(p),
            (Some(p), Some(q)) => p.starts_with(q) || q.starts_with(p),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether a CAS login's `service` is this one: equal, or under the prefix. An exact entry
    /// matches better than any prefix, and a longer prefix better than a shorter one.
    pub fn matches(&self, service: &str) -> Option<usize> {
        match self.0.strip_suffix('*') {
            Some(prefix) => service.starts_with(prefix).then_some(prefix.len()),
            None => (self.0 == service).then_some(usize::MAX),
        }
    }
}

/// A CAS service URL as a login may name it and a client may register it: absolute http or https, at
/// most 2000 bytes, no fragment or user information, and already in the form the WHATWG URL rules
/// write it (so `..`, `%2e%2e`, `\`, tabs and line breaks, which browsers resolve or drop, are refused
/// rather than compared as written), no dot segment in any disguise (`..;`), and no `ticket` parameter
/// of its own (CAS 3.0: the ticket is appended by the server).
pub fn cas_service_url(s: &str) -> bool {
    if s.len() > 2000 || s.contains('#') {
        return false;
    }
    let Ok(u) = Url::parse(s) else {
        return false;
    };
    if !matches!(u.scheme(), "http" | "https")
        || u.as_str() != s
        || !u.username().is_empty()
        || u.password().is_some()
    {
        return false;
    }
    let dot_segment = u.path_segments().into_iter().flatten().any(|segment| {
        let decoded = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
        let head = decoded.split(';').next().unwrap_or_default().trim();
        head == "." || head == ".."
    });
    !dot_segment && !u.query_pairs().any(|(k, _)| k == "ticket")
}

/// Grant types a client may use (RFC 7591 §2 `grant_types`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GrantType {
    #[serde(rename = "authorization_code")]
    AuthorizationCode,
    #[serde(rename = "refresh_token")]
    RefreshToken,
    #[serde(rename = "client_credentials")]
    ClientCredentials,
    /// RFC 8628 §3.4.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:device_code")]
    DeviceCode,
}

impl GrantType {
    pub const ALL: [GrantType; 4] = [
        Self::AuthorizationCode,
        Self::RefreshToken,
        Self::ClientCredentials,
        Self::DeviceCode,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
            Self::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ClientError> {
        Self::ALL
            .into_iter()
            .find(|g| g.as_str() == raw)
            .ok_or_else(|| {
                ClientError::new(
                    "grant_types",
                    format!(
                        "{raw:?} is not supported (supported: {})",
                        Self::ALL.map(Self::as_str).join(", ")
                    ),
                )
            })
    }
}

/// How a client authenticates at the token endpoint (RFC 7591 §2 `token_endpoint_auth_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    ClientSecretJwt,
    PrivateKeyJwt,
    None,
}

impl AuthMethod {
    pub const ALL: [AuthMethod; 5] = [
        Self::ClientSecretBasic,
        Self::ClientSecretPost,
        Self::ClientSecretJwt,
        Self::PrivateKeyJwt,
        Self::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::ClientSecretJwt => "client_secret_jwt",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ClientError> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == raw)
            .ok_or_else(|| {
                ClientError::new(
                    "token_endpoint_auth_method",
                    format!(
                        "{raw:?} is not supported (supported: {})",
                        Self::ALL.map(Self::as_str).join(", ")
                    ),
                )
            })
    }

    /// Methods that need a shared secret.
    pub fn uses_secret(self) -> bool {
        matches!(
            self,
            Self::ClientSecretBasic | Self::ClientSecretPost | Self::ClientSecretJwt
        )
    }
}

/// How a client serves people: the online service hall in a browser, the mobile app, a self-service
/// kiosk, a service window (staff at a counter), or a department system. Sessions record the channel
/// of the client a person signed in at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    #[default]
    Web,
    App,
    Kiosk,
    Window,
    System,
}

impl Channel {
    pub const ALL: [Channel; 5] = [
        Self::Web,
        Self::App,
        Self::Kiosk,
        Self::Window,
        Self::System,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::App => "app",
            Self::Kiosk => "kiosk",
            Self::Window => "window",
            Self::System => "system",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ClientError> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == raw)
            .ok_or_else(|| {
                ClientError::new(
                    "channel",
                    format!(
                        "{raw:?} is not a channel (one of: {})",
                        Self::ALL.map(Self::as_str).join(", ")
                    ),
                )
            })
    }
}

/// A scope token (RFC 6749 §3.3): `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Scope(String);

impl Scope {
    pub fn parse(raw: &str) -> Result<Self, ClientError> {
        let ok = !raw.is_empty()
            && raw.len() <= 128
            && raw
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ClientError::new(
                "scope",
                format!(
                    "{raw:?} is not a scope token (RFC 6749 §3.3: printable ASCII without space, \" or \\)"
                ),
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// SHA-256 of a client secret. Raw secrets are never stored (docs/design.md).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SecretHash(pub [u8; 32]);

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash([redacted])")
    }
}

/// A client secret sealed under the master key (opened by `crypto`); kept only for clients that
/// authenticate with `client_secret_jwt`, which needs the secret itself as the HMAC key.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret(pub Vec<u8>);

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealedSecret([redacted])")
    }
}

/// The secrets a confidential client may present: the current one, and during a rotation the
/// previous one until `previous_expires_at` (epoch seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSecrets {
    pub current: SecretHash,
    pub previous: Option<(SecretHash, i64)>,
    /// `client_secret_jwt` clients only: the current and previous secrets, sealed.
    pub sealed: Option<SealedSecret>,
    pub previous_sealed: Option<SealedSecret>,
}

impl ClientSecrets {
    /// Secrets kept only as hashes (every secret-based method but `client_secret_jwt`).
    pub fn hashed(current: SecretHash, previous: Option<(SecretHash, i64)>) -> Self {
        Self {
            current,
            previous,
            sealed: None,
            previous_sealed: None,
        }
    }
}

/// Per-client token settings (RFC 7591 / OIDC Dynamic Registration §2 names); `None` means the
/// server's default from `[tokens]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientSettings {
    /// `id_token_signed_response_alg`.
    pub id_token_alg: Option<super::jose::Alg>,
    /// The access token's algorithm (RFC 9068 JWTs; named like the registration parameters).
    pub access_token_alg: Option<super::jose::Alg>,
    /// Access-token lifetime in seconds (60 to 86 400).
    pub access_token_secs: Option<u32>,
    /// ID-token lifetime in seconds (60 to 86 400).
    pub id_token_secs: Option<u32>,
    /// The client may receive the full mobile number with the `phone` scope (docs/privacy.md: masked
    /// unless an administrator allowed it for a stated purpose).
    pub full_phone: bool,
    /// Resource indicators (RFC 8707) the client may ask tokens for; absolute URIs.
    pub resources: Vec<String>,
    /// `jwks` (RFC 7591 §2): the client's public keys for private_key_jwt, a JWK Set document.
    pub jwks: Option<String>,
    /// `jwks_uri` (RFC 7591 §2): where to fetch them instead.
    pub jwks_uri: Option<String>,
    /// OIDC Back-Channel Logout §2.2 `backchannel_logout_uri`: where logout tokens are POSTed.
    pub backchannel_logout_uri: Option<String>,
    /// `backchannel_logout_session_required`: the logout token must carry `sid`.
    pub backchannel_logout_session_required: bool,
    /// OIDC Front-Channel Logout §2 `frontchannel_logout_uri`: loaded in an iframe at logout.
    pub frontchannel_logout_uri: Option<String>,
    /// `frontchannel_logout_session_required`: add `iss` and `sid` to it.
    pub frontchannel_logout_session_required: bool,
    /// The channel the client serves people through.
    pub channel: Channel,
    /// A confidential client that may leave out PKCE although `tokens.require_pkce` asks for it
    /// (a relying party that cannot send it yet). Public clients must always use PKCE.
    pub pkce_optional: bool,
    /// The lowest real-name level (1 to 4) a session must reach before this client gets a code
    /// (docs/assurance.md, "Policies"): a tax or social-security service can require 3. Treated
    /// as an essential requirement: a request that cannot reach it ends in
    /// `unmet_authentication_requirements`.
    pub min_level: Option<u8>,
    /// Where the device or counter stands (a kiosk's hall and number), shown on the page where a
    /// person approves it (RFC 8628 §5.4: the person must be able to tell it is the device in front
    /// of them). At most 100 characters.
    pub location: Option<String>,
    /// The department that owns the client (its unified social credit code), whose department
    /// administrators manage it (docs/administration.md); `None`: the platform's own.
    pub department: Option<super::identifiers::CreditCode>,
    /// The CAS service URLs the client is known by (CAS 3.0; docs/integration/cas.md).
    pub cas_services: Vec<CasService>,
    /// Registered through Dynamic Client Registration and not yet approved by an administrator:
    /// it signs nobody in and gets no token (docs/integration/registration.md).
    pub pending: bool,
    /// RFC 7592 §3: the hash of the registration access token that reads, changes and deletes the
    /// client at its registration URI (clients registered through the endpoint only).
    pub registration_token: Option<SecretHash>,
}

/// What an administrator asks for; [`Client::register`] checks it as a whole.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    pub id: ClientId,
    pub name: String,
    pub auth_method: AuthMethod,
    pub redirect_uris: Vec<RedirectUri>,
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    pub grant_types: Vec<GrantType>,
    pub scopes: Vec<Scope>,
    pub first_party: bool,
    pub settings: ClientSettings,
}

/// A registered client. Constructed only through [`Client::register`] or [`Client::restore`], both of
/// which enforce the rules below, so a `Client` in hand is coherent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    spec: ClientSpecChecked,
    secrets: Option<ClientSecrets>,
    created_at: i64,
    updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ClientSpecChecked {
    id: ClientId,
    name: String,
    auth_method: AuthMethod,
    redirect_uris: Vec<RedirectUri>,
    post_logout_redirect_uris: Vec<RedirectUri>,
    grant_types: Vec<GrantType>,
    scopes: Vec<Scope>,
    first_party: bool,
    settings: ClientSettings,
}

impl Client {
    /// Checks a registration: a public client (`none`) has no secret and cannot use
    /// client_credentials; a secret-based method needs a secret; authorization_code needs at least one
    /// redirect URI; refresh_token only comes with authorization_code; lists hold no duplicates.
    pub fn register(
        spec: ClientSpec,
        secrets: Option<ClientSecrets>,
        now: i64,
    ) -> Result<Self, ClientError> {
        Self::restore(spec, secrets, now, now)
    }

    /// Rebuilds a stored client, applying the same rules as [`Client::register`].
    pub fn restore(
        spec: ClientSpec,
        secrets: Option<ClientSecrets>,
        created_at: i64,
        updated_at: i64,
    ) -> Result<Self, ClientError> {
        let name = spec.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(ClientError::new(
                "client_name",
                "must be 1 to 200 characters",
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(ClientError::new(
                "client_name",
                "must not contain control characters",
            ));
        }
        if spec.grant_types.is_empty() && spec.settings.cas_services.is_empty() {
            return Err(ClientError::new(
                "grant_types",
                "at least one grant type (or a CAS service) is required",
            ));
        }
        no_duplicates("cas_services", &spec.settings.cas_services)?;
        no_duplicates("grant_types", &spec.grant_types)?;
        no_duplicates("redirect_uris", &spec.redirect_uris)?;
        no_duplicates("post_logout_redirect_uris", &spec.post_logout_redirect_uris)?;
        no_duplicates("scope", &spec.scopes)?;
        let has = |g| spec.grant_types.contains(&g);
        if has(GrantType::AuthorizationCode) && spec.redirect_uris.is_empty() {
            return Err(ClientError::new(
                "redirect_uris",
                "the authorization_code grant needs at least one redirect URI",
            ));
        }
        if has(GrantType::RefreshToken)
            && !has(GrantType::AuthorizationCode)
            && !has(GrantType::DeviceCode)
        {
            return Err(ClientError::new(
                "grant_types",
                "refresh_token is only issued with authorization_code or the device code grant",
            ));
        }
        for (field, secs) in [
            ("access_token_lifetime", spec.settings.access_token_secs),
            ("id_token_lifetime", spec.settings.id_token_secs),
        ] {
            if secs.is_some_and(|s| !(60..=86_400).contains(&s)) {
                return Err(ClientError::new(field, "must be 60 to 86400 seconds"));
            }
        }
        if spec
            .settings
            .location
            .as_ref()
            .is_some_and(|l| l.chars().count() > 100 || l.chars().any(char::is_control))
        {
            return Err(ClientError::new(
                "location",
                "at most 100 printable characters",
            ));
        }
        if spec
            .settings
            .min_level
            .is_some_and(|l| !(1..=4).contains(&l))
        {
            return Err(ClientError::new(
                "min_level",
                "must be a real-name level, 1 to 4",
            ));
        }
        // Separation of duties (docs/administration.md): a client that gets tokens for itself acts
        // in one administrator role at most. (A person's token is let into the admin API only with
        // exactly one administrator scope, that of the role the person holds.)
        let admin_scopes = spec
            .scopes
            .iter()
            .filter(|s| super::admin::AdminRole::of_scope(s.as_str()).is_some())
            .count();
        if admin_scopes > 1 && spec.grant_types.contains(&GrantType::ClientCredentials) {
            return Err(ClientError::new(
                "scope",
                "a client with the client_credentials grant may hold one administrator scope \
                 (admin:system, admin:security, admin:audit or admin:department), not several",
            ));
        }
        for r in &spec.settings.resources {
            // RFC 8707 §2: "an absolute URI ... MUST NOT include a fragment component".
            let ok = Url::parse(r).is_ok_and(|u| u.fragment().is_none() && !u.cannot_be_a_base());
            if !ok {
                return Err(ClientError::new(
                    "resources",
                    format!("{r:?} is not an absolute URI without a fragment"),
                ));
            }
        }
        check_keys(&spec)?;
        let public = spec.auth_method == AuthMethod::None;
        if public && has(GrantType::ClientCredentials) {
            return Err(ClientError::new(
                "grant_types",
                "a public client (token_endpoint_auth_method none) cannot use client_credentials",
            ));
        }
        match (spec.auth_method.uses_secret(), &secrets) {
            (true, None) => {
                return Err(ClientError::new(
                    "client_secret",
                    "a client that authenticates with a secret needs one",
                ));
            }
            (false, Some(_)) => {
                return Err(ClientError::new(
                    "client_secret",
                    format!("a client using {} has no secret", spec.auth_method.as_str()),
                ));
            }
            (true, Some(s)) => {
                // The HMAC key of client_secret_jwt must be recoverable; no other method may keep
                // a recoverable secret.
                let jwt = spec.auth_method == AuthMethod::ClientSecretJwt;
                if jwt && s.sealed.is_none() {
                    return Err(ClientError::new(
                        "client_secret",
                        "a client using client_secret_jwt needs its secret sealed",
                    ));
                }
                if !jwt && (s.sealed.is_some() || s.previous_sealed.is_some()) {
                    return Err(ClientError::new(
                        "client_secret",
                        format!(
                            "a client using {} keeps only the secret's hash",
                            spec.auth_method.as_str()
                        ),
                    ));
                }
            }
            (false, None) => {}
        }
        Ok(Self {
            spec: ClientSpecChecked {
                id: spec.id,
                name,
                auth_method: spec.auth_method,
                redirect_uris: spec.redirect_uris,
                post_logout_redirect_uris: spec.post_logout_redirect_uris,
                grant_types: spec.grant_types,
                scopes: spec.scopes,
                first_party: spec.first_party,
                settings: spec.settings,
            },
            secrets,
            created_at,
            updated_at,
        })
    }

    pub fn id(&self) -> &ClientId {
        &self.spec.id
    }
    pub fn name(&self) -> &str {
        &self.spec.name
    }
    pub fn auth_method(&self) -> AuthMethod {
        self.spec.auth_method
    }
    /// Public clients (RFC 6749 §2.1) cannot keep a secret: native and browser apps.
    pub fn is_public(&self) -> bool {
        self.spec.auth_method == AuthMethod::None
    }
    pub fn redirect_uris(&self) -> &[RedirectUri] {
        &self.spec.redirect_uris
    }
    pub fn post_logout_redirect_uris(&self) -> &[RedirectUri] {
        &self.spec.post_logout_redirect_uris
    }
    pub fn grant_types(&self) -> &[GrantType] {
        &self.spec.grant_types
    }
    pub fn scopes(&self) -> &[Scope] {
        &self.spec.scopes
    }
    /// First-party clients skip the consent page.
    pub fn first_party(&self) -> bool {
        self.spec.first_party
    }
    pub fn settings(&self) -> &ClientSettings {
        &self.spec.settings
    }
    pub fn secrets(&self) -> Option<&ClientSecrets> {
        self.secrets.as_ref()
    }
    pub fn created_at(&self) -> i64 {
        self.created_at
    }
    pub fn updated_at(&self) -> i64 {
        self.updated_at
    }

    /// The registration as a spec, e.g. to change one field and register again.
    pub fn spec(&self) -> ClientSpec {
        let s = &self.spec;
        ClientSpec {
            id: s.id.clone(),
            name: s.name.clone(),
            auth_method: s.auth_method,
            redirect_uris: s.redirect_uris.clone(),
            post_logout_redirect_uris: s.post_logout_redirect_uris.clone(),
            grant_types: s.grant_types.clone(),
            scopes: s.scopes.clone(),
            first_party: s.first_party,
            settings: s.settings.clone(),
        }
    }
}

/// RFC 7591 §2: "The jwks_uri and jwks parameters MUST NOT both be present"; private_key_jwt needs
/// one; a JWK Set holds public keys only.
fn check_keys(spec: &ClientSpec) -> Result<(), ClientError> {
    let s = &spec.settings;
    match (&s.jwks, &s.jwks_uri) {
        (Some(_), Some(_)) => {
            return Err(ClientError::new("jwks", "give jwks or jwks_uri, not both"));
        }
        (None, None) if spec.auth_method == AuthMethod::PrivateKeyJwt => {
            return Err(ClientError::new(
                "jwks",
                "private_key_jwt needs the client's public keys (jwks or jwks_uri)",
            ));
        }
        _ => {}
    }
    if let Some(raw) = &s.jwks {
        let doc: serde_json::Value =
            serde_json::from_str(raw).map_err(|_| ClientError::new("jwks", "is not JSON"))?;
        let keys = doc["keys"].as_array().filter(|k| !k.is_empty());
        let Some(keys) = keys else {
            return Err(ClientError::new(
                "jwks",
                "must hold a non-empty \"keys\" array",
            ));
        };
        for key in keys {
            if key["kty"].as_str().is_none() {
                return Err(ClientError::new("jwks", "every key needs kty"));
            }
            if ["d", "p", "q", "k"]
                .iter()
                .any(|private| key.get(*private).is_some())
            {
                return Err(ClientError::new(
                    "jwks",
                    "holds private key material; register public keys only",
                ));
            }
        }
    }
    for (field, uri) in [
        ("backchannel_logout_uri", &s.backchannel_logout_uri),
        ("frontchannel_logout_uri", &s.frontchannel_logout_uri),
    ] {
        let Some(uri) = uri else { continue };
        // Back-Channel Logout §2.2 / Front-Channel Logout §2: an absolute URI, no fragment; https
        // (or loopback http here).
        let ok = Url::parse(uri).is_ok_and(|u| {
            u.fragment().is_none()
                && (u.scheme() == "https"
                    || (u.scheme() == "http"
                        && matches!(u.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())))
        });
        if !ok {
            return Err(ClientError::new(
                field,
                "must be an https URL without a fragment",
            ));
        }
    }
    if let Some(uri) = &s.jwks_uri {
        let ok = Url::parse(uri).is_ok_and(|u| {
            u.scheme() == "https"
                || (u.scheme() == "http"
                    && matches!(u.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback()))
        });
        if !ok {
            return Err(ClientError::new(
                "jwks_uri",
                "must be an https URL (or http on loopback)",
            ));
        }
    }
    Ok(())
}

fn no_duplicates<T: PartialEq>(field: &'static str, items: &[T]) -> Result<(), ClientError> {
    for (i, item) in items.iter().enumerate() {
        if items[..i].contains(item) {
            return Err(ClientError::new(field, "lists the same value twice"));
        }
    }
    Ok(())
}

/// A client registration that breaks a rule: the RFC 7591 field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct ClientError {
    pub field: &'static str,
    pub problem: String,
}

impl ClientError {
    fn new(field: &'static str, problem: impl Into<String>) -> Self {
        Self {
            field,
            problem: problem.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Security review of CAS: a prefix must not be escaped by what browsers resolve.
    #[test]
    fn cas_services_match_only_what_browsers_land_on() {
        let app = CasService::parse("https://h.example/app/*").unwrap();
        assert!(app.matches("https://h.example/app/x?y=1").is_some());
        for escaping in [
            "https://h.example/app/../x",
            "https://h.example/app/%2e%2e/x",
            "https://h.example/app/%2E%2E/x",
            "https://h.example/app/..\\x",
            "https://h.example/app/..;/x",
            "https://h.example/app/.%2e;jsessionid=1/x",
            "https://h.example/app/x\n",
            "https://h.example/app/x?ticket=ST-1",
            "https://h.example/app/x#f",
            "https://H.example/app/x",
            "https://u@h.example/app/x",
        ] {
            assert!(!cas_service_url(escaping), "{escaping}");
        }
        assert!(cas_service_url(
            "http://localhost:18080/protected/index.html?foo=bar&x=a%20b"
        ));
        assert!(CasService::parse("https://h.example/app").is_ok());
        for bad in [
            "https://h.example/app*",
            "https://h.example/a?b=1/*",
            "https://h.example/../*",
            "ftp://h.example/*",
        ] {
            assert!(CasService::parse(bad).is_err(), "{bad}");
        }
        let exact = CasService::parse("https://h.example/app/x").unwrap();
        let other = CasService::parse("https://h.example/*").unwrap();
        assert!(
            !app.overlaps(&CasService::parse("https://h.example/ap/*").unwrap()),
            "segments, not characters"
        );
        let apart = CasService::parse("https://h.example/b/*").unwrap();
        assert!(app.overlaps(&exact) && exact.overlaps(&app));
        assert!(
            app.overlaps(&other) && other.overlaps(&app),
            "one prefix under another"
        );
        assert!(
            !app.overlaps(&apart)
                && !exact.overlaps(&CasService::parse("https://h.example/app/y").unwrap())
        );
    }

    fn spec(auth: AuthMethod, grants: &[GrantType]) -> ClientSpec {
        ClientSpec {
            id: ClientId::parse("hall").unwrap(),
            name: "Online service hall".into(),
            auth_method: auth,
            redirect_uris: vec![RedirectUri::parse("https://hall.example.gov.cn/cb").unwrap()],
            post_logout_redirect_uris: vec![],
            grant_types: grants.to_vec(),
            scopes: vec![Scope::parse("openid").unwrap()],
            first_party: false,
            settings: crate::domain::client::ClientSettings::default(),
        }
    }
    const SECRET: Option<ClientSecrets> = Some(ClientSecrets {
        current: SecretHash([7; 32]),
        previous: None,
        sealed: None,
        previous_sealed: None,
    });

    #[test]
    fn redirect_uris_follow_rfc_6749_and_8252() {
        for ok in [
            "https://hall.example.gov.cn/cb",
            "http://127.0.0.1/cb",
            "http://[::1]:8080/cb",
            "http://localhost:3000/cb",
            "cn.gov.example.app:/oauth2redirect",
        ] {
            RedirectUri::parse(ok).unwrap();
        }
        for bad in [
            "/relative",
            "https://hall.example.gov.cn/cb#frag",
            "http://hall.example.gov.cn/cb",
            "javascript:alert(1)",
            "myapp:/cb",
            "https://user:pw@hall.example.gov.cn/cb",
            "",
        ] {
            assert!(RedirectUri::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn client_ids_and_scopes_are_checked() {
        ClientId::parse("dept-system_01.v2~x").unwrap();
        assert!(ClientId::parse("has space").is_err());
        assert!(ClientId::parse("").is_err());
        assert!(ClientId::parse(&"a".repeat(129)).is_err());
        Scope::parse("urn:yihao:scope:id_number").unwrap();
        assert!(Scope::parse("two words").is_err());
        assert!(Scope::parse("quote\"").is_err());
    }

    #[test]
    fn registration_rules_hold() {
        use GrantType::*;
        Client::register(
            spec(
                AuthMethod::ClientSecretBasic,
                &[AuthorizationCode, RefreshToken],
            ),
            SECRET,
            1,
        )
        .unwrap();
        Client::register(spec(AuthMethod::None, &[AuthorizationCode]), None, 1).unwrap();
        let sealed = SECRET.map(|s| ClientSecrets {
            sealed: Some(SealedSecret(vec![1; 60])),
            ..s
        });
        Client::register(
            spec(AuthMethod::ClientSecretJwt, &[ClientCredentials]),
            sealed.clone(),
            1,
        )
        .unwrap();
        let refused = [
            (
                spec(AuthMethod::ClientSecretJwt, &[ClientCredentials]),
                SECRET,
                "client_secret",
            ),
            (
                spec(AuthMethod::ClientSecretPost, &[ClientCredentials]),
                sealed,
                "client_secret",
            ),
            (
                spec(AuthMethod::None, &[ClientCredentials]),
                None,
                "grant_types",
            ),
            (
                spec(AuthMethod::None, &[AuthorizationCode]),
                SECRET,
                "client_secret",
            ),
            (
                spec(AuthMethod::ClientSecretPost, &[AuthorizationCode]),
                None,
                "client_secret",
            ),
            (
                spec(AuthMethod::ClientSecretBasic, &[RefreshToken]),
                SECRET,
                "grant_types",
            ),
            (
                spec(AuthMethod::ClientSecretBasic, &[]),
                SECRET,
                "grant_types",
            ),
            (
                spec(
                    AuthMethod::ClientSecretBasic,
                    &[AuthorizationCode, AuthorizationCode],
                ),
                SECRET,
                "grant_types",
            ),
        ];
        for (s, secrets, field) in refused {
            let e = Client::register(s.clone(), secrets, 1).unwrap_err();
            assert_eq!(e.field, field, "{s:?}: {e}");
        }
        let mut no_redirect = spec(AuthMethod::ClientSecretBasic, &[AuthorizationCode]);
        no_redirect.redirect_uris.clear();
        assert_eq!(
            Client::register(no_redirect, SECRET, 1).unwrap_err().field,
            "redirect_uris"
        );
        let mut machine = spec(AuthMethod::PrivateKeyJwt, &[ClientCredentials]);
        machine.redirect_uris.clear();
        assert_eq!(
            Client::register(machine.clone(), None, 1)
                .unwrap_err()
                .field,
            "jwks",
            "keys are required"
        );
        let public_key = r#"{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
        machine.settings.jwks = Some(public_key.into());
        Client::register(machine.clone(), None, 1).unwrap();
        let mut both = machine.clone();
        both.settings.jwks_uri = Some("https://dept.example.gov.cn/jwks".into());
        assert_eq!(Client::register(both, None, 1).unwrap_err().field, "jwks");
        let mut private = machine.clone();
        private.settings.jwks = Some(public_key.replace("\"kty\"", "\"d\":\"secret\",\"kty\""));
        assert!(
            Client::register(private, None, 1)
                .unwrap_err()
                .problem
                .contains("private")
        );
        let mut plain_uri = machine.clone();
        plain_uri.settings.jwks = None;
        plain_uri.settings.jwks_uri = Some("http://dept.example.gov.cn/jwks".into());
        assert_eq!(
            Client::register(plain_uri, None, 1).unwrap_err().field,
            "jwks_uri"
        );
        let mut lifetimes = machine;
        lifetimes.settings.access_token_secs = Some(10);
        assert_eq!(
            Client::register(lifetimes, None, 1).unwrap_err().field,
            "access_token_lifetime"
        );
    }

    #[test]
    fn secret_hashes_do_not_print() {
        assert!(!format!("{:?}", SECRET).contains('7'));
    }
}
