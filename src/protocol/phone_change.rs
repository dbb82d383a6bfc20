//! Changing the mobile number on file (docs/security.md), from the personal page. The new number is
//! always proven by a code sent to it. The person is proven again by a code to the old number, or,
//! when the old number is gone, by a fresh real-name check: the document and name typed again and
//! confirmed by the population register. The change is audited; the number appears in the audit
//! log only as a keyed hash.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::OAuthError;
use super::accounts::{AccountError, Identities};
use super::audit::{Audit, AuditEvent, EventType};
use super::drafts::{Drafts, same_browser};
use super::outside::{OutsideError, PersonCheck, PersonRegister, SmsPurpose};
use super::sms_code::{CodeRefused, Delivery, SendRefused, SmsCodes};
use crate::crypto::pii::Sealer;
use crate::crypto::random_token;
use crate::domain::account::{AccountId, PersonName};
use crate::domain::document::Document;
use crate::domain::identifiers::{IdentifierError, Phone};
use crate::store::{Ephemeral, StoreError};

/// How the person proves it is them, besides the new number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Proof {
    /// A code to the number on file.
    OldNumber,
    /// The document and name, checked by the population register now.
    RealName,
}

/// Why a step of the phone change was refused.
#[derive(Debug, thiserror::Error)]
pub enum PhoneRefused {
    #[error(transparent)]
    BadPhone(IdentifierError),
    #[error("the new number is the number on file")]
    SameNumber,
    #[error("there is no number on file: prove who you are by a real-name check")]
    NoOldNumber,
    #[error("the document and name do not match this account or the register")]
    RealNameRefused,
    #[error(transparent)]
    RegisterUnavailable(OutsideError),
    #[error("this number belongs to another account")]
    Taken,
    #[error("the change expired; start again")]
    Expired,
    #[error("too many changes started; retry after {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error(transparent)]
    Send(SendRefused),
    /// `old`: the code to the old number was the one refused.
    #[error("{error}")]
    Code { old: bool, error: CodeRefused },
    #[error(transparent)]
    Server(#[from] OAuthError),
}

impl From<StoreError> for PhoneRefused {
    fn from(e: StoreError) -> Self {
        Self::Server(OAuthError::server(e))
    }
}

#[derive(Serialize, Deserialize)]
struct Draft {
    account: String,
    browser: String,
    new_phone: String,
    proof: Proof,
}

/// A started change: its draft id, and whether a code went to the old number too.
#[derive(Debug)]
pub struct Started {
    pub draft: String,
    pub old_code: bool,
    pub masked_new: String,
}

/// The phone change's ports.
pub struct PhoneChange<'a> {
    pub identities: &'a Identities,
    pub codes: SmsCodes<'a>,
    pub people: &'a dyn PersonRegister,
    pub ephemeral: &'a dyn Ephemeral,
    pub sealer: &'a Sealer,
    pub audit: Audit<'a>,
    pub draft_secs: u64,
    /// Changes started per account (each asks the register or sends codes; a stolen session must not
    /// become an oracle for the hidden digits of the ID number).
    pub limit: super::limits::Rule,
}

