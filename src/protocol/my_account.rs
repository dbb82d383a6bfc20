//! The personal page's operations (docs/privacy.md, "What a person sees"): what yihao holds about the
//! signed-in person and what it did with it, and the changes they may make themselves.
//!
//! - the profile, masked, with the level and how it was reached;
//! - sessions (channel, service, address, time), ending one or all;
//! - authorised services, and withdrawing consent: the consent is deleted, the service's refresh
//!   tokens for the person revoked, and each open session that signed in there sends that service a
//!   back-channel logout;
//! - the sign-in history and the disclosure ledger, both read from the audit log (records whose
//!   actor or target is the person), never from a second copy that could disagree with it;
//! - the organisations they act for;
//! - a password change (current password, policy, history), which ends every other session;
//! - closing the account ([`MyAccount::close`]): no sign-in from then on; [`erase_closed`], run by
//!   the session sweeper, erases the personal data after `registration.closed_erase_after_days`.
//!
//! Every change is audited with the person as actor.

use serde::Serialize;
use serde_json::json;

use super::OAuthError;
use super::accounts::{AccountError, Identities};
use super::audit::{Audit, AuditEvent, EventType};
use super::backchannel;
use super::session::{EndReason, Sessions};
use crate::domain::account::{Account, AccountId};
use crate::domain::audit::AuditRecord;
use crate::domain::client::ClientId;
use crate::domain::organisation::{Membership, Organisation};
use crate::domain::password::{Password, PolicyError};
use crate::store::{
    AuditStore, ClientLookup, ConsentStore, OrgStore, RefreshStore, SessionRecord, StoreError,
};
/// The personal page's own first-party client (registered by `app::ensure_account_client`).
pub const ACCOUNT_CLIENT: &str = "yihao-account";

/// A service the person authorised.
#[derive(Debug, Clone, Serialize)]

pub struct Service {
    pub client_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub granted_at: i64,
}

/// One release of personal data to a service, as the audit log recorded it.
#[derive(Debug, Clone, Serialize)]
pub struct Release {
    pub seq: i64,
    /// Epoch milliseconds.
    pub at_ms: i64,
    pub client_id: String,
    pub client_name: String,
    /// The claims released (`name`, `phone_number`, `idcard`...).
    pub claims: Vec<String>,
    /// `id_token` or `userinfo`.
    pub via: String,
    /// The scopes consented to that service when the ledger is read (empty: withdrawn or first
    /// party).
    pub consent: Vec<String>,
}

/// One line of the sign-in history.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub at_ms: i64,
    pub event: String,
    pub success: bool,
    pub reason: Option<String>,
    pub client_id: Option<String>,
    pub channel: Option<String>,
    pub ip: Option<String>,
    pub acr: Option<String>,
}

/// The events a person's history shows.
const HISTORY: [&str; 10] = [
    "login_success",
    "login_failure",
    "lockout",
    "account_unlock",
    "password_reset",
    "password_change",
    "session_end",
    "registration",
    "consent_withdrawn",
    "phone_change",
];

/// Why a password change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChangeRefused {
    #[error("the current password is wrong")]
    WrongPassword,
    #[error("too many tries; retry after {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error(transparent)]
    Policy(PolicyError),
    #[error(transparent)]
    Account(AccountError),
}

/// The personal page's ports.
pub struct MyAccount<'a> {
    pub identities: &'a Identities,
    pub sessions: Sessions<'a>,
    pub consents: &'a dyn ConsentStore,
    pub clients: &'a dyn ClientLookup,
    pub refresh: &'a dyn RefreshStore,
    pub log: &'a dyn AuditStore,
    pub orgs: &'a dyn OrgStore,
    pub audit: Audit<'a>,
    pub ephemeral: &'a dyn crate::store::Ephemeral,
    /// Tries at the current password per account (a stolen session must not become a password
    /// oracle).
    pub password_tries: super::limits::Rule,
}

