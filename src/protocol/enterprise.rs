//! The enterprise page's operations (docs/organisations.md). A person registers an enterprise by its
//! credit code: the market-regulation register must confirm the name and that this person is its
//! legal representative; the organisation and their legal-representative role are then created in
//! one transaction. From the page the legal representative appoints administrators, and the legal
//! representative and administrators grant agents mandates (service items, expiry) and revoke roles;
//! a revocation takes effect at once (`roles::Withdrawal`: refresh families acting for the
//! enterprise revoked, the person's sessions ended with back-channel logout). Every change is audited
//! with the person as actor and the organisation as target, which is the enterprise's own history.

use serde_json::json;

use super::OAuthError;
use super::accounts::{AccountError, Identities};
use super::audit::{Audit, AuditEvent, EventType};
use super::limits::{self, Rule, Verdict};
use super::outside::{EnterpriseCheck, EnterpriseRegister, OutsideError, Representative};
use super::roles::Withdrawal;
use crate::domain::account::{Account, AccountId, AccountStatus, PersonName};
use crate::domain::audit::AuditRecord;
use crate::domain::document::Document;
use crate::domain::identifiers::{CreditCode, IdentifierError};
use crate::domain::organisation::{Membership, OrgId, OrgStatus, Organisation, Role, Scope};
use crate::store::{AuditStore, Ephemeral, OrgStore, StoreError};

/// Why an enterprise step was refused; each has its own message.
#[derive(Debug, thiserror::Error)]
pub enum OrgRefused {
    #[error("the credit code is not valid: {0}")]
    BadCode(IdentifierError),
    #[error("{0}")]
    Invalid(IdentifierError),
    #[error("this enterprise is already registered")]
    AlreadyRegistered,
    #[error("the register holds this credit code under another name")]
    NameMismatch,
    #[error("the register names another legal representative")]
    NotRepresentative,
    #[error("the register does not know this credit code")]
    NotFound,
    #[error(transparent)]
    RegisterUnavailable(OutsideError),
    #[error("only its legal representative (or, for agents, an administrator) may do this")]
    NotAllowed,
    #[error("no account matches this ID number and name")]
    NoSuchPerson,
    #[error("too many attempts; retry after {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error(transparent)]
    Server(#[from] OAuthError),
}

impl From<StoreError> for OrgRefused {
    fn from(e: StoreError) -> Self {
        Self::Server(OAuthError::server(e))
    }
}

impl From<AccountError> for OrgRefused {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Invalid(e) => Self::Invalid(e),
            AccountError::Taken(_) => Self::AlreadyRegistered,
            e => Self::Server(OAuthError::server(e)),
        }
    }
}

/// An organisation as one of its members sees it.
pub struct OrgView {
    pub org: Organisation,
    /// The roles the viewer holds now.
    pub mine: Vec<Role>,
    /// Every member and their name (masked); only for the legal representative and administrators.
    pub members: Vec<(Membership, String)>,
    /// The enterprise's history (registrations, grants, revocations), newest first.
    pub history: Vec<AuditRecord>,
}

impl OrgView {
    pub fn manages(&self) -> bool {
        self.mine
            .iter()
            .any(|r| matches!(r, Role::LegalRepresentative | Role::Administrator))
    }
    pub fn is_representative(&self) -> bool {
        self.mine.contains(&Role::LegalRepresentative)
    }
}

/// A person to appoint, as the form names them: an ID number (or another national number) and the
/// name, which must both match their account.
pub struct Appointee<'a> {
    pub number: &'a str,
    pub name: &'a str,
}

/// The enterprise page's ports.
pub struct Enterprises<'a> {
    pub identities: &'a Identities,
    pub register: &'a dyn EnterpriseRegister,
    pub orgs: &'a dyn OrgStore,
    pub withdrawal: Withdrawal<'a>,
    pub log: &'a dyn AuditStore,
    pub ephemeral: &'a dyn Ephemeral,
    pub audit: Audit<'a>,
    pub limit: Rule,
}

