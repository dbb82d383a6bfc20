//! Accounts, passwords and organisations: the rules between the domain types and the store ports.
//!
//! Personal numbers are sealed and blind-indexed here before they reach a store, and opened here
//! when read back. Password checks run on the bounded hashing pool; lockout counts live in the
//! ephemeral store so they hold across nodes. Time comes in as `now`; nothing here reads a clock.

use std::sync::Arc;
use std::time::Duration;

use crate::config::PasswordsConfig;
use crate::crypto::password::{HashError, PasswordHasher};
use crate::crypto::pii::{BlindIndex, Pii};
use crate::domain::account::{
    Account, AccountId, AccountStatus, Email, Evidence, Level, PersonName, ProofMethod,
};
use crate::domain::document::{Document, DocumentKind};
use crate::domain::identifiers::{CreditCode, IdentifierError, Phone};
use crate::domain::organisation::{Membership, OrgId, Organisation, Role};
use crate::domain::password::{Password, PasswordPolicy, PolicyError};
use crate::store::{AccountRecord, DocumentRecord, Ephemeral, LegacyIdRecord, Store, StoreError};

/// Blind-index purposes: one per kind of value, so equal digits in two roles do not collide.
const DOCUMENT: &str = "document";
const DOCUMENT_ALIAS: &str = "document-alias";
const PHONE: &str = "phone";
const LEGACY_USER: &str = "legacy-user";

/// 9999-12-31: stored documents were checked when stored; reading them back needs no clock.
const FAR_FUTURE: i64 = 253_402_300_799;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    Invalid(#[from] IdentifierError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("{0} is already registered")]
    Taken(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error(transparent)]
    Busy(#[from] HashError),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for AccountError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => Self::Taken(what),
            StoreError::NotFound(what) => Self::NotFound(what),
            e => Self::Store(e),
        }
    }
}

/// Why a password login failed. `InvalidCredentials` is the only answer for unknown identifiers
/// and wrong passwords alike.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LoginError {
    #[error("the ID number (or phone number) or the password is wrong")]
    InvalidCredentials,
    #[error("too many failed attempts; try again after {until}")]
    LockedOut {
        until: i64,
        /// This attempt started the lockout (it is audited as a lockout).
        started: bool,
    },
    #[error("this account is {0}; contact the service desk")]
    Unavailable(&'static str),
    #[error("{0}")]
    Busy(String),
    #[error("the server could not check the password: {0}")]
    Store(String),
}

/// A new person account as an operator or an import describes it.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub documents: Vec<Document>,
    pub name: PersonName,
    pub phone: Option<Phone>,
    pub email: Option<Email>,
    pub evidence: Evidence,
}

/// Accounts and organisations over the stores, with the keys and policy they need.
pub struct Identities {
    pub store: Arc<dyn Store>,
    pub ephemeral: Arc<dyn Ephemeral>,
    pub pii: Arc<Pii>,
    pub hasher: Arc<PasswordHasher>,
    pub passwords: PasswordsConfig,
}

impl Identities {
    fn policy(&self) -> PasswordPolicy {
        PasswordPolicy {
            min_length: self.passwords.min_length,
            min_classes: self.passwords.min_classes,
            ..PasswordPolicy::default()
        }
    }

    pub fn document_index(&self, document: &Document) -> BlindIndex {
        self.pii.blind_index(DOCUMENT, &document.index_input())
    }

    pub fn phone_index(&self, phone: &Phone) -> BlindIndex {
        self.pii.blind_index(PHONE, phone.as_str())
    }

