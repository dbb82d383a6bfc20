//! Administration (docs/administration.md): the operations that the CLI, the admin API and the
//! console all call, each checking the actor's role first (the separation of duties of
//! `domain::admin`) and auditing what it did with the actor, reads included.
//!
//! The actor is the operator at the server's shell (the CLI: break-glass, every action allowed,
//! audited as `admin`), a person holding an administrator role (audited with their account id), or a
//! client acting in the one administrator role its scope names (audited as `client:<id>`).
//! Split by concern: [`clients`], [`accounts`] (with roles), [`system`] (keys, audit log, settings).

pub mod accounts;
pub mod clients;
pub mod console;
pub mod orgs;
pub mod registration;
pub mod system;

use crate::crypto::client_secret::ClientSecretBox;
use crate::domain::account::AccountId;
use crate::domain::admin::{Action, AdminRole, Grant};
use crate::domain::audit::{AuditEvent, EventType};
use crate::domain::client::{Client, ClientError, ClientId};
use crate::domain::identifiers::{CreditCode, IdentifierError};
use crate::protocol::accounts::{AccountError, Identities};
use crate::protocol::audit::Audit;
use crate::protocol::keys::Keys;
use crate::protocol::session::Sessions;
use crate::store::{
    AdminStore, AuditStore, ClientStore, Ephemeral, FactorStore, RefreshStore, StoreError,
};

/// Who asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The operator at the server's shell (`yihao ...`): every action, audited as `admin`.
    Operator,
    /// A person holding an administrator role, signed in at level 3.
    Person(Grant),
    /// A client acting in the administrator role of its scope (automation); a department's client
    /// acts for the department that owns it.
    Machine {
        client: ClientId,
        role: AdminRole,
        department: Option<CreditCode>,
    },
}

impl Actor {
    /// The audit log's `actor`.
    pub fn audit_name(&self) -> String {
        match self {
            Self::Operator => "admin".to_owned(),
            Self::Person(grant) => grant.account().as_str().to_owned(),
            Self::Machine { client, .. } => format!("client:{client}"),
        }
    }

    /// The role acted in (`None`: the operator, who holds every power).
    pub fn role(&self) -> Option<AdminRole> {
        match self {
            Self::Operator => None,
            Self::Person(grant) => Some(grant.role()),
            Self::Machine { role, .. } => Some(*role),
        }
    }

    /// The department a department administrator acts for.
    pub fn department(&self) -> Option<&CreditCode> {
        match self {
            Self::Operator => None,
            Self::Person(grant) => grant.department(),
            Self::Machine { department, .. } => department.as_ref(),
        }
    }

    /// The person behind the actor, if it is one.
    pub fn account(&self) -> Option<&AccountId> {
        match self {
            Self::Person(grant) => Some(grant.account()),
            _ => None,
        }
    }

    /// `Denied` unless the actor's role may do `action`.
    pub fn require(&self, action: Action) -> Result<(), AdminError> {
        match self.role() {
            None => Ok(()),
            Some(role) if role.may(action) => Ok(()),
            Some(role) => Err(AdminError::Denied(format!(
                "a {role} administrator may not do {}",
                action.as_str()
            ))),
        }
    }

    /// Whether the actor may see and change `client`: a department administrator only its own
    /// department's clients.
    pub fn manages(&self, client: &Client) -> bool {
        match self.role() {
            Some(AdminRole::Department) => {
                self.department().is_some()
                    && client.settings().department.as_ref() == self.department()
            }
            _ => true,
        }
    }
}

/// Why an administrative operation did nothing.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The actor's role does not allow it (403 `access_denied`).
    #[error("{0}")]
    Denied(String),
    /// 404 `not_found`.
    #[error("{0} not found")]
    NotFound(String),
    /// Bad input: which field, and what is wrong with it (400 `invalid_request`).
    #[error("{field}: {problem}")]
    Invalid { field: String, problem: String },
    /// The change conflicts with what is stored (409 `conflict`).
    #[error("{0}")]
    Conflict(String),
    /// The password pool is saturated (503).
    #[error("the server is busy; try again")]
    Busy,
    /// A store or the audit log failed (500).
    #[error("{0}")]
    Server(
        String,
        #[source] Option<Box<dyn std::error::Error + Send + Sync>>,
    ),
}

impl AdminError {
    pub fn invalid(field: &str, problem: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.to_owned(),
            problem: problem.into(),
        }
    }

    fn server(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Server(e.to_string(), Some(Box::new(e)))
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => Self::Conflict(format!("{what} already exists")),
            StoreError::NotFound(what) => Self::NotFound(what),
            e => Self::server(e),
        }
    }
}

