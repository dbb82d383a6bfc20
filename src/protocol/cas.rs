//! The CAS 3.0 server protocol (Apereo, "CAS Protocol 3.0 Specification"; docs/integration/cas.md),
//! for department systems built on CAS that will not be rewritten for OpenID Connect.
//!
//! A CAS login is an authorization request in yihao's own machinery: `/cas/login` finds the client
//! whose registered CAS services admit the `service` URL and runs the same stages as `/authorize`
//! (the SSO session, sign-in, second factor, consent, the organisation picker, the client's
//! `min_level`). Where an authorization request would end in a code, a CAS login ends in a service
//! ticket appended to the service URL. So a person signed in through OpenID Connect is signed in for
//! CAS services and the other way round, and logout ends both.
//!
//! Tickets. §3.1.1: "Service tickets MUST only be valid for one ticket validation attempt. Whether or
//! not validation was successful, CAS MUST then invalidate the ticket"; "It is RECOMMENDED that the
//! duration a service ticket is valid before it expires be no longer than five minutes"; "Service
//! tickets MUST begin with the characters, `ST-`"; "Services MUST be able to accept service tickets of
//! up to 32 characters in length". §3.7: only `A-Z a-z 0-9 -`. A ticket here is `ST-` and 29 random
//! letters and digits (172 bits). The ephemeral store keeps, under the SHA-256 of the ticket, what it
//! stands for sealed with AES-256-GCM under a key derived from the ticket itself: the person's
//! attributes are computed at login (where the account is read anyway) and nobody reading Redis can
//! read them or redeem a ticket.
//!
//! Attributes are released per service like OIDC claims (`claims::user_claims` over the client's
//! registered scopes): `cas:user` is the person's pairwise subject for the client, never an ID number;
//! `id_number` only for a service registered with the restricted `idcard` scope.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::session::CodeGrant;
use crate::domain::account::Account;
use crate::domain::client::Client;
use crate::store::{Ephemeral, StoreError};

/// The prefix of a service ticket (§3.1.1).
pub const TICKET_PREFIX: &str = "ST-";
/// Random characters after the prefix: 32 characters in all, the length every client must accept.
const TICKET_RANDOM: usize = 29;
/// The CAS namespace of validation responses (Appendix A).
pub const NAMESPACE: &str = "http://www.yale.edu/tp/cas";

/// What a CAS login carries through the authorization machinery (`AuthorizeRequest::cas`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CasLogin {
    /// The `service` URL, as `/cas/login` received it (decoded); the ticket is valid for it alone.
    pub service: String,
    /// The person presented credentials during this login (set when a sign-in ends it): the
    /// ticket is from a new login (`isFromNewLogin`, and what `renew=true` at validation requires),
    /// not from the SSO session.
    #[serde(default)]
    pub fresh: bool,
    /// `gateway`: never ask; without a session, back to the service without a ticket (§2.1.1).
    pub gateway: bool,
    /// `method=POST`: the ticket goes back in a form POSTed to the service (§2.1.1 `method`).
    pub post: bool,
}

/// `/cas/login`'s parameters (§2.1.1: "They are all case-sensitive").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginParams {
    pub service: Option<String>,
    /// §2.1.1: "if this parameter is set, single sign-on will be bypassed".
    pub renew: bool,
    /// "It is RECOMMENDED that CAS implementations ignore the `gateway` parameter if `renew` is set."
    pub gateway: bool,
    pub post: bool,
}

/// Why a login request is refused (shown to the person: CAS has no error channel to the service).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("the parameter {0} is repeated")]
    Repeated(&'static str),
    #[error("method must be GET or POST; this server does not answer in headers")]
    Method,
    /// §2.2.1: "the CAS Server MUST deny operation and print out a meaningful message if a
    /// non-authorized service URL is presented."
    #[error("the service URL is not registered with this server")]
    UnknownService,
    #[error(
        "the service URL is not an absolute http or https URL in its resolved form (no `..`, no \\, \
         no fragment, no ticket parameter)"
    )]
    BadService,
}

