//! Governed onboarding through Dynamic Client Registration (RFC 7591) and its management protocol
//! (RFC 7592); docs/integration/registration.md.
//!
//! - An administrator issues a one-time initial access token (RFC 7591 §3: "The authorization server
//!   MAY be configured to ... require an initial access token"), for the platform or for one
//!   department (a department administrator: its own only). yihao keeps its SHA-256.
//! - The department registers its client with it once, at the registration endpoint. The client
//!   belongs to the token's department, is never first party nor given full phone numbers, cannot
//!   take restricted scopes (`idcard`, administrator scopes), and starts **pending**: it signs nobody
//!   in and gets no token until a system administrator approves it.
//! - The answer carries a registration access token and the client's registration URI (RFC 7592
//!   §3), with which the department reads, replaces and deletes its client later.

use subtle::ConstantTimeEq;

use super::clients::{ClientChange, ClientView};
use super::{Action, AdminError, Administration};
use crate::crypto::{hash_secret, random_token};
use crate::domain::admin::AdminRole;
use crate::domain::audit::EventType;
use crate::domain::client::{AuthMethod, Client, ClientId, ClientSettings, ClientSpec, GrantType};
use crate::domain::identifiers::CreditCode;
use crate::protocol::audit::AuditEvent;
use crate::store::RegistrationToken;

/// An initial access token's default and longest lifetime.
pub const TOKEN_SECS_DEFAULT: i64 = 7 * 86_400;
pub const TOKEN_SECS_MAX: i64 = 30 * 86_400;

/// An initial access token as issued (shown once).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct IssuedToken {
    /// The token: give it to the department's developers; it registers one client, once.
    pub initial_access_token: String,
    pub expires_at: i64,
    /// The department the client will belong to; none: the platform.
    pub department: Option<String>,
}

/// What a registration or a management request is refused for (RFC 7591 §3.2.2, RFC 6750 §3.1).
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// 401 `invalid_token`: a missing, unknown, used or expired token (RFC 7592 §2.1: also an
    /// unknown client).
    #[error("{0}")]
    InvalidToken(&'static str),
    /// 400 `invalid_redirect_uri`.
    #[error("{0}")]
    InvalidRedirectUri(String),
    /// 400 `invalid_client_metadata`.
    #[error("{0}")]
    InvalidClientMetadata(String),
    #[error(transparent)]
    Server(AdminError),
}

impl From<AdminError> for RegistrationError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Invalid { field, problem } if field == "redirect_uris" => {
                Self::InvalidRedirectUri(format!("redirect_uris: {problem}"))
            }
            AdminError::Invalid { field, problem } => {
                Self::InvalidClientMetadata(format!("{field}: {problem}"))
            }
            AdminError::Conflict(what) | AdminError::Denied(what) => {
                Self::InvalidClientMetadata(what)
            }
            other => Self::Server(other),
        }
    }
}

/// The registration answer (RFC 7591 §3.2.1 with RFC 7592 §3's two members).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Registered {
    #[serde(flatten)]
    pub client: ClientView,
    /// Only when issued (at registration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_access_token: Option<String>,
    pub registration_client_uri: String,
}

/// The answer about `client` at its registration URI under `base`.
fn registered(
    client: &Client,
    secret: Option<&str>,
    access: Option<String>,
    base: &str,
) -> Registered {
    Registered {
        client: ClientView::of(client, secret),
        registration_access_token: access,
        registration_client_uri: format!("{base}/{}", client.id()),
    }
}

/// The scopes a registration may ask for: a person's, except the ID number (only an administrator
/// registers a client with `idcard`: docs/privacy.md). API scopes (permissions at other systems) and
/// the administrator roles are an administrator's to give.
fn open_scope(scope: &str) -> bool {
    [
        "openid",
        "profile",
        "phone",
        "email",
        "org",
        "offline_access",
    ]
    .contains(&scope)
}

