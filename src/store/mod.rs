//! Storage ports and their adapters.
//!
//! - The durable ports, one per concern ([`ClientStore`], [`AccountStore`], [`OrgStore`],
//!   [`KeyStore`], [`ConsentStore`], [`RefreshStore`], [`OutboxStore`], [`SessionStore`],
//!   [`AuditStore`], [`RevocationStore`]), and [`Store`], all of them with the lifecycle, for the composition root.
//!   Adapters: [`sqlite`], [`postgres`], sharing the portable SQL and row types of [`sql`] and the
//!   code in `sql_engine/`, compiled once per engine.
//! - [`Ephemeral`]: values with a time to live, atomic one-time take, counters with expiry and
//!   publish/subscribe between nodes. Adapters: [`memory`] (in-process) and [`redis`].
//!
//! Only `app/` (and the CLI's `Admin`) names an adapter; every other consumer holds the ports it
//! uses. Adapters keep their own timers for TTLs; they hold no protocol rules.

use async_trait::async_trait;

use crate::domain::account::AccountId;
use crate::domain::client::{Client, ClientId};
use crate::domain::identifiers::CreditCode;
use crate::domain::organisation::{Membership, OrgId, Organisation, Role};

pub mod client_cache;
mod ephemeral;
pub mod memory;
pub mod postgres;
pub mod redis;
pub mod sql;
pub mod sqlite;

pub use ephemeral::{Ephemeral, Notice, Subscription};

/// Any error, as the source of a [`StoreError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A storage failure. `Conflict` and `NotFound` are outcomes callers act on; `Unavailable` means the
/// backend did not answer; `Corrupt` means stored data no longer parses (a bug or tampering);
/// `Backend` is any other failure. The driver's error, where there is one, is the `source`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} already exists")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    #[error("backend unavailable: {context}")]
    Unavailable {
        context: String,
        #[source]
        source: Option<BoxError>,
    },
    #[error("{context}")]
    Backend {
        context: String,
        #[source]
        source: Option<BoxError>,
    },
}

