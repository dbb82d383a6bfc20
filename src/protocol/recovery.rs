//! Password recovery (docs/security.md): the ID number (or another document) and the name, then a
//! code sent to the phone on file, then a new password under the policy and the history rule. It
//! ends every session of the account (each service gets a back-channel logout), revokes its refresh
//! tokens, lifts a password lockout (the owner proved the phone) and is audited.
//!
//! The first step answers the same whatever was typed: a code goes out only when the document and
//! the name match an account with a phone on file, and a draft is kept either way; for no match,
//! every code is simply wrong (tries counted as for a real code).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::OAuthError;
use super::accounts::{AccountError, Identities};
use super::audit::{Audit, AuditEvent, EventType};
use super::drafts::{Drafts, same_browser};
use super::limits::{self, Rule, Verdict};
use super::outside::SmsPurpose;
use super::registration::Field;
use super::session::{EndReason, Sessions};
use super::sms_code::{CodeRefused, Delivery, SendRefused, SmsCodes};
use crate::crypto::password::HashError;
use crate::crypto::pii::Sealer;
use crate::crypto::random_token;
use crate::domain::account::{Account, AccountId, AccountStatus, PersonName};
use crate::domain::document::{Document, DocumentKind};
use crate::domain::identifiers::{IdentifierError, Phone};
use crate::domain::password::{Password, PolicyError};
use crate::store::{Ephemeral, RefreshStore, StoreError};

/// Why a recovery step did not go on.
#[derive(Debug, thiserror::Error)]
pub enum RecoverRefused {
    #[error("{field:?}: {error}")]
    Invalid {
        field: Field,
        error: IdentifierError,
    },
    #[error("the recovery expired; start again")]
    DraftExpired,
    #[error(transparent)]
    Send(SendRefused),
    #[error(transparent)]
    Code(CodeRefused),
    #[error(transparent)]
    Password(PolicyError),
    #[error("too many recoveries from this address; retry after {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error(transparent)]
    Busy(HashError),
    #[error(transparent)]
    Server(#[from] OAuthError),
}

impl From<StoreError> for RecoverRefused {
    fn from(e: StoreError) -> Self {
        Self::Server(OAuthError::server(e))
    }
}

#[derive(Serialize, Deserialize)]
struct Draft {
    /// The account, when the document and name matched one with a phone.
    account: Option<String>,
    phone: Option<String>,
    browser: String,
    interaction: Option<String>,
    verified: bool,
    /// Wrong tries, for a draft that matched nobody.
    tries: u32,
    /// When its last code was (or, for no match, would have been) sent: the resend gate of a draft
    /// that matched nobody answers as the real one does.
    sent_at: i64,
}

/// A started recovery: its draft id and the pending interaction it came from.
#[derive(Debug)]
pub struct Started {
    pub draft: String,
    pub resend_after: u64,
}

/// Password recovery over the accounts, SMS codes, sessions and refresh tokens.
pub struct Recovery<'a> {
    pub identities: &'a Identities,
    pub codes: SmsCodes<'a>,
    pub ephemeral: &'a dyn Ephemeral,
    pub sealer: &'a Sealer,
    pub sessions: Sessions<'a>,
    pub refresh: &'a dyn RefreshStore,
    pub audit: Audit<'a>,
    pub draft_secs: u64,
    pub limit: Rule,
}