/// Reads `/cas/login`'s parameters. Unknown parameters are ignored, as CAS clients add their own.
pub fn login_params(params: &[(String, String)]) -> Result<LoginParams, LoginError> {
    let one = |name: &'static str| -> Result<Option<&str>, LoginError> {
        let mut found = params.iter().filter(|(n, _)| n == name).map(|(_, v)| v);
        let first = found.next().map(String::as_str);
        match found.next() {
            Some(_) => Err(LoginError::Repeated(name)),
            None => Ok(first),
        }
    };
    let service = one("service")?.map(str::to_owned);
    if service
        .as_deref()
        .is_some_and(|s| !crate::domain::client::cas_service_url(s))
    {
        return Err(LoginError::BadService);
    }
    let renew = one("renew")?.is_some();
    let gateway = !renew && one("gateway")?.is_some();
    let post = match one("method")? {
        None => false,
        Some(m) if m.eq_ignore_ascii_case("GET") => false,
        Some(m) if m.eq_ignore_ascii_case("POST") => true,
        Some(_) => return Err(LoginError::Method),
    };
    Ok(LoginParams {
        service,
        renew,
        gateway,
        post,
    })
}

/// The registered client whose CAS services admit `service`: an exact entry before any prefix, a
/// longer prefix before a shorter one.
pub fn find_service<'a>(
    clients: impl Iterator<Item = &'a Client>,
    service: &str,
) -> Option<&'a Client> {
    clients
        .filter_map(|c| {
            c.settings()
                .cas_services
                .iter()
                .filter_map(|s| s.matches(service))
                .max()
                .map(|rank| (rank, c))
        })
        .max_by(|(a, ca), (b, cb)| {
            a.cmp(b)
                .then_with(|| cb.id().as_str().cmp(ca.id().as_str()))
        })
        .map(|(_, c)| c)
}

/// The service URL with the ticket appended last (mod_auth_cas strips a ticket cleanly only when it
/// is the last parameter).
pub fn service_with_ticket(service: &str, ticket: &str) -> String {
    let sep = if service.contains('?') { '&' } else { '?' };
    format!("{service}{sep}ticket={ticket}")
}

/// What a service ticket stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketGrant {
    pub client_id: String,
    pub service: String,
    pub sid: String,
    pub account_id: String,
    /// `cas:user`: the person's pairwise subject for the client.
    pub user: String,
    /// In order; a name repeats for a value with several entries (§2.5.7).
    pub attributes: Vec<(String, String)>,
    /// Issued from a new login, not from the SSO session (`renew`, `isFromNewLogin`).
    pub fresh: bool,
    pub auth_time: i64,
    pub issued_at: i64,
}

impl TicketGrant {
    /// The grant of a CAS login: `code` is what an authorization code would stand for (the client
    /// is already recorded in the session), `account` the person, `user` their pairwise subject.
    pub fn of(
        code: &CodeGrant,
        login: &CasLogin,
        account: &Account,
        user: String,
        full_phone: bool,
        now: i64,
    ) -> Self {
        let mut attributes = vec![
            (
                "authenticationDate".to_owned(),
                crate::domain::date::rfc3339(code.auth_time),
            ),
            (
                "longTermAuthenticationRequestTokenUsed".to_owned(),
                "false".to_owned(),
            ),
            ("isFromNewLogin".to_owned(), login.fresh.to_string()),
            ("acr".to_owned(), format!("urn:yihao:loa:{}", code.level)),
        ];
        attributes.extend(code.amr.iter().map(|m| ("amr".to_owned(), m.clone())));
        for (name, value) in super::claims::user_claims(account, &code.scopes, full_phone) {
            let text = match value {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            attributes.push((name, text));
        }
        if let Some(org) = code
            .org
            .as_ref()
            .filter(|_| code.scopes.iter().any(|s| s == "org"))
        {
            for (name, pointer) in [
                ("org_credit_code", "/credit_code"),
                ("org_name", "/name"),
                ("org_role", "/role"),
            ] {
                if let Some(v) = org.pointer(pointer).and_then(|v| v.as_str()) {
                    attributes.push((name.to_owned(), v.to_owned()));
                }
            }
        }
        Self {
            client_id: code.client_id.clone(),
            service: login.service.clone(),
            sid: code.sid.clone(),
            account_id: code.account_id.clone(),
            user,
            attributes,
            fresh: login.fresh,
            auth_time: code.auth_time,
            issued_at: now,
        }
    }

    /// The attributes that are about the person (for the disclosure ledger): not the CAS ones.
    pub fn released(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .attributes
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| {
                !matches!(
                    *n,
                    "authenticationDate"
                        | "longTermAuthenticationRequestTokenUsed"
                        | "isFromNewLogin"
                        | "acr"
                        | "amr"
                )
            })
            .collect();
        names.dedup();
        names
    }
}

