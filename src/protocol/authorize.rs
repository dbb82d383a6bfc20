//! The authorization endpoint's request checks (RFC 6749 §4.1.1, OIDC Core §3.1.2.1, RFC 7636).
//!
//! The order follows node-oidc-provider: until the client and its redirect URI are known, an error is
//! shown to the user and never redirected (RFC 6749 §4.1.2.1: "If the request fails due to a missing,
//! invalid, or mismatching redirection URI, or if the client identifier is missing or invalid, the
//! authorization server SHOULD inform the resource owner of the error and MUST NOT automatically
//! redirect the user-agent to the invalid redirection URI."). After that, errors go back to the
//! client in the requested response mode, with `state` and `iss` (RFC 9207).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{ErrorCode, OAuthError};
use crate::domain::client::{Client, RedirectUri};

/// How the response reaches the client (OAuth 2.0 Multiple Response Type Encoding Practices §2.1,
/// Form Post Response Mode §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    Query,
    Fragment,
    FormPost,
}

impl ResponseMode {
    pub const ALL: [&'static str; 3] = ["query", "fragment", "form_post"];
}

/// `prompt` values (OIDC Core §3.1.2.1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
    pub select_account: bool,
}

impl Prompt {
    pub const ALL: [&'static str; 4] = ["none", "login", "consent", "select_account"];
}

/// Where an error goes: to the person (an error page) or back to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    /// The client or its redirect URI is unknown: never redirect.
    ShowToUser(String),
    /// The request is bad, but the redirect URI is the client's own.
    RedirectToClient {
        redirect_uri: String,
        mode: ResponseMode,
        state: Option<String>,
        error: OAuthError,
    },
}

/// A checked authorization request, kept while the person logs in and consents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizeRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub response_mode: ResponseMode,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    pub id_token_hint: Option<String>,
    pub acr_values: Vec<String>,
    pub ui_locales: Vec<String>,
    /// Claims asked for by name through the `claims` parameter (OIDC Core §5.5), by destination.
    pub claims_userinfo: Vec<String>,
    pub claims_id_token: Vec<String>,
    /// The lowest level named by an essential `acr` claim request (OIDC Core §5.5.1.1), if any;
    /// [`UNREACHABLE`] when its values name no level this server knows.
    #[serde(default)]
    pub acr_essential: Option<u8>,
    /// The person chose "not now" at a voluntary step-up: the request gets the level reached.
    #[serde(default)]
    pub step_up_declined: bool,
    /// A device grant's approval (RFC 8628 §3.3): the grant's key. The request was made by yihao
    /// from the user code, not by a client; it ends on a page, not at a redirect URI.
    #[serde(default)]
    pub device: Option<String>,
    /// A CAS login (`/cas/login`): it ends in a service ticket sent to the service, not in a code.
    #[serde(default)]
    pub cas: Option<super::cas::CasLogin>,
}

/// The level an essential `acr` request of unknown values stands for: none reaches it.
pub const UNREACHABLE: u8 = u8::MAX;

impl AuthorizeRequest {
    /// A request yihao makes itself for `client` (a device's approval, a CAS login): no client
    /// parameters beyond the scopes and the prompt; the caller sets how it ends (`device`, `cas`).
    pub fn internal(
        client_id: &str,
        redirect_uri: String,
        scopes: Vec<String>,
        prompt: Prompt,
    ) -> Self {
        Self {
            client_id: client_id.to_owned(),
            redirect_uri,
            response_mode: ResponseMode::Query,
            scopes,
            state: None,
            nonce: None,
            code_challenge: None,
            prompt,
            max_age: None,
            login_hint: None,
            id_token_hint: None,
            acr_values: Vec::new(),
            ui_locales: Vec::new(),
            claims_userinfo: Vec::new(),
            claims_id_token: Vec::new(),
            acr_essential: None,
            step_up_declined: false,
            device: None,
            cas: None,
        }
    }

    pub fn is_openid(&self) -> bool {
        self.scopes.iter().any(|s| s == "openid")
    }
    /// The lowest assurance level the client asked for (`urn:yihao:loa:N`), if any.
    pub fn min_level(&self) -> Option<u8> {
        self.acr_values.iter().filter_map(|a| level_of_acr(a)).min()
    }
}