impl StoreError {
    /// A backend failure: what was being done, and the driver's error.
    pub fn backend(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Backend {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// The backend did not answer.
    pub fn unavailable(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Unavailable {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// A failure with no underlying error.
    pub fn failed(context: impl Into<String>) -> Self {
        Self::Backend {
            context: context.into(),
            source: None,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The durable store: the narrow ports below plus lifecycle. Every adapter passes
/// `tests/store_contract.rs`.
#[async_trait]
pub trait Store:
    ClientStore
    + AccountStore
    + OrgStore
    + KeyStore
    + ConsentStore
    + RefreshStore
    + OutboxStore
    + SessionStore
    + AuditStore
    + RevocationStore
    + FactorStore
    + AdminStore
    + Send
    + Sync
    + 'static
{
    /// `"sqlite"` or `"postgres"`: for logs, metrics and `/readyz`.
    fn backend(&self) -> &'static str;
    /// A round trip to the database.
    async fn ping(&self) -> StoreResult<()>;
    /// Applies the pending embedded migrations of this engine.
    async fn migrate(&self) -> StoreResult<()>;
    /// Closes the pool, waiting for checked-out connections to come back.
    async fn close(&self);
}

/// An `admin_roles` row: an account's administrator role (docs/administration.md).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AdminRoleRecord {
    pub account_id: String,
    /// `system`, `security`, `audit` or `department`.
    pub role: String,
    /// A department administrator's department (unified social credit code).
    pub department: Option<String>,
    pub granted_at: i64,
    /// Who granted it: `operator` (the CLI) or an administrator's account id.
    pub granted_by: String,
}

/// Administrator roles. An account holds one at most: a second grant is a `Conflict`.
#[async_trait]
pub trait AdminStore: Send + Sync {
    async fn grant_role(&self, record: &AdminRoleRecord) -> StoreResult<()>;
    /// Removes an account's role; false when it held none.
    async fn revoke_role(&self, account_id: &str) -> StoreResult<bool>;
    async fn role_of(&self, account_id: &str) -> StoreResult<Option<AdminRoleRecord>>;
    /// Every administrator, by role then account.
    async fn admin_roles(&self) -> StoreResult<Vec<AdminRoleRecord>>;
}

/// An `account_factors` row: a second factor of an account (docs/assurance.md).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FactorRecord {
    pub id: String,
    pub account_id: String,
    /// `totp` or `passkey`.
    pub kind: String,
    /// What the person called it.
    pub label: String,
    /// A passkey's credential id (base64url).
    pub credential_id: Option<String>,
    /// The TOTP secret or the passkey, sealed.
    pub secret: Vec<u8>,
    /// The last accepted TOTP time step, or a passkey's signature counter.
    pub counter: i64,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// Second factors, recovery codes and who must use two factors.
#[async_trait]
pub trait FactorStore: Send + Sync {
    /// An account's factors, oldest first.
    async fn factors_of(&self, account_id: &str) -> StoreResult<Vec<FactorRecord>>;
    async fn factor_by_credential(&self, credential_id: &str) -> StoreResult<Option<FactorRecord>>;
    async fn add_factor(&self, factor: &FactorRecord) -> StoreResult<()>;
    /// Removes one of the account's factors; `false` when it has no such factor.
    async fn remove_factor(&self, account_id: &str, id: &str) -> StoreResult<bool>;
    /// Moves a factor's counter to `counter` if that is later than the stored one (a passkey whose
    /// counter stays at 0 on both sides also passes: RFC-less authenticators that keep none); `false`
    /// when not: a replayed TOTP step, or a cloned authenticator. Atomic across nodes.
    async fn advance_factor(
        &self,
        id: &str,
        counter: i64,
        backup_state: bool,
        now: i64,
    ) -> StoreResult<bool>;
    /// Replaces the account's recovery codes by these keyed hashes.
    async fn replace_recovery_codes(
        &self,
        account_id: &str,
        hashes: &[Vec<u8>],
        now: i64,
    ) -> StoreResult<()>;
    /// Spends one recovery code: `Some(true)` when it was unused, `Some(false)` when already
    /// spent, `None` when the account has no such code.
    async fn spend_recovery_code(
        &self,
        account_id: &str,
        hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<bool>>;
    /// Unused recovery codes of an account.
    async fn recovery_codes_left(&self, account_id: &str) -> StoreResult<i64>;
    /// Sets or clears the rule that this account signs in with two factors.
    async fn set_second_factor_required(
        &self,
        account_id: &str,
        required: bool,
        now: i64,
    ) -> StoreResult<()>;
    async fn second_factor_required(&self, account_id: &str) -> StoreResult<bool>;
}

/// Registered OAuth clients.
#[async_trait]
pub trait ClientStore: Send + Sync {
    /// Registers a client; `Conflict` when its id is taken.
    async fn insert_client(&self, client: &Client) -> StoreResult<()>;
    /// Replaces a registered client; `NotFound` when there is none with that id.
    async fn update_client(&self, client: &Client) -> StoreResult<()>;
    async fn client(&self, id: &ClientId) -> StoreResult<Option<Client>>;
    /// All clients, ordered by id.
    async fn clients(&self) -> StoreResult<Vec<Client>>;
    /// Deletes a client; `false` when there was none.
    async fn delete_client(&self, id: &ClientId) -> StoreResult<bool>;
    /// Keeps a new initial access token (RFC 7591 §3; by its hash).
    async fn insert_registration_token(&self, token: &RegistrationToken) -> StoreResult<()>;
    /// The token with this hash, if unused and unexpired at `now` (read only).
    async fn registration_token(
        &self,
        hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<RegistrationToken>>;
    /// Uses the token with this hash for `client_id`, once: the token as it was issued, when it was
    /// unused and unexpired at `now`; `None` otherwise.
    async fn use_registration_token(
        &self,
        hash: &[u8],
        client_id: &str,
        now: i64,
    ) -> StoreResult<Option<RegistrationToken>>;
}

/// An initial access token an administrator issued for Dynamic Client Registration
/// (`registration_tokens`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RegistrationToken {
    /// SHA-256 of the token.
    pub hash: Vec<u8>,
    /// The department the registered client will belong to (its credit code); `None`: the platform.
    pub department: Option<String>,
    pub issued_by: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub client_id: Option<String>,
}

/// Reads a registered client: the store itself, or the in-memory registry in front of it
/// ([`client_cache::ClientCache`]). The protocol reads clients through this port only.
#[async_trait]
pub trait ClientLookup: Send + Sync {
    async fn client(&self, id: &ClientId) -> StoreResult<Option<Client>>;
}

#[async_trait]
impl<T: ClientStore + ?Sized> ClientLookup for T {
    async fn client(&self, id: &ClientId) -> StoreResult<Option<Client>> {
        ClientStore::client(self, id).await
    }
}

/// An `accounts` row: personal numbers only sealed and blind-indexed (see `crypto::pii`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AccountRecord {
    pub id: String,
    pub name: String,
    pub phone_index: Option<Vec<u8>>,
    pub phone_sealed: Option<Vec<u8>>,
    pub email: Option<String>,
    pub level: i64,
    pub proof_method: String,
    pub proof_source: String,
    pub proof_at: i64,
    pub status: String,
    pub pii_version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An `account_documents` row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DocumentRecord {
    pub number_index: Vec<u8>,
    pub account_id: String,
    pub kind: String,
    pub country: String,
    pub number_sealed: Vec<u8>,
    pub alias_index: Option<Vec<u8>>,
    pub alias_sealed: Option<Vec<u8>>,
    pub pii_version: i64,
    pub created_at: i64,
}

/// A `legacy_ids` row: which user of which department system an account was.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LegacyIdRecord {
    pub source: String,
    pub user_index: Vec<u8>,
    pub user_sealed: Vec<u8>,
    pub account_id: String,
    pub pii_version: i64,
}

/// An `account_agreements` row: a document a person agreed to (`terms`, `privacy`,
/// `sensitive_pi`), in which version, when.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AgreementRecord {
    pub account_id: String,
    pub kind: String,
    pub version: String,
    pub agreed_at: i64,
}

/// Person accounts, their documents, passwords and legacy ids. Ids are account ids as text;
/// look-ups by personal number go through blind indexes.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Creates an account with its documents, optional password hash, legacy ids and agreements,
    /// all or nothing. `Conflict` names what is taken: "document", "phone", "legacy id" or
    /// "account".
    async fn create_account(
        &self,
        account: &AccountRecord,
        documents: &[DocumentRecord],
        password_hash: Option<&str>,
        legacy_ids: &[LegacyIdRecord],
        agreements: &[AgreementRecord],
    ) -> StoreResult<()>;
    /// Deletes an account and everything that hangs from it (documents, password, agreements,
    /// consents, sessions, refresh tokens); `false` when there was none. The audit log keeps the id.
    async fn delete_account(&self, id: &str) -> StoreResult<bool>;
    /// Accounts closed (status `closed`) and unchanged since before `before`: due for erasure.
    async fn closed_before(&self, before: i64, limit: i64) -> StoreResult<Vec<String>>;
    /// What the account agreed to, oldest first.
    async fn agreements(&self, account_id: &str) -> StoreResult<Vec<AgreementRecord>>;
    /// Records an agreement given after registration (the face-verification consent); agreeing to
    /// the same version again moves its time.
    async fn add_agreement(&self, agreement: &AgreementRecord) -> StoreResult<()>;
    async fn account(&self, id: &str) -> StoreResult<Option<AccountRecord>>;
    async fn account_documents(&self, id: &str) -> StoreResult<Vec<DocumentRecord>>;
    /// The account holding a document, by the index of its number or of its legacy alias.
    async fn account_id_by_document(&self, index: &[u8]) -> StoreResult<Option<String>>;
    async fn account_id_by_phone(&self, index: &[u8]) -> StoreResult<Option<String>>;
    /// A page of accounts ordered by id, after `after`.
    async fn accounts(&self, after: Option<&str>, limit: i64) -> StoreResult<Vec<AccountRecord>>;
    /// Replaces the mutable columns; `NotFound`, or `Conflict("phone")`.
    /// Accounts whose name starts with `prefix`, by name then id, after the cursor `after`
    /// (name, id), at most `limit`: an indexed range scan whatever the number of accounts.
    async fn accounts_by_name(
        &self,
        prefix: &str,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> StoreResult<Vec<AccountRecord>>;
    async fn update_account(&self, account: &AccountRecord) -> StoreResult<()>;
    /// Adds a document to an existing account; `Conflict("document")` when any account holds it.
    async fn add_document(&self, document: &DocumentRecord) -> StoreResult<()>;

    async fn password_hash(&self, account_id: &str) -> StoreResult<Option<String>>;
    /// Hashes of earlier passwords, newest first.
    async fn password_history(&self, account_id: &str) -> StoreResult<Vec<String>>;
    /// Sets a new password hash; the one it replaces joins the history, which keeps
    /// `keep_previous` entries.
    async fn set_password(
        &self,
        account_id: &str,
        hash: &str,
        now: i64,
        keep_previous: i64,
    ) -> StoreResult<()>;
    /// Replaces `old` by `new` (a re-hash of the same password) unless the password changed
    /// meanwhile; `true` when replaced.
    async fn replace_password_hash(
        &self,
        account_id: &str,
        old: &str,
        new: &str,
    ) -> StoreResult<bool>;

    /// Records a legacy id: `true` when new, `false` when the account already had it,
    /// `Conflict("legacy id")` when another account has it.
    async fn add_legacy_id(&self, record: &LegacyIdRecord) -> StoreResult<bool>;
    async fn account_id_by_legacy_id(
        &self,
        source: &str,
        user_index: &[u8],
    ) -> StoreResult<Option<String>>;
    async fn legacy_ids(&self, account_id: &str) -> StoreResult<Vec<LegacyIdRecord>>;

    /// Rows sealed under another version than `version`, for re-sealing in batches.
    async fn accounts_sealed_otherwise(
        &self,
        version: i64,
        limit: i64,
    ) -> StoreResult<Vec<AccountRecord>>;
    async fn documents_sealed_otherwise(
        &self,
        version: i64,
        limit: i64,
    ) -> StoreResult<Vec<DocumentRecord>>;
    async fn legacy_ids_sealed_otherwise(
        &self,
        version: i64,
        limit: i64,
    ) -> StoreResult<Vec<LegacyIdRecord>>;
    /// Writes re-sealed values, only where the row still holds what was read (`expected`).
    async fn reseal_phone(
        &self,
        id: &str,
        expected: &[u8],
        sealed: &[u8],
        version: i64,
    ) -> StoreResult<bool>;
    async fn reseal_document(
        &self,
        number_index: &[u8],
        number_sealed: &[u8],
        alias_sealed: Option<&[u8]>,
        version: i64,
    ) -> StoreResult<bool>;
    async fn reseal_legacy_id(
        &self,
        source: &str,
        user_index: &[u8],
        sealed: &[u8],
        version: i64,
    ) -> StoreResult<bool>;
}

/// A `signing_keys` row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub alg: String,
    pub private_sealed: Vec<u8>,
    pub created_at: i64,
    pub not_before: i64,
    pub retired_at: Option<i64>,
    /// Withdrawn at once: not loaded at all from then on.
    pub revoked_at: Option<i64>,
}

/// Token signing keys.
#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()>;
    /// Every key, retired or not.
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>>;
    /// Withdraws a key at `at`: it stops signing, publishing and verifying; `false` when there is
    /// no such key.
    async fn revoke_signing_key(&self, kid: &str, at: i64) -> StoreResult<bool>;
    /// Stops a key signing at `at` (kept when already earlier); `false` when there is no such key.
    async fn retire_signing_key(&self, kid: &str, at: i64) -> StoreResult<bool>;
    /// The key root wrapped under the master key (`crypto::MasterKey::wrap_root`), once set.
    async fn key_root(&self) -> StoreResult<Option<Vec<u8>>>;
    /// Stores `wrapped` as the key root: when `replacing` is `None`, only if none is set yet; else
    /// only if the stored one is still `replacing`. `false` when another writer came first.
    async fn put_key_root(
        &self,
        wrapped: &[u8],
        replacing: Option<&[u8]>,
        at: i64,
    ) -> StoreResult<bool>;
}

/// A `refresh_tokens` row. `grant_json` is the grant the family stands for (scopes, session data),
/// opaque to the store.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RefreshRecord {
    pub token_hash: Vec<u8>,
    pub family_id: String,
    pub client_id: String,
    pub account_id: String,
    pub grant_json: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub family_expires_at: i64,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// What happened when a refresh token was presented for rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// It was live and is now used: the caller issues its successor.
    Rotated(RefreshRecord),
    /// It had been used before: its family is now revoked (RFC 9700 §4.14.2).
    Reused(RefreshRecord),
    /// Unknown, revoked or expired.
    Invalid,
}

/// Refresh-token families.
#[async_trait]
pub trait RefreshStore: Send + Sync {
    /// Adds a token to its family; `Conflict` when the family has been revoked (a reuse), so a
    /// rotation that raced the reuse cannot leave a live token behind.
    async fn insert_refresh(&self, record: &RefreshRecord) -> StoreResult<()>;
    /// Marks a live token used (atomically: of two concurrent uses one rotates, the other is a
    /// reuse), or revokes its family when it was used already.
    async fn rotate_refresh(&self, token_hash: &[u8], now: i64) -> StoreResult<Rotation>;
    async fn refresh(&self, token_hash: &[u8]) -> StoreResult<Option<RefreshRecord>>;
    /// Revokes every token of a family; the number revoked.
    async fn revoke_family(&self, family_id: &str, now: i64) -> StoreResult<u64>;
    /// An account's live refresh tokens at `now` (not used, not revoked, not expired).
    async fn live_refresh_of(&self, account_id: &str, now: i64) -> StoreResult<Vec<RefreshRecord>>;
    /// Revokes every live refresh token of an account at one client (consent withdrawn); how many.
    async fn revoke_client_refresh(
        &self,
        account_id: &str,
        client_id: &str,
        now: i64,
    ) -> StoreResult<u64>;
    /// Revokes every live refresh token of an account (its password changed); the number revoked.
    async fn revoke_account_refresh(&self, account_id: &str, now: i64) -> StoreResult<u64>;
}

/// Revoked access tokens, by `jti`, until they would have expired (RFC 7009 §2: "the revocation
/// ... takes effect" and holds; security review 8: kept durably, not only in the cache).
#[async_trait]
pub trait RevocationStore: Send + Sync {
    /// Records the revocation of `jti` until `expires_at` (recording it again changes nothing).
    async fn revoke_token(&self, jti: &str, expires_at: i64) -> StoreResult<()>;
    /// Whether `jti` is revoked (its record not yet past `expires_at` at `now`).
    async fn token_revoked(&self, jti: &str, now: i64) -> StoreResult<bool>;
    /// Deletes records that expired before `before`; how many.
    async fn prune_revoked(&self, before: i64) -> StoreResult<u64>;
}

/// A `logout_outbox` row: one logout to deliver, a back-channel logout token (`kind`
/// `backchannel`) or a CAS `LogoutRequest` (`cas`, naming the service ticket `session_index`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxRecord {
    pub id: String,
    pub client_id: String,
    pub uri: String,
    pub sub: String,
    pub sid: Option<String>,
    /// `backchannel` or `cas`.
    pub kind: String,
    /// A CAS logout's service ticket (its `SessionIndex`).
    pub session_index: Option<String>,
    /// `pending`, `delivered` or `failed` (gave up).
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub claimed_until: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The durable back-channel logout outbox, shared by every node.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    async fn enqueue_logout(&self, record: &OutboxRecord) -> StoreResult<()>;
    /// Claims up to `limit` due pending deliveries until `now + lease_secs`; a row claimed by one
    /// node is not claimed by another before its lease ends.
    async fn claim_logouts(
        &self,
        now: i64,
        lease_secs: i64,
        limit: i64,
    ) -> StoreResult<Vec<OutboxRecord>>;
    /// Records an attempt's outcome and releases the claim.
    async fn settle_logout(&self, record: &OutboxRecord) -> StoreResult<()>;
    /// Every delivery for a client, newest first (operations and tests).
    async fn logout_deliveries(&self, client_id: &str) -> StoreResult<Vec<OutboxRecord>>;
    /// Remembers a CAS service ticket issued in a session, until the session ends (single logout);
    /// only the newest [`CAS_TICKETS_KEPT`] of a client in a session are kept.
    /// Returns the ephemeral-store keys of the tickets no longer kept, for the caller to forget.
    async fn remember_cas_ticket(&self, ticket: &CasTicketRecord) -> StoreResult<Vec<String>>;
    /// Queues a CAS `LogoutRequest` for each service ticket issued in the session `sid` (to
    /// `client_id` only, when given), to the service it was issued for, and forgets them; how many.
    /// Returns the forgotten tickets' ephemeral-store keys, for the caller to delete.
    async fn enqueue_cas_logouts(
        &self,
        sid: &str,
        client_id: Option<&str>,
        now: i64,
    ) -> StoreResult<Vec<String>>;
}

/// How many of a client's tickets a session keeps for single logout (the newest).
pub const CAS_TICKETS_KEPT: i64 = 20;

/// A CAS service ticket issued in a session (`cas_tickets`; `ticket` sealed by the caller).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CasTicketRecord {
    pub ticket: String,
    /// Where the ephemeral store keeps the ticket (`protocol::cas::stored_key`).
    pub stored_key: String,
    pub sid: String,
    pub client_id: String,
    pub service: String,
    pub created_at: i64,
}

