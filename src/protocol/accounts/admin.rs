//! Account administration: creation (by an operator, or imported with a legacy hash), passwords
//! under the policy and history, status and evidence, documents and legacy ids.

use super::*;
use crate::store::AgreementRecord;

impl Identities {
    /// Creates a person account. The password, when given, must pass the policy.
    pub async fn create_account(
        &self,
        id: AccountId,
        new: NewAccount,
        password: Option<&Password>,
        now: i64,
    ) -> Result<Account, AccountError> {
        self.create_agreed(id, new, password, &[], now).await
    }

    /// [`Identities::create_account`], recording the documents the person agreed to as
    /// `(kind, version)` in the same transaction.
    pub async fn create_agreed(
        &self,
        id: AccountId,
        new: NewAccount,
        password: Option<&Password>,
        agreed: &[(&str, &str)],
        now: i64,
    ) -> Result<Account, AccountError> {
        if new.documents.is_empty() {
            return Err(
                IdentifierError("an account needs at least one identity document".into()).into(),
            );
        }
        let account = new.into_account(id, now);
        let hash = match password {
            Some(p) => {
                self.policy().check(p, &account.personal_numbers())?;
                Some(self.hasher.hash(p).await?)
            }
            None => None,
        };
        let (record, documents) = self.seal(&account);
        let agreements: Vec<AgreementRecord> = agreed
            .iter()
            .map(|(kind, version)| AgreementRecord {
                account_id: account.id.as_str().to_owned(),
                kind: (*kind).to_owned(),
                version: (*version).to_owned(),
                agreed_at: now,
            })
            .collect();
        self.accounts
            .create_account(&record, &documents, hash.as_deref(), &[], &agreements)
            .await?;
        Ok(account)
    }

    /// Creates an account with an already-hashed password and its legacy id (legacy import): no
    /// policy check is possible on a hash.
    pub async fn create_imported(
        &self,
        id: AccountId,
        new: NewAccount,
        hash: Option<&str>,
        legacy: (&str, &str),
        now: i64,
    ) -> Result<Account, AccountError> {
        let account = new.into_account(id, now);
        let (record, documents) = self.seal(&account);
        let legacy = self.legacy_record(&account.id, legacy.0, legacy.1);
        self.accounts
            .create_account(&record, &documents, hash, &[legacy], &[])
            .await?;
        Ok(account)
    }

    /// Sets a new password after the policy and the history check (no reuse of the last
    /// `passwords.history`).
    pub async fn set_password(
        &self,
        id: &AccountId,
        password: &Password,
        now: i64,
    ) -> Result<(), AccountError> {
        let account = self
            .account(id)
            .await?
            .ok_or_else(|| AccountError::NotFound(format!("account {id}")))?;
        self.policy().check(password, &account.personal_numbers())?;
        let keep = self.passwords.history.saturating_sub(1);
        let mut recent: Vec<String> = self
            .accounts
            .password_hash(id.as_str())
            .await?
            .into_iter()
            .collect();
        recent.extend(
            self.accounts
                .password_history(id.as_str())
                .await?
                .into_iter()
                .take(keep),
        );
        for old in &recent {
            if self.hasher.verify(password, Some(old)).await?.matches {
                return Err(PolicyError::Reused(self.passwords.history).into());
            }
        }
        let hash = self.hasher.hash(password).await?;
        self.accounts
            .set_password(id.as_str(), &hash, now, keep as i64)
            .await?;
        Ok(())
    }

    pub async fn set_status(
        &self,
        id: &AccountId,
        status: AccountStatus,
        now: i64,
    ) -> Result<Account, AccountError> {
        self.update(id, now, |a| a.status = status).await
    }

    /// Replaces the mobile number on file; `Taken("phone")` when another account holds it.
    pub async fn set_phone(
        &self,
        id: &AccountId,
        phone: Phone,
        now: i64,
    ) -> Result<Account, AccountError> {
        self.update(id, now, |a| a.phone = Some(phone)).await
    }

    pub async fn set_evidence(
        &self,
        id: &AccountId,
        evidence: Evidence,
        now: i64,
    ) -> Result<Account, AccountError> {
        self.update(id, now, |a| a.evidence = evidence).await
    }

    async fn update(
        &self,
        id: &AccountId,
        now: i64,
        change: impl FnOnce(&mut Account),
    ) -> Result<Account, AccountError> {
        let mut account = self
            .account(id)
            .await?
            .ok_or_else(|| AccountError::NotFound(format!("account {id}")))?;
        change(&mut account);
        account.updated_at = now;
        let (record, _) = self.seal(&account);
        self.accounts.update_account(&record).await?;
        Ok(account)
    }

    /// Adds a document to an account (merging a legacy record that brought another document).
    pub async fn add_document(
        &self,
        id: &AccountId,
        document: &Document,
        now: i64,
    ) -> Result<(), AccountError> {
        self.accounts
            .add_document(&self.seal_document(id.as_str(), document, now))
            .await?;
        Ok(())
    }

    /// Records that `id` was user `user_id` of the department system `source`; `true` when new.
    pub async fn add_legacy_id(
        &self,
        id: &AccountId,
        source: &str,
        user_id: &str,
    ) -> Result<bool, AccountError> {
        Ok(self
            .accounts
            .add_legacy_id(&self.legacy_record(id, source, user_id))
            .await?)
    }
}
