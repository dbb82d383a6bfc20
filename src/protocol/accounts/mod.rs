//! Accounts, passwords and organisations: the rules between the domain types and the store ports,
//! by concern: sealing and opening records (`seal.rs`), password login with lockout (`login.rs`),
//! administration (`admin.rs`), organisations (`orgs.rs`) and re-sealing under a new key version
//! (`reseal.rs`). This file holds the types and the look-ups.
//!
//! Personal numbers are sealed and blind-indexed here before they reach a store, and opened here
//! when read back. Password checks run on the bounded hashing pool; lockout counts live in the
//! ephemeral store so they hold across nodes. Time comes in as `now`; nothing here reads a clock.

mod admin;
mod login;
mod orgs;
mod reseal;
mod seal;

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
use crate::store::{
    AccountRecord, AccountStore, DocumentRecord, Ephemeral, LegacyIdRecord, OrgStore, StoreError,
};

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
#[derive(Debug, thiserror::Error)]
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
    #[error(transparent)]
    Busy(HashError),
    #[error("the server could not check the password")]
    Store(#[source] AccountError),
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

impl NewAccount {
    /// The active account this description makes, created at `now`.
    fn into_account(self, id: AccountId, now: i64) -> Account {
        Account {
            id,
            name: self.name,
            documents: self.documents,
            phone: self.phone,
            email: self.email,
            evidence: self.evidence,
            status: AccountStatus::Active,
            created_at: now,
            updated_at: now,
        }
    }
}

/// Accounts and organisations over the stores, with the keys and policy they need.
pub struct Identities {
    pub accounts: Arc<dyn AccountStore>,
    pub orgs: Arc<dyn OrgStore>,
    pub ephemeral: Arc<dyn Ephemeral>,
    pub pii: Arc<Pii>,
    pub hasher: Arc<PasswordHasher>,
    pub passwords: PasswordsConfig,
}

impl Identities {
    /// The password policy of this deployment (docs/security.md).
    pub fn policy(&self) -> PasswordPolicy {
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

    pub async fn account(&self, id: &AccountId) -> Result<Option<Account>, AccountError> {
        let Some(record) = self.accounts.account(id.as_str()).await? else {
            return Ok(None);
        };
        let documents = self.accounts.account_documents(id.as_str()).await?;
        Ok(Some(self.open(record, documents)?))
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
                self.accounts
                    .account_id_by_document(&self.document_index(&doc).0)
                    .await?
            }
            Some(Lookup::Phone(phone)) => {
                self.accounts
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
            .accounts
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
