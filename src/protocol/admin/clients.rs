//! The client registry, administered: list, show, register, change, rotate a secret, delete. The
//! field names are RFC 7591's (§2 client metadata, §3.2.1 the client information response), with
//! yihao's own settings beside them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Actor, AdminError, Administration, Page, field};
use crate::crypto::random_token;
use crate::domain::admin::{Action, AdminRole};
use crate::domain::audit::EventType;
use crate::domain::client::{
    AuthMethod, CasService, Channel, Client, ClientId, ClientSettings, ClientSpec, GrantType,
    RedirectUri, Scope,
};
use crate::domain::identifiers::CreditCode;
use crate::domain::jose::Alg;
use crate::store::client_cache::CLIENTS_CHANNEL;

/// A registration or a change: every field given replaces that setting (a list replaces the whole
/// list); on registration an absent field takes its default.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientChange {
    /// Registration only: the client_id (letters, digits, `-._~`); a random UUID when absent.
    pub client_id: Option<String>,
    /// Shown on the consent page (1 to 200 characters).
    pub client_name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// `authorization_code` (default), `refresh_token`, `client_credentials`,
    /// `urn:ietf:params:oauth:grant-type:device_code`; an empty list for a CAS-only client.
    pub grant_types: Option<Vec<String>>,
    /// Space-separated scopes the client may request (default `openid`).
    pub scope: Option<String>,
    /// Registration only: `client_secret_basic` (default), `client_secret_post`,
    /// `client_secret_jwt`, `private_key_jwt` or `none` (a public client).
    pub token_endpoint_auth_method: Option<String>,
    /// A first-party service: the consent page is skipped.
    pub first_party: Option<bool>,
    pub id_token_signed_response_alg: Option<String>,
    pub access_token_signed_response_alg: Option<String>,
    /// Seconds, 60 to 86400.
    pub access_token_lifetime: Option<u32>,
    /// Seconds, 60 to 86400.
    pub id_token_lifetime: Option<u32>,
    pub full_phone: Option<bool>,
    pub pkce_optional: Option<bool>,
    /// 1 to 4; 0 clears it.
    pub min_level: Option<u8>,
    /// Where a device stands; empty clears it.
    pub location: Option<String>,
    /// The client's public keys (a JWK Set) for `private_key_jwt`.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    pub jwks_uri: Option<String>,
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: Option<bool>,
    pub frontchannel_logout_uri: Option<String>,
    pub frontchannel_logout_session_required: Option<bool>,
    /// `web`, `app`, `kiosk`, `window` or `system`.
    pub channel: Option<String>,
    /// Resource indicators (RFC 8707) for machine tokens.
    pub resources: Option<Vec<String>>,
    /// The owning department's unified social credit code; empty clears it. A department
    /// administrator's clients always belong to its department.
    pub department: Option<String>,
    /// CAS service URLs (exact, or a prefix ending in `*`: docs/integration/cas.md).
    pub cas_services: Option<Vec<String>>,
}

/// A registered client as RFC 7591 §3.2.1 describes it (`client_secret` only when just issued).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClientView {
    pub client_id: String,
    pub client_name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    pub scope: String,
    pub token_endpoint_auth_method: String,
    pub client_id_issued_at: i64,
    pub first_party: bool,
    pub id_token_signed_response_alg: Option<String>,
    pub access_token_signed_response_alg: Option<String>,
    pub access_token_lifetime: Option<u32>,
    pub id_token_lifetime: Option<u32>,
    pub full_phone: bool,
    pub pkce_optional: bool,
    pub min_level: Option<u8>,
    pub location: Option<String>,
    pub jwks_uri: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    pub resources: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
    pub frontchannel_logout_uri: Option<String>,
    pub frontchannel_logout_session_required: bool,
    pub channel: String,
    pub department: Option<String>,
    pub cas_services: Vec<String>,
    /// Registered through the registration endpoint and not yet approved: signs nobody in.
    pub pending: bool,
    /// Only in the answer that issued it: shown once, stored as a hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// 0: the secret does not expire (present with `client_secret`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<i64>,
}

