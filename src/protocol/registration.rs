//! Self-service registration (docs/assurance.md, docs/privacy.md): a document (resident ID by
//! default), a name and a mobile number confirmed by an SMS code; a password under the policy; the
//! terms, the privacy notice and the separate consent to process sensitive personal information
//! (PIPL art. 29), each recorded with its version. The population register's answer sets the level:
//! a match is level 2 (`register_check`); a document the register cannot check (a foreign passport)
//! is level 1 (identity self-declared, phone verified); a mismatch or an unknown number is refused,
//! so nobody can take another person's ID number.
//!
//! Two steps. [`Registration::start`] checks the input, refuses an ID number that already has an
//! account (pointing to recovery, with the phone on file masked when the name matches), sends the
//! code and keeps a draft, sealed, in the ephemeral store. [`Registration::complete`] checks the
//! consents, the password, the code and the register, then creates the account, its documents,
//! password and agreements in one transaction, and audits it; an account whose audit record cannot
//! be written is deleted again. Nothing durable exists before the last step, so a registration
//! interrupted anywhere leaves nothing behind.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::OAuthError;
use super::accounts::{AccountError, Identities, NewAccount};
use super::audit::{Audit, AuditEvent, EventType};
use super::drafts::{Drafts, same_browser};
use super::limits::{self, Rule, Verdict};
use super::outside::{OutsideError, PersonCheck, PersonRegister, SmsPurpose};
use super::sms_code::{CodeRefused, Delivery, SendRefused, Sent, SmsCodes};
use crate::config::RegistrationConfig;
use crate::crypto::password::HashError;
use crate::crypto::pii::Sealer;
use crate::crypto::random_token;
use crate::domain::account::{Account, AccountId, Evidence, Level, PersonName, ProofMethod};
use crate::domain::document::{Document, DocumentKind};
use crate::domain::identifiers::{IdentifierError, Phone};
use crate::domain::password::{Password, PolicyError};
use crate::store::{Ephemeral, StoreError};

/// The agreements a registration records (`account_agreements.kind`).
pub const TERMS: &str = "terms";
pub const PRIVACY: &str = "privacy";
pub const SENSITIVE: &str = "sensitive_pi";

/// A form field, as errors name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Document,
    Name,
    Phone,
}

/// Why a registration step did not go on. Each is shown in the person's language.
#[derive(Debug, thiserror::Error)]
pub enum RegisterRefused {
    #[error("{field:?}: {error}")]
    Invalid {
        field: Field,
        error: IdentifierError,
    },
    /// This document has an account: recovery, not a second account. The phone on file, masked,
    /// only when the name typed is the account's.
    #[error("this document is already registered")]
    AlreadyRegistered { phone: Option<String> },
    #[error("this mobile number belongs to another account")]
    PhoneTaken,
    #[error("the {0} must be agreed to")]
    ConsentMissing(&'static str),
    #[error(transparent)]
    Password(PolicyError),
    #[error("the register holds this document under another name")]
    Mismatch,
    #[error("the register does not know this document")]
    NotFound,
    #[error(transparent)]
    RegisterUnavailable(OutsideError),
    #[error("the registration expired; start again")]
    DraftExpired,
    #[error(transparent)]
    Send(SendRefused),
    #[error(transparent)]
    Code(CodeRefused),
    #[error("too many registrations from this address; retry after {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error(transparent)]
    Busy(HashError),
    #[error(transparent)]
    Server(#[from] OAuthError),
}

impl From<StoreError> for RegisterRefused {
    fn from(e: StoreError) -> Self {
        Self::Server(OAuthError::server(e))
    }
}

/// What the first form says.
#[derive(Clone, Copy)]
pub struct Application<'a> {
    /// `DocumentKind::as_str`; empty: resident ID.
    pub kind: &'a str,
    /// The issuing country, for a passport.
    pub country: &'a str,
    pub number: &'a str,
    pub name: &'a str,
    pub phone: &'a str,
}

/// What the second form says.
pub struct Completion<'a> {
    pub code: &'a str,
    pub password: &'a Password,
    pub terms: bool,
    pub privacy: bool,
    pub sensitive: bool,
}