impl MyAccount<'_> {
    pub async fn account(&self, id: &AccountId) -> Result<Option<Account>, OAuthError> {
        self.identities
            .account(id)
            .await
            .map_err(OAuthError::server)
    }

    /// Open sessions, newest first.
    pub async fn sessions(&self, id: &AccountId) -> Result<Vec<SessionRecord>, StoreError> {
        self.sessions.rows.sessions_of(id.as_str(), false).await
    }

    async fn client_name(&self, client_id: &str) -> String {
        match ClientId::parse(client_id) {
            Ok(cid) => match self.clients.client(&cid).await {
                Ok(Some(c)) => c.name().to_owned(),
                _ => client_id.to_owned(),
            },
            Err(_) => client_id.to_owned(),
        }
    }

    /// The services the person gave consent to.
    pub async fn services(&self, id: &AccountId) -> Result<Vec<Service>, StoreError> {
        let mut out = Vec::new();
        for c in self.consents.consents_of(id.as_str()).await? {
            out.push(Service {
                name: self.client_name(&c.client_id).await,
                client_id: c.client_id,
                scopes: c.scopes,
                granted_at: c.granted_at,
            });
        }
        Ok(out)
    }

    /// The organisations the person acts for now, with the role and the mandate's expiry.
    pub async fn organisations(
        &self,
        id: &AccountId,
        now: i64,
    ) -> Result<Vec<(Organisation, Membership)>, StoreError> {
        let mut out = Vec::new();
        for m in self.orgs.memberships_of(id).await? {
            if !m.is_active(now) {
                continue;
            }
            if let Some(org) = self.orgs.org(&m.org_id).await? {
                out.push((org, m));
            }
        }
        Ok(out)
    }

    /// The audit records about the person, newest first (at most `limit`, scanning at most
    /// `10 x limit` records about them).
    async fn records(&self, id: &AccountId, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        let subject = format!("a:{id}");
        let page = i64::try_from(limit.saturating_mul(10)).unwrap_or(i64::MAX);
        self.log
            .audit_about(id.as_str(), &subject, i64::MAX, page)
            .await
    }

    /// The disclosure ledger: which service received which data, when, under which consent.
    pub async fn ledger(&self, id: &AccountId, limit: usize) -> Result<Vec<Release>, StoreError> {
        let consents = self.consents.consents_of(id.as_str()).await?;
        let mut out = Vec::new();
        for r in self.records(id, limit).await? {
            // A release about someone else (an administrator's reveal, where this person is the
            // actor) is theirs, not this person's.
            let about_someone_else = r.target.as_deref().is_some_and(|t| t != id.as_str());
            if r.event != "attribute_release" || about_someone_else || out.len() >= limit {
                continue;
            }
            let details: serde_json::Value = r
                .details
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok())
                .unwrap_or_default();
            let claims = details["claims"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let client_id = r.client_id.clone().unwrap_or_default();
            let consent = consents
                .iter()
                .find(|c| c.client_id == client_id)
                .map(|c| c.scopes.clone())
                .unwrap_or_default();
            out.push(Release {
                seq: r.seq,
                at_ms: r.at_ms,
                client_name: self.client_name(&client_id).await,
                client_id,
                claims,
                via: details["via"].as_str().unwrap_or("").to_owned(),
                consent,
            });
        }
        Ok(out)
    }

    /// The sign-in history: logins, failures, lockouts, unlocks, password and phone changes,
    /// session ends, withdrawals.
    pub async fn history(&self, id: &AccountId, limit: usize) -> Result<Vec<Event>, StoreError> {
        Ok(self
            .records(id, limit)
            .await?
            .into_iter()
            .filter(|r| HISTORY.contains(&r.event.as_str()))
            .take(limit)
            .map(|r| Event {
                at_ms: r.at_ms,
                success: r.result == "success",
                event: r.event,
                reason: r.reason,
                client_id: r.client_id,
                channel: r.channel,
                ip: r.ip,
                acr: r.acr,
            })
            .collect())
    }

    /// Ends one of the person's own sessions; `false` when it is not theirs or already ended.
    pub async fn end_session(
        &self,
        id: &AccountId,
        sid: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        match self.sessions.rows.session(sid).await? {
            Some(row) if row.account_id == id.as_str() && row.ended_at.is_none() => {
                self.sessions.end(sid, EndReason::Logout, now).await
            }
            _ => Ok(false),
        }
    }

    /// Ends every session of the person but `keep` (the one showing the page, unless it should end
    /// too); how many ended.
    pub async fn end_other_sessions(
        &self,
        id: &AccountId,
        keep: Option<&str>,
        now: i64,
    ) -> Result<usize, StoreError> {
        let mut ended = 0;
        for row in self.sessions(id).await? {
            if Some(row.sid.as_str()) != keep
                && self.sessions.end(&row.sid, EndReason::Logout, now).await?
            {
                ended += 1;
            }
        }
        Ok(ended)
    }

    /// Withdraws consent from a service: the consent goes, the service's refresh tokens for the
    /// person are revoked, and every open session that signed in there sends it a back-channel
    /// logout. `None` when there was no such consent.
    pub async fn withdraw(
        &self,
        id: &AccountId,
        client_id: &str,
        now: i64,
    ) -> Result<Option<(u64, usize)>, OAuthError> {
        if !self
            .consents
            .delete_consent(id.as_str(), client_id)
            .await
            .map_err(OAuthError::server)?
        {
            return Ok(None);
        }
        let revoked = self
            .refresh
            .revoke_client_refresh(id.as_str(), client_id, now)
            .await
            .map_err(OAuthError::server)?;
        let mut logouts = 0;
        let only = [client_id.to_owned()];
        for row in self.sessions(id).await.map_err(OAuthError::server)? {
            if row.clients.iter().any(|c| c == client_id) {
                logouts += backchannel::enqueue(
                    self.sessions.clients,
                    self.sessions.outbox,
                    self.sessions.subjects,
                    &row.sid,
                    id.as_str(),
                    &only,
                    now,
                )
                .await
                .map_err(OAuthError::server)?;
                // A CAS service learns it the CAS way (CAS 3.0 §2.3.3).
                let forgotten = self
                    .sessions
                    .outbox
                    .enqueue_cas_logouts(&row.sid, Some(client_id), now)
                    .await
                    .map_err(OAuthError::server)?;
                logouts += forgotten.len();
                for key in forgotten {
                    self.sessions
                        .ephemeral
                        .delete(&key)
                        .await
                        .map_err(OAuthError::server)?;
                }
            }
        }
        self.audit
            .record(
                AuditEvent::success(EventType::ConsentWithdrawn)
                    .actor(id.as_str())
                    .target(id.as_str())
                    .client(client_id)
                    .details(json!({ "refresh_revoked": revoked, "logouts": logouts })),
            )
            .await?;
        Ok(Some((revoked, logouts)))
    }

    /// The current password, asked before a change: at most `password_tries` per window (a stolen
    /// session must not become a password oracle); a wrong one is audited as a failed `event`.
    pub async fn confirm_password(
        &self,
        id: &AccountId,
        current: &Password,
        event: EventType,
        now: i64,
    ) -> Result<(), ChangeRefused> {
        let store = |e: StoreError| ChangeRefused::Account(AccountError::Store(e));
        if let super::limits::Verdict::Limited(l) =
            super::limits::hit(self.ephemeral, self.password_tries, id.as_str(), now)
                .await
                .map_err(store)?
        {
            return Err(ChangeRefused::RateLimited {
                retry_after: l.retry_after,
            });
        }
        if self
            .identities
            .check_password(id, current)
            .await
            .map_err(ChangeRefused::Account)?
        {
            return Ok(());
        }
        let failure = AuditEvent::failure(event, "wrong_password")
            .actor(id.as_str())
            .target(id.as_str());
        self.audit
            .record(failure)
            .await
            .map_err(|e| store(StoreError::failed(e.to_string())))?;
        Err(ChangeRefused::WrongPassword)
    }

    /// Closes the account at its owner's request (PIPL art. 47), confirmed by the current password:
    /// it signs in nowhere from now on (every session ends with back-channel logout, every refresh
    /// token is revoked, every consent is withdrawn); its personal data is erased later by
    /// [`erase_closed`].
    pub async fn close(
        &self,
        id: &AccountId,
        current: &Password,
        now: i64,
    ) -> Result<(), ChangeRefused> {
        let store = |e: StoreError| ChangeRefused::Account(AccountError::Store(e));
        self.confirm_password(id, current, EventType::AccountClosed, now)
            .await?;
        self.identities
            .set_status(id, crate::domain::account::AccountStatus::Closed, now)
            .await
            .map_err(ChangeRefused::Account)?;
        let (ended, revoked) = self
            .sessions
            .sign_out_everywhere(self.refresh, id.as_str(), EndReason::AccountClosed, now)
            .await
            .map_err(store)?;
        let mut withdrawn = 0;
        for c in self
            .consents
            .consents_of(id.as_str())
            .await
            .map_err(store)?
        {
            withdrawn += usize::from(
                self.consents
                    .delete_consent(id.as_str(), &c.client_id)
                    .await
                    .map_err(store)?,
            );
        }
        let event = AuditEvent::success(EventType::AccountClosed)
            .actor(id.as_str())
            .target(id.as_str())
            .details(json!({
                "sessions_ended": ended,
                "refresh_revoked": revoked,
                "consents_withdrawn": withdrawn,
            }));
        self.audit.record(event).await.map_err(|e| {
            ChangeRefused::Account(AccountError::Store(StoreError::failed(e.to_string())))
        })?;
        Ok(())
    }

    /// Changes the password: the current one, then the policy and the history; every other session
    /// ends and every refresh token is revoked.
    pub async fn change_password(
        &self,
        id: &AccountId,
        current: &Password,
        new: &Password,
        keep: &str,
        now: i64,
    ) -> Result<(), ChangeRefused> {
        self.confirm_password(id, current, EventType::PasswordChange, now)
            .await?;
        let store = |e: StoreError| ChangeRefused::Account(AccountError::Store(e));
        match self.identities.set_password(id, new, now).await {
            Ok(()) => {}
            Err(AccountError::Policy(e)) => return Err(ChangeRefused::Policy(e)),
            Err(e) => return Err(ChangeRefused::Account(e)),
        }
        let ended = self
            .end_other_sessions(id, Some(keep), now)
            .await
            .map_err(store)?;
        let revoked = self
            .refresh
            .revoke_account_refresh(id.as_str(), now)
            .await
            .map_err(store)?;
        let event = AuditEvent::success(EventType::PasswordChange)
            .actor(id.as_str())
            .target(id.as_str())
            .details(json!({ "sessions_ended": ended, "refresh_revoked": revoked }));
        self.audit.record(event).await.map_err(|e| {
            ChangeRefused::Account(AccountError::Store(StoreError::failed(e.to_string())))
        })?;
        Ok(())
    }
}

/// Erases the accounts closed before `before` (at most 100 a call): each erasure is audited with
/// the account id only, then the account and everything that hangs from it is deleted. An account
/// whose erasure cannot be audited is kept for the next pass. How many were erased.
pub async fn erase_closed(
    accounts: &dyn crate::store::AccountStore,
    audit: &Audit<'_>,
    before: i64,
) -> Result<usize, StoreError> {
    let mut erased = 0;
    for id in accounts.closed_before(before, 100).await? {
        let event = AuditEvent::success(EventType::AccountErased)
            .actor("system")
            .target(id.as_str());
        if audit.record(event).await.is_err() {
            continue;
        }
        if accounts.delete_account(&id).await? {
            erased += 1;
        }
    }
    Ok(erased)
}
