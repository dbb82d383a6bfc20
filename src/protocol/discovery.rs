//! The provider's metadata (OpenID Connect Discovery 1.0 §3, RFC 8414 §2), built once at start-up.
//! Every value is what the server implements; `tests/oidc.rs` exercises each one.

use serde_json::{Value, json};

use super::authorize::{ACR_VALUES, Prompt, ResponseMode};
use super::claims::{CLAIMS, SCOPES};
use crate::crypto::signing::Alg;

/// Endpoint paths, relative to the issuer.
pub const AUTHORIZE: &str = "/authorize";
pub const TOKEN: &str = "/token";
pub const USERINFO: &str = "/userinfo";
pub const JWKS: &str = "/jwks";
pub const INTROSPECT: &str = "/introspect";
/// RFC 8628 §4: `device_authorization_endpoint`.
pub const DEVICE_AUTHORIZATION: &str = "/device_authorization";
pub const REVOKE: &str = "/revoke";
pub const END_SESSION: &str = "/logout";
/// RFC 7591 §3: the client registration endpoint (`/register` is the citizens' own registration).
pub const REGISTRATION: &str = "/connect/register";

pub fn document(issuer: &str, highest_level: u8) -> Value {
    let base = issuer.trim_end_matches('/');
    let assertion_algs = [
        &super::client_auth::ASYMMETRIC[..],
        &super::client_auth::HMAC[..],
    ]
    .concat();
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{base}{AUTHORIZE}"),
        "token_endpoint": format!("{base}{TOKEN}"),
        "userinfo_endpoint": format!("{base}{USERINFO}"),
        "jwks_uri": format!("{base}{JWKS}"),
        "introspection_endpoint": format!("{base}{INTROSPECT}"),
        "revocation_endpoint": format!("{base}{REVOKE}"),
        "device_authorization_endpoint": format!("{base}{DEVICE_AUTHORIZATION}"),
        "end_session_endpoint": format!("{base}{END_SESSION}"),
        // RFC 8414 §2: "URL of the authorization server's OAuth 2.0 Dynamic Client Registration
        // endpoint"; it requires an administrator's initial access token.
        "registration_endpoint": format!("{base}{REGISTRATION}"),
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": true,
        "frontchannel_logout_session_supported": true,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt"],
        "introspection_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"],
        "revocation_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "scopes_supported": SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ResponseMode::ALL,
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", super::device::GRANT_TYPE, super::identity_code::GRANT_TYPE],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": Alg::ALL.map(Alg::as_str),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"],
        // RFC 8414 §2: present because private_key_jwt and client_secret_jwt are offered.
        "token_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "claims_supported": CLAIMS,
        "claims_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        // Only the levels this deployment can reach (docs/assurance.md).
        "acr_values_supported": ACR_VALUES[..usize::from(highest_level.clamp(1, 4))],
        "prompt_values_supported": Prompt::ALL,
        "ui_locales_supported": ["zh-CN", "en"],
        "claim_types_supported": ["normal"],
    })
}