/// What a department may not give its own client through the endpoint, however it asks: the
/// platform's decisions (first party, full phone numbers, its department), powers beyond signing
/// people in at a web service (the client_credentials grant, another channel than `web`, leaving out
/// PKCE), restricted or API scopes. `current`: on a replacement, what the client already has may be
/// sent back unchanged (RFC 7592 §2.2: the client sends back what it read).
fn checked(change: &ClientChange, current: Option<&ClientView>) -> Result<(), RegistrationError> {
    let same = |f: &dyn Fn(&ClientView) -> bool| current.is_some_and(f);
    let refuse = |what: &str| {
        Err(RegistrationError::InvalidClientMetadata(format!(
            "{what} is the platform's to set, not the registering department's"
        )))
    };
    if let Some(v) = change.first_party
        && !same(&|c| c.first_party == v)
    {
        return refuse("first_party");
    }
    if let Some(v) = change.full_phone
        && !same(&|c| c.full_phone == v)
    {
        return refuse("full_phone");
    }
    if let Some(v) = &change.department
        && !same(&|c| c.department.as_deref().unwrap_or("") == v)
    {
        return refuse("department (it comes from the initial access token)");
    }
    if change.pkce_optional == Some(true) && !same(&|c| c.pkce_optional) {
        return refuse("pkce_optional");
    }
    if let Some(channel) = &change.channel
        && channel != "web"
        && !same(&|c| &c.channel == channel)
    {
        return refuse("a channel other than web");
    }
    for grant in [
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:device_code",
    ] {
        if let Some(grants) = &change.grant_types
            && grants.iter().any(|g| g == grant)
            && !same(&|c| c.grant_types.iter().any(|g| g == grant))
        {
            return refuse(&format!("the {grant} grant"));
        }
    }
    // The pairwise subject's sector is the redirect URIs' host: they come with the code grant only.
    let grants = change
        .grant_types
        .clone()
        .unwrap_or_else(|| vec!["authorization_code".into()]);
    if change.redirect_uris.as_ref().is_some_and(|r| !r.is_empty())
        && !grants.iter().any(|g| g == "authorization_code")
    {
        return Err(RegistrationError::InvalidClientMetadata(
            "redirect_uris come with the authorization_code grant only".into(),
        ));
    }
    if let Some(scope) = &change.scope {
        let held: Vec<&str> = current
            .map(|c| c.scope.split(' ').collect())
            .unwrap_or_default();
        if let Some(s) = scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .find(|s| !open_scope(s) && !held.contains(s))
        {
            return Err(RegistrationError::InvalidClientMetadata(format!(
                "scope {s} is an administrator's to give, not the registering department's"
            )));
        }
    }
    Ok(())
}

