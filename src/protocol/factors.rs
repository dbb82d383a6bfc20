//! Second factors (docs/assurance.md, "Second factors"): TOTP enrolment and use, recovery codes,
//! removal, and the two-factor rule. Every enrolment, use, failure and removal is audited, with the
//! factor's id and kind and never its secret.
//!
//! Secrets are sealed at rest like other personal data (AES-256-GCM under a key derived from the
//! key root, the factor's id as associated data); a TOTP secret being enrolled waits sealed in the
//! ephemeral store until the person proves their app computes the same codes. Recovery codes are
//! random (50 bits each), shown once, and stored only as keyed hashes; a used one is remembered
//! until the set is replaced, so its second use is refused and recorded as such.

use std::time::Duration;

use hmac::{Hmac, Mac};
use rand::Rng;
use serde_json::json;
use sha2::Sha256;

use super::OAuthError;
use super::audit::{Audit, AuditEvent, EventType};
use super::limits::{self, Verdict};
use crate::crypto::pii::Sealer;
use crate::crypto::totp;
use crate::store::{Ephemeral, FactorRecord, FactorStore, StoreError};

/// How long an enrolment waits for its confirming code.
pub const ENROL_TTL: Duration = Duration::from_secs(600);
/// Recovery codes issued at once.
pub const RECOVERY_CODES: usize = 10;
/// Characters of a recovery code: no 0/O, 1/I look-alikes; 32 symbols, 5 bits each.
const RECOVERY_ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
/// Symbols per recovery code (50 bits), shown as two groups of five.
const RECOVERY_LEN: usize = 10;
/// The longest label a factor may have (characters).
pub const LABEL_MAX: usize = 40;

/// The kinds of factor.
pub const TOTP: &str = "totp";
pub const PASSKEY: &str = "passkey";

/// Why a factor was not accepted or enrolled. None says which factor exists.
#[derive(Debug, thiserror::Error)]
pub enum FactorError {
    #[error("the code is wrong")]
    WrongCode,
    #[error("the code was used already")]
    Replayed,
    #[error("too many attempts; retry after {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error("the enrolment expired; start again")]
    Expired,
    #[error("a name has 1 to {LABEL_MAX} printable characters")]
    BadLabel,
    #[error(transparent)]
    Server(#[from] OAuthError),
}

impl From<StoreError> for FactorError {
    fn from(e: StoreError) -> Self {
        Self::Server(OAuthError::server(e))
    }
}

/// A TOTP enrolment in progress: the secret as the person's app takes it.
#[derive(Debug)]
pub struct Enrolment {
    pub secret: totp::Secret,
    pub uri: String,
}

/// The ports and settings of the second factors.
pub struct SecondFactors<'a> {
    pub store: &'a dyn FactorStore,
    pub ephemeral: &'a dyn Ephemeral,
    /// Seals factor secrets (`factors` key).
    pub sealer: &'a Sealer,
    /// Keys the recovery-code hashes.
    pub recovery_key: &'a [u8; 32],
    pub audit: Audit<'a>,
    /// The issuer's name in authenticator apps.
    pub issuer_name: &'a str,
    /// Tries at a second factor per account and window (`limits.second_factor_per_account`).
    pub attempts: limits::Rule,
}

fn enrol_key(account_id: &str) -> String {
    format!("totp-enrol:{account_id}")
}

/// Trims a label; `None` when empty, too long or not printable.
pub fn label(raw: &str) -> Option<String> {
    let label = raw.trim();
    (!label.is_empty()
        && label.chars().count() <= LABEL_MAX
        && !label.chars().any(char::is_control))
    .then(|| label.to_owned())
}

/// A recovery code as typed: upper case, without spaces or hyphens.
fn normalise(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect()
}