impl From<ClientError> for AdminError {
    fn from(e: ClientError) -> Self {
        Self::invalid(e.field, e.problem)
    }
}

impl From<AccountError> for AdminError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Invalid(e) => Self::invalid("account", e.0),
            AccountError::Policy(e) => Self::invalid("password", e.to_string()),
            AccountError::Taken(what) => Self::Conflict(format!("{what} is already registered")),
            AccountError::NotFound(what) => Self::NotFound(what),
            AccountError::Busy(_) => Self::Busy,
            AccountError::Store(e) => e.into(),
        }
    }
}

impl From<super::OAuthError> for AdminError {
    fn from(e: super::OAuthError) -> Self {
        Self::server(e)
    }
}

/// An identifier error as a field error.
fn field(name: &'static str) -> impl Fn(IdentifierError) -> AdminError {
    move |e| AdminError::invalid(name, e.0)
}

/// The ports administration works on, and who asks. Built per request by `app` (and once per
/// command by the CLI).
pub struct Administration<'a> {
    pub actor: &'a Actor,
    pub clients: &'a dyn ClientStore,
    /// Nodes are told when a client changed (`CLIENTS_CHANNEL`), and keys (`KEYS_CHANNEL`).
    pub ephemeral: &'a dyn Ephemeral,
    pub client_secrets: &'a ClientSecretBox,
    pub identities: &'a Identities,
    pub admins: &'a dyn AdminStore,
    pub factors: &'a dyn FactorStore,
    pub refresh: &'a dyn RefreshStore,
    pub sessions: Sessions<'a>,
    pub keys: &'a Keys,
    pub audit_log: &'a dyn AuditStore,
    pub audit: Audit<'a>,
    /// SMS codes, where the server offers them (not at the operator's shell, nor with
    /// `sms.adapter = "off"`).
    pub sms: Option<crate::protocol::sms_code::SmsCodes<'a>>,
}

impl Administration<'_> {
    /// Records what the actor did (`details` names the change or the read).
    async fn record(
        &self,
        event: EventType,
        target: Option<&str>,
        details: serde_json::Value,
    ) -> Result<(), AdminError> {
        let mut event = AuditEvent::success(event)
            .actor(self.actor.audit_name())
            .details(with_role(details, self.actor.role()));
        event.target = target.map(str::to_owned);
        self.audit.record(event).await?;
        Ok(())
    }

    /// A refusal, audited (a denied administrator action is a security event), then returned.
    async fn refuse(&self, action: Action, target: Option<&str>) -> AdminError {
        let error = match self.actor.require(action) {
            Err(e) => e,
            Ok(()) => AdminError::Denied(format!("not allowed: {}", action.as_str())),
        };
        let mut event = AuditEvent::failure(EventType::AdminRead, "denied")
            .actor(self.actor.audit_name())
            .details(with_role(
                serde_json::json!({ "action": action.as_str() }),
                self.actor.role(),
            ));
        event.target = target.map(str::to_owned);
        match self.audit.record(event).await {
            Ok(()) => error,
            Err(e) => e.into(),
        }
    }

    /// Checks the actor may do `action`; a refusal is audited.
    async fn allow(&self, action: Action, target: Option<&str>) -> Result<(), AdminError> {
        match self.actor.require(action) {
            Ok(()) => Ok(()),
            Err(_) => Err(self.refuse(action, target).await),
        }
    }

    /// Audits a read (every administrator read is recorded, the audit administrator's included).
    async fn read(
        &self,
        action: Action,
        target: Option<&str>,
        details: serde_json::Value,
    ) -> Result<(), AdminError> {
        let mut details = details;
        details["action"] = action.as_str().into();
        self.record(EventType::AdminRead, target, details).await
    }
}

fn with_role(mut details: serde_json::Value, role: Option<AdminRole>) -> serde_json::Value {
    if let (Some(role), serde_json::Value::Object(map)) = (role, &mut details) {
        map.insert("role".into(), role.as_str().into());
    }
    details
}

/// A page of a listing and the cursor of the next (cursor pagination: pass `next` as `after`).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// At most this many items a page (`limit` is clamped to it).
pub const MAX_PAGE: usize = 200;

/// `limit` within 1..=MAX_PAGE (default 50).
pub fn page_size(limit: Option<u32>) -> usize {
    limit.map_or(50, |l| (l as usize).clamp(1, MAX_PAGE))
}
