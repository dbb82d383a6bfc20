//! A lost second factor (docs/assurance.md, "A lost factor"): a person who has neither their
//! authenticator nor a recovery code proves who they are again with an SMS code to the phone on
//! file plus a fresh real-name check (their document number and name, which must be the account's,
//! checked against the population register now). Then every factor and recovery code of the
//! account is removed, audited, and the person enrols a new one. Neither step alone is enough: a
//! stolen phone does not know the name and number the register must confirm, and someone who knows
//! them does not hold the phone.

use serde_json::json;

use super::OAuthError;
use super::accounts::Identities;
use super::audit::{Audit, AuditEvent, EventType};
use super::outside::{OutsideError, PersonCheck, PersonRegister, SmsPurpose};
use super::session::{EndReason, Sessions};
use super::sms_code::{CodeRefused, Delivery, SendRefused, SmsCodes};
use crate::domain::account::{Account, AccountId, AccountStatus, PersonName};
use crate::domain::document::Document;
use crate::store::{FactorStore, RefreshStore};

/// Why the factors were not reset.
#[derive(Debug, thiserror::Error)]
pub enum LostRefused {
    #[error("the account has no mobile number on file")]
    NoPhone,
    #[error(transparent)]
    Send(SendRefused),
    #[error(transparent)]
    Code(CodeRefused),
    #[error("the name and number are not this account's, or the register does not confirm them")]
    NotConfirmed,
    #[error("the register cannot be reached now")]
    Unavailable(#[source] OutsideError),
    #[error(transparent)]
    Server(#[from] OAuthError),
}

/// The ports of a reset.
pub struct LostFactor<'a> {
    pub identities: &'a Identities,
    pub codes: SmsCodes<'a>,
    pub people: &'a dyn PersonRegister,
    pub factors: &'a dyn FactorStore,
    /// Every other session ends after a reset, and the refresh tokens are revoked.
    pub sessions: Sessions<'a>,
    pub refresh: &'a dyn RefreshStore,
    pub audit: Audit<'a>,
}

impl LostFactor<'_> {
    async fn account(&self, account_id: &str) -> Result<Account, LostRefused> {
        let id = AccountId::parse(account_id).map_err(OAuthError::server)?;
        self.identities
            .account(&id)
            .await
            .map_err(OAuthError::server)?
            .filter(|a| a.status == AccountStatus::Active)
            .ok_or(LostRefused::NotConfirmed)
    }

    /// Sends a code to the account's phone; its masked number.
    pub async fn send(
        &self,
        account_id: &str,
        text: &str,
        now: i64,
    ) -> Result<String, LostRefused> {
        let account = self.account(account_id).await?;
        let phone = account.phone.ok_or(LostRefused::NoPhone)?;
        let source = self.audit.context.source();
        self.codes
            .send(
                SmsPurpose::FactorReset,
                &phone,
                Delivery::Send,
                source.as_deref(),
                text,
                now,
            )
            .await
            .map_err(LostRefused::Send)?;
        Ok(phone.masked())
    }

    /// Checks the code, then the number and name against the account and the register; on
    /// success removes every factor and recovery code of the account, ends every session but
    /// `keep` (the one resetting) with back-channel logout, and revokes the refresh tokens: whoever
    /// held the lost factor holds nothing more. Each refusal is audited.
    pub async fn confirm(
        &self,
        account_id: &str,
        keep: &str,
        code: &str,
        number: &str,
        name: &str,
        now: i64,
    ) -> Result<(), LostRefused> {
        let account = self.account(account_id).await?;
        let phone = account.phone.clone().ok_or(LostRefused::NoPhone)?;
        if let Err(e) = self
            .codes
            .verify(SmsPurpose::FactorReset, &phone, code, now)
            .await
        {
            self.refused(account_id, e.reason()).await?;
            return Err(LostRefused::Code(e));
        }
        let typed = Document::national(number, now).ok();
        let document = account
            .documents
            .iter()
            .find(|d| typed.as_ref().is_some_and(|t| t.number() == d.number()));
        let name_ok = PersonName::parse(name).is_ok_and(|n| n == account.name);
        let Some(document) = document.filter(|_| name_ok) else {
            self.refused(account_id, "not_the_account").await?;
            return Err(LostRefused::NotConfirmed);
        };
        match self.people.check(document, &account.name).await {
            Ok(PersonCheck::Match { .. }) => {}
            Ok(_) => {
                self.refused(account_id, "register_refused").await?;
                return Err(LostRefused::NotConfirmed);
            }
            Err(e) => return Err(LostRefused::Unavailable(e)),
        }
        let factors = self
            .factors
            .factors_of(account_id)
            .await
            .map_err(OAuthError::server)?;
        self.audit
            .record(
                AuditEvent::success(EventType::FactorRemoved)
                    .actor(account_id)
                    .details(json!({
                        "reason": "lost_factor",
                        "proof": ["sms", "register_check"],
                        "factors": factors.iter().map(|f| &f.id).collect::<Vec<_>>(),
                    })),
            )
            .await?;
        for f in &factors {
            self.factors
                .remove_factor(account_id, &f.id)
                .await
                .map_err(OAuthError::server)?;
        }
        self.factors
            .replace_recovery_codes(account_id, &[], now)
            .await
            .map_err(OAuthError::server)?;
        let others = self
            .sessions
            .rows
            .sessions_of(account_id, false)
            .await
            .map_err(OAuthError::server)?;
        for row in others.iter().filter(|r| r.sid != keep) {
            self.sessions
                .end(&row.sid, EndReason::FactorsReset, now)
                .await
                .map_err(OAuthError::server)?;
        }
        self.refresh
            .revoke_account_refresh(account_id, now)
            .await
            .map_err(OAuthError::server)?;
        Ok(())
    }

    async fn refused(&self, account_id: &str, reason: &str) -> Result<(), OAuthError> {
        self.audit
            .record(
                AuditEvent::failure(EventType::FactorRemoved, reason)
                    .actor(account_id)
                    .details(json!({ "reason": "lost_factor" })),
            )
            .await
    }
}