impl PhoneChange<'_> {
    fn drafts(&self) -> Drafts<'_> {
        Drafts {
            ephemeral: self.ephemeral,
            sealer: self.sealer,
            prefix: "phone",
            ttl: Duration::from_secs(self.draft_secs.max(60)),
        }
    }

    /// Starts a change to `new_phone`, proven by `proof` (for `RealName`, the document number and
    /// name typed again). Sends the codes.
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        &self,
        id: &AccountId,
        browser: &str,
        new_phone: &str,
        proof: Proof,
        real_name: Option<(&str, &str)>,
        text: &str,
        now: i64,
    ) -> Result<Started, PhoneRefused> {
        if let super::limits::Verdict::Limited(l) =
            super::limits::hit(self.ephemeral, self.limit, id.as_str(), now).await?
        {
            return Err(PhoneRefused::RateLimited {
                retry_after: l.retry_after,
            });
        }
        let new = Phone::parse(new_phone).map_err(PhoneRefused::BadPhone)?;
        let account = self
            .identities
            .account(id)
            .await
            .map_err(OAuthError::server)?
            .ok_or(PhoneRefused::Expired)?;
        if account.phone.as_ref() == Some(&new) {
            return Err(PhoneRefused::SameNumber);
        }
        let source = self.audit.context.source();
        match proof {
            Proof::OldNumber => {
                let old = account.phone.clone().ok_or(PhoneRefused::NoOldNumber)?;
                self.codes
                    .send(
                        SmsPurpose::PhoneOld,
                        &old,
                        Delivery::Send,
                        source.as_deref(),
                        text,
                        now,
                    )
                    .await
                    .map_err(PhoneRefused::Send)?;
            }
            Proof::RealName => {
                let (number, name) = real_name.ok_or(PhoneRefused::RealNameRefused)?;
                let document =
                    Document::national(number, now).map_err(|_| PhoneRefused::RealNameRefused)?;
                let name = PersonName::parse(name).map_err(|_| PhoneRefused::RealNameRefused)?;
                let same_person = account.name == name
                    && account
                        .documents
                        .iter()
                        .any(|d| d.index_input() == document.index_input());
                if !same_person {
                    self.audit_failure(id, "real_name_refused").await?;
                    return Err(PhoneRefused::RealNameRefused);
                }
                match self.people.check(&document, &name).await {
                    Ok(PersonCheck::Match { .. }) => {}
                    Ok(_) => {
                        self.audit_failure(id, "real_name_refused").await?;
                        return Err(PhoneRefused::RealNameRefused);
                    }
                    Err(e) => return Err(PhoneRefused::RegisterUnavailable(e)),
                }
            }
        }
        self.codes
            .send(
                SmsPurpose::PhoneNew,
                &new,
                Delivery::Send,
                source.as_deref(),
                text,
                now,
            )
            .await
            .map_err(PhoneRefused::Send)?;
        self.audit
            .record(
                AuditEvent::success(EventType::SmsCodeSent)
                    .actor(id.as_str())
                    .target(id.as_str())
                    .details(json!({
                        "purpose": "phone_change",
                        "old_number_too": proof == Proof::OldNumber,
                    })),
            )
            .await?;
        let draft_id = random_token();
        let draft = Draft {
            account: id.as_str().to_owned(),
            browser: browser.to_owned(),
            new_phone: new.as_str().to_owned(),
            proof,
        };
        self.drafts().save(&draft_id, &draft).await?;
        Ok(Started {
            draft: draft_id,
            old_code: proof == Proof::OldNumber,
            masked_new: new.masked(),
        })
    }

    /// Confirms the change with the codes; the number on file is replaced.
    pub async fn confirm(
        &self,
        id: &AccountId,
        browser: &str,
        draft_id: &str,
        old_code: &str,
        new_code: &str,
        now: i64,
    ) -> Result<Phone, PhoneRefused> {
        let draft = match self.drafts().load::<Draft>(draft_id).await? {
            Some(d) if same_browser(&d.browser, browser) && d.account == id.as_str() => d,
            _ => return Err(PhoneRefused::Expired),
        };
        let new = Phone::parse(&draft.new_phone).map_err(|_| PhoneRefused::Expired)?;
        let account = self
            .identities
            .account(id)
            .await
            .map_err(OAuthError::server)?
            .ok_or(PhoneRefused::Expired)?;
        if draft.proof == Proof::OldNumber {
            let old = account.phone.clone().ok_or(PhoneRefused::Expired)?;
            if let Err(error) = self
                .codes
                .verify(SmsPurpose::PhoneOld, &old, old_code, now)
                .await
            {
                self.audit_failure(id, error.reason()).await?;
                return Err(PhoneRefused::Code { old: true, error });
            }
        }
        if let Err(error) = self
            .codes
            .verify(SmsPurpose::PhoneNew, &new, new_code, now)
            .await
        {
            self.audit_failure(id, error.reason()).await?;
            return Err(PhoneRefused::Code { old: false, error });
        }
        match self.identities.set_phone(id, new.clone(), now).await {
            Ok(_) => {}
            Err(AccountError::Taken(_)) => return Err(PhoneRefused::Taken),
            Err(e) => return Err(OAuthError::server(e).into()),
        }
        let _ = self.drafts().delete(draft_id).await;
        let proof = match draft.proof {
            Proof::OldNumber => "old_number",
            Proof::RealName => "real_name",
        };
        self.audit
            .record(
                AuditEvent::success(EventType::PhoneChange)
                    .actor(id.as_str())
                    .target(id.as_str())
                    .details(json!({
                        "proof": proof,
                        "new": format!("n:{}", self.codes.key.number_key(&new)),
                    })),
            )
            .await?;
        Ok(new)
    }

    async fn audit_failure(&self, id: &AccountId, reason: &str) -> Result<(), PhoneRefused> {
        self.audit
            .record(
                AuditEvent::failure(EventType::PhoneChange, reason)
                    .actor(id.as_str())
                    .target(id.as_str()),
            )
            .await?;
        Ok(())
    }
}