    /// Seals an account for storage.
    pub fn seal(&self, account: &Account) -> (AccountRecord, Vec<DocumentRecord>) {
        let id = account.id.as_str();
        let version = i64::from(self.pii.active_version());
        let record = AccountRecord {
            id: id.to_owned(),
            name: account.name.as_str().to_owned(),
            phone_index: account
                .phone
                .as_ref()
                .map(|p| self.phone_index(p).0.to_vec()),
            phone_sealed: account
                .phone
                .as_ref()
                .map(|p| self.pii.seal(&phone_context(id), p.as_str())),
            email: account.email.as_ref().map(|e| e.as_str().to_owned()),
            level: i64::from(account.evidence.level().get()),
            proof_method: account.evidence.method().as_str().to_owned(),
            proof_source: account.evidence.source().to_owned(),
            proof_at: account.evidence.verified_at(),
            status: account.status.as_str().to_owned(),
            pii_version: version,
            created_at: account.created_at,
            updated_at: account.updated_at,
        };
        let documents = account
            .documents
            .iter()
            .map(|d| self.seal_document(id, d, account.created_at))
            .collect();
        (record, documents)
    }

    fn seal_document(&self, account_id: &str, d: &Document, now: i64) -> DocumentRecord {
        let index = self.document_index(d);
        let context = document_context(&index);
        DocumentRecord {
            number_index: index.0.to_vec(),
            account_id: account_id.to_owned(),
            kind: d.kind().as_str().to_owned(),
            country: d.country().to_owned(),
            number_sealed: self.pii.seal(&context, d.number()),
            alias_index: d
                .legacy_alias()
                .map(|a| self.pii.blind_index(DOCUMENT_ALIAS, a).0.to_vec()),
            alias_sealed: d
                .legacy_alias()
                .map(|a| self.pii.seal(&format!("{context}:alias"), a)),
            pii_version: i64::from(self.pii.active_version()),
            created_at: now,
        }
    }

    /// Opens a stored account.
    pub fn open(
        &self,
        record: AccountRecord,
        documents: Vec<DocumentRecord>,
    ) -> Result<Account, StoreError> {
        let id = record.id.clone();
        let corrupt = |what: String| StoreError::Corrupt(format!("account {id}: {what}"));
        let phone = match &record.phone_sealed {
            Some(sealed) => {
                let plain = self
                    .pii
                    .open(&phone_context(&record.id), sealed)
                    .map_err(|e| corrupt(e.to_string()))?;
                Some(Phone::parse(&plain).map_err(|e| corrupt(e.0))?)
            }
            None => None,
        };
        let mut docs = Vec::with_capacity(documents.len());
        for d in documents {
            let index: [u8; 32] = d
                .number_index
                .as_slice()
                .try_into()
                .map_err(|_| corrupt("index length".into()))?;
            let context = document_context(&BlindIndex(index));
            let number = self
                .pii
                .open(&context, &d.number_sealed)
                .map_err(|e| corrupt(e.to_string()))?;
            let kind = DocumentKind::parse(&d.kind).map_err(|e| corrupt(e.0))?;
            // Documents were valid when stored; a birth date cannot move into the future.
            let parsed = Document::parse(
                kind,
                Some(&d.country)
                    .filter(|c| !c.is_empty())
                    .map(String::as_str),
                &number,
                FAR_FUTURE,
            )
            .map_err(|e| corrupt(e.0))?;
            let parsed = match &d.alias_sealed {
                Some(sealed) => {
                    let alias = self
                        .pii
                        .open(&format!("{context}:alias"), sealed)
                        .map_err(|e| corrupt(e.to_string()))?;
                    Document::national(&alias, FAR_FUTURE).map_err(|e| corrupt(e.0))?
                }
                None => parsed,
            };
            docs.push(parsed);
        }
        let level = u8::try_from(record.level)
            .ok()
            .and_then(|l| Level::new(l).ok())
            .ok_or_else(|| corrupt("level".into()))?;
        let method = ProofMethod::parse(&record.proof_method).map_err(|e| corrupt(e.0))?;
        Ok(Account {
            id: AccountId::parse(&record.id).map_err(|e| corrupt(e.0))?,
            name: PersonName::parse(&record.name).map_err(|e| corrupt(e.0))?,
            documents: docs,
            phone,
            email: record
                .email
                .as_deref()
                .map(Email::parse)
                .transpose()
                .map_err(|e| corrupt(e.0))?,
            evidence: Evidence::new(level, method, &record.proof_source, record.proof_at)
                .map_err(|e| corrupt(e.0))?,
            status: AccountStatus::parse(&record.status).map_err(|e| corrupt(e.0))?,
            created_at: record.created_at,
            updated_at: record.updated_at,
        })
    }

