//! OAuth 2.0 / OpenID Connect rules, one file per endpoint, grant or check: the authorization request
//! ([`authorize`]) and what it needs next ([`interaction`], [`login`]), client authentication
//! ([`client_auth`]), the token endpoint ([`token_endpoint`], [`grants`], [`issuer`], [`pkce`]),
//! introspection and revocation ([`introspect`], [`revoke`], [`token_lookup`]), bearer tokens and
//! userinfo ([`bearer`], [`userinfo`]), sessions and logout ([`session`], [`backchannel`]), keys,
//! discovery, rate limits, audit, accounts and the legacy import.
//!
//! Never imports axum, http, sqlx or redis, and never reads the clock: inputs are decoded parameters,
//! domain values, ports and `now`. Errors are [`OAuthError`]s; `web/error.rs` turns them into
//! responses.

pub mod accounts;
pub mod admin;
pub mod assurance;
pub mod audit;
pub mod authorize;
pub mod backchannel;
pub mod bearer;
pub mod cas;
pub mod claims;
pub mod client_auth;
pub mod device;
pub mod discovery;
pub mod drafts;
pub mod enterprise;
pub mod factors;
pub mod form;
pub mod grants;
pub mod identity_code;
pub mod import;
pub mod interaction;
pub mod introspect;
pub mod issuer;
pub mod key_root;
pub mod keys;
pub mod limits;
pub mod login;
pub mod logout;
pub mod lost_factor;
pub mod my_account;
pub mod outside;
pub mod passkeys;
pub mod phone_change;
pub mod pkce;
pub mod proofing;
pub mod qr_login;
pub mod recovery;
pub mod registration;
pub mod revoke;
pub mod roles;
pub mod session;
pub mod sms_code;
pub mod sms_login;
pub mod token_endpoint;
pub mod token_lookup;
pub mod userinfo;

use std::fmt;
use std::sync::Arc;

/// RFC 7519 §4.1.4: "the current date/time MUST be before the expiration date/time listed in the
/// "exp" claim", with `leeway` seconds of tolerance. Decided on the caller's `now` (jsonwebtoken's
/// own check would read the system clock, so callers turn it off). A missing or non-integer `exp`
/// has expired.
pub fn expired(claims: &serde_json::Value, now: i64, leeway: i64) -> bool {
    claims["exp"]
        .as_i64()
        .is_none_or(|exp| exp < now.saturating_sub(leeway))
}

/// A request parameter's value; an empty one counts as absent (RFC 6749 §3.1: "Parameters sent
/// without a value MUST be treated as if they were omitted from the request.").
pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// Error codes of RFC 6749 §4.1.2.1 and §5.2, OIDC Core §3.1.2.6, RFC 7009 §2.2.1 and RFC 6750 §3.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    AccessDenied,
    ServerError,
    TemporarilyUnavailable,
    InteractionRequired,
    /// OpenID Connect Unmet Authentication Requirements 1.0 §1: "The Authorization Server is unable
    /// to meet the requirements of the Relying Party for the authentication of the End-User."
    UnmetAuthenticationRequirements,
    /// RFC 8628 §3.5: the device's person has not answered yet.
    AuthorizationPending,
    /// RFC 8628 §3.5: polling too fast; the interval grows by 5 s.
    SlowDown,
    /// RFC 8628 §3.5: "The "device_code" has expired".
    ExpiredToken,
    LoginRequired,
    ConsentRequired,
    AccountSelectionRequired,
    InvalidRequestUri,
    InvalidRequestObject,
    RequestNotSupported,
    RequestUriNotSupported,
    UnsupportedTokenType,
    InvalidToken,
    InsufficientScope,
    InvalidTarget,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::InteractionRequired => "interaction_required",
            Self::UnmetAuthenticationRequirements => "unmet_authentication_requirements",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::AccountSelectionRequired => "account_selection_required",
            Self::InvalidRequestUri => "invalid_request_uri",
            Self::InvalidRequestObject => "invalid_request_object",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::InvalidTarget => "invalid_target",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The cause of a server error, kept with its source chain for the log.
pub type Cause = Arc<dyn std::error::Error + Send + Sync>;

/// An OAuth error: `code` and `description` go to the client; `cause` goes to the log only.
#[derive(Debug, Clone)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
    pub cause: Option<Cause>,
    /// Rate limited: answer 429 with `Retry-After` (RFC 6585 §4) after this many seconds.
    pub retry_after: Option<u64>,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            cause: None,
            retry_after: None,
        }
    }

    /// Too many requests (a rate limit of `rule` was passed).
    pub fn rate_limited(limited: limits::Limited) -> Self {
        Self {
            retry_after: Some(limited.retry_after),
            ..Self::new(
                ErrorCode::TemporarilyUnavailable,
                format!(
                    "too many requests; retry after {} seconds",
                    limited.retry_after
                ),
            )
        }
    }

    /// A server error whose cause is logged; the client learns only that the server failed.
    pub fn server(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            code: ErrorCode::ServerError,
            description: "the server could not complete the request".into(),
            cause: Some(Arc::new(cause)),
            retry_after: None,
        }
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.description)
    }
}

impl std::error::Error for OAuthError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|c| c as &(dyn std::error::Error + 'static))
    }
}

/// Two errors are equal when the client sees them alike (code, description, retry); the cause is
/// for the log and takes no part.
impl PartialEq for OAuthError {
    fn eq(&self, other: &Self) -> bool {
        self.code == other.code
            && self.description == other.description
            && self.retry_after == other.retry_after
    }
}

impl Eq for OAuthError {}

impl From<crate::store::StoreError> for OAuthError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::server(e)
    }
}