/// Bounds on what a pending authorization request holds (bytes, or entries of a list).
pub struct RequestLimits {
    pub login_hint: usize,
    pub id_token_hint: usize,
    /// Entries of `acr_values` and `ui_locales` (`claims` names: four times as many).
    pub list: usize,
    /// Bytes of one entry of a list.
    pub item: usize,
}

/// An ID number, a phone or an e-mail address fit in 256 bytes; an ID token of this server in
/// 4 KiB; eight acr values or locales are more than any client asks for.
pub const LIMITS: RequestLimits = RequestLimits {
    login_hint: 256,
    id_token_hint: 4096,
    list: 8,
    item: 64,
};

/// Policy the checks need.
#[derive(Debug, Clone, Copy)]
pub struct AuthorizePolicy {
    /// PKCE for confidential clients too (it is always required for public ones).
    pub require_pkce: bool,
}

/// The acr values the server knows.
pub const ACR_VALUES: [&str; 4] = [
    "urn:yihao:loa:1",
    "urn:yihao:loa:2",
    "urn:yihao:loa:3",
    "urn:yihao:loa:4",
];

/// Checks a request given as decoded `(name, value)` pairs from the query or the form body;
/// `client` is the registered client named by `client_id`, if any.
pub fn check(
    params: &[(String, String)],
    client: Option<&Client>,
    policy: AuthorizePolicy,
) -> Result<AuthorizeRequest, AuthorizeError> {
    let show = |m: &str| AuthorizeError::ShowToUser(m.to_owned());
    // RFC 6749 §3.1: "Request and response parameters MUST NOT be included more than once."
    let mut seen = BTreeSet::new();
    let mut duplicate = None;
    for (name, _) in params {
        if !seen.insert(name.as_str()) {
            duplicate = Some(name.clone());
        }
    }
    let get = |name: &str| super::param(params, name);
    if let Some(d) = duplicate
        .as_deref()
        .filter(|d| matches!(*d, "client_id" | "redirect_uri"))
    {
        return Err(show(&format!("the parameter {d} is repeated")));
    }
    let Some(client_id) = get("client_id") else {
        return Err(show("the request names no client (client_id is missing)"));
    };
    let Some(client) = client.filter(|c| c.id().as_str() == client_id) else {
        return Err(show("the client that sent you here is not registered"));
    };
    // OIDC Core §3.1.2.1: redirect_uri is REQUIRED and must match a registered value exactly.
    let Some(redirect_uri) = get("redirect_uri") else {
        return Err(show("the request has no redirect_uri"));
    };
    if !redirect_matches(client, redirect_uri) {
        return Err(show("the redirect_uri is not registered for this client"));
    }
    let state = get("state").map(str::to_owned);
    let mode = match get("response_mode") {
        None => Ok(ResponseMode::Query),
        Some("query") => Ok(ResponseMode::Query),
        Some("fragment") => Ok(ResponseMode::Fragment),
        Some("form_post") => Ok(ResponseMode::FormPost),
        Some(other) => Err(format!("response_mode {other:?} is not supported")),
    };
    let redirect = |mode: ResponseMode, code: ErrorCode, description: String| {
        AuthorizeError::RedirectToClient {
            redirect_uri: redirect_uri.to_owned(),
            mode,
            state: state.clone(),
            error: OAuthError::new(code, description),
        }
    };
    let response_mode =
        mode.map_err(|d| redirect(ResponseMode::Query, ErrorCode::InvalidRequest, d))?;
    let fail =
        |code: ErrorCode, description: &str| redirect(response_mode, code, description.to_owned());
    if let Some(d) = duplicate {
        return Err(fail(
            ErrorCode::InvalidRequest,
            &format!("the parameter {d} is repeated"),
        ));
    }
    // OIDC Core §6: request objects are not supported yet.
    if get("request").is_some() {
        return Err(fail(
            ErrorCode::RequestNotSupported,
            "request objects are not supported",
        ));
    }
    if get("request_uri").is_some() {
        return Err(fail(
            ErrorCode::RequestUriNotSupported,
            "request_uri is not supported",
        ));
    }
    match get("response_type") {
        Some("code") => {}
        None => return Err(fail(ErrorCode::InvalidRequest, "response_type is missing")),
        Some(_) => {
            return Err(fail(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ));
        }
    }
    if !client
        .grant_types()
        .contains(&crate::domain::client::GrantType::AuthorizationCode)
    {
        return Err(fail(
            ErrorCode::UnauthorizedClient,
            "this client may not use the authorization code flow",
        ));
    }
    let scopes: Vec<String> = get("scope")
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if scopes.is_empty() {
        return Err(fail(ErrorCode::InvalidScope, "scope is missing"));
    }
    if let Some(bad) = scopes
        .iter()
        .find(|s| !client.scopes().iter().any(|a| a.as_str() == s.as_str()))
    {
        return Err(fail(
            ErrorCode::InvalidScope,
            &format!("the client may not request the scope {bad}"),
        ));
    }
    // RFC 7636 §4.3; plain is refused (RFC 9700 §2.1.1).
    let code_challenge = match (get("code_challenge"), get("code_challenge_method")) {
        (None, Some(_)) => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "code_challenge_method without code_challenge",
            ));
        }
        (None, None)
            if client.is_public() || (policy.require_pkce && !client.settings().pkce_optional) =>
        {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "PKCE is required: send code_challenge with code_challenge_method=S256",
            ));
        }
        (None, None) => None,
        (Some(_), None | Some("plain")) => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "code_challenge_method must be S256 (plain is not accepted)",
            ));
        }
        (Some(_), Some(m)) if m != "S256" => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "code_challenge_method must be S256",
            ));
        }
        (Some(c), Some(_)) => {
            // RFC 7636 §4.2: BASE64URL(SHA256(verifier)) is 43 characters.
            if c.len() != 43
                || !c
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(fail(
                    ErrorCode::InvalidRequest,
                    "code_challenge is not a base64url SHA-256 value",
                ));
            }
            Some(c.to_owned())
        }
    };
    let mut prompt = Prompt::default();
    for p in get("prompt")
        .unwrap_or("")
        .split(' ')
        .filter(|p| !p.is_empty())
    {
        match p {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            "select_account" => prompt.select_account = true,
            other => {
                return Err(fail(
                    ErrorCode::InvalidRequest,
                    &format!("prompt {other:?} is not supported"),
                ));
            }
        }
    }
    // OIDC Core §3.1.2.1: "If this parameter contains none with any other value, an error is returned."
    if prompt.none && (prompt.login || prompt.consent || prompt.select_account) {
        return Err(fail(
            ErrorCode::InvalidRequest,
            "prompt=none cannot be combined with other values",
        ));
    }
    let max_age = match get("max_age") {
        None => None,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n),
            _ => {
                return Err(fail(
                    ErrorCode::InvalidRequest,
                    "max_age must be a non-negative number of seconds",
                ));
            }
        },
    };
    let acr_values: Vec<String> = get("acr_values")
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let nonce = get("nonce").map(str::to_owned);
    if nonce.as_ref().is_some_and(|n| n.len() > 512)
        || state.as_ref().is_some_and(|s| s.len() > 2048)
    {
        return Err(fail(
            ErrorCode::InvalidRequest,
            "nonce or state is too long",
        ));
    }
    let (claims_userinfo, claims_id_token, acr_essential) = match get("claims") {
        None => (Vec::new(), Vec::new(), None),
        Some(raw) => {
            parse_claims(raw).map_err(|e| fail(ErrorCode::InvalidRequest, &e.to_string()))?
        }
    };
    // What a pending request may hold while nobody has signed in yet (security review 5): each
    // value bounded, so an interaction stays a few KiB however the parameters are filled.
    let ui_locales: Vec<&str> = get("ui_locales")
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .collect();
    let oversized = [
        (
            "login_hint",
            get("login_hint").map_or(0, str::len) > LIMITS.login_hint,
        ),
        (
            "id_token_hint",
            get("id_token_hint").map_or(0, str::len) > LIMITS.id_token_hint,
        ),
        (
            "acr_values",
            acr_values.len() > LIMITS.list || acr_values.iter().any(|a| a.len() > LIMITS.item),
        ),
        (
            "ui_locales",
            ui_locales.len() > LIMITS.list || ui_locales.iter().any(|l| l.len() > LIMITS.item),
        ),
        (
            "claims",
            claims_userinfo.len() + claims_id_token.len() > 4 * LIMITS.list
                || claims_userinfo
                    .iter()
                    .chain(&claims_id_token)
                    .any(|c| c.len() > LIMITS.item),
        ),
    ];
    if let Some((name, _)) = oversized.iter().find(|(_, too_big)| *too_big) {
        return Err(fail(
            ErrorCode::InvalidRequest,
            &format!("{name} is too long"),
        ));
    }
    Ok(AuthorizeRequest {
        client_id: client_id.to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        response_mode,
        scopes,
        state,
        nonce,
        code_challenge,
        prompt,
        max_age,
        login_hint: get("login_hint").map(str::to_owned),
        id_token_hint: get("id_token_hint").map(str::to_owned),
        acr_values,
        ui_locales: ui_locales.into_iter().map(str::to_owned).collect(),
        claims_userinfo,
        claims_id_token,
        acr_essential,
        step_up_declined: false,
        device: None,
        cas: None,
    })
}