/// A new service ticket: `ST-` and 29 letters and digits.
pub fn new_ticket() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let mut ticket = String::with_capacity(TICKET_PREFIX.len() + TICKET_RANDOM);
    ticket.push_str(TICKET_PREFIX);
    for _ in 0..TICKET_RANDOM {
        ticket.push(char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]));
    }
    ticket
}

/// The ephemeral-store key of a ticket (the SHA-256 of the ticket): the session remembers it, and
/// forgets the ticket when it ends (`session::Sessions::end`), so that a ticket of an ended session
/// validates nothing.
pub fn stored_key(ticket: &str) -> String {
    format!(
        "cas-st:{}",
        URL_SAFE_NO_PAD.encode(Sha256::digest(ticket.as_bytes()))
    )
}

fn cipher(ticket: &str) -> Aes256Gcm {
    let mut h = Sha256::new();
    h.update(b"yihao CAS service ticket seal v1\0");
    h.update(ticket.as_bytes());
    let key: [u8; 32] = h.finalize().into();
    Aes256Gcm::new(&key.into())
}

/// Stores `grant` under a new ticket for `ttl`; returns the ticket.
pub async fn issue(
    ephemeral: &dyn Ephemeral,
    grant: &TicketGrant,
    ttl: std::time::Duration,
) -> Result<String, StoreError> {
    let ticket = new_ticket();
    let plain = serde_json::to_vec(grant).map_err(|e| StoreError::backend("cannot encode", e))?;
    let mut nonce = [0u8; 12];
    rand::rng().fill_bytes(&mut nonce);
    let sealed = cipher(&ticket)
        .encrypt(Nonce::from_slice(&nonce), plain.as_slice())
        .map_err(|_| StoreError::Corrupt("cannot seal a CAS ticket".into()))?;
    let mut value = nonce.to_vec();
    value.extend_from_slice(&sealed);
    ephemeral.put(&stored_key(&ticket), &value, ttl).await?;
    Ok(ticket)
}

/// A validation failure: the §2.5.3 error codes ("the minimum set of error codes that all CAS servers
/// MUST implement"), each with the detail the response body gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// "not all of the required request parameters were present" (also: repeated or unsupported).
    InvalidRequest(String),
    /// "failure to meet the requirements of validation specification" (a proxy ticket at
    /// `/serviceValidate`, §2.5: "MUST NOT return a successful authentication if it receives a
    /// proxy ticket").
    InvalidTicketSpec(String),
    /// "the service is not authorized to perform proxy authentication": this server issues no
    /// proxy-granting tickets, so a `pgtUrl` is refused.
    UnauthorizedServiceProxy(String),
    /// "The proxy callback specified is invalid": a `pgtUrl` that is not an https URL.
    InvalidProxyCallback(String),
    /// "the ticket provided was not valid, or the ticket did not come from an initial login and
    /// `renew` was set on validation".
    InvalidTicket(String),
    /// "the ticket provided was valid, but the service specified did not match the service
    /// associated with the ticket. CAS MUST invalidate the ticket".
    InvalidService(String),
    /// "an internal error occurred during ticket validation".
    InternalError,
}

