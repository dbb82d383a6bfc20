//! The tamper-evident audit log (docs/security.md): what an event records, how a record is encoded and
//! chained, and how a chain is verified. Pure: the writer task (app.rs) and the store adapters do
//! the I/O; `protocol::audit` is the port requests hand events to.
//!
//! Chain: `hash = SHA-256(prev_hash || canonical(record))`, where `canonical` is every field but the
//! hashes in a fixed order, each as a 4-byte big-endian length and its bytes (an absent field is
//! length 0xFFFFFFFF), so no two different records encode alike. The first record's `prev_hash` is
//! 32 zero bytes. Anyone with database access could recompute the hashes after a change; signed
//! checkpoints (`seq`, `hash`) close that gap, so a rewrite or a truncation behind a checkpoint shows.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// What happened. The names are stable: they are what an auditor filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    LoginSuccess,
    LoginFailure,
    Lockout,
    SessionEnd,
    ConsentGiven,
    ConsentRefused,
    CodeIssued,
    TokenIssued,
    TokenRefreshed,
    RefreshReuse,
    CodeReplay,
    TokenRevoked,
    ClientAuthFailure,
    AttributeRelease,
    AdminClient,
    AdminAccount,
    AdminOrganisation,
    AdminKeys,
    AdminSession,
    AuditPruned,
    IdNumberLookup,
    RateLimited,
    SmsCodeSent,
    Registration,
    PasswordReset,
    PhoneChange,
    AccountUnlock,
    PasswordChange,
    ConsentWithdrawn,
    OrgRegistered,
    RoleGranted,
    RoleRevoked,
    AccountClosed,
    AccountErased,
    /// A second factor enrolled (TOTP, passkey) or recovery codes issued.
    FactorEnrolled,
    /// A second factor used, successfully or not (replays and cloned authenticators included).
    FactorUsed,
    FactorRemoved,
    /// A session's level raised by a second factor or a proofing step.
    StepUp,
    /// An account's real-name level raised by a proofing check (face verification).
    Proofing,
    /// A device grant's user code that named nothing (RFC 8628; approvals are `consent_given`).
    DeviceApproval,
    /// A sign-in QR code confirmed or refused in the app.
    QrLogin,
    /// An identity code redeemed by a service window, or refused.
    IdentityCode,
    /// An administrator's read (a listing, a search, the audit log, the settings) or a refused
    /// administrator action (docs/administration.md: every action is audited, reads included).
    AdminRead,
    /// An administrator role granted or revoked.
    AdminRole,
    /// A CAS service ticket refused at validation (its error code is the reason); a ticket
    /// validated is an `attribute_release` via `cas`.
    CasTicket,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoginSuccess => "login_success",
            Self::LoginFailure => "login_failure",
            Self::Lockout => "lockout",
            Self::SessionEnd => "session_end",
            Self::ConsentGiven => "consent_given",
            Self::ConsentRefused => "consent_refused",
            Self::CodeIssued => "code_issued",
            Self::TokenIssued => "token_issued",
            Self::TokenRefreshed => "token_refreshed",
            Self::RefreshReuse => "refresh_reuse",
            Self::CodeReplay => "code_replay",
            Self::TokenRevoked => "token_revoked",
            Self::ClientAuthFailure => "client_auth_failure",
            Self::AttributeRelease => "attribute_release",
            Self::AdminClient => "admin_client",
            Self::AdminAccount => "admin_account",
            Self::AdminOrganisation => "admin_organisation",
            Self::AdminKeys => "admin_keys",
            Self::AdminSession => "admin_session",
            Self::AuditPruned => "audit_pruned",
            Self::IdNumberLookup => "id_number_lookup",
            Self::RateLimited => "rate_limited",
            Self::SmsCodeSent => "sms_code_sent",
            Self::Registration => "registration",
            Self::PasswordReset => "password_reset",
            Self::PhoneChange => "phone_change",
            Self::AccountUnlock => "account_unlock",
            Self::PasswordChange => "password_change",
            Self::ConsentWithdrawn => "consent_withdrawn",
            Self::OrgRegistered => "org_registered",
            Self::RoleGranted => "role_granted",
            Self::RoleRevoked => "role_revoked",
            Self::AccountClosed => "account_closed",
            Self::AccountErased => "account_erased",
            Self::FactorEnrolled => "factor_enrolled",
            Self::FactorUsed => "factor_used",
            Self::FactorRemoved => "factor_removed",
            Self::StepUp => "step_up",
            Self::Proofing => "proofing",
            Self::DeviceApproval => "device_approval",
            Self::QrLogin => "qr_login",
            Self::IdentityCode => "identity_code",
            Self::AdminRead => "admin_read",
            Self::AdminRole => "admin_role",
            Self::CasTicket => "cas_ticket",
        }
    }
}