/// The level of an acr value of this server (`urn:yihao:loa:N`).
pub fn level_of_acr(acr: &str) -> Option<u8> {
    ACR_VALUES
        .iter()
        .position(|known| *known == acr)
        .and_then(|i| u8::try_from(i + 1).ok())
}

/// OIDC Core §5.5.1.1: "If the acr Claim was requested as an Essential Claim with a value or
/// values, the Authorization Server MUST return an acr Claim Value that matches one of the
/// requested values" and "If this is an Essential Claim and the requirement cannot be met, then
/// the Authorization Server MUST treat that outcome as a failed authentication attempt." The levels
/// are ordered, so a higher level satisfies a lower one (docs/assurance.md): the lowest level named
/// is the requirement.
fn essential_acr(members: &[&serde_json::Map<String, serde_json::Value>]) -> Option<u8> {
    let mut required: Option<u8> = None;
    for m in members {
        let Some(acr) = m.get("acr").and_then(|a| a.as_object()) else {
            continue;
        };
        if acr.get("essential").and_then(serde_json::Value::as_bool) != Some(true) {
            continue;
        }
        let values: Vec<&str> = match (acr.get("value"), acr.get("values")) {
            (Some(v), _) => v.as_str().into_iter().collect(),
            (None, Some(vs)) => vs
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default(),
            (None, None) => continue,
        };
        let level = values
            .iter()
            .filter_map(|v| level_of_acr(v))
            .min()
            .unwrap_or(UNREACHABLE);
        // Asked in both destinations: the stricter holds.
        required = Some(required.map_or(level, |l| l.max(level)));
    }
    required
}