impl ClientView {
    pub fn of(client: &Client, secret: Option<&str>) -> Self {
        let s = client.settings();
        Self {
            client_id: client.id().as_str().to_owned(),
            client_name: client.name().to_owned(),
            redirect_uris: client
                .redirect_uris()
                .iter()
                .map(|u| u.as_str().to_owned())
                .collect(),
            post_logout_redirect_uris: client
                .post_logout_redirect_uris()
                .iter()
                .map(|u| u.as_str().to_owned())
                .collect(),
            grant_types: client
                .grant_types()
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect(),
            response_types: if client.grant_types().contains(&GrantType::AuthorizationCode) {
                vec!["code".to_owned()]
            } else {
                Vec::new()
            },
            scope: client
                .scopes()
                .iter()
                .map(Scope::as_str)
                .collect::<Vec<_>>()
                .join(" "),
            token_endpoint_auth_method: client.auth_method().as_str().to_owned(),
            client_id_issued_at: client.created_at(),
            first_party: client.first_party(),
            id_token_signed_response_alg: s.id_token_alg.map(|a| a.as_str().to_owned()),
            access_token_signed_response_alg: s.access_token_alg.map(|a| a.as_str().to_owned()),
            access_token_lifetime: s.access_token_secs,
            id_token_lifetime: s.id_token_secs,
            full_phone: s.full_phone,
            pkce_optional: s.pkce_optional,
            min_level: s.min_level,
            location: s.location.clone(),
            jwks_uri: s.jwks_uri.clone(),
            jwks: s.jwks.as_deref().and_then(|j| serde_json::from_str(j).ok()),
            resources: s.resources.clone(),
            backchannel_logout_uri: s.backchannel_logout_uri.clone(),
            backchannel_logout_session_required: s.backchannel_logout_session_required,
            frontchannel_logout_uri: s.frontchannel_logout_uri.clone(),
            frontchannel_logout_session_required: s.frontchannel_logout_session_required,
            channel: s.channel.as_str().to_owned(),
            department: s.department.as_ref().map(|d| d.as_str().to_owned()),
            cas_services: s
                .cas_services
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
            pending: s.pending,
            client_secret: secret.map(str::to_owned),
            client_secret_expires_at: secret.map(|_| 0),
        }
    }
}

fn parse_list<T, E>(items: &[String], parse: impl Fn(&str) -> Result<T, E>) -> Result<Vec<T>, E> {
    items.iter().map(|i| parse(i)).collect()
}

impl ClientChange {
    /// Applies the fields given to `spec`.
    pub(super) fn apply(&self, spec: &mut ClientSpec) -> Result<(), AdminError> {
        if let Some(name) = &self.client_name {
            spec.name = name.clone();
        }
        if let Some(uris) = &self.redirect_uris {
            spec.redirect_uris = parse_list(uris, RedirectUri::parse)?;
        }
        if let Some(uris) = &self.post_logout_redirect_uris {
            spec.post_logout_redirect_uris = parse_list(uris, RedirectUri::parse_post_logout)?;
        }
        if let Some(grants) = &self.grant_types {
            spec.grant_types = parse_list(grants, GrantType::parse)?;
        }
        if let Some(scope) = &self.scope {
            spec.scopes = scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(Scope::parse)
                .collect::<Result<_, _>>()?;
        }
        if let Some(first_party) = self.first_party {
            spec.first_party = first_party;
        }
        self.apply_settings(&mut spec.settings)
    }

    fn apply_settings(&self, settings: &mut ClientSettings) -> Result<(), AdminError> {
        let alg = |name: &str, a: &str| {
            Alg::parse(a).map_err(|e| AdminError::invalid(name, e.to_string()))
        };
        if let Some(a) = &self.id_token_signed_response_alg {
            settings.id_token_alg = Some(alg("id_token_signed_response_alg", a)?);
        }
        if let Some(a) = &self.access_token_signed_response_alg {
            settings.access_token_alg = Some(alg("access_token_signed_response_alg", a)?);
        }
        if let Some(secs) = self.access_token_lifetime {
            settings.access_token_secs = Some(secs);
        }
        if let Some(secs) = self.id_token_lifetime {
            settings.id_token_secs = Some(secs);
        }
        if let Some(full) = self.full_phone {
            settings.full_phone = full;
        }
        if let Some(optional) = self.pkce_optional {
            settings.pkce_optional = optional;
        }
        if let Some(location) = &self.location {
            settings.location = Some(location.trim().to_owned()).filter(|l| !l.is_empty());
        }
        if let Some(level) = self.min_level {
            settings.min_level = (level > 0).then_some(level);
        }
        if let Some(jwks) = &self.jwks {
            settings.jwks = Some(jwks.to_string());
            settings.jwks_uri = None;
        }
        if let Some(uri) = &self.jwks_uri {
            settings.jwks_uri = Some(uri.clone());
            settings.jwks = None;
        }
        if let Some(uri) = &self.backchannel_logout_uri {
            settings.backchannel_logout_uri = Some(uri.clone());
        }
        if let Some(required) = self.backchannel_logout_session_required {
            settings.backchannel_logout_session_required = required;
        }
        if let Some(uri) = &self.frontchannel_logout_uri {
            settings.frontchannel_logout_uri = Some(uri.clone());
        }
        if let Some(required) = self.frontchannel_logout_session_required {
            settings.frontchannel_logout_session_required = required;
        }
        if let Some(resources) = &self.resources {
            settings.resources = resources.clone();
        }
        if let Some(channel) = &self.channel {
            settings.channel = Channel::parse(channel)?;
        }
        if let Some(services) = &self.cas_services {
            settings.cas_services = parse_list(services, CasService::parse)?;
        }
        if let Some(department) = &self.department {
            settings.department = match department.trim() {
                "" => None,
                code => Some(CreditCode::parse(code).map_err(field("department"))?),
            };
        }
        Ok(())
    }
}

