//! Organisations and the people who act for them, administered by the security administrator:
//! list, show with members, suspend (every member's tokens and sessions end), revoke one member's
//! role (docs/organisations.md; the same `roles::Withdrawal` the CLI and the enterprise page use).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{AdminError, Administration, Page, field};
use crate::domain::account::AccountId;
use crate::domain::admin::Action;
use crate::domain::audit::EventType;
use crate::domain::identifiers::CreditCode;
use crate::domain::organisation::{Membership, OrgId, Organisation, Role};
use crate::protocol::roles::Withdrawal;

/// An organisation; `members` only when one organisation is shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrgView {
    pub org_id: String,
    /// The unified social credit code (GB 32100).
    pub credit_code: String,
    pub name: String,
    /// From the code's registration authority and category (`enterprise`, `government`, ...).
    pub category: String,
    /// `active` or `suspended`.
    pub status: String,
    pub members: Vec<MemberView>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A person's role in an organisation (the account id; the person is looked up as an account).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MemberView {
    pub account_id: String,
    /// `legal_representative`, `administrator` or `agent`.
    pub role: String,
    /// The business an agent may do (`all`, or service items).
    pub scope: Vec<String>,
    pub expires_at: Option<i64>,
    pub granted_by: Option<String>,
    pub granted_at: i64,
}

impl OrgView {
    pub fn of(o: &Organisation, members: &[Membership]) -> Self {
        Self {
            org_id: o.id.as_str().to_owned(),
            credit_code: o.credit_code.as_str().to_owned(),
            name: o.name.clone(),
            category: o.category().as_str().to_owned(),
            status: o.status.as_str().to_owned(),
            members: members
                .iter()
                .map(|m| MemberView {
                    account_id: m.account_id.as_str().to_owned(),
                    role: m.role.as_str().to_owned(),
                    scope: m.scope.to_list(),
                    expires_at: m.expires_at,
                    granted_by: m.granted_by.as_ref().map(|g| g.as_str().to_owned()),
                    granted_at: m.granted_at,
                })
                .collect(),
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

/// A new organisation.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrg {
    /// The unified social credit code (GB 32100, checked).
    pub credit_code: String,
    /// The registered name.
    pub name: String,
}

/// A role to give a person in an organisation.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    /// The person's account id.
    pub account_id: String,
    /// `legal_representative`, `administrator` or `agent`.
    pub role: String,
    /// An agent's service items; absent or `["all"]`: all business.
    pub scope: Option<Vec<String>>,
    /// When the mandate ends (epoch seconds); an agent needs this or `expires_on`.
    pub expires_at: Option<i64>,
    /// The last day of the mandate, `YYYY-MM-DD` (it ends at the end of that day, China Standard
    /// Time); instead of `expires_at`.
    pub expires_on: Option<String>,
    /// The account that grants it (the legal representative for an administrator; the legal
    /// representative or an administrator for an agent); absent: registered by the administrator.
    pub granted_by: Option<String>,
}

/// What ending roles did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WithdrawnView {
    /// Refresh-token families revoked.
    pub refresh_families: u64,
    /// Sessions ended (with back-channel logout).
    pub sessions: usize,
}