/// Claims asked for by name, for userinfo and for the ID token, and an essential `acr` level.
type RequestedClaims = (Vec<String>, Vec<String>, Option<u8>);

/// OIDC Core §5.5: `{"userinfo": {"name": null, ...}, "id_token": {...}}`; the names by destination,
/// and the level of an essential `acr` request.
fn parse_claims(raw: &str) -> Result<RequestedClaims, ClaimsError> {
    let value: serde_json::Value =
        serde_json::from_str(raw).map_err(|_| ClaimsError::NotAnObject)?;
    let obj = value.as_object().ok_or(ClaimsError::NotAnObject)?;
    let names = |key: &'static str| -> Result<Vec<String>, ClaimsError> {
        match obj.get(key) {
            None | Some(serde_json::Value::Null) => Ok(Vec::new()),
            Some(serde_json::Value::Object(m)) => Ok(m.keys().cloned().collect()),
            Some(_) => Err(ClaimsError::MemberNotAnObject(key)),
        }
    };
    let members: Vec<_> = ["userinfo", "id_token"]
        .iter()
        .filter_map(|k| obj.get(*k).and_then(|v| v.as_object()))
        .collect();
    Ok((
        names("userinfo")?,
        names("id_token")?,
        essential_acr(&members),
    ))
}