impl Administration<'_> {
    /// Issues a one-time initial access token for `department` (a department administrator's own,
    /// whatever is asked), valid `lifetime` seconds (default 7 days, at most 30).
    pub async fn issue_registration_token(
        &self,
        department: Option<&str>,
        lifetime: Option<i64>,
        now: i64,
    ) -> Result<IssuedToken, AdminError> {
        self.allow(Action::ClientsWrite, None).await?;
        let lifetime = lifetime.unwrap_or(TOKEN_SECS_DEFAULT);
        if !(60..=TOKEN_SECS_MAX).contains(&lifetime) {
            return Err(AdminError::invalid(
                "expires_in",
                "must be 60 seconds to 30 days",
            ));
        }
        let department = match (self.actor.role(), department) {
            (Some(AdminRole::Department), asked) => {
                let mine = self.actor.department().cloned();
                if asked.is_some_and(|a| Some(a) != mine.as_ref().map(CreditCode::as_str)) {
                    return Err(AdminError::invalid(
                        "department",
                        "a department administrator issues tokens for its own department only",
                    ));
                }
                mine
            }
            (_, Some(code)) if !code.trim().is_empty() => Some(
                CreditCode::parse(code.trim())
                    .map_err(|e| AdminError::invalid("department", e.to_string()))?,
            ),
            _ => None,
        };
        let token = random_token();
        let record = RegistrationToken {
            hash: hash_secret(&token).0.to_vec(),
            department: department.as_ref().map(|d| d.as_str().to_owned()),
            issued_by: self.actor.audit_name(),
            issued_at: now,
            expires_at: now + lifetime,
            used_at: None,
            client_id: None,
        };
        self.clients.insert_registration_token(&record).await?;
        self.record(
            EventType::AdminClient,
            None,
            serde_json::json!({
                "change": "registration_token",
                "department": record.department,
                "expires_at": record.expires_at,
            }),
        )
        .await?;
        Ok(IssuedToken {
            initial_access_token: token,
            expires_at: record.expires_at,
            department: record.department,
        })
    }

    /// Approves a client registered through the endpoint: from now on it signs people in. The
    /// system administrator's (or the operator's) decision, not the registering department's.
    pub async fn approve_client(&self, id: &str, now: i64) -> Result<ClientView, AdminError> {
        self.allow(Action::ClientsWrite, Some(id)).await?;
        if self.actor.role() == Some(AdminRole::Department) {
            return Err(AdminError::Denied(
                "a department's client is approved by the system administrator".into(),
            ));
        }
        let client = self.find_client(id).await?;
        if !client.settings().pending {
            return Err(AdminError::Conflict(format!("client {id} is not pending")));
        }
        let mut spec = client.spec();
        spec.settings.pending = false;
        self.save_change(&client, spec, "approve", now).await
    }

    /// RFC 7591 §3.1: registers the client `change` describes for the holder of `initial_token`.
    /// The token is used up only by a registration that succeeds. `base` is the registration
    /// endpoint's URL, under which the client's registration URI lies.
    pub async fn register_client(
        &self,
        initial_token: &str,
        change: &ClientChange,
        base: &str,
        now: i64,
    ) -> Result<Registered, RegistrationError> {
        // The token is looked at first: without a valid one, nothing about the registry shows.
        let presented = hash_secret(initial_token);
        if self
            .clients
            .registration_token(&presented.0, now)
            .await
            .map_err(AdminError::from)?
            .is_none()
        {
            return Err(RegistrationError::InvalidToken(
                "the initial access token is unknown, used or expired",
            ));
        }
        checked(change, None)?;
        if change.client_id.is_some() {
            return Err(RegistrationError::InvalidClientMetadata(
                "client_id is assigned by the server (RFC 7591 §3.2.1)".into(),
            ));
        }
        let auth_method = AuthMethod::parse(
            change
                .token_endpoint_auth_method
                .as_deref()
                .unwrap_or("client_secret_basic"),
        )
        .map_err(|e| RegistrationError::InvalidClientMetadata(e.to_string()))?;
        let id = ClientId::parse(&uuid::Uuid::new_v4().to_string())
            .map_err(|e| RegistrationError::Server(e.into()))?;
        let mut spec = ClientSpec {
            id,
            name: String::new(),
            auth_method,
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            grant_types: vec![GrantType::AuthorizationCode],
            scopes: Vec::new(),
            first_party: false,
            settings: ClientSettings::default(),
        };
        change.apply(&mut spec)?;
        if spec.scopes.is_empty() {
            spec.scopes =
                vec![crate::domain::client::Scope::parse("openid").map_err(AdminError::from)?];
        }
        if change.client_name.is_none() {
            return Err(RegistrationError::InvalidClientMetadata(
                "client_name is required".into(),
            ));
        }
        let access = random_token();
        spec.settings.pending = true;
        spec.settings.registration_token = Some(hash_secret(&access));
        let secret = auth_method.uses_secret().then(random_token);
        let secrets = secret
            .as_deref()
            .map(|s| self.client_secrets.store(&spec.id, auth_method, s, None));
        // Checked whole before the token is spent.
        let probe =
            Client::register(spec.clone(), secrets.clone(), now).map_err(AdminError::from)?;
        self.cas_services_free(&spec).await?;
        let used = self
            .clients
            .use_registration_token(&presented.0, probe.id().as_str(), now)
            .await
            .map_err(AdminError::from)?
            .ok_or(RegistrationError::InvalidToken(
                "the initial access token is unknown, used or expired",
            ))?;
        spec.settings.department = used
            .department
            .as_deref()
            .map(CreditCode::parse)
            .transpose()
            .map_err(|e| RegistrationError::Server(AdminError::Server(e.to_string(), None)))?;
        let client = Client::register(spec, secrets, now).map_err(AdminError::from)?;
        self.clients
            .insert_client(&client)
            .await
            .map_err(AdminError::from)?;
        self.registration_audit(
            &client,
            "register",
            used.department.as_deref(),
            Some(&used.issued_by),
        )
        .await?;
        Ok(registered(&client, secret.as_deref(), Some(access), base))
    }

    /// RFC 7592 §2.1: the client, for the holder of its registration access token.
    pub async fn registered_client(
        &self,
        id: &str,
        access_token: &str,
        base: &str,
    ) -> Result<Registered, RegistrationError> {
        let client = self.by_access_token(id, access_token).await?;
        Ok(registered(&client, None, None, base))
    }

    /// RFC 7592 §2.2: replaces the client's metadata ("omitted fields MUST be treated as null or
    /// empty values by the server"), keeping its id, secret, department, token and approval.
    pub async fn replace_registered_client(
        &self,
        id: &str,
        access_token: &str,
        change: &ClientChange,
        base: &str,
        now: i64,
    ) -> Result<Registered, RegistrationError> {
        let client = self.by_access_token(id, access_token).await?;
        checked(change, Some(&ClientView::of(&client, None)))?;
        if change.client_id.as_deref().is_some_and(|c| c != id) {
            return Err(RegistrationError::InvalidClientMetadata(
                "client_id must be the client's own".into(),
            ));
        }
        if change
            .token_endpoint_auth_method
            .as_deref()
            .is_some_and(|m| m != client.auth_method().as_str())
        {
            return Err(RegistrationError::InvalidClientMetadata(
                "token_endpoint_auth_method cannot change; register a new client".into(),
            ));
        }
        let before = client.settings();
        let mut spec = ClientSpec {
            id: client.id().clone(),
            name: String::new(),
            auth_method: client.auth_method(),
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            grant_types: vec![GrantType::AuthorizationCode],
            scopes: Vec::new(),
            first_party: client.first_party(),
            // What an administrator set stays: the department, full phone numbers, the device's
            // location and the resources.
            settings: ClientSettings {
                department: before.department.clone(),
                full_phone: before.full_phone,
                location: before.location.clone(),
                resources: before.resources.clone(),
                pending: before.pending,
                registration_token: before.registration_token,
                ..ClientSettings::default()
            },
        };
        change.apply(&mut spec)?;
        if spec.scopes.is_empty() {
            spec.scopes =
                vec![crate::domain::client::Scope::parse("openid").map_err(AdminError::from)?];
        }
        if change.client_name.is_none() {
            return Err(RegistrationError::InvalidClientMetadata(
                "client_name is required".into(),
            ));
        }
        // An administrator's assurance floor stays: a replacement may raise it, not lower it.
        if before.min_level > spec.settings.min_level {
            spec.settings.min_level = before.min_level;
        }
        // Where codes, tickets and logouts go, the keys, and the name people consent to were what
        // the approval reviewed: a change to any of them waits for a new approval (security
        // review of registration: a lost registration access token must not let its holder
        // redirect or impersonate an approved client).
        let reviewed = |c: &ClientSpec| {
            (
                c.name.clone(),
                c.redirect_uris.clone(),
                c.post_logout_redirect_uris.clone(),
                c.settings.jwks.clone(),
                c.settings.jwks_uri.clone(),
                c.settings.cas_services.clone(),
                c.settings.backchannel_logout_uri.clone(),
                c.settings.frontchannel_logout_uri.clone(),
            )
        };
        let change_kind = if reviewed(&client.spec()) != reviewed(&spec) {
            spec.settings.pending = true;
            "update_pending"
        } else {
            "update"
        };
        self.cas_services_free(&spec).await?;
        let replaced = Client::restore(spec, client.secrets().cloned(), client.created_at(), now)
            .map_err(AdminError::from)?;
        self.clients
            .update_client(&replaced)
            .await
            .map_err(AdminError::from)?;
        self.registration_audit(&replaced, change_kind, None, None)
            .await?;
        Ok(registered(&replaced, None, None, base))
    }

    /// RFC 7592 §2.3: deletes the client.
    pub async fn delete_registered_client(
        &self,
        id: &str,
        access_token: &str,
    ) -> Result<(), RegistrationError> {
        let client = self.by_access_token(id, access_token).await?;
        self.clients
            .delete_client(client.id())
            .await
            .map_err(AdminError::from)?;
        self.registration_audit(&client, "delete", None, None).await
    }

    /// The client `id` if `access_token` is its registration access token. RFC 7592 §2.1: an
    /// unknown client answers as a bad token does.
    async fn by_access_token(
        &self,
        id: &str,
        access_token: &str,
    ) -> Result<Client, RegistrationError> {
        let invalid =
            RegistrationError::InvalidToken("the registration access token is not this client's");
        let Ok(id) = ClientId::parse(id) else {
            return Err(invalid);
        };
        let client = self
            .clients
            .client(&id)
            .await
            .map_err(AdminError::from)?
            .ok_or(RegistrationError::InvalidToken(
                "the registration access token is not this client's",
            ))?;
        let presented = hash_secret(access_token);
        match client.settings().registration_token {
            Some(h) if bool::from(h.0.ct_eq(&presented.0)) => Ok(client),
            _ => Err(invalid),
        }
    }

    /// A change made at the registration endpoint, audited under the client (its department's
    /// developers are not administrators), and announced to the nodes.
    async fn registration_audit(
        &self,
        client: &Client,
        change: &str,
        department: Option<&str>,
        token_issued_by: Option<&str>,
    ) -> Result<(), RegistrationError> {
        let event = AuditEvent::success(EventType::AdminClient)
            .actor(format!("client:{}", client.id()))
            .target(client.id().as_str())
            .client(client.id().as_str())
            .details(serde_json::json!({
                "change": change,
                "via": "registration_endpoint",
                "department": department.or(client.settings().department.as_ref().map(CreditCode::as_str)),
                "token_issued_by": token_issued_by,
            }));
        self.audit
            .record(event)
            .await
            .map_err(|e| RegistrationError::Server(AdminError::from(e)))?;
        if let Err(e) = self
            .ephemeral
            .publish(
                crate::store::client_cache::CLIENTS_CHANNEL,
                client.id().as_str().as_bytes(),
            )
            .await
        {
            tracing::warn!(error = %crate::telemetry::ErrorChain(&e), "client change not announced");
        }
        Ok(())
    }
}