/// What an audit search matches: each field given narrows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// From this time on (epoch ms, inclusive).
    pub since_ms: i64,
    /// Before this time (epoch ms, exclusive).
    pub until_ms: i64,
    pub event: Option<String>,
    pub actor: Option<String>,
    pub target: Option<String>,
    /// Records naming this client (a client's self-check: its last refusals).
    pub client_id: Option<String>,
    /// `success` or `failure`.
    pub result: Option<String>,
}

/// The audit chain (see `domain::audit`). No method updates a record; only retention
/// ([`AuditStore::prune_audit`]) deletes, up to a signed checkpoint.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends `events` (each with its time in epoch ms) as one batch in one transaction: locks the
    /// head, chains each record after it, inserts them, moves the head. Several writers (nodes, the
    /// CLI) interleave whole batches; the chain never forks.
    async fn append_audit(
        &self,
        node: &str,
        events: &[(crate::domain::audit::AuditEvent, i64)],
    ) -> StoreResult<Vec<crate::domain::audit::AuditRecord>>;
    /// The head: last sequence number and hash (0 and zeros when empty).
    async fn audit_head(&self) -> StoreResult<(i64, Vec<u8>)>;
    /// Records with `seq >= from`, in order, at most `limit`.
    async fn audit_records(
        &self,
        from: i64,
        limit: i64,
    ) -> StoreResult<Vec<crate::domain::audit::AuditRecord>>;
    /// Records whose actor is `id` or whose target is `id` or `subject`, with `seq < before`, newest
    /// first, at most `limit` (a person's history and disclosure ledger).
    async fn audit_about(
        &self,
        id: &str,
        subject: &str,
        before: i64,
        limit: i64,
    ) -> StoreResult<Vec<crate::domain::audit::AuditRecord>>;
    /// Records at or after `at_ms` with `seq > after`, in sequence order, at most `limit`.
    async fn audit_records_since(
        &self,
        at_ms: i64,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<crate::domain::audit::AuditRecord>>;
    /// Records matching `filter` with `seq < before`, newest first, at most `limit` (the audit
    /// administrator's search).
    async fn search_audit(
        &self,
        filter: &AuditFilter,
        before: i64,
        limit: i64,
    ) -> StoreResult<Vec<crate::domain::audit::AuditRecord>>;
    /// Records of `event` at or after `since_ms` that name a client, counted by client (tokens issued
    /// and sign-ins per client, for the reports).
    async fn count_by_client(&self, event: &str, since_ms: i64) -> StoreResult<Vec<(String, i64)>>;
    /// Stores a checkpoint; false when one exists at that sequence number already.
    async fn insert_checkpoint(
        &self,
        checkpoint: &crate::domain::audit::CheckpointRecord,
    ) -> StoreResult<bool>;
    async fn checkpoints(&self) -> StoreResult<Vec<crate::domain::audit::CheckpointRecord>>;
    /// The lowest sequence number kept (records below were pruned), if any record is kept.
    async fn audit_first(&self) -> StoreResult<Option<i64>>;
    /// Retention: deletes records before `keep_from` (a checkpointed record); how many.
    async fn prune_audit(&self, keep_from: i64) -> StoreResult<u64>;
}