impl Enterprises<'_> {
    async fn within_limit(&self, account: &AccountId, now: i64) -> Result<(), OrgRefused> {
        if let Verdict::Limited(l) =
            limits::hit(self.ephemeral, self.limit, account.as_str(), now).await?
        {
            return Err(OrgRefused::RateLimited {
                retry_after: l.retry_after,
            });
        }
        Ok(())
    }

    /// Registers the enterprise `code` named `name`, with `person` as its legal representative, once
    /// the market-regulation register confirms both.
    pub async fn register(
        &self,
        person: &Account,
        code: &str,
        name: &str,
        now: i64,
    ) -> Result<Organisation, OrgRefused> {
        self.within_limit(&person.id, now).await?;
        let code = CreditCode::parse(code).map_err(OrgRefused::BadCode)?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(OrgRefused::Invalid(IdentifierError(
                "an enterprise name has 1 to 200 characters".into(),
            )));
        }
        if self.orgs.org_by_code(&code).await?.is_some() {
            self.audit_refusal(&person.id, "already_registered").await?;
            return Err(OrgRefused::AlreadyRegistered);
        }
        let document = person
            .documents
            .first()
            .ok_or(OrgRefused::NotRepresentative)?;
        let answer = self
            .register
            .check(
                &code,
                name,
                &Representative {
                    document,
                    name: &person.name,
                },
            )
            .await;
        let reference = match answer {
            Ok(EnterpriseCheck::Match { reference }) => reference,
            Ok(refused) => {
                let (reason, error) = match refused {
                    EnterpriseCheck::NameMismatch => ("name_mismatch", OrgRefused::NameMismatch),
                    EnterpriseCheck::NotRepresentative => {
                        ("not_representative", OrgRefused::NotRepresentative)
                    }
                    _ => ("not_found", OrgRefused::NotFound),
                };
                self.audit_refusal(&person.id, reason).await?;
                return Err(error);
            }
            Err(e) => {
                self.audit_refusal(&person.id, "register_unavailable")
                    .await?;
                return Err(OrgRefused::RegisterUnavailable(e));
            }
        };
        let id = OrgId::parse(&uuid::Uuid::new_v4().to_string()).map_err(OrgRefused::Invalid)?;
        let org = Organisation::new(id, code, name, now).map_err(OrgRefused::Invalid)?;
        let first = Membership::grant(
            org.id.clone(),
            person.id.clone(),
            Role::LegalRepresentative,
            Scope::All,
            None,
            None,
            now,
        )
        .map_err(OrgRefused::Invalid)?;
        match self.orgs.create_org_with(&org, &first).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(OrgRefused::AlreadyRegistered),
            Err(e) => return Err(e.into()),
        }
        self.audit
            .record(
                AuditEvent::success(EventType::OrgRegistered)
                    .actor(person.id.as_str())
                    .target(org.id.as_str())
                    .details(json!({
                        "credit_code": org.credit_code.as_str(),
                        "role": "legal_representative",
                        "register": reference.chars().take(120).collect::<String>(),
                    })),
            )
            .await?;
        Ok(org)
    }

    async fn audit_refusal(&self, actor: &AccountId, reason: &str) -> Result<(), OrgRefused> {
        self.audit
            .record(AuditEvent::failure(EventType::OrgRegistered, reason).actor(actor.as_str()))
            .await?;
        Ok(())
    }

    /// The enterprise `code` as `viewer` sees it; `NotAllowed` unless they hold a role in it now.
    pub async fn view(
        &self,
        viewer: &AccountId,
        code: &str,
        now: i64,
    ) -> Result<OrgView, OrgRefused> {
        let code = CreditCode::parse(code).map_err(OrgRefused::BadCode)?;
        let org = self
            .orgs
            .org_by_code(&code)
            .await?
            .ok_or(OrgRefused::NotAllowed)?;
        let members = self.orgs.members(&org.id).await?;
        let mine: Vec<Role> = members
            .iter()
            .filter(|m| &m.account_id == viewer && m.is_active(now))
            .map(|m| m.role)
            .collect();
        if mine.is_empty() {
            return Err(OrgRefused::NotAllowed);
        }
        let mut view = OrgView {
            org,
            mine,
            members: Vec::new(),
            history: Vec::new(),
        };
        if view.manages() {
            for m in members {
                let name = match self.identities.account(&m.account_id).await? {
                    Some(a) => a.name.masked(),
                    None => String::new(),
                };
                view.members.push((m, name));
            }
            let id = view.org.id.as_str().to_owned();
            view.history = self
                .log
                .audit_about(&id, &id, i64::MAX, 200)
                .await?
                .into_iter()
                .filter(|r| r.target.as_deref() == Some(id.as_str()))
                .collect();
        }
        Ok(view)
    }

    /// The account an appointee names, when the number and the name both match it.
    async fn appointee(&self, who: &Appointee<'_>, now: i64) -> Result<Account, OrgRefused> {
        let document = Document::national(who.number, now).map_err(OrgRefused::Invalid)?;
        let name = PersonName::parse(who.name).map_err(OrgRefused::Invalid)?;
        match self.identities.find_by_document(&document).await? {
            Some(a) if a.name == name && a.status == AccountStatus::Active => Ok(a),
            _ => Err(OrgRefused::NoSuchPerson),
        }
    }

    /// Grants `role` in `code` to the person `who`: an administrator (by the legal representative),
    /// or an agent for `scope` until `expires_at` (by the legal representative or an administrator).
    #[allow(clippy::too_many_arguments)]
    pub async fn appoint(
        &self,
        actor: &AccountId,
        code: &str,
        who: &Appointee<'_>,
        role: Role,
        scope: Scope,
        expires_at: Option<i64>,
        now: i64,
    ) -> Result<Membership, OrgRefused> {
        self.within_limit(actor, now).await?;
        let view = self.view(actor, code, now).await?;
        let allowed = match role {
            Role::Administrator => view.is_representative(),
            Role::Agent => view.manages(),
            Role::LegalRepresentative => false,
        };
        if !allowed || view.org.status != OrgStatus::Active {
            return Err(OrgRefused::NotAllowed);
        }
        let person = self.appointee(who, now).await?;
        let m = Membership::grant(
            view.org.id.clone(),
            person.id.clone(),
            role,
            scope,
            expires_at,
            Some(actor.clone()),
            now,
        )
        .map_err(OrgRefused::Invalid)?;
        let m = self.identities.grant(&view.org, m, now).await?;
        self.audit
            .record(
                AuditEvent::success(EventType::RoleGranted)
                    .actor(actor.as_str())
                    .target(view.org.id.as_str())
                    .details(json!({
                        "member": person.id.as_str(),
                        "role": role.as_str(),
                        "scope": m.scope.to_list(),
                        "expires_at": m.expires_at,
                    })),
            )
            .await?;
        Ok(m)
    }

    /// Revokes `member`'s `role` in `code`, effective at once. The legal representative revokes any
    /// administrator or agent; an administrator revokes agents; nobody revokes the legal
    /// representative here (a change of legal representative goes through the register).
    pub async fn revoke(
        &self,
        actor: &AccountId,
        code: &str,
        member: &AccountId,
        role: Role,
        now: i64,
    ) -> Result<bool, OrgRefused> {
        let view = self.view(actor, code, now).await?;
        let allowed = match role {
            Role::Administrator => view.is_representative(),
            Role::Agent => view.manages(),
            Role::LegalRepresentative => false,
        };
        if !allowed {
            return Err(OrgRefused::NotAllowed);
        }
        let Some(done) = self
            .withdrawal
            .revoke_member(&view.org, member, role, now)
            .await?
        else {
            return Ok(false);
        };
        self.audit
            .record(
                AuditEvent::success(EventType::RoleRevoked)
                    .actor(actor.as_str())
                    .target(view.org.id.as_str())
                    .details(json!({
                        "member": member.as_str(),
                        "role": role.as_str(),
                        "refresh_families_revoked": done.families,
                        "sessions_ended": done.sessions,
                    })),
            )
            .await?;
        Ok(true)
    }
}

/// A mandate's service items as typed: `all`, or items separated by commas or spaces.
pub fn parse_scope(raw: &str) -> Result<Scope, IdentifierError> {
    let items: Vec<String> = raw
        .split([',', '，', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    Scope::parse(&items)
}