impl Failure {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "INVALID_REQUEST",
            Self::InvalidTicketSpec(_) => "INVALID_TICKET_SPEC",
            Self::UnauthorizedServiceProxy(_) => "UNAUTHORIZED_SERVICE_PROXY",
            Self::InvalidProxyCallback(_) => "INVALID_PROXY_CALLBACK",
            Self::InvalidTicket(_) => "INVALID_TICKET",
            Self::InvalidService(_) => "INVALID_SERVICE",
            Self::InternalError => "INTERNAL_ERROR",
        }
    }

    pub fn description(&self) -> &str {
        match self {
            Self::InvalidRequest(d)
            | Self::InvalidTicketSpec(d)
            | Self::UnauthorizedServiceProxy(d)
            | Self::InvalidProxyCallback(d)
            | Self::InvalidTicket(d)
            | Self::InvalidService(d) => d,
            Self::InternalError => "the server failed; try again",
        }
    }
}

/// Where a ticket is validated: `/validate` (CAS 1.0) and `/serviceValidate` accept service tickets
/// only; `/proxyValidate` would accept proxy tickets too, of which this server issues none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Validate,
    ServiceValidate,
    ProxyValidate,
}

/// The response format (§2.5 `format`: "Supported values are `XML` and `JSON`").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Xml,
    Json,
}

/// A refused validation: the failure, and the client whose ticket it was when the ticket was found
/// (for the audit log and the client's self-check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub failure: Failure,
    pub client_id: Option<String>,
}

impl From<Failure> for Refused {
    fn from(failure: Failure) -> Self {
        Self {
            failure,
            client_id: None,
        }
    }
}

/// The format asked for; an unsupported one is answered in XML with `INVALID_REQUEST`.
pub fn format_of(params: &[(String, String)]) -> Result<Format, Failure> {
    match params
        .iter()
        .find(|(n, _)| n == "format")
        .map(|(_, v)| v.as_str())
    {
        None => Ok(Format::Xml),
        Some(f) if f.eq_ignore_ascii_case("XML") => Ok(Format::Xml),
        Some(f) if f.eq_ignore_ascii_case("JSON") => Ok(Format::Json),
        Some(_) => Err(Failure::InvalidRequest("format must be XML or JSON".into())),
    }
}