/// One single sign-on session, durably (the live one is in the ephemeral store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The public session id (a hash of the cookie secret).
    pub sid: String,
    pub account_id: String,
    /// The channel of the client the person signed in at (web, app, kiosk, window, system).
    pub channel: String,
    /// The client the person signed in at.
    pub client_id: String,
    /// The clients that received tokens in the session.
    pub clients: Vec<String>,
    /// The peer address the login came from.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub level: i64,
    /// RFC 8176 methods, space-separated.
    pub amr: String,
    pub created_at: i64,
    /// Last sign-in to a service in this session (or last seen alive by the sweeper).
    pub last_seen_at: i64,
    /// The absolute limit.
    pub expires_at: i64,
    pub ended_at: Option<i64>,
    /// Why it ended: `logout`, `admin`, `password_changed`, `expired`, `replaced`.
    pub end_reason: Option<String>,
}

/// The durable session index.
#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn insert_session(&self, record: &SessionRecord) -> StoreResult<()>;
    /// Records the clients of an open session and that it was used at `now`.
    async fn touch_session(&self, sid: &str, clients: &[String], now: i64) -> StoreResult<()>;
    /// Records a step-up of an open session: its new level and methods.
    async fn raise_session(&self, sid: &str, level: i64, amr: &str, now: i64) -> StoreResult<()>;
    async fn session(&self, sid: &str) -> StoreResult<Option<SessionRecord>>;
    /// An account's sessions, newest first; ended ones only when `include_ended`.
    async fn sessions_of(
        &self,
        account_id: &str,
        include_ended: bool,
    ) -> StoreResult<Vec<SessionRecord>>;
    /// Ends an open session; the row when this call ended it, `None` when it was already ended or is
    /// unknown (so of two nodes ending one session, one fans out the logout).
    async fn end_session_record(
        &self,
        sid: &str,
        reason: &str,
        now: i64,
    ) -> StoreResult<Option<SessionRecord>>;
    /// Open sessions that may have expired by `now`: past their absolute limit or not seen for
    /// `idle_secs`; oldest first.
    async fn sessions_due(
        &self,
        now: i64,
        idle_secs: i64,
        limit: i64,
    ) -> StoreResult<Vec<SessionRecord>>;
    /// Sessions opened at or after `since`, counted by day in China Standard Time (the day's
    /// number since the epoch) and channel, in that order (the sign-ins report).
    async fn sign_ins_by_day(&self, since: i64) -> StoreResult<Vec<(i64, String, i64)>>;
    /// Open sessions not past their absolute limit at `now`, counted by channel.
    async fn open_sessions_by_channel(&self, now: i64) -> StoreResult<Vec<(String, i64)>>;
    /// The ids of sessions ended at or after `since` (nodes drop them from their live store).
    async fn sessions_ended_since(&self, since: i64) -> StoreResult<Vec<String>>;
    /// Deletes rows that ended before `before`; how many.
    async fn prune_sessions(&self, before: i64) -> StoreResult<u64>;
}