/// One security event as a request or a command reports it. `actor` is an account id, a client id
/// or `admin` — never an ID number (docs/privacy.md).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditEvent {
    pub event: Option<EventType>,
    pub success: bool,
    pub actor: Option<String>,
    pub target: Option<String>,
    pub client_id: Option<String>,
    pub channel: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub acr: Option<String>,
    pub request_id: Option<String>,
    /// Why it failed (a stable code such as `invalid_credentials`).
    pub reason: Option<String>,
    /// Event-specific facts as JSON (the claims released, the scopes granted, the change made).
    pub details: Option<serde_json::Value>,
}

impl AuditEvent {
    /// A successful `event`.
    pub fn success(event: EventType) -> Self {
        Self {
            event: Some(event),
            success: true,
            ..Self::default()
        }
    }

    /// A failed `event` with its reason code.
    pub fn failure(event: EventType, reason: &str) -> Self {
        Self {
            event: Some(event),
            success: false,
            reason: Some(reason.to_owned()),
            ..Self::default()
        }
    }

    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    pub fn client(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }
}

/// A record of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    pub seq: i64,
    pub at_ms: i64,
    pub node: String,
    pub event: String,
    pub result: String,
    pub actor: Option<String>,
    pub target: Option<String>,
    pub client_id: Option<String>,
    pub channel: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub acr: Option<String>,
    pub request_id: Option<String>,
    pub reason: Option<String>,
    pub details: Option<String>,
    #[serde(serialize_with = "hex")]
    pub prev_hash: Vec<u8>,
    #[serde(serialize_with = "hex")]
    pub hash: Vec<u8>,
}

fn hex<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// The hash before the first record.
pub const GENESIS: [u8; 32] = [0; 32];

impl AuditRecord {
    /// The record for `event` at `seq`, chained to `prev_hash`.
    pub fn chain(event: &AuditEvent, seq: i64, at_ms: i64, node: &str, prev_hash: &[u8]) -> Self {
        let mut r = Self {
            seq,
            at_ms,
            node: node.to_owned(),
            event: event.event.map_or("unknown", EventType::as_str).to_owned(),
            result: if event.success { "success" } else { "failure" }.to_owned(),
            actor: event.actor.clone(),
            target: event.target.clone(),
            client_id: event.client_id.clone(),
            channel: event.channel.clone(),
            ip: event.ip.clone(),
            user_agent: event.user_agent.clone(),
            acr: event.acr.clone(),
            request_id: event.request_id.clone(),
            reason: event.reason.clone(),
            details: event.details.as_ref().map(|d| d.to_string()),
            prev_hash: prev_hash.to_vec(),
            hash: Vec::new(),
        };
        r.hash = r.computed_hash().to_vec();
        r
    }

    /// Every field but the hashes, length-prefixed in a fixed order.
    pub fn canonical(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        let mut field = |value: Option<&[u8]>| match value {
            Some(v) => {
                out.extend_from_slice(
                    &u32::try_from(v.len()).unwrap_or(u32::MAX - 1).to_be_bytes(),
                );
                out.extend_from_slice(v);
            }
            None => out.extend_from_slice(&u32::MAX.to_be_bytes()),
        };
        field(Some(&self.seq.to_be_bytes()));
        field(Some(&self.at_ms.to_be_bytes()));
        for v in [&self.node, &self.event, &self.result] {
            field(Some(v.as_bytes()));
        }
        for v in [
            &self.actor,
            &self.target,
            &self.client_id,
            &self.channel,
            &self.ip,
            &self.user_agent,
            &self.acr,
            &self.request_id,
            &self.reason,
            &self.details,
        ] {
            field(v.as_deref().map(str::as_bytes));
        }
        out
    }

    /// SHA-256(prev_hash || canonical).
    pub fn computed_hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(&self.prev_hash);
        h.update(self.canonical());
        h.finalize().into()
    }
}

/// Why a chain does not verify, naming the first bad record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("record {0} is missing (deleted?)")]
    Missing(i64),
    #[error("record {0} does not follow record {1} (inserted or rewritten?)")]
    Unlinked(i64, i64),
    #[error("record {0} does not match its hash (changed?)")]
    Altered(i64),
    #[error("records after {0} are missing: the chain's head says {1}")]
    Truncated(i64, i64),
    #[error("checkpoint at record {0}: {1}")]
    Checkpoint(i64, String),
}

/// Walks records in sequence order, one page at a time.
pub struct ChainWalk {
    /// The sequence number the next record must have.
    next: i64,
    /// The hash the next record must name as its predecessor.
    prev: Vec<u8>,
}