    pub async fn account(&self, id: &AccountId) -> Result<Option<Account>, AccountError> {
        let Some(record) = self.store.account(id.as_str()).await? else {
            return Ok(None);
        };
        let documents = self.store.account_documents(id.as_str()).await?;
        Ok(Some(self.open(record, documents)?))
    }

    /// Creates a person account. The password, when given, must pass the policy.
    pub async fn create_account(
        &self,
        id: AccountId,
        new: NewAccount,
        password: Option<&Password>,
        now: i64,
    ) -> Result<Account, AccountError> {
        if new.documents.is_empty() {
            return Err(
                IdentifierError("an account needs at least one identity document".into()).into(),
            );
        }
        let account = Account {
            id,
            name: new.name,
            documents: new.documents,
            phone: new.phone,
            email: new.email,
            evidence: new.evidence,
            status: AccountStatus::Active,
            created_at: now,
            updated_at: now,
        };
        let hash = match password {
            Some(p) => {
                self.policy().check(p, &account.personal_numbers())?;
                Some(self.hasher.hash(p).await?)
            }
            None => None,
        };
        let (record, documents) = self.seal(&account);
        self.store
            .create_account(&record, &documents, hash.as_deref(), &[])
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
        let account = Account {
            id,
            name: new.name,
            documents: new.documents,
            phone: new.phone,
            email: new.email,
            evidence: new.evidence,
            status: AccountStatus::Active,
            created_at: now,
            updated_at: now,
        };
        let (record, documents) = self.seal(&account);
        let legacy = self.legacy_record(&account.id, legacy.0, legacy.1);
        self.store
            .create_account(&record, &documents, hash, &[legacy])
            .await?;
        Ok(account)
    }

    /// The account an identifier names: an ID number (18 or legacy 15 digits, or a residence-permit
    /// or permanent-residence number) or a mainland mobile number.
    pub async fn find(&self, identifier: &str, now: i64) -> Result<Option<Account>, AccountError> {
        match self.lookup_id(identifier, now).await? {
            Some(id) => self.account(&id).await,
            None => Ok(None),
        }
    }

    async fn lookup_id(
        &self,
        identifier: &str,
        now: i64,
    ) -> Result<Option<AccountId>, AccountError> {
        let found = match Lookup::parse(identifier, now) {
            Some(Lookup::Document(doc)) => {
                self.store
                    .account_id_by_document(&self.document_index(&doc).0)
                    .await?
            }
            Some(Lookup::Phone(phone)) => {
                self.store
                    .account_id_by_phone(&self.phone_index(&phone).0)
                    .await?
            }
            None => None,
        };
        found
            .map(|id| AccountId::parse(&id).map_err(|e| StoreError::Corrupt(e.0).into()))
            .transpose()
    }

    /// A document of another kind (travel permit, passport).
    pub async fn find_by_document(
        &self,
        document: &Document,
    ) -> Result<Option<Account>, AccountError> {
        match self
            .store
            .account_id_by_document(&self.document_index(document).0)
            .await?
        {
            Some(id) => {
                self.account(&AccountId::parse(&id).map_err(|e| StoreError::Corrupt(e.0))?)
                    .await
            }
            None => Ok(None),
        }
    }