/// A `consents` row: what an account agreed to release to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRecord {
    pub client_id: String,
    pub scopes: Vec<String>,
    pub granted_at: i64,
}

/// Consent decisions, per account and client.
#[async_trait]
pub trait ConsentStore: Send + Sync {
    /// Every consent an account has given, newest first.
    async fn consents_of(&self, account_id: &str) -> StoreResult<Vec<ConsentRecord>>;
    /// Withdraws a consent; `false` when there was none.
    async fn delete_consent(&self, account_id: &str, client_id: &str) -> StoreResult<bool>;
    /// The scopes an account has agreed to release to a client.
    async fn consented_scopes(&self, account_id: &str, client_id: &str)
    -> StoreResult<Vec<String>>;
    /// Records (replaces) the scopes agreed to.
    async fn save_consent(
        &self,
        account_id: &str,
        client_id: &str,
        scopes: &[String],
        now: i64,
    ) -> StoreResult<()>;
}

/// Organisations and the roles people hold in them.
#[async_trait]
pub trait OrgStore: Send + Sync {
    /// `Conflict("organisation")` when the credit code is registered.
    async fn create_org(&self, org: &Organisation) -> StoreResult<()>;
    /// Registers an organisation and its first member (the legal representative) in one
    /// transaction: both or neither.
    async fn create_org_with(&self, org: &Organisation, first: &Membership) -> StoreResult<()>;
    async fn org(&self, id: &OrgId) -> StoreResult<Option<Organisation>>;
    async fn org_by_code(&self, code: &CreditCode) -> StoreResult<Option<Organisation>>;
    async fn orgs(&self, after: Option<&str>, limit: i64) -> StoreResult<Vec<Organisation>>;
    async fn update_org(&self, org: &Organisation) -> StoreResult<()>;
    /// Grants or replaces a role; `Conflict("legal representative")` when the organisation has
    /// another one.
    async fn grant(&self, membership: &Membership) -> StoreResult<()>;
    async fn members(&self, org: &OrgId) -> StoreResult<Vec<Membership>>;
    async fn memberships_of(&self, account: &AccountId) -> StoreResult<Vec<Membership>>;
    async fn revoke(&self, org: &OrgId, account: &AccountId, role: Role) -> StoreResult<bool>;
}
