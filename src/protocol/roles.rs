//! Roles held for organisations, after they were granted (docs/organisations.md). A token that
//! carries an `org` claim claims a role; the role can end (revoked, or the organisation suspended)
//! while tokens still carry it. So every place that re-issues or vouches for such a token re-checks
//! the role ([`RoleCheck`]: refresh, userinfo, introspection), and ending a role, or suspending an
//! organisation, revokes the refresh families that carry it and ends the person's sessions, with
//! back-channel logout to the services that received tokens in them ([`Withdrawal`]).

use serde_json::Value;

use super::session::{CodeGrant, EndReason, Sessions};
use crate::domain::account::AccountId;
use crate::domain::identifiers::CreditCode;
use crate::domain::organisation::{OrgStatus, Organisation, Role};
use crate::store::{OrgStore, RefreshStore, StoreError};

/// The organisation and role an `org` claim names.
fn claimed(org: &Value) -> Option<(CreditCode, &str)> {
    let code = CreditCode::parse(org["credit_code"].as_str()?).ok()?;
    Some((code, org["role"].as_str()?))
}

/// Whether roles claimed in tokens are still held.
pub struct RoleCheck<'a> {
    pub orgs: &'a dyn OrgStore,
}

impl RoleCheck<'_> {
    /// True when `account_id` still holds, at `now`, the role the `org` claim names, in an active
    /// organisation. A claim that does not parse is not held.
    pub async fn holds(&self, account_id: &str, org: &Value, now: i64) -> Result<bool, StoreError> {
        let (Some((code, role)), Ok(account)) = (claimed(org), AccountId::parse(account_id)) else {
            return Ok(false);
        };
        let Some(organisation) = self.orgs.org_by_code(&code).await? else {
            return Ok(false);
        };
        if organisation.status != OrgStatus::Active {
            return Ok(false);
        }
        Ok(self
            .orgs
            .memberships_of(&account)
            .await?
            .iter()
            .any(|m| m.org_id == organisation.id && m.role.as_str() == role && m.is_active(now)))
    }
}

/// What ending a role touches.
pub struct Withdrawal<'a> {
    pub orgs: &'a dyn OrgStore,
    pub refresh: &'a dyn RefreshStore,
    pub sessions: Sessions<'a>,
}

/// What a withdrawal did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Withdrawn {
    /// Refresh-token families revoked.
    pub families: u64,
    /// Sessions ended.
    pub sessions: usize,
}

impl Withdrawal<'_> {
    /// Revokes `account`'s `role` in `org`; `None` when the account did not hold it.
    pub async fn revoke_member(
        &self,
        org: &Organisation,
        account: &AccountId,
        role: Role,
        now: i64,
    ) -> Result<Option<Withdrawn>, StoreError> {
        if !self.orgs.revoke(&org.id, account, role).await? {
            return Ok(None);
        }
        self.withdraw(org, account, Some(role), now).await.map(Some)
    }

    /// Suspends `org`: no member acts for it any more, in new tokens or old ones.
    pub async fn suspend(&self, org: &Organisation, now: i64) -> Result<Withdrawn, StoreError> {
        let mut suspended = org.clone();
        suspended.status = OrgStatus::Suspended;
        suspended.updated_at = now;
        self.orgs.update_org(&suspended).await?;
        let mut total = Withdrawn::default();
        let mut done: Vec<AccountId> = Vec::new();
        for m in self.orgs.members(&org.id).await? {
            if done.contains(&m.account_id) {
                continue;
            }
            let w = self.withdraw(org, &m.account_id, None, now).await?;
            total.families += w.families;
            total.sessions += w.sessions;
            done.push(m.account_id);
        }
        Ok(total)
    }

    /// Revokes the account's refresh families whose grant acts for `org` (in `role`, or in any role),
    /// and ends the account's open sessions: a session does not record whom the person acted for
    /// in it, so every one ends, and the services that received tokens in them are told.
    async fn withdraw(
        &self,
        org: &Organisation,
        account: &AccountId,
        role: Option<Role>,
        now: i64,
    ) -> Result<Withdrawn, StoreError> {
        let mut families: Vec<String> = Vec::new();
        for r in self.refresh.live_refresh_of(account.as_str(), now).await? {
            let Ok(grant) = serde_json::from_str::<CodeGrant>(&r.grant_json) else {
                continue;
            };
            let acts_for_org = grant
                .org
                .as_ref()
                .and_then(claimed)
                .is_some_and(|(code, r)| {
                    code == org.credit_code && role.is_none_or(|role| role.as_str() == r)
                });
            if acts_for_org && !families.contains(&r.family_id) {
                families.push(r.family_id);
            }
        }
        let mut revoked = 0;
        for family in &families {
            revoked += u64::from(self.refresh.revoke_family(family, now).await? > 0);
        }
        let sessions = self
            .sessions
            .end_all(account.as_str(), EndReason::RoleEnded, now)
            .await?;
        Ok(Withdrawn {
            families: revoked,
            sessions,
        })
    }
}