impl ChainWalk {
    /// From the first record.
    pub fn new() -> Self {
        Self {
            next: 1,
            prev: GENESIS.to_vec(),
        }
    }

    /// From record `from`, trusting the record before it (`--from N`).
    pub fn resume(from: i64, prev_hash: Vec<u8>) -> Self {
        Self {
            next: from,
            prev: prev_hash,
        }
    }

    /// Checks the next page of records; stops at the first bad one.
    pub fn check(&mut self, page: &[AuditRecord]) -> Result<(), ChainError> {
        for r in page {
            if r.seq != self.next {
                return Err(ChainError::Missing(self.next));
            }
            if r.prev_hash != self.prev {
                return Err(ChainError::Unlinked(r.seq, r.seq - 1));
            }
            if r.computed_hash().as_slice() != r.hash.as_slice() {
                return Err(ChainError::Altered(r.seq));
            }
            self.next += 1;
            self.prev = r.hash.clone();
        }
        Ok(())
    }

    /// The last sequence number checked.
    pub fn last(&self) -> i64 {
        self.next - 1
    }

    /// At the end of the records: they must reach the head (seq, hash) the store keeps.
    pub fn finish(&self, head_seq: i64, head_hash: &[u8]) -> Result<i64, ChainError> {
        if self.last() < head_seq {
            return Err(ChainError::Truncated(self.last(), head_seq));
        }
        if self.last() > head_seq || (head_seq > 0 && self.prev != head_hash) {
            return Err(ChainError::Unlinked(self.last(), head_seq));
        }
        Ok(self.last())
    }
}

impl Default for ChainWalk {
    fn default() -> Self {
        Self::new()
    }
}

/// A checkpoint: the head at a time, signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRecord {
    pub seq: i64,
    pub hash: Vec<u8>,
    pub at_ms: i64,
    /// A JWS (`typ: audit-checkpoint+jwt`) over `{iss, seq, hash (base64url), iat}`.
    pub jws: String,
}

/// The JWT `typ` of checkpoints.
pub const CHECKPOINT_TYP: &str = "audit-checkpoint+jwt";

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut prev = GENESIS.to_vec();
        (1..=n)
            .map(|seq| {
                let e = AuditEvent::success(EventType::LoginSuccess)
                    .actor(format!("acct-{seq}"))
                    .client("hall");
                let r = AuditRecord::chain(&e, seq, 1_000 * seq, "node-a", &prev);
                prev = r.hash.clone();
                r
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies_and_reaches_the_head() {
        let records = chain(5);
        let mut walk = ChainWalk::new();
        walk.check(&records[..2]).unwrap();
        walk.check(&records[2..]).unwrap();
        assert_eq!(walk.finish(5, &records[4].hash), Ok(5));
        assert_eq!(
            walk.finish(6, &records[4].hash),
            Err(ChainError::Truncated(5, 6))
        );
    }

    #[test]
    fn each_kind_of_tampering_names_the_first_bad_record() {
        let records = chain(5);
        let mut changed = records.clone();
        changed[2].actor = Some("someone-else".into());
        assert_eq!(
            ChainWalk::new().check(&changed),
            Err(ChainError::Altered(3))
        );
        let mut deleted = records.clone();
        deleted.remove(1);
        assert_eq!(
            ChainWalk::new().check(&deleted),
            Err(ChainError::Missing(2))
        );
        // A record inserted and the following ones renumbered, hashes and all recomputed from there:
        // the chain is internally consistent only if the attacker rewrites everything after it,
        // which the signed checkpoint catches; without a rewrite, the link breaks.
        let mut inserted = records.clone();
        let fake = AuditRecord::chain(
            &AuditEvent::success(EventType::AdminClient),
            3,
            2_500,
            "node-a",
            &records[1].hash,
        );
        inserted.insert(2, fake);
        for r in inserted.iter_mut().skip(3) {
            r.seq += 1;
        }
        assert_eq!(
            ChainWalk::new().check(&inserted),
            Err(ChainError::Unlinked(4, 3))
        );
        // Resuming past the damage succeeds: --from N trusts the record before N.
        let mut walk = ChainWalk::resume(4, records[2].hash.clone());
        walk.check(&records[3..]).unwrap();
    }

    #[test]
    fn canonical_encodings_differ_when_any_field_differs() {
        let base = chain(1).remove(0);
        let mut moved = base.clone();
        // The same bytes split differently across two fields must not collide.
        moved.actor = Some("acct-1h".into());
        moved.client_id = Some("all".into());
        assert_ne!(base.canonical(), moved.canonical());
        let mut absent = base.clone();
        absent.target = Some(String::new());
        assert_ne!(base.canonical(), absent.canonical(), "absent is not empty");
    }
}