/// A ticket as this server writes them (and short enough to repeat in an answer).
fn well_formed(ticket: &str) -> bool {
    ticket.len() <= 64
        && ticket.starts_with(TICKET_PREFIX)
        && ticket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Validates a ticket once (§2.5.1: `service` and `ticket` REQUIRED; `pgtUrl`, `renew`, `format`
/// OPTIONAL). §3.1.1: "Whether or not validation was successful, CAS MUST then invalidate the
/// ticket": a ticket named in the request is taken from the store first, whatever then fails. It must
/// have been issued for `service`, within `ttl_secs`, and from a new login when `renew` is set.
pub async fn validate(
    ephemeral: &dyn Ephemeral,
    params: &[(String, String)],
    endpoint: Endpoint,
    ttl_secs: i64,
    now: i64,
) -> Result<TicketGrant, Refused> {
    for name in ["service", "ticket", "pgtUrl", "renew", "format"] {
        if params.iter().filter(|(n, _)| n == name).count() > 1 {
            return Err(Failure::InvalidRequest(format!("{name} is repeated")).into());
        }
    }
    let get = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let ticket = get("ticket");
    // Taken before anything else is checked, so no failure leaves it usable.
    let grant = match ticket.filter(|t| well_formed(t)) {
        Some(t) => ephemeral
            .take(&stored_key(t))
            .await
            .map_err(|_| Refused::from(Failure::InternalError))?
            .and_then(|raw| open(t, &raw)),
        None => None,
    };
    let refuse = |failure: Failure| Refused {
        failure,
        client_id: grant.as_ref().map(|g| g.client_id.clone()),
    };
    format_of(params).map_err(refuse)?;
    let (Some(service), Some(ticket)) = (get("service"), ticket) else {
        return Err(refuse(Failure::InvalidRequest(
            "service and ticket are required".into(),
        )));
    };
    if endpoint != Endpoint::ProxyValidate && ticket.starts_with("PT-") {
        return Err(refuse(Failure::InvalidTicketSpec(format!(
            "{} accepts service tickets only, not proxy tickets",
            match endpoint {
                Endpoint::Validate => "/validate",
                _ => "/serviceValidate",
            }
        ))));
    }
    if let Some(pgt) = get("pgtUrl") {
        if !url::Url::parse(pgt).is_ok_and(|u| u.scheme() == "https") {
            return Err(refuse(Failure::InvalidProxyCallback(
                "pgtUrl must be an https URL".into(),
            )));
        }
        return Err(refuse(Failure::UnauthorizedServiceProxy(
            "this server issues no proxy-granting tickets; leave out pgtUrl".into(),
        )));
    }
    let shown = if well_formed(ticket) {
        ticket
    } else {
        "(malformed)"
    };
    let Some(grant) = grant.clone() else {
        return Err(refuse(Failure::InvalidTicket(format!(
            "ticket {shown} not recognized"
        ))));
    };
    if now > grant.issued_at + ttl_secs {
        return Err(refuse(Failure::InvalidTicket(format!(
            "ticket {shown} has expired"
        ))));
    }
    if grant.service != service {
        return Err(refuse(Failure::InvalidService(format!(
            "ticket {shown} was not issued for this service"
        ))));
    }
    // §2.5.1 `renew`: "if this parameter is set" (whatever its value).
    if params.iter().any(|(n, _)| n == "renew") && !grant.fresh {
        return Err(refuse(Failure::InvalidTicket(format!(
            "ticket {shown} did not come from a new login, and renew is set"
        ))));
    }
    Ok(grant)
}

/// What a stored ticket stands for, if it opens with the ticket's key.
fn open(ticket: &str, raw: &[u8]) -> Option<TicketGrant> {
    if raw.len() < 12 {
        return None;
    }
    let (nonce, sealed) = raw.split_at(12);
    let plain = cipher(ticket)
        .decrypt(Nonce::from_slice(nonce), sealed)
        .ok()?;
    serde_json::from_slice(&plain).ok()
}

/// XML character data and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The validation response (Appendix A), with no XML declaration and no space inside `cas:user`
/// (clients take its text as it is).
pub fn response(result: &Result<TicketGrant, Failure>, format: Format) -> String {
    match (result, format) {
        (Ok(g), Format::Xml) => {
            let mut out = format!(
                "<cas:serviceResponse xmlns:cas=\"{NAMESPACE}\">\n  <cas:authenticationSuccess>\n    <cas:user>{}</cas:user>\n",
                escape(&g.user)
            );
            // Appendix A: `cas:attributes` holds at least the three authentication attributes, so
            // it is left out where none are released (`/serviceValidate`).
            if !g.attributes.is_empty() {
                out.push_str("    <cas:attributes>\n");
                for (name, value) in &g.attributes {
                    out.push_str(&format!(
                        "      <cas:{name}>{}</cas:{name}>\n",
                        escape(value)
                    ));
                }
                out.push_str("    </cas:attributes>\n");
            }
            out.push_str("  </cas:authenticationSuccess>\n</cas:serviceResponse>\n");
            out
        }
        (Err(f), Format::Xml) => format!(
            "<cas:serviceResponse xmlns:cas=\"{NAMESPACE}\">\n  <cas:authenticationFailure code=\"{}\">{}</cas:authenticationFailure>\n</cas:serviceResponse>\n",
            f.code(),
            escape(f.description())
        ),
        (Ok(g), Format::Json) => {
            let mut attributes = serde_json::Map::new();
            for (name, value) in &g.attributes {
                match attributes.get_mut(name) {
                    None => {
                        attributes.insert(name.clone(), serde_json::Value::from(value.as_str()));
                    }
                    Some(serde_json::Value::Array(list)) => list.push(value.as_str().into()),
                    Some(single) => {
                        let first = single.take();
                        *single = serde_json::Value::Array(vec![first, value.as_str().into()]);
                    }
                }
            }
            let mut success = serde_json::json!({ "user": g.user });
            // As in XML: no attributes member where none are released (`/serviceValidate`).
            if !attributes.is_empty() {
                success["attributes"] = serde_json::Value::Object(attributes);
            }
            serde_json::json!({"serviceResponse": {"authenticationSuccess": success}}).to_string()
        }
        (Err(f), Format::Json) => serde_json::json!({"serviceResponse": {"authenticationFailure": {
            "code": f.code(), "description": f.description(),
        }}})
        .to_string(),
    }
}

/// CAS 1.0 `/validate` (§2.4.2): `yes` and the user on the second line, or `no`.
pub fn response_v1(result: &Result<TicketGrant, Failure>) -> String {
    match result {
        Ok(g) => format!("yes\n{}\n", g.user),
        Err(_) => "no\n\n".to_owned(),
    }
}

/// The single-logout message (Appendix C) for the session of `ticket`, as Apereo CAS sends it: one
/// line, no XML declaration, the ticket as `SessionIndex` with no surrounding space.
pub fn logout_request(ticket: &str, now: i64) -> String {
    let mut id = [0u8; 16];
    rand::rng().fill_bytes(&mut id);
    format!(
        "<samlp:LogoutRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" ID=\"LR-{}\" Version=\"2.0\" IssueInstant=\"{}\"><saml:NameID xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\">@NOT_USED@</saml:NameID><samlp:SessionIndex>{}</samlp:SessionIndex></samlp:LogoutRequest>",
        data_encoding::HEXLOWER.encode(&id),
        crate::domain::date::rfc3339_utc(now),
        escape(ticket)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn tickets_are_32_characters_of_the_allowed_set_and_differ() {
        let a = new_ticket();
        assert_eq!(a.len(), 32);
        assert!(a.starts_with("ST-"));
        assert!(a[3..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(a, new_ticket());
    }

    #[test]
    fn login_parameters_follow_the_specification() {
        let p = login_params(&pairs(&[
            ("service", "https://a.example/x?y=1"),
            ("renew", "true"),
            ("gateway", "true"),
        ]))
        .unwrap();
        assert!(p.renew && !p.gateway, "renew wins over gateway");
        let p = login_params(&pairs(&[
            ("service", "https://a.example/"),
            ("gateway", ""),
        ]))
        .unwrap();
        assert!(p.gateway, "a parameter present is set, whatever its value");
        assert_eq!(
            login_params(&pairs(&[("method", "HEADER")])),
            Err(LoginError::Method)
        );
        assert!(login_params(&pairs(&[("method", "POST")])).unwrap().post);
        for bad in ["javascript:alert(1)", "https://a.example/#f", "/relative"] {
            assert_eq!(
                login_params(&pairs(&[("service", bad)])),
                Err(LoginError::BadService),
                "{bad}"
            );
        }
        assert_eq!(
            login_params(&pairs(&[
                ("service", "https://a/"),
                ("service", "https://b/")
            ])),
            Err(LoginError::Repeated("service"))
        );
    }

    #[test]
    fn the_ticket_goes_last() {
        assert_eq!(
            service_with_ticket("https://a/x", "ST-1"),
            "https://a/x?ticket=ST-1"
        );
        assert_eq!(
            service_with_ticket("https://a/x?b=2", "ST-1"),
            "https://a/x?b=2&ticket=ST-1"
        );
    }

    fn grant() -> TicketGrant {
        TicketGrant {
            client_id: "legacy".into(),
            service: "https://a.example/app/".into(),
            sid: "s".into(),
            account_id: "acc".into(),
            user: "pairwise<&>".into(),
            attributes: vec![
                ("isFromNewLogin".into(), "true".into()),
                ("amr".into(), "pwd".into()),
                ("amr".into(), "otp".into()),
                ("name".into(), "张三 & <b>".into()),
            ],
            fresh: true,
            auth_time: 1,
            issued_at: 100,
        }
    }

    #[test]
    fn responses_are_escaped_and_repeat_names_for_several_values() {
        let xml = response(&Ok(grant()), Format::Xml);
        assert!(xml.starts_with("<cas:serviceResponse xmlns:cas=\"http://www.yale.edu/tp/cas\">"));
        assert!(xml.contains("<cas:user>pairwise&lt;&amp;&gt;</cas:user>"));
        assert!(xml.contains("<cas:amr>pwd</cas:amr>\n      <cas:amr>otp</cas:amr>"));
        assert!(xml.contains("<cas:name>张三 &amp; &lt;b&gt;</cas:name>"));
        let json: serde_json::Value =
            serde_json::from_str(&response(&Ok(grant()), Format::Json)).unwrap();
        let success = &json["serviceResponse"]["authenticationSuccess"];
        assert_eq!(
            success["attributes"]["amr"],
            serde_json::json!(["pwd", "otp"])
        );
        assert_eq!(success["attributes"]["name"], "张三 & <b>");
        let failure = Err(Failure::InvalidService(
            "ticket ST-1 was not issued for <this>".into(),
        ));
        assert!(response(&failure, Format::Xml).contains(
            "<cas:authenticationFailure code=\"INVALID_SERVICE\">ticket ST-1 was not issued for &lt;this&gt;</cas:authenticationFailure>"
        ));
        assert_eq!(response_v1(&Ok(grant())), "yes\npairwise<&>\n");
        assert_eq!(response_v1(&failure), "no\n\n");
        assert_eq!(grant().released(), vec!["name"]);
    }

    #[test]
    fn the_logout_request_names_the_ticket_exactly() {
        let xml = logout_request("ST-abc", 0);
        assert!(xml.contains("<samlp:SessionIndex>ST-abc</samlp:SessionIndex>"));
        assert!(xml.contains("IssueInstant=\"1970-01-01T00:00:00Z\""));
        assert!(!xml.starts_with("<?xml"));
    }

    /// An ephemeral store that fails, for `INTERNAL_ERROR`.
    struct Broken;

    #[async_trait::async_trait]
    impl Ephemeral for Broken {
        fn backend(&self) -> &'static str {
            "broken"
        }
        async fn ping(&self) -> crate::store::StoreResult<()> {
            Err(StoreError::Corrupt("down".into()))
        }
        async fn put(
            &self,
            _: &str,
            _: &[u8],
            _: std::time::Duration,
        ) -> crate::store::StoreResult<()> {
            Err(StoreError::Corrupt("down".into()))
        }
        async fn put_if_absent(
            &self,
            _: &str,
            _: &[u8],
            _: std::time::Duration,
        ) -> crate::store::StoreResult<bool> {
            Err(StoreError::Corrupt("down".into()))
        }
        async fn get(&self, _: &str) -> crate::store::StoreResult<Option<Vec<u8>>> {
            Err(StoreError::Corrupt("down".into()))
        }
        async fn take(&self, _: &str) -> crate::store::StoreResult<Option<Vec<u8>>> {
            Err(StoreError::Corrupt("down".into()))
        }
        async fn delete(&self, _: &str) -> crate::store::StoreResult<bool> {
            Err(StoreError::Corrupt("down".into()))
        }
        async fn increment(
            &self,
            _: &str,
            _: std::time::Duration,
        ) -> crate::store::StoreResult<i64> {
            Err(StoreError::Corrupt("down".into()))
        }
        async fn publish(&self, _: &str, _: &[u8]) -> crate::store::StoreResult<()> {
            Err(StoreError::Corrupt("down".into()))
        }
        async fn subscribe(
            &self,
            _: &str,
        ) -> crate::store::StoreResult<crate::store::Subscription> {
            Err(StoreError::Corrupt("down".into()))
        }
    }

    #[tokio::test]
    async fn a_ticket_validates_once_for_its_service_and_every_failure_uses_it_up() {
        use crate::store::memory::MemoryEphemeral;
        let store = MemoryEphemeral::new(std::time::Duration::from_secs(60));
        let store = store.as_ref();
        let ttl = std::time::Duration::from_secs(60);
        const APP: &str = "https://a.example/app/";
        let check = async |list: &[(&str, &str)], endpoint, now| {
            validate(store, &pairs(list), endpoint, 60, now)
                .await
                .map_err(|r| (r.failure.code(), r.client_id))
        };
        use Endpoint::*;
        let t = issue(store, &grant(), ttl).await.unwrap();
        let stored = store.get(&stored_key(&t)).await.unwrap().unwrap();
        assert!(!String::from_utf8_lossy(&stored).contains("张三"), "sealed");
        let ok = check(&[("service", APP), ("ticket", &t)], ServiceValidate, 120).await;
        assert_eq!(ok.unwrap().user, "pairwise<&>");
        let known = Some("legacy".to_owned());
        let again = check(&[("service", APP), ("ticket", &t)], ServiceValidate, 120).await;
        assert_eq!(again.unwrap_err(), ("INVALID_TICKET", None));

        // Each cause, each with a fresh ticket, which the failure then used up.
        // (extra parameters, endpoint, the code expected)
        type Case<'a> = (&'a [(&'a str, &'a str)], Endpoint, &'a str);
        let cases: &[Case] = &[
            (
                &[("format", "YAML"), ("service", APP)],
                ServiceValidate,
                "INVALID_REQUEST",
            ),
            (&[], ServiceValidate, "INVALID_REQUEST"),
            (
                &[("pgtUrl", "http://a.example/cb"), ("service", APP)],
                ServiceValidate,
                "INVALID_PROXY_CALLBACK",
            ),
            (
                &[("pgtUrl", "https://a.example/cb"), ("service", APP)],
                ServiceValidate,
                "UNAUTHORIZED_SERVICE_PROXY",
            ),
            (
                &[("service", "https://a.example/other/")],
                ServiceValidate,
                "INVALID_SERVICE",
            ),
            (
                &[("service", APP), ("renew", "")],
                ServiceValidate,
                "INVALID_TICKET",
            ),
        ];
        for (extra, endpoint, code) in cases {
            let sso = TicketGrant {
                fresh: false,
                ..grant()
            };
            let t = issue(store, &sso, ttl).await.unwrap();
            let mut list = vec![("ticket", t.as_str())];
            list.extend_from_slice(extra);
            let refused = check(&list, *endpoint, 120).await.unwrap_err();
            assert_eq!(refused, (*code, known.clone()), "{extra:?}");
            let after = check(&[("service", APP), ("ticket", &t)], ServiceValidate, 120).await;
            assert_eq!(
                after.unwrap_err().0,
                "INVALID_TICKET",
                "{extra:?} used it up"
            );
        }
        // Without a ticket that could be ours: no client to name.
        for (list, endpoint, code) in [
            (vec![("service", APP)], ServiceValidate, "INVALID_REQUEST"),
            (
                vec![("service", APP), ("ticket", "ST-1"), ("ticket", "ST-2")],
                ServiceValidate,
                "INVALID_REQUEST",
            ),
            (
                vec![("service", APP), ("ticket", "PT-1")],
                ServiceValidate,
                "INVALID_TICKET_SPEC",
            ),
            (
                vec![("service", APP), ("ticket", "PT-1")],
                Validate,
                "INVALID_TICKET_SPEC",
            ),
            (
                vec![("service", APP), ("ticket", "PT-1")],
                ProxyValidate,
                "INVALID_TICKET",
            ),
            (
                vec![("service", APP), ("ticket", "ST-made-up")],
                ServiceValidate,
                "INVALID_TICKET",
            ),
        ] {
            assert_eq!(
                check(&list, endpoint, 120).await.unwrap_err(),
                (code, None),
                "{list:?}"
            );
        }
        let t = issue(store, &grant(), ttl).await.unwrap();
        let late = validate(
            store,
            &pairs(&[("service", APP), ("ticket", &t)]),
            ServiceValidate,
            60,
            161,
        )
        .await;
        assert_eq!(
            late.unwrap_err().failure.description(),
            format!("ticket {t} has expired")
        );
        // A malformed ticket is not repeated in the answer.
        let long = format!("ST-{}", "x".repeat(100));
        let refused = check(&[("service", APP), ("ticket", &long)], ServiceValidate, 120).await;
        assert!(refused.is_err());
        let described = validate(
            store,
            &pairs(&[("service", APP), ("ticket", &long)]),
            ServiceValidate,
            60,
            120,
        )
        .await;
        assert!(!described.unwrap_err().failure.description().contains("xxx"));
        let t = issue(store, &grant(), ttl).await.unwrap();
        // The store failing: INTERNAL_ERROR.
        let broken = validate(
            &Broken,
            &pairs(&[("service", APP), ("ticket", &t)]),
            ServiceValidate,
            60,
            120,
        )
        .await;
        assert_eq!(broken.unwrap_err().failure.code(), "INTERNAL_ERROR");
        assert_eq!(format_of(&pairs(&[("format", "json")])), Ok(Format::Json));
    }
}