/// What is wrong with a `claims` parameter.
#[derive(Debug, thiserror::Error)]
enum ClaimsError {
    #[error("claims is not a JSON object")]
    NotAnObject,
    #[error("claims.{0} is not an object")]
    MemberNotAnObject(&'static str),
}

/// Exact match (RFC 9700 §4.1.3), except that a native public client's loopback IP redirect matches
/// on any port (RFC 8252 §7.3: "The authorization server MUST allow any port to be specified at the
/// time of the request for loopback IP redirect URIs").
pub fn redirect_matches(client: &Client, requested: &str) -> bool {
    if client
        .redirect_uris()
        .iter()
        .any(|r| r.as_str() == requested)
    {
        return true;
    }
    if !client.is_public() {
        return false;
    }
    let Ok(req) = url::Url::parse(requested) else {
        return false;
    };
    let loopback_ip = |u: &url::Url| {
        u.scheme() == "http" && matches!(u.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
            || matches!(u.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback() && u.scheme() == "http")
    };
    if !loopback_ip(&req) {
        return false;
    }
    client
        .redirect_uris()
        .iter()
        .map(RedirectUri::as_str)
        .filter_map(|r| url::Url::parse(r).ok())
        .any(|mut reg| {
            if !loopback_ip(&reg) {
                return false;
            }
            let _ = reg.set_port(req.port());
            reg.as_str() == req.as_str()
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::client::{
        AuthMethod, ClientId, ClientSecrets, ClientSpec, GrantType, Scope, SecretHash,
    };

    fn client(public: bool) -> Client {
        let spec = ClientSpec {
            id: ClientId::parse("hall").unwrap(),
            name: "Hall".into(),
            auth_method: if public {
                AuthMethod::None
            } else {
                AuthMethod::ClientSecretBasic
            },
            redirect_uris: vec![
                RedirectUri::parse("https://hall.example.gov.cn/cb").unwrap(),
                RedirectUri::parse("http://127.0.0.1/cb").unwrap(),
            ],
            post_logout_redirect_uris: vec![],
            grant_types: vec![GrantType::AuthorizationCode],
            scopes: ["openid", "profile", "phone"]
                .map(|s| Scope::parse(s).unwrap())
                .to_vec(),
            first_party: false,
            settings: crate::domain::client::ClientSettings::default(),
        };
        let secrets = (!public).then_some(ClientSecrets::hashed(SecretHash([1; 32]), None));
        Client::register(spec, secrets, 0).unwrap()
    }

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    const POLICY: AuthorizePolicy = AuthorizePolicy {
        require_pkce: false,
    };

    fn params(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut p: Vec<(String, String)> = [
            ("client_id", "hall"),
            ("redirect_uri", "https://hall.example.gov.cn/cb"),
            ("response_type", "code"),
            ("scope", "openid profile"),
            ("state", "s1"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        for (k, v) in extra {
            p.retain(|(n, _)| n != k);
            if !v.is_empty() {
                p.push(((*k).to_owned(), (*v).to_owned()));
            }
        }
        p
    }

    fn error_code(r: Result<AuthorizeRequest, AuthorizeError>) -> String {
        match r.unwrap_err() {
            AuthorizeError::RedirectToClient { error, state, .. } => {
                assert_eq!(state.as_deref(), Some("s1"));
                error.code.as_str().to_owned()
            }
            AuthorizeError::ShowToUser(m) => format!("show: {m}"),
        }
    }

    #[test]
    fn a_good_request_is_accepted() {
        let c = client(false);
        let r = check(
            &params(&[("nonce", "n"), ("claims", r#"{"userinfo":{"name":null}}"#)]),
            Some(&c),
            POLICY,
        )
        .unwrap();
        assert_eq!(r.scopes, vec!["openid", "profile"]);
        assert_eq!(r.response_mode, ResponseMode::Query);
        assert_eq!(r.claims_userinfo, vec!["name"]);
    }

    #[test]
    fn unknown_clients_and_redirect_uris_are_shown_not_redirected() {
        let c = client(false);
        for (p, client) in [
            (params(&[("client_id", "")]), Some(&c)),
            (params(&[]), None),
            (
                params(&[("redirect_uri", "https://evil.example.com/cb")]),
                Some(&c),
            ),
            (
                params(&[("redirect_uri", "https://hall.example.gov.cn/cb/../x")]),
                Some(&c),
            ),
            (
                params(&[("redirect_uri", "https://hall.example.gov.cn/CB")]),
                Some(&c),
            ),
            (
                params(&[("redirect_uri", "http://127.0.0.1:8080/cb")]),
                Some(&c),
            ),
        ] {
            assert!(
                matches!(
                    check(&p, client, POLICY),
                    Err(AuthorizeError::ShowToUser(_))
                ),
                "{p:?}"
            );
        }
        let mut dup = params(&[]);
        dup.push((
            "redirect_uri".into(),
            "https://hall.example.gov.cn/cb".into(),
        ));
        assert!(matches!(
            check(&dup, Some(&c), POLICY),
            Err(AuthorizeError::ShowToUser(_))
        ));
    }

    #[test]
    fn native_public_clients_may_use_any_loopback_port() {
        let c = client(true);
        let p = params(&[
            ("redirect_uri", "http://127.0.0.1:51004/cb"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ]);
        assert_eq!(
            check(&p, Some(&c), POLICY).unwrap().redirect_uri,
            "http://127.0.0.1:51004/cb"
        );
        let p = params(&[
            ("redirect_uri", "http://127.0.0.1:51004/other"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ]);
        assert!(matches!(
            check(&p, Some(&c), POLICY),
            Err(AuthorizeError::ShowToUser(_))
        ));
    }

    #[test]
    fn bad_requests_go_back_to_the_client_with_the_right_error() {
        let c = client(false);
        let p = client(true);
        type Case<'a> = (Vec<(String, String)>, &'a Client, &'a str);
        let cases: Vec<Case> = vec![
            (
                params(&[("response_type", "token")]),
                &c,
                "unsupported_response_type",
            ),
            (params(&[("response_type", "")]), &c, "invalid_request"),
            (params(&[("scope", "openid admin")]), &c, "invalid_scope"),
            (params(&[("scope", "")]), &c, "invalid_scope"),
            (params(&[("request", "eyJ")]), &c, "request_not_supported"),
            (
                params(&[("request_uri", "https://x")]),
                &c,
                "request_uri_not_supported",
            ),
            (params(&[("prompt", "none login")]), &c, "invalid_request"),
            (params(&[("prompt", "sometimes")]), &c, "invalid_request"),
            (params(&[("max_age", "-1")]), &c, "invalid_request"),
            (params(&[("claims", "not json")]), &c, "invalid_request"),
            (
                params(&[
                    ("code_challenge", CHALLENGE),
                    ("code_challenge_method", "plain"),
                ]),
                &c,
                "invalid_request",
            ),
            (
                params(&[("code_challenge", CHALLENGE)]),
                &c,
                "invalid_request",
            ),
            (
                params(&[
                    ("code_challenge", "short"),
                    ("code_challenge_method", "S256"),
                ]),
                &c,
                "invalid_request",
            ),
            (params(&[]), &p, "invalid_request"),
            (params(&[("response_mode", "jwt")]), &c, "invalid_request"),
        ];
        for (params, client, code) in cases {
            assert_eq!(
                error_code(check(&params, Some(client), POLICY)),
                code,
                "{params:?}"
            );
        }
        let mut dup = params(&[]);
        dup.push(("scope".into(), "openid".into()));
        assert_eq!(error_code(check(&dup, Some(&c), POLICY)), "invalid_request");
        assert_eq!(
            error_code(check(
                &params(&[]),
                Some(&c),
                AuthorizePolicy { require_pkce: true }
            )),
            "invalid_request"
        );
    }

    proptest::proptest! {
        /// Whatever the parameters, an error goes to the client's redirect URI only when that URI
        /// is registered (RFC 6749 §4.1.2.1; RFC 9700 §4.1, no open redirector), and nothing panics.
        #[test]
        fn errors_redirect_only_to_registered_uris(
            params in proptest::collection::vec((
                "(client_id|redirect_uri|response_type|response_mode|scope|state|nonce|prompt|max_age|acr_values|claims|code_challenge|code_challenge_method|request)",
                "(hall|https://hall.example.gov.cn/cb|http://127.0.0.1/cb|code|form_post|openid|none|S256|plain|0|.{0,16})",
            ), 0..12),
            public in proptest::bool::ANY,
            require_pkce in proptest::bool::ANY,
        ) {
            let client = client(public);
            if let Err(AuthorizeError::RedirectToClient { redirect_uri, .. }) =
                check(&params, Some(&client), AuthorizePolicy { require_pkce })
            {
                proptest::prop_assert!(redirect_matches(&client, &redirect_uri));
            }
        }
    }
}