impl Administration<'_> {
    fn withdrawal(&self) -> Withdrawal<'_> {
        Withdrawal {
            orgs: self.identities.orgs.as_ref(),
            refresh: self.refresh,
            sessions: self.sessions,
        }
    }

    /// An organisation by its credit code or id.
    async fn find_org(&self, key: &str) -> Result<Organisation, AdminError> {
        let orgs = self.identities.orgs.as_ref();
        let found = match CreditCode::parse(key) {
            Ok(code) => orgs.org_by_code(&code).await?,
            Err(_) => match OrgId::parse(key) {
                Ok(id) => orgs.org(&id).await?,
                Err(_) => None,
            },
        };
        found.ok_or_else(|| AdminError::NotFound(format!("organisation {key}")))
    }

    /// Organisations by id, after the cursor `after`.
    pub async fn list_orgs(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<OrgView>, AdminError> {
        self.allow(Action::OrgsRead, None).await?;
        let rows = self.identities.orgs.orgs(after, limit as i64 + 1).await?;
        let more = rows.len() > limit;
        let items: Vec<OrgView> = rows
            .iter()
            .take(limit)
            .map(|o| OrgView::of(o, &[]))
            .collect();
        let next = more
            .then(|| items.last().map(|o| o.org_id.clone()))
            .flatten();
        self.read(
            Action::OrgsRead,
            None,
            serde_json::json!({ "count": items.len() }),
        )
        .await?;
        Ok(Page { items, next })
    }

    /// One organisation (by credit code or id) with its members.
    pub async fn show_org(&self, key: &str) -> Result<OrgView, AdminError> {
        self.allow(Action::OrgsRead, Some(key)).await?;
        let org = self.find_org(key).await?;
        let members = self.identities.orgs.members(&org.id).await?;
        self.read(
            Action::OrgsRead,
            Some(org.id.as_str()),
            serde_json::json!({}),
        )
        .await?;
        Ok(OrgView::of(&org, &members))
    }

    /// Registers an organisation by its credit code (one per code).
    pub async fn create_org(&self, new: &NewOrg, now: i64) -> Result<OrgView, AdminError> {
        self.allow(Action::OrgsWrite, None).await?;
        let code = CreditCode::parse(new.credit_code.trim()).map_err(field("credit_code"))?;
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(AdminError::invalid("name", "1 to 200 printable characters"));
        }
        let id = OrgId::parse(&uuid::Uuid::new_v4().to_string()).map_err(field("org_id"))?;
        let org = self.identities.create_org(id, code, name, now).await?;
        self.record(
            EventType::AdminOrganisation,
            Some(org.id.as_str()),
            serde_json::json!({ "change": "create" }),
        )
        .await?;
        Ok(OrgView::of(&org, &[]))
    }

    /// Gives a person a role in an organisation (an agent's always expires).
    pub async fn add_member(
        &self,
        key: &str,
        new: &NewMember,
        now: i64,
    ) -> Result<OrgView, AdminError> {
        use crate::domain::organisation::Scope;
        self.allow(Action::OrgsWrite, Some(key)).await?;
        let org = self.find_org(key).await?;
        let account = AccountId::parse(&new.account_id).map_err(field("account_id"))?;
        if self.identities.account(&account).await?.is_none() {
            return Err(AdminError::NotFound(format!("account {account}")));
        }
        let granted_by = new
            .granted_by
            .as_deref()
            .map(AccountId::parse)
            .transpose()
            .map_err(field("granted_by"))?;
        let on = new
            .expires_on
            .as_deref()
            .map(str::trim)
            .filter(|on| !on.is_empty());
        let expires_at = match (new.expires_at, on) {
            (Some(_), Some(_)) => {
                return Err(AdminError::invalid(
                    "expires_on",
                    "give expires_at or expires_on, not both",
                ));
            }
            (at, None) => at,
            (None, Some(on)) => Some(
                crate::domain::date::Date::parse_iso(on)
                    .map_err(|e| AdminError::invalid("expires_on", e.0))?
                    .cst_midnight_epoch()
                    + 86_400,
            ),
        };
        let membership = Membership::grant(
            org.id.clone(),
            account,
            Role::parse(&new.role).map_err(field("role"))?,
            Scope::parse(new.scope.as_deref().unwrap_or_default()).map_err(field("scope"))?,
            expires_at,
            granted_by,
            now,
        )
        .map_err(field("mandate"))?;
        let granted = self.identities.grant(&org, membership, now).await?;
        self.record(
            EventType::AdminOrganisation,
            Some(org.id.as_str()),
            serde_json::json!({
                "change": format!("grant:{}:{}", granted.role.as_str(), granted.account_id),
            }),
        )
        .await?;
        let members = self.identities.orgs.members(&org.id).await?;
        Ok(OrgView::of(&org, &members))
    }

    /// Suspends an organisation: every role in it stops, the refresh tokens acting for it are
    /// revoked and its members' sessions end.
    pub async fn suspend_org(&self, key: &str, now: i64) -> Result<WithdrawnView, AdminError> {
        self.allow(Action::OrgsWrite, Some(key)).await?;
        let org = self.find_org(key).await?;
        let done = self.withdrawal().suspend(&org, now).await?;
        let view = WithdrawnView {
            refresh_families: done.families,
            sessions: done.sessions,
        };
        self.record(
            EventType::AdminOrganisation,
            Some(org.id.as_str()),
            serde_json::json!({ "change": "suspend", "withdrawn": view }),
        )
        .await?;
        Ok(view)
    }

    /// Revokes `account`'s `role` in an organisation.
    pub async fn revoke_member(
        &self,
        key: &str,
        account: &str,
        role: &str,
        now: i64,
    ) -> Result<WithdrawnView, AdminError> {
        self.allow(Action::OrgsWrite, Some(key)).await?;
        let role = Role::parse(role).map_err(field("role"))?;
        let account = AccountId::parse(account).map_err(field("account_id"))?;
        let org = self.find_org(key).await?;
        let Some(done) = self
            .withdrawal()
            .revoke_member(&org, &account, role, now)
            .await?
        else {
            return Err(AdminError::NotFound(format!(
                "a {} role of account {account} in {}",
                role.as_str(),
                org.credit_code
            )));
        };
        let view = WithdrawnView {
            refresh_families: done.families,
            sessions: done.sessions,
        };
        self.record(
            EventType::AdminOrganisation,
            Some(org.id.as_str()),
            serde_json::json!({
                "change": format!("revoke:{}:{account}", role.as_str()),
                "withdrawn": view,
            }),
        )
        .await?;
        Ok(view)
    }
}