/// A registration in progress, kept sealed in the ephemeral store.
#[derive(Serialize, Deserialize)]
pub struct Draft {
    kind: String,
    country: String,
    number: String,
    name: String,
    pub phone: String,
    /// The browser it was started in (hash of its binding cookie).
    browser: String,
    /// The pending authorization request it came from, to return to.
    pub interaction: Option<String>,
    phone_verified: bool,
}

impl std::fmt::Debug for Draft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Draft(..)")
    }
}

impl Draft {
    fn document(&self) -> Result<Document, IdentifierError> {
        let kind = DocumentKind::parse(&self.kind)?;
        let country = (!self.country.is_empty()).then_some(self.country.as_str());
        // Checked when the draft was made; a far-future `now` only skips the birth-date rule.
        Document::parse(kind, country, &self.number, i64::MAX / 4)
    }
}

/// A started registration: its draft id (the page carries it) and when a new code may be asked.
#[derive(Debug)]
pub struct Started {
    pub draft: String,
    pub sent: Sent,
    pub masked_phone: String,
}

/// Registration over the accounts, the population register, SMS codes and the ephemeral store.
pub struct Registration<'a> {
    pub identities: &'a Identities,
    pub people: &'a dyn PersonRegister,
    pub codes: SmsCodes<'a>,
    pub ephemeral: &'a dyn Ephemeral,
    /// Seals drafts (they hold an ID number and a phone number).
    pub sealer: &'a Sealer,
    pub audit: Audit<'a>,
    pub config: &'a RegistrationConfig,
    pub limit: Rule,
}