impl Administration<'_> {
    /// A client the actor may change: not yihao's own (the personal page's and the console's), and
    /// holding no administrator scope of another role than the actor's (whoever controls such a
    /// client's redirect URIs or secret could act in that role). The operator may change any.
    async fn client_to_change(&self, id: &str) -> Result<Client, AdminError> {
        let client = self.find_client(id).await?;
        let Some(role) = self.actor.role() else {
            return Ok(client);
        };
        let own = [
            crate::protocol::my_account::ACCOUNT_CLIENT,
            super::console::CONSOLE_CLIENT,
        ];
        if own.contains(&client.id().as_str()) {
            return Err(AdminError::Denied(format!(
                "{id} is yihao's own client: only the operator changes it"
            )));
        }
        if let Some(other) = client
            .scopes()
            .iter()
            .filter_map(|s| AdminRole::of_scope(s.as_str()))
            .find(|r| *r != role)
        {
            return Err(AdminError::Denied(format!(
                "{id} holds the {} scope: only the operator changes it",
                other.scope()
            )));
        }
        Ok(client)
    }

    pub(super) async fn find_client(&self, id: &str) -> Result<Client, AdminError> {
        let id = ClientId::parse(id)?;
        let client = self
            .clients
            .client(&id)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("client {id}")))?;
        // A department administrator does not learn that another department's client exists.
        if self.actor.manages(&client) {
            Ok(client)
        } else {
            Err(AdminError::NotFound(format!("client {id}")))
        }
    }

    /// The clients the actor manages whose id or name contains `q` (case-insensitive), by id,
    /// after the cursor `after`. (The registry is held in memory by every node: a scan is cheap.)
    pub async fn list_clients(
        &self,
        q: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<ClientView>, AdminError> {
        self.allow(Action::ClientsRead, None).await?;
        let q = q.map(str::trim).filter(|q| !q.is_empty());
        if q.is_some_and(|q| q.chars().count() > 100) {
            return Err(AdminError::invalid("q", "at most 100 characters"));
        }
        let needle = q.map(str::to_lowercase);
        let all = self.clients.clients().await?;
        // By id as bytes, whatever order the database's collation gives, so `after` pages exactly.
        let mut all = all;
        all.sort_by(|a, b| a.id().as_str().cmp(b.id().as_str()));
        let mut visible = all
            .iter()
            .filter(|c| self.actor.manages(c))
            .filter(|c| {
                needle.as_deref().is_none_or(|n| {
                    c.id().as_str().to_lowercase().contains(n)
                        || c.name().to_lowercase().contains(n)
                })
            })
            .filter(|c| after.is_none_or(|a| c.id().as_str() > a));
        let items: Vec<ClientView> = visible
            .by_ref()
            .take(limit)
            .map(|c| ClientView::of(c, None))
            .collect();
        let next = (visible.next().is_some())
            .then(|| items.last().map(|c| c.client_id.clone()))
            .flatten();
        self.read(
            Action::ClientsRead,
            None,
            serde_json::json!({ "count": items.len() }),
        )
        .await?;
        Ok(Page { items, next })
    }

    pub async fn show_client(&self, id: &str) -> Result<ClientView, AdminError> {
        self.allow(Action::ClientsRead, Some(id)).await?;
        let client = self.find_client(id).await?;
        self.read(Action::ClientsRead, Some(id), serde_json::json!({}))
            .await?;
        Ok(ClientView::of(&client, None))
    }

    /// Registers a client; its secret (for secret-based methods) is in the answer, once.
    pub async fn create_client(
        &self,
        change: &ClientChange,
        now: i64,
    ) -> Result<ClientView, AdminError> {
        self.allow(Action::ClientsWrite, None).await?;
        let auth_method = AuthMethod::parse(
            change
                .token_endpoint_auth_method
                .as_deref()
                .unwrap_or("client_secret_basic"),
        )?;
        let id = match &change.client_id {
            Some(id) => ClientId::parse(id)?,
            None => ClientId::parse(&uuid::Uuid::new_v4().to_string())?,
        };
        let mut spec = ClientSpec {
            id,
            name: String::new(),
            auth_method,
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            grant_types: vec![GrantType::AuthorizationCode],
            scopes: vec![Scope::parse("openid")?],
            first_party: false,
            settings: ClientSettings::default(),
        };
        change.apply(&mut spec)?;
        if change.client_name.is_none() {
            return Err(AdminError::invalid("client_name", "is required"));
        }
        self.own_department(&mut spec, None)?;
        self.admin_scopes_allowed(&spec)?;
        self.cas_services_free(&spec).await?;
        let secret = auth_method.uses_secret().then(random_token);
        let secrets = secret
            .as_deref()
            .map(|s| self.client_secrets.store(&spec.id, auth_method, s, None));
        let client = Client::register(spec, secrets, now)?;
        self.clients.insert_client(&client).await?;
        self.client_changed(client.id(), "create").await?;
        Ok(ClientView::of(&client, secret.as_deref()))
    }

    pub async fn update_client(
        &self,
        id: &str,
        change: &ClientChange,
        now: i64,
    ) -> Result<ClientView, AdminError> {
        self.allow(Action::ClientsWrite, Some(id)).await?;
        let client = self.client_to_change(id).await?;
        if change.client_id.as_deref().is_some_and(|c| c != id) {
            return Err(AdminError::invalid("client_id", "cannot be changed"));
        }
        if change
            .token_endpoint_auth_method
            .as_deref()
            .is_some_and(|m| m != client.auth_method().as_str())
        {
            return Err(AdminError::invalid(
                "token_endpoint_auth_method",
                "cannot be changed: register a new client",
            ));
        }
        let mut spec = client.spec();
        change.apply(&mut spec)?;
        self.own_department(&mut spec, Some(&client.spec()))?;
        self.admin_scopes_allowed(&spec)?;
        self.cas_services_free(&spec).await?;
        self.save_change(&client, spec, "update", now).await
    }

    /// Stores `spec` as `client`'s new registration (its secrets and creation time kept), audits
    /// and announces the change.
    pub(super) async fn save_change(
        &self,
        client: &Client,
        spec: ClientSpec,
        change: &str,
        now: i64,
    ) -> Result<ClientView, AdminError> {
        let changed = Client::restore(spec, client.secrets().cloned(), client.created_at(), now)?;
        self.clients.update_client(&changed).await?;
        self.client_changed(changed.id(), change).await?;
        Ok(ClientView::of(&changed, None))
    }

    /// A new secret; the previous one keeps working for `previous_valid_secs` (at most 30 days).
    pub async fn rotate_client_secret(
        &self,
        id: &str,
        previous_valid_secs: u32,
        now: i64,
    ) -> Result<ClientView, AdminError> {
        self.allow(Action::ClientsWrite, Some(id)).await?;
        if previous_valid_secs > 30 * 86_400 {
            return Err(AdminError::invalid(
                "previous_valid_secs",
                "at most 2592000 (30 days)",
            ));
        }
        let client = self.client_to_change(id).await?;
        let Some(old) = client.secrets() else {
            return Err(AdminError::Conflict(format!(
                "client {id} uses {} and has no secret",
                client.auth_method().as_str()
            )));
        };
        let secret = random_token();
        let secrets = self.client_secrets.store(
            client.id(),
            client.auth_method(),
            &secret,
            Some((old, now + i64::from(previous_valid_secs))),
        );
        let rotated = Client::restore(client.spec(), Some(secrets), client.created_at(), now)?;
        self.clients.update_client(&rotated).await?;
        self.client_changed(rotated.id(), "rotate_secret").await?;
        Ok(ClientView::of(&rotated, Some(&secret)))
    }

    pub async fn delete_client(&self, id: &str) -> Result<(), AdminError> {
        self.allow(Action::ClientsWrite, Some(id)).await?;
        let client = self.client_to_change(id).await?;
        if !self.clients.delete_client(client.id()).await? {
            return Err(AdminError::NotFound(format!("client {id}")));
        }
        self.client_changed(client.id(), "delete").await
    }

    /// A department administrator's client belongs to its department, whatever was asked, and
    /// cannot skip consent or receive full phone numbers (the platform's decisions: docs/privacy.md).
    fn own_department(
        &self,
        spec: &mut ClientSpec,
        before: Option<&ClientSpec>,
    ) -> Result<(), AdminError> {
        if self.actor.role() == Some(AdminRole::Department) {
            // Refused as a change: what the system administrator set stays as it is.
            let was = |f: fn(&ClientSpec) -> bool| before.is_some_and(f);
            let raises = (spec.first_party && !was(|b| b.first_party))
                || (spec.settings.full_phone && !was(|b| b.settings.full_phone));
            if raises {
                return Err(AdminError::Denied(
                    "first_party and full_phone are the system administrator's to set".into(),
                ));
            }
            let mine = self.actor.department().cloned();
            if spec.settings.department.is_some() && spec.settings.department != mine {
                return Err(AdminError::invalid(
                    "department",
                    "a department administrator registers clients for its own department only",
                ));
            }
            spec.settings.department = mine;
        }
        Ok(())
    }

    /// A CAS service URL belongs to one client: an entry that another client's entries could also
    /// admit (the same URL, one under the other's prefix) is refused, so no client takes over
    /// another's logins (security review of CAS).
    pub(super) async fn cas_services_free(&self, spec: &ClientSpec) -> Result<(), AdminError> {
        if spec.settings.cas_services.is_empty() {
            return Ok(());
        }
        for other in self.clients.clients().await? {
            if other.id() == &spec.id {
                continue;
            }
            for mine in &spec.settings.cas_services {
                if other
                    .settings()
                    .cas_services
                    .iter()
                    .any(|theirs| mine.overlaps(theirs))
                {
                    return Err(AdminError::Conflict(format!(
                        "the CAS service {} overlaps one registered for another client",
                        mine.as_str()
                    )));
                }
            }
        }
        Ok(())
    }

    /// An administrator may give a client only its own role's administrator scope (a system
    /// administrator `admin:system`, a department administrator `admin:department`); the others come
    /// from the operator (`yihao client create`). On a client with the client_credentials grant the
    /// scope is the client's own power; on a client people sign in at, whoever controls its redirect
    /// URIs could collect the tokens of the administrators signing in there.
    fn admin_scopes_allowed(&self, spec: &ClientSpec) -> Result<(), AdminError> {
        let Some(role) = self.actor.role() else {
            return Ok(());
        };
        for scope in &spec.scopes {
            if let Some(given) = AdminRole::of_scope(scope.as_str())
                && given != role
            {
                return Err(AdminError::Denied(format!(
                    "a {role} administrator cannot give a client the {} scope",
                    scope.as_str()
                )));
            }
        }
        Ok(())
    }

    /// Audits a change and tells running nodes to drop what they cached about the client.
    pub(super) async fn client_changed(
        &self,
        id: &ClientId,
        change: &str,
    ) -> Result<(), AdminError> {
        self.record(
            EventType::AdminClient,
            Some(id.as_str()),
            serde_json::json!({ "change": change }),
        )
        .await?;
        // Best effort: with the in-process store there is no other node to tell, and a node that
        // misses the notice reloads within `cache.clients_reload_ms`.
        if let Err(e) = self
            .ephemeral
            .publish(CLIENTS_CHANNEL, id.as_str().as_bytes())
            .await
        {
            tracing::warn!(error = %crate::telemetry::ErrorChain(&e), "client change not announced");
        }
        Ok(())
    }
}

/// The actor of a client's own token in `role`; `None` for a department's role without a
/// department (such a client would act for no department, yet register the platform's clients).
pub fn machine_actor(client: &Client, role: AdminRole) -> Option<Actor> {
    let department = client.settings().department.clone();
    if role == AdminRole::Department && department.is_none() {
        return None;
    }
    Some(Actor::Machine {
        client: client.id().clone(),
        role,
        department,
    })
}