impl Recovery<'_> {
    fn drafts(&self) -> Drafts<'_> {
        Drafts {
            ephemeral: self.ephemeral,
            sealer: self.sealer,
            prefix: "recover",
            ttl: Duration::from_secs(self.draft_secs.max(60)),
        }
    }

    async fn draft(&self, id: &str, browser: &str) -> Result<Draft, RecoverRefused> {
        match self.drafts().load::<Draft>(id).await? {
            Some(d) if same_browser(&d.browser, browser) => Ok(d),
            _ => Err(RecoverRefused::DraftExpired),
        }
    }

    /// Step one: the document (`kind`, `country`, `number`) and the name. Sends a code to the phone
    /// on file when they match an account; answers the same when they do not.
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        &self,
        kind: &str,
        country: &str,
        number: &str,
        name: &str,
        browser: &str,
        interaction: Option<&str>,
        text: &str,
        now: i64,
    ) -> Result<Started, RecoverRefused> {
        let source = self.audit.context.source();
        if let Some(source) = &source
            && let Verdict::Limited(l) =
                limits::hit(self.ephemeral, self.limit, source, now).await?
        {
            return Err(RecoverRefused::RateLimited {
                retry_after: l.retry_after,
            });
        }
        let invalid = |field| move |error| RecoverRefused::Invalid { field, error };
        let kind = if kind.is_empty() {
            DocumentKind::ResidentId
        } else {
            DocumentKind::parse(kind).map_err(invalid(Field::Document))?
        };
        let country = (kind == DocumentKind::Passport).then_some(country);
        let document =
            Document::parse(kind, country, number, now).map_err(invalid(Field::Document))?;
        let name = PersonName::parse(name).map_err(invalid(Field::Name))?;
        let found = self
            .identities
            .find_by_document(&document)
            .await
            .map_err(OAuthError::server)?
            .filter(|a| {
                a.name == name && matches!(a.status, AccountStatus::Active | AccountStatus::Locked)
            })
            .and_then(|a| a.phone.clone().map(|p| (a.id, p)));
        let mut resend_after = self.codes.config.resend_secs;
        if let Some((_, phone)) = &found {
            let sent = self
                .codes
                .send(
                    SmsPurpose::Recover,
                    phone,
                    Delivery::Send,
                    source.as_deref(),
                    text,
                    now,
                )
                .await;
            match sent {
                Ok(sent) => resend_after = sent.resend_after,
                // The answer for a match must not differ from the answer for no match: a code sent
                // a moment ago is still good, and a number over its daily cap gets nothing more,
                // as a draft that matched nobody does.
                Err(SendRefused::TooSoon { .. } | SendRefused::DailyCap { .. }) => {}
                Err(e) => return Err(RecoverRefused::Send(e)),
            }
        }
        let event = AuditEvent::success(EventType::SmsCodeSent)
            .target(found.as_ref().map_or("unknown", |(id, _)| id.as_str()))
            .details(json!({ "purpose": "recover", "matched": found.is_some() }));
        self.audit.record(event).await?;
        let id = random_token();
        let draft = Draft {
            account: found.as_ref().map(|(id, _)| id.as_str().to_owned()),
            phone: found.map(|(_, p)| p.as_str().to_owned()),
            browser: browser.to_owned(),
            interaction: interaction.map(str::to_owned),
            verified: false,
            tries: 0,
            sent_at: now,
        };
        self.drafts().save(&id, &draft).await?;
        Ok(Started {
            draft: id,
            resend_after,
        })
    }

    /// A new code for the draft (nothing is sent for a draft that matched nobody).
    pub async fn resend(
        &self,
        id: &str,
        browser: &str,
        text: &str,
        now: i64,
    ) -> Result<u64, RecoverRefused> {
        let mut draft = self.draft(id, browser).await?;
        let Some(phone) = draft.phone.as_deref().and_then(|p| Phone::parse(p).ok()) else {
            let gate = self.codes.config.resend_secs;
            let waited = u64::try_from(now.saturating_sub(draft.sent_at)).unwrap_or(0);
            if waited < gate {
                return Err(RecoverRefused::Send(SendRefused::TooSoon {
                    retry_after: gate - waited,
                }));
            }
            draft.sent_at = now;
            self.drafts().save(id, &draft).await?;
            return Ok(gate);
        };
        let source = self.audit.context.source();
        let sent = self
            .codes
            .send(
                SmsPurpose::Recover,
                &phone,
                Delivery::Send,
                source.as_deref(),
                text,
                now,
            )
            .await
            .map_err(RecoverRefused::Send)?;
        let event = AuditEvent::success(EventType::SmsCodeSent)
            .target(draft.account.as_deref().unwrap_or("unknown"))
            .details(json!({ "purpose": "recover", "resend": true }));
        self.audit.record(event).await?;
        Ok(sent.resend_after)
    }

    /// Step two: the code and the new password. On success the account is signed out everywhere
    /// and any password lockout lifted. Returns the account and the interaction to return to.
    pub async fn reset(
        &self,
        id: &str,
        browser: &str,
        code: &str,
        password: &Password,
        now: i64,
    ) -> Result<(Account, Option<String>), RecoverRefused> {
        let mut draft = self.draft(id, browser).await?;
        if !draft.verified {
            let (Some(account), Some(phone)) = (&draft.account, &draft.phone) else {
                return Err(self.decoy_try(id, code, draft).await);
            };
            let phone = Phone::parse(phone).map_err(|_| RecoverRefused::DraftExpired)?;
            if let Err(e) = self
                .codes
                .verify(SmsPurpose::Recover, &phone, code, now)
                .await
            {
                if let CodeRefused::Store(cause) = e {
                    return Err(cause.into());
                }
                let event = AuditEvent::failure(EventType::PasswordReset, e.reason())
                    .target(account.as_str());
                self.audit.record(event).await?;
                return Err(RecoverRefused::Code(e));
            }
            draft.verified = true;
            self.drafts().save(id, &draft).await?;
        }
        let account_id = draft
            .account
            .as_deref()
            .and_then(|a| AccountId::parse(a).ok())
            .ok_or(RecoverRefused::DraftExpired)?;
        match self
            .identities
            .set_password(&account_id, password, now)
            .await
        {
            Ok(()) => {}
            Err(AccountError::Policy(e)) => return Err(RecoverRefused::Password(e)),
            Err(AccountError::Busy(e)) => return Err(RecoverRefused::Busy(e)),
            Err(AccountError::NotFound(_)) => return Err(RecoverRefused::DraftExpired),
            Err(e) => return Err(OAuthError::server(e).into()),
        }
        let (ended, revoked) = self
            .sessions
            .sign_out_everywhere(
                self.refresh,
                account_id.as_str(),
                EndReason::PasswordChanged,
                now,
            )
            .await?;
        let source = self.audit.context.source();
        let unlocked = self
            .identities
            .clear_lockout(&account_id, source.as_deref(), now)
            .await?;
        let event = AuditEvent::success(EventType::PasswordReset)
            .actor(account_id.as_str())
            .target(account_id.as_str())
            .details(json!({
                "by": "owner",
                "amr": ["sms"],
                "sessions_ended": ended,
                "refresh_revoked": revoked,
                "unlocked": unlocked,
            }));
        self.audit.record(event).await?;
        if unlocked {
            let event = AuditEvent::success(EventType::AccountUnlock)
                .actor(account_id.as_str())
                .target(account_id.as_str())
                .details(json!({ "by": "owner", "via": "recovery" }));
            self.audit.record(event).await?;
        }
        let _ = self.drafts().delete(id).await;
        let account = self
            .identities
            .account(&account_id)
            .await
            .map_err(OAuthError::server)?
            .ok_or(RecoverRefused::DraftExpired)?;
        tracing::info!(account = %account.id, ended, revoked, "password recovered");
        Ok((account, draft.interaction))
    }

    /// A try on a draft that matched nobody: wrong, as a mistyped code would be.
    async fn decoy_try(&self, id: &str, code: &str, mut draft: Draft) -> RecoverRefused {
        let code = code.trim();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return RecoverRefused::Code(CodeRefused::Malformed);
        }
        let max = self.codes.config.max_tries;
        // As a real code: wrong, wrong, ..., too many, then expired (it was voided).
        if draft.tries >= max {
            return RecoverRefused::Code(CodeRefused::Expired);
        }
        draft.tries += 1;
        if let Err(e) = self.drafts().save(id, &draft).await {
            return e.into();
        }
        if draft.tries >= max {
            return RecoverRefused::Code(CodeRefused::TooManyTries);
        }
        RecoverRefused::Code(CodeRefused::Wrong {
            tries_left: max - draft.tries,
        })
    }
}
