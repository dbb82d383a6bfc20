//! Proofing to real-name level 3 by face verification (docs/assurance.md, "Proofing"): the app
//! or a kiosk captures a live face with the provincial platform's SDK and hands yihao the
//! platform's token for the capture; yihao asks the face-verification service to match it against
//! the register photo of the account's document. A match raises the account to level 3 with its
//! evidence (method `face_check`, the service's reference, the time). yihao never receives or
//! keeps a face image; the person gives a separate consent (its version recorded) before each
//! check; and a face is never the only way in: it raises the proofing level, and sign-in still
//! takes a password or an SMS code (docs/privacy.md).

use serde_json::json;

use super::OAuthError;
use super::accounts::Identities;
use super::assurance::FACE_LEVEL;
use super::audit::{Audit, AuditEvent, EventType};
use super::limits::{self, Verdict};
use super::outside::{FaceCheck, FaceVerifier, OutsideError};
use crate::domain::account::{AccountId, AccountStatus, Evidence, Level, ProofMethod};
use crate::store::{AccountStore, AgreementRecord, Ephemeral};

/// The agreement kind of the face-verification consent.
pub const FACE_CONSENT: &str = "face_verification";

/// Why a face check did not raise the level. None reveals the register's contents beyond what
/// the person asked about themselves.
#[derive(Debug, thiserror::Error)]
pub enum ProofingError {
    #[error("the consent to face verification (version {expected}) was not given")]
    NoConsent { expected: String },
    #[error("the capture token is missing or too long")]
    BadCapture,
    #[error("the account has no document a face can be checked against")]
    NoDocument,
    #[error("the face does not match the register photo")]
    NoMatch,
    #[error("the register has no photo for this document")]
    NotFound,
    #[error("too many face checks; retry after {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error("face verification is unavailable")]
    Unavailable(#[source] OutsideError),
    #[error(transparent)]
    Server(#[from] OAuthError),
}

/// The ports and settings of a face check.
pub struct FaceProofing<'a> {
    pub identities: &'a Identities,
    pub agreements: &'a dyn AccountStore,
    pub faces: &'a dyn FaceVerifier,
    pub ephemeral: &'a dyn Ephemeral,
    pub audit: Audit<'a>,
    /// `verify.face_consent_version`.
    pub consent_version: &'a str,
    /// Checks per account and day (each is a paid call, and a mismatch may be someone else).
    pub limit: limits::Rule,
}

/// The longest capture token passed on (the platform's tokens are far shorter).
const CAPTURE_MAX: usize = 4096;

impl FaceProofing<'_> {
    /// Checks the face of the capture `liveness` against the register photo of the account's
    /// first national document, having the consent of version `consent`; answers the account's
    /// level afterwards. An account already at level 3 or more is not checked again.
    pub async fn verify(
        &self,
        account_id: &AccountId,
        liveness: &str,
        consent: &str,
        now: i64,
    ) -> Result<Level, ProofingError> {
        if consent != self.consent_version {
            return Err(ProofingError::NoConsent {
                expected: self.consent_version.to_owned(),
            });
        }
        if liveness.is_empty() || liveness.len() > CAPTURE_MAX {
            return Err(ProofingError::BadCapture);
        }
        let account = self
            .identities
            .account(account_id)
            .await
            .map_err(OAuthError::server)?
            .filter(|a| a.status == AccountStatus::Active)
            .ok_or(ProofingError::NoDocument)?;
        if account.evidence.level().get() >= FACE_LEVEL {
            return Ok(account.evidence.level());
        }
        let Some(document) = account
            .documents
            .iter()
            .find(|d| d.kind().is_national_number())
        else {
            return Err(ProofingError::NoDocument);
        };
        let verdict = limits::hit(self.ephemeral, self.limit, account_id.as_str(), now)
            .await
            .map_err(OAuthError::server)?;
        if let Verdict::Limited(limited) = verdict {
            return Err(ProofingError::RateLimited {
                retry_after: limited.retry_after,
            });
        }
        self.agreements
            .add_agreement(&AgreementRecord {
                account_id: account_id.as_str().to_owned(),
                kind: FACE_CONSENT.to_owned(),
                version: self.consent_version.to_owned(),
                agreed_at: now,
            })
            .await
            .map_err(OAuthError::server)?;
        let checked = self.faces.verify(document, &account.name, liveness).await;
        let reference = match checked {
            Ok(FaceCheck::Match { reference }) => reference,
            Ok(other) => {
                let reason = if other == FaceCheck::NotFound {
                    "not_found"
                } else {
                    "no_match"
                };
                self.audit
                    .record(
                        AuditEvent::failure(EventType::Proofing, reason)
                            .actor(account_id.as_str())
                            .details(json!({ "method": "face_check" })),
                    )
                    .await?;
                return Err(if other == FaceCheck::NotFound {
                    ProofingError::NotFound
                } else {
                    ProofingError::NoMatch
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "face verification failed");
                return Err(ProofingError::Unavailable(e));
            }
        };
        let level = Level::new(FACE_LEVEL).map_err(OAuthError::server)?;
        let shown: String = reference
            .chars()
            .filter(|c| !c.is_control())
            .take(120)
            .collect();
        let source = format!("face verification {shown}");
        let evidence = Evidence::new(level, ProofMethod::FaceCheck, &source, now)
            .map_err(OAuthError::server)?;
        self.audit
            .record(AuditEvent {
                acr: Some(level.acr()),
                ..AuditEvent::success(EventType::Proofing)
                    .actor(account_id.as_str())
                    .details(json!({ "method": "face_check", "reference": reference }))
            })
            .await?;
        self.identities
            .set_evidence(account_id, evidence, now)
            .await
            .map_err(OAuthError::server)?;
        Ok(level)
    }
}