    /// Password login with lockout (DOMAIN.md §5): after `lockout_threshold` consecutive failures
    /// the account (or, for an unknown identifier, the identifier) is locked for `lockout_secs`.
    /// Unknown identifiers cost one full hash and answer exactly as a wrong password does. A legacy
    /// or outdated hash is replaced by argon2id on success.
    pub async fn login(
        &self,
        identifier: &str,
        password: &Password,
        now: i64,
    ) -> Result<Account, LoginError> {
        let store_err = |e: AccountError| LoginError::Store(e.to_string());
        let found = self.lookup_id(identifier, now).await.map_err(store_err)?;
        let subject = self.subject(found.as_ref(), identifier, now);
        if let Some(until) = self.locked_until(&subject, now).await? {
            return Err(LoginError::LockedOut {
                until,
                started: false,
            });
        }
        let stored = match &found {
            Some(id) => self
                .store
                .password_hash(id.as_str())
                .await
                .map_err(|e| LoginError::Store(e.to_string()))?,
            None => None,
        };
        let verdict = self
            .hasher
            .verify(password, stored.as_deref())
            .await
            .map_err(|e| LoginError::Busy(e.to_string()))?;
        let (Some(id), Some(stored), true) = (found, stored, verdict.matches) else {
            return Err(self.record_failure(&subject, now).await);
        };
        let _ = self.ephemeral.delete(&failures_key(&subject)).await;
        let account = self
            .account(&id)
            .await
            .map_err(store_err)?
            .ok_or(LoginError::InvalidCredentials)?;
        match account.status {
            AccountStatus::Active => {}
            other => return Err(LoginError::Unavailable(other.as_str())),
        }
        if verdict.needs_rehash {
            match self.hasher.hash(password).await {
                Ok(fresh) => {
                    if let Err(e) = self
                        .store
                        .replace_password_hash(id.as_str(), &stored, &fresh)
                        .await
                    {
                        tracing::warn!(account = %id, error = %e, "could not upgrade the password hash");
                    }
                }
                Err(e) => {
                    tracing::warn!(account = %id, error = %e, "could not upgrade the password hash")
                }
            }
        }
        Ok(account)
    }

    /// Whom a login attempt counts against: `a:<account id>`, or for an unknown identifier
    /// `i:<keyed hash>` (never the number itself: this goes to logs and the audit log).
    fn subject(&self, found: Option<&AccountId>, identifier: &str, now: i64) -> String {
        match (found, Lookup::parse(identifier, now)) {
            (Some(id), _) => format!("a:{id}"),
            (None, Some(lookup)) => format!("i:{}", lookup.index(self).hex()),
            (None, None) => format!(
                "i:{}",
                self.pii
                    .blind_index("login-identifier", identifier.trim())
                    .hex()
            ),
        }
    }

    /// The subject a login with `identifier` counts against (for the audit record of a failure).
    pub async fn login_subject(&self, identifier: &str, now: i64) -> Result<String, AccountError> {
        let found = self.lookup_id(identifier, now).await?;
        Ok(self.subject(found.as_ref(), identifier, now))
    }

    async fn locked_until(&self, subject: &str, now: i64) -> Result<Option<i64>, LoginError> {
        let lock = self
            .ephemeral
            .get(&lock_key(subject))
            .await
            .map_err(|e| LoginError::Store(e.to_string()))?;
        let until = lock.and_then(|v| std::str::from_utf8(&v).ok()?.parse::<i64>().ok());
        Ok(until.filter(|&until| now < until))
    }