impl SecondFactors<'_> {
    /// The account's factors.
    pub async fn list(&self, account_id: &str) -> Result<Vec<FactorRecord>, StoreError> {
        self.store.factors_of(account_id).await
    }

    /// Starts (or restarts) a TOTP enrolment; `account_label` names the account in the app (a
    /// masked number, never a full one).
    pub async fn start_totp(
        &self,
        account_id: &str,
        account_label: &str,
    ) -> Result<Enrolment, StoreError> {
        let secret = totp::Secret::generate();
        let key = enrol_key(account_id);
        let sealed = self.sealer.seal(&key, secret.as_bytes());
        self.ephemeral.put(&key, &sealed, ENROL_TTL).await?;
        let uri = secret.otpauth_uri(self.issuer_name, account_label);
        Ok(Enrolment { secret, uri })
    }

    /// The enrolment in progress, to show again (after a wrong code).
    pub async fn pending_totp(
        &self,
        account_id: &str,
        account_label: &str,
    ) -> Result<Option<Enrolment>, StoreError> {
        let key = enrol_key(account_id);
        let Some(sealed) = self.ephemeral.get(&key).await? else {
            return Ok(None);
        };
        Ok(self.sealer.open(&key, &sealed).ok().map(|bytes| {
            let secret = totp::Secret::from_bytes(bytes);
            let uri = secret.otpauth_uri(self.issuer_name, account_label);
            Enrolment { secret, uri }
        }))
    }

    /// Finishes a TOTP enrolment with a code from the app: the factor is saved (its first step
    /// counted as used) and audited. The first factor of an account comes with recovery codes,
    /// returned here to be shown once.
    pub async fn confirm_totp(
        &self,
        account_id: &str,
        code: &str,
        label: &str,
        now: i64,
    ) -> Result<Option<Vec<String>>, FactorError> {
        self.within_limit(account_id, now).await?;
        let key = enrol_key(account_id);
        let sealed = self
            .ephemeral
            .get(&key)
            .await?
            .ok_or(FactorError::Expired)?;
        let secret = totp::Secret::from_bytes(
            self.sealer
                .open(&key, &sealed)
                .map_err(|_| FactorError::Expired)?,
        );
        let Some(step) = totp::verify(&secret, code, now, None) else {
            self.record_failure(account_id, None, TOTP, "enrolment_code")
                .await?;
            return Err(FactorError::WrongCode);
        };
        let label = self::label(label).ok_or(FactorError::BadLabel)?;
        let id = uuid::Uuid::new_v4().to_string();
        let first = self.store.factors_of(account_id).await?.is_empty();
        let record = FactorRecord {
            id: id.clone(),
            account_id: account_id.to_owned(),
            kind: TOTP.to_owned(),
            label,
            credential_id: None,
            secret: self.sealer.seal(&factor_context(&id), secret.as_bytes()),
            counter: step,
            backup_eligible: false,
            backup_state: false,
            created_at: now,
            last_used_at: None,
        };
        self.store.add_factor(&record).await?;
        self.ephemeral.delete(&key).await?;
        let audited = self
            .audit
            .record(
                AuditEvent::success(EventType::FactorEnrolled)
                    .actor(account_id)
                    .target(id.as_str())
                    .details(json!({ "kind": TOTP })),
            )
            .await;
        if let Err(e) = audited {
            // Not audited, not enrolled.
            let _ = self.store.remove_factor(account_id, &id).await;
            return Err(e.into());
        }
        if first && self.store.recovery_codes_left(account_id).await? == 0 {
            return Ok(Some(self.new_recovery_codes(account_id, now).await?));
        }
        Ok(None)
    }

    /// Checks a TOTP code against the account's authenticators. A code is good once: its step
    /// must be later than the last one accepted for that factor, moved forward atomically, so two
    /// nodes given the same code accept it once between them (RFC 6238 §5.2).
    pub async fn check_totp(
        &self,
        account_id: &str,
        code: &str,
        now: i64,
    ) -> Result<(), FactorError> {
        self.within_limit(account_id, now).await?;
        let factors = self.store.factors_of(account_id).await?;
        for factor in factors.iter().filter(|f| f.kind == TOTP) {
            let Ok(bytes) = self
                .sealer
                .open(&factor_context(&factor.id), &factor.secret)
            else {
                continue;
            };
            let secret = totp::Secret::from_bytes(bytes);
            let Some(step) = totp::verify(&secret, code, now, None) else {
                continue;
            };
            let fresh = step > factor.counter
                && self
                    .store
                    .advance_factor(&factor.id, step, false, now)
                    .await?;
            if !fresh {
                self.record_failure(account_id, Some(&factor.id), TOTP, "replayed")
                    .await?;
                return Err(FactorError::Replayed);
            }
            self.audit
                .record(
                    AuditEvent::success(EventType::FactorUsed)
                        .actor(account_id)
                        .target(factor.id.as_str())
                        .details(json!({ "kind": TOTP })),
                )
                .await?;
            return Ok(());
        }
        self.record_failure(account_id, None, TOTP, "wrong_code")
            .await?;
        Err(FactorError::WrongCode)
    }

    /// Spends a recovery code in place of a second factor.
    pub async fn check_recovery_code(
        &self,
        account_id: &str,
        code: &str,
        now: i64,
    ) -> Result<(), FactorError> {
        self.within_limit(account_id, now).await?;
        let hash = self.recovery_hash(account_id, &normalise(code));
        match self
            .store
            .spend_recovery_code(account_id, &hash, now)
            .await?
        {
            Some(true) => {
                let left = self.store.recovery_codes_left(account_id).await?;
                self.audit
                    .record(
                        AuditEvent::success(EventType::FactorUsed)
                            .actor(account_id)
                            .details(json!({ "kind": "recovery_code", "left": left })),
                    )
                    .await?;
                Ok(())
            }
            Some(false) => {
                self.record_failure(account_id, None, "recovery_code", "replayed")
                    .await?;
                Err(FactorError::Replayed)
            }
            None => {
                self.record_failure(account_id, None, "recovery_code", "wrong_code")
                    .await?;
                Err(FactorError::WrongCode)
            }
        }
    }

    /// Replaces the account's recovery codes with new ones, returned to be shown once.
    pub async fn new_recovery_codes(
        &self,
        account_id: &str,
        now: i64,
    ) -> Result<Vec<String>, FactorError> {
        let codes = recovery_codes();
        let hashes: Vec<Vec<u8>> = codes
            .iter()
            .map(|c| self.recovery_hash(account_id, c))
            .collect();
        self.audit
            .record(
                AuditEvent::success(EventType::FactorEnrolled)
                    .actor(account_id)
                    .details(json!({ "kind": "recovery_codes", "count": RECOVERY_CODES })),
            )
            .await?;
        self.store
            .replace_recovery_codes(account_id, &hashes, now)
            .await?;
        Ok(codes
            .iter()
            .map(|c| format!("{}-{}", &c[..5], &c[5..]))
            .collect())
    }

    /// Removes one of the account's factors, audited; `false` when it has no such factor.
    pub async fn remove(
        &self,
        account_id: &str,
        factor_id: &str,
        by: &str,
    ) -> Result<bool, FactorError> {
        let Some(factor) = self
            .store
            .factors_of(account_id)
            .await?
            .into_iter()
            .find(|f| f.id == factor_id)
        else {
            return Ok(false);
        };
        self.audit
            .record(
                AuditEvent::success(EventType::FactorRemoved)
                    .actor(by)
                    .target(factor.id.as_str())
                    .details(json!({ "kind": factor.kind, "account": account_id })),
            )
            .await?;
        Ok(self.store.remove_factor(account_id, factor_id).await?)
    }

    /// Unused recovery codes of an account.
    pub async fn recovery_codes_left(&self, account_id: &str) -> Result<i64, StoreError> {
        self.store.recovery_codes_left(account_id).await
    }

    async fn within_limit(&self, account_id: &str, now: i64) -> Result<(), FactorError> {
        let verdict = limits::hit(self.ephemeral, self.attempts, account_id, now).await?;
        if let Verdict::Limited(limited) = verdict {
            if limited.first {
                self.audit
                    .record(
                        AuditEvent::failure(EventType::RateLimited, limited.rule)
                            .actor(account_id)
                            .details(json!({ "retry_after": limited.retry_after })),
                    )
                    .await?;
            }
            return Err(FactorError::RateLimited {
                retry_after: limited.retry_after,
            });
        }
        Ok(())
    }

    async fn record_failure(
        &self,
        account_id: &str,
        factor_id: Option<&str>,
        kind: &str,
        reason: &str,
    ) -> Result<(), OAuthError> {
        let mut event = AuditEvent::failure(EventType::FactorUsed, reason)
            .actor(account_id)
            .details(json!({ "kind": kind }));
        if let Some(id) = factor_id {
            event = event.target(id);
        }
        self.audit.record(event).await
    }

    fn recovery_hash(&self, account_id: &str, code: &str) -> Vec<u8> {
        // HMAC accepts any key length.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.recovery_key) else {
            return Vec::new();
        };
        mac.update(account_id.as_bytes());
        mac.update(&[0]);
        mac.update(code.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

/// New random recovery codes (the thread's generator is not held across an await).
fn recovery_codes() -> Vec<String> {
    let mut rng = rand::rng();
    (0..RECOVERY_CODES)
        .map(|_| {
            (0..RECOVERY_LEN)
                .map(|_| {
                    char::from(RECOVERY_ALPHABET[rng.random_range(0..RECOVERY_ALPHABET.len())])
                })
                .collect()
        })
        .collect()
}

/// The associated data a factor's secret is sealed with: moving a sealed secret to another row
/// makes it unreadable.
pub fn factor_context(id: &str) -> String {
    format!("factor:{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_codes_are_normalised() {
        assert_eq!(label("  手机  ").as_deref(), Some("手机"));
        assert_eq!(label(""), None);
        assert_eq!(label(&"x".repeat(LABEL_MAX + 1)), None);
        assert_eq!(label("a\u{7}b"), None);
        assert_eq!(normalise("abcde-fghjk"), "ABCDEFGHJK");
        assert_eq!(normalise(" ABCDE FGHJK "), "ABCDEFGHJK");
    }
}