impl Registration<'_> {
    /// Parses the first form into a document, a name and a phone, naming the field at fault.
    fn parse(
        app: &Application<'_>,
        now: i64,
    ) -> Result<(Document, PersonName, Phone), RegisterRefused> {
        let invalid = |field| move |error| RegisterRefused::Invalid { field, error };
        let kind = if app.kind.is_empty() {
            DocumentKind::ResidentId
        } else {
            DocumentKind::parse(app.kind).map_err(invalid(Field::Document))?
        };
        let country = (kind == DocumentKind::Passport).then_some(app.country);
        let document =
            Document::parse(kind, country, app.number, now).map_err(invalid(Field::Document))?;
        let name = PersonName::parse(app.name).map_err(invalid(Field::Name))?;
        let phone = Phone::parse(app.phone).map_err(invalid(Field::Phone))?;
        Ok((document, name, phone))
    }

    /// Step one: checks the form, refuses a registered document, sends the code, keeps the draft.
    pub async fn start(
        &self,
        application: &Application<'_>,
        browser: &str,
        interaction: Option<&str>,
        text: &str,
        now: i64,
    ) -> Result<Started, RegisterRefused> {
        let source = self.audit.context.source();
        if let Some(source) = &source
            && let Verdict::Limited(l) =
                limits::hit(self.ephemeral, self.limit, source, now).await?
        {
            return Err(RegisterRefused::RateLimited {
                retry_after: l.retry_after,
            });
        }
        let (document, name, phone) = Self::parse(application, now)?;
        if let Some(existing) = self.existing(&document).await? {
            let phone = existing
                .phone
                .as_ref()
                .filter(|_| existing.name == name)
                .map(Phone::masked);
            self.audit_refusal("already_registered", Some(existing.id.as_str()))
                .await?;
            return Err(RegisterRefused::AlreadyRegistered { phone });
        }
        let sent = self.send_code(&phone, text, now).await?;
        let id = random_token();
        let draft = Draft {
            kind: document.kind().as_str().to_owned(),
            country: document.country().to_owned(),
            number: document.number().to_owned(),
            name: name.as_str().to_owned(),
            phone: phone.as_str().to_owned(),
            browser: browser.to_owned(),
            interaction: interaction.map(str::to_owned),
            phone_verified: false,
        };
        self.save(&id, &draft).await?;
        Ok(Started {
            draft: id,
            sent,
            masked_phone: phone.masked(),
        })
    }

    async fn existing(&self, document: &Document) -> Result<Option<Account>, RegisterRefused> {
        self.identities
            .find_by_document(document)
            .await
            .map_err(|e| OAuthError::server(e).into())
    }

    fn drafts(&self) -> Drafts<'_> {
        Drafts {
            ephemeral: self.ephemeral,
            sealer: self.sealer,
            prefix: "reg",
            ttl: Duration::from_secs(self.config.draft_secs.max(60)),
        }
    }

    async fn save(&self, id: &str, draft: &Draft) -> Result<(), RegisterRefused> {
        Ok(self.drafts().save(id, draft).await?)
    }

    /// The draft `id`, when it was started in `browser`.
    async fn draft(&self, id: &str, browser: &str) -> Result<Draft, RegisterRefused> {
        match self.drafts().load::<Draft>(id).await? {
            Some(draft) if same_browser(&draft.browser, browser) => Ok(draft),
            _ => Err(RegisterRefused::DraftExpired),
        }
    }

    /// A new code for the draft's number.
    pub async fn resend(
        &self,
        id: &str,
        browser: &str,
        text: &str,
        now: i64,
    ) -> Result<Started, RegisterRefused> {
        let draft = self.draft(id, browser).await?;
        let phone = Phone::parse(&draft.phone).map_err(|_| RegisterRefused::DraftExpired)?;
        let sent = self.send_code(&phone, text, now).await?;
        Ok(Started {
            draft: id.to_owned(),
            sent,
            masked_phone: phone.masked(),
        })
    }

    /// Sends a registration code to `phone` and audits it (the number only as its keyed hash).
    async fn send_code(
        &self,
        phone: &Phone,
        text: &str,
        now: i64,
    ) -> Result<Sent, RegisterRefused> {
        let source = self.audit.context.source();
        let sent = self
            .codes
            .send(
                SmsPurpose::Register,
                phone,
                Delivery::Send,
                source.as_deref(),
                text,
                now,
            )
            .await
            .map_err(RegisterRefused::Send)?;
        let event = AuditEvent::success(EventType::SmsCodeSent)
            .target(format!("n:{}", self.codes.key.number_key(phone)))
            .details(json!({ "purpose": "register" }));
        self.audit.record(event).await?;
        Ok(sent)
    }

    /// Step two: consents, password, code, register check; then the account, in one transaction,
    /// audited. Returns the account and the draft (its interaction to return to).
    pub async fn complete(
        &self,
        id: &str,
        browser: &str,
        completion: &Completion<'_>,
        now: i64,
    ) -> Result<(Account, Draft), RegisterRefused> {
        let mut draft = self.draft(id, browser).await?;
        for (agreed, what) in [
            (completion.terms, TERMS),
            (completion.privacy, PRIVACY),
            (completion.sensitive, SENSITIVE),
        ] {
            if !agreed {
                return Err(RegisterRefused::ConsentMissing(what));
            }
        }
        let document = draft
            .document()
            .map_err(|_| RegisterRefused::DraftExpired)?;
        let phone = Phone::parse(&draft.phone).map_err(|_| RegisterRefused::DraftExpired)?;
        let name = PersonName::parse(&draft.name).map_err(|_| RegisterRefused::DraftExpired)?;
        // The policy before anything costly (and before the code is spent).
        let mut personal = vec![document.number(), phone.as_str()];
        personal.extend(document.legacy_alias());
        self.identities
            .policy()
            .check(completion.password, &personal)
            .map_err(RegisterRefused::Password)?;
        if !draft.phone_verified {
            if let Err(e) = self
                .codes
                .verify(SmsPurpose::Register, &phone, completion.code, now)
                .await
            {
                if let CodeRefused::Store(cause) = e {
                    return Err(cause.into());
                }
                self.audit_refusal(e.reason(), None).await?;
                return Err(RegisterRefused::Code(e));
            }
            // The phone is proven: a later failure (the register down) does not ask for a new code.
            draft.phone_verified = true;
            self.save(id, &draft).await?;
        }
        if let Some(existing) = self.existing(&document).await? {
            self.audit_refusal("already_registered", Some(existing.id.as_str()))
                .await?;
            return Err(RegisterRefused::AlreadyRegistered { phone: None });
        }
        let evidence = self.real_name(&document, &name, now).await?;
        let level = evidence.level().get();
        let method = evidence.method();
        let new = NewAccount {
            documents: vec![document],
            name,
            phone: Some(phone),
            email: None,
            evidence,
        };
        let account_id = AccountId::parse(&uuid::Uuid::new_v4().to_string())
            .map_err(|e| StoreError::failed(e.0))?;
        let c = self.config;
        let agreed = [
            (TERMS, c.terms_version.as_str()),
            (PRIVACY, c.privacy_version.as_str()),
            (SENSITIVE, c.privacy_version.as_str()),
        ];
        let account = match self
            .identities
            .create_agreed(account_id, new, Some(completion.password), &agreed, now)
            .await
        {
            Ok(account) => account,
            Err(AccountError::Taken(what)) if what == "phone" => {
                return Err(RegisterRefused::PhoneTaken);
            }
            Err(AccountError::Taken(_)) => {
                return Err(RegisterRefused::AlreadyRegistered { phone: None });
            }
            Err(AccountError::Busy(e)) => return Err(RegisterRefused::Busy(e)),
            Err(AccountError::Policy(e)) => return Err(RegisterRefused::Password(e)),
            Err(e) => return Err(OAuthError::server(e).into()),
        };
        let event = AuditEvent {
            acr: Some(format!("urn:yihao:loa:{level}")),
            ..AuditEvent::success(EventType::Registration)
                .actor(account.id.as_str())
                .target(account.id.as_str())
                .details(json!({
                    "level": level,
                    "method": method.as_str(),
                    "agreed": { TERMS: c.terms_version, PRIVACY: c.privacy_version, SENSITIVE: c.privacy_version },
                }))
        };
        if let Err(e) = self.audit.record(event).await {
            // Not recorded, not registered.
            let _ = self
                .identities
                .accounts
                .delete_account(account.id.as_str())
                .await;
            return Err(e.into());
        }
        let _ = self.drafts().delete(id).await;
        tracing::info!(account = %account.id, level, "registered");
        Ok((account, draft))
    }

    /// The population register's answer as evidence, or the refusal.
    async fn real_name(
        &self,
        document: &Document,
        name: &PersonName,
        now: i64,
    ) -> Result<Evidence, RegisterRefused> {
        let answer = match self.people.check(document, name).await {
            Ok(answer) => answer,
            Err(e) => {
                self.audit_refusal("register_unavailable", None).await?;
                return Err(RegisterRefused::RegisterUnavailable(e));
            }
        };
        let evidence = |level, method, source: &str| {
            Level::new(level)
                .and_then(|l| Evidence::new(l, method, source, now))
                .map_err(|e| RegisterRefused::from(StoreError::failed(e.0)))
        };
        match answer {
            PersonCheck::Match { reference } => {
                let reference: String = reference
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(120)
                    .collect();
                let source = format!("population register {reference}");
                evidence(2, ProofMethod::RegisterCheck, source.trim())
            }
            PersonCheck::Unsupported => {
                evidence(1, ProofMethod::SmsCode, "self-declared, phone verified")
            }
            PersonCheck::Mismatch => {
                self.audit_refusal("register_mismatch", None).await?;
                Err(RegisterRefused::Mismatch)
            }
            PersonCheck::NotFound => {
                self.audit_refusal("register_not_found", None).await?;
                Err(RegisterRefused::NotFound)
            }
        }
    }

    /// Audits a refused registration (never with the number: `target` is an account id or none).
    async fn audit_refusal(
        &self,
        reason: &str,
        target: Option<&str>,
    ) -> Result<(), RegisterRefused> {
        let mut event = AuditEvent::failure(EventType::Registration, reason);
        if let Some(target) = target {
            event = event.target(target);
        }
        self.audit.record(event).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_field_is_checked_and_named() {
        let now = 1_800_000_000;
        let good = Application {
            kind: "",
            country: "",
            number: "110101199003070011",
            name: "测试李四",
            phone: "13912345678",
        };
        assert!(Registration::parse(&good, now).is_ok());
        for (bad, field) in [
            (
                Application {
                    number: "110105194912310021",
                    ..good
                },
                Field::Document,
            ),
            (Application { name: " ", ..good }, Field::Name),
            (
                Application {
                    phone: "12345",
                    ..good
                },
                Field::Phone,
            ),
            (
                Application {
                    kind: "passport",
                    country: "",
                    number: "E12345678",
                    ..good
                },
                Field::Document,
            ),
            (
                Application {
                    kind: "library_card",
                    ..good
                },
                Field::Document,
            ),
        ] {
            match Registration::parse(&bad, now) {
                Err(RegisterRefused::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{other:?}"),
            }
        }
    }
}