    async fn record_failure(&self, subject: &str, now: i64) -> LoginError {
        let window = Duration::from_secs(self.passwords.lockout_secs);
        let failures = match self
            .ephemeral
            .increment(&failures_key(subject), window)
            .await
        {
            Ok(n) => n,
            Err(e) => return LoginError::Store(e.to_string()),
        };
        if failures >= i64::from(self.passwords.lockout_threshold) {
            let until = now + self.passwords.lockout_secs as i64;
            // The record outlives its own deadline a little; `now` decides, the TTL only cleans up.
            let ttl = window + Duration::from_secs(60);
            if let Err(e) = self
                .ephemeral
                .put(&lock_key(subject), until.to_string().as_bytes(), ttl)
                .await
            {
                return LoginError::Store(e.to_string());
            }
            let _ = self.ephemeral.delete(&failures_key(subject)).await;
            tracing::info!(subject = %subject, until, "login locked after repeated failures");
            return LoginError::LockedOut {
                until,
                started: true,
            };
        }
        LoginError::InvalidCredentials
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
            .store
            .password_hash(id.as_str())
            .await?
            .into_iter()
            .collect();
        recent.extend(
            self.store
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
        self.store
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
        self.store.update_account(&record).await?;
        Ok(account)
    }

    /// Adds a document to an account (merging a legacy record that brought another document).
    pub async fn add_document(
        &self,
        id: &AccountId,
        document: &Document,
        now: i64,
    ) -> Result<(), AccountError> {
        self.store
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
            .store
            .add_legacy_id(&self.legacy_record(id, source, user_id))
            .await?)
    }

    fn legacy_record(&self, id: &AccountId, source: &str, user_id: &str) -> LegacyIdRecord {
        let index = self.legacy_index(source, user_id);
        LegacyIdRecord {
            source: source.to_owned(),
            user_index: index.0.to_vec(),
            user_sealed: self.pii.seal(&legacy_context(source, &index), user_id),
            account_id: id.as_str().to_owned(),
            pii_version: i64::from(self.pii.active_version()),
        }
    }

    fn legacy_index(&self, source: &str, user_id: &str) -> BlindIndex {
        self.pii
            .blind_index(LEGACY_USER, &format!("{source}\u{0}{user_id}"))
    }

    /// The account that was `user_id` in `source`.
    pub async fn by_legacy_id(
        &self,
        source: &str,
        user_id: &str,
    ) -> Result<Option<AccountId>, AccountError> {
        let found = self
            .store
            .account_id_by_legacy_id(source, &self.legacy_index(source, user_id).0)
            .await?;
        found
            .map(|id| AccountId::parse(&id).map_err(|e| StoreError::Corrupt(e.0).into()))
            .transpose()
    }

    /// The `(source, user id)` pairs an account had in department systems.
    pub async fn legacy_ids(&self, id: &AccountId) -> Result<Vec<(String, String)>, AccountError> {
        let mut out = Vec::new();
        for r in self.store.legacy_ids(id.as_str()).await? {
            let index: [u8; 32] = r
                .user_index
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::Corrupt("legacy index".into()))?;
            let user = self
                .pii
                .open(
                    &legacy_context(&r.source, &BlindIndex(index)),
                    &r.user_sealed,
                )
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            out.push((r.source, user));
        }
        Ok(out)
    }

    /// Re-seals up to `batch` rows of each table that are not under the active key version;
    /// returns how many were re-sealed (0 when done). Rows changed meanwhile are left for the next
    /// batch, so it runs beside live traffic.
    pub async fn reseal_batch(&self, batch: i64) -> Result<u64, AccountError> {
        let version = i64::from(self.pii.active_version());
        let mut done = 0;
        for a in self.store.accounts_sealed_otherwise(version, batch).await? {
            let Some(sealed) = &a.phone_sealed else {
                continue;
            };
            let context = phone_context(&a.id);
            let plain = self
                .pii
                .open(&context, sealed)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if self
                .store
                .reseal_phone(&a.id, sealed, &self.pii.seal(&context, &plain), version)
                .await?
            {
                done += 1;
            }
        }
        for d in self
            .store
            .documents_sealed_otherwise(version, batch)
            .await?
        {
            let index: [u8; 32] = d
                .number_index
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::Corrupt("document index".into()))?;
            let context = document_context(&BlindIndex(index));
            let number = self
                .pii
                .open(&context, &d.number_sealed)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let alias = match &d.alias_sealed {
                Some(s) => Some(
                    self.pii
                        .open(&format!("{context}:alias"), s)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                ),
                None => None,
            };
            let number_sealed = self.pii.seal(&context, &number);
            let alias_sealed = alias.map(|a| self.pii.seal(&format!("{context}:alias"), &a));
            if self
                .store
                .reseal_document(
                    &d.number_index,
                    &number_sealed,
                    alias_sealed.as_deref(),
                    version,
                )
                .await?
            {
                done += 1;
            }
        }
        for r in self
            .store
            .legacy_ids_sealed_otherwise(version, batch)
            .await?
        {
            let index: [u8; 32] = r
                .user_index
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::Corrupt("legacy index".into()))?;
            let context = legacy_context(&r.source, &BlindIndex(index));
            let user = self
                .pii
                .open(&context, &r.user_sealed)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if self
                .store
                .reseal_legacy_id(
                    &r.source,
                    &r.user_index,
                    &self.pii.seal(&context, &user),
                    version,
                )
                .await?
            {
                done += 1;
            }
        }
        Ok(done)
    }

    /// Registers an organisation by credit code.
    pub async fn create_org(
        &self,
        id: OrgId,
        code: CreditCode,
        name: &str,
        now: i64,
    ) -> Result<Organisation, AccountError> {
        let org = Organisation::new(id, code, name, now)?;
        self.store.create_org(&org).await?;
        Ok(org)
    }

    /// Grants a role checked by `Membership::grant`. An administrator is authorised by the legal
    /// representative, an agent by the legal representative or an administrator: the grantor, when
    /// named, must hold such a role in `org` now.
    pub async fn grant(
        &self,
        org: &Organisation,
        m: Membership,
        now: i64,
    ) -> Result<Membership, AccountError> {
        if m.org_id != org.id {
            return Err(IdentifierError("the membership names another organisation".into()).into());
        }
        if self.store.account(m.account_id.as_str()).await?.is_none() {
            return Err(AccountError::NotFound(format!("account {}", m.account_id)));
        }
        if let Some(grantor) = &m.granted_by {
            let allowed: &[Role] = match m.role {
                Role::LegalRepresentative => &[],
                Role::Administrator => &[Role::LegalRepresentative],
                Role::Agent => &[Role::LegalRepresentative, Role::Administrator],
            };
            let holds = self
                .store
                .memberships_of(grantor)
                .await?
                .into_iter()
                .any(|held| {
                    held.org_id == org.id && held.is_active(now) && allowed.contains(&held.role)
                });
            if !holds {
                return Err(IdentifierError(format!(
                    "account {grantor} cannot grant the {} role in this organisation",
                    m.role.as_str()
                ))
                .into());
            }
        }
        self.store.grant(&m).await?;
        Ok(m)
    }
}

/// What a login identifier is.
enum Lookup {
    Document(Document),
    Phone(Phone),
}

impl Lookup {
    fn parse(identifier: &str, now: i64) -> Option<Self> {
        let trimmed = identifier.trim();
        match Phone::parse(trimmed) {
            Ok(phone) => Some(Self::Phone(phone)),
            Err(_) => Document::national(trimmed, now).ok().map(Self::Document),
        }
    }

    fn index(&self, ids: &Identities) -> BlindIndex {
        match self {
            Self::Document(d) => ids.document_index(d),
            Self::Phone(p) => ids.phone_index(p),
        }
    }
}

fn phone_context(account_id: &str) -> String {
    format!("accounts.phone:{account_id}")
}

fn document_context(index: &BlindIndex) -> String {
    format!("account_documents.number:{}", index.hex())
}

fn legacy_context(source: &str, index: &BlindIndex) -> String {
    format!("legacy_ids.user:{source}:{}", index.hex())
}

fn failures_key(subject: &str) -> String {
    format!("login:failures:{subject}")
}

fn lock_key(subject: &str) -> String {
    format!("login:lock:{subject}")
}
