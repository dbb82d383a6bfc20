//! The port requests and commands hand audit events to (the writer is in app.rs, the chain rules in
//! `domain::audit`).

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::crypto::signing::{Alg, KeyRing, SigningError};
pub use crate::domain::audit::{AuditEvent, EventType};
use crate::domain::audit::{CHECKPOINT_TYP, ChainError, ChainWalk, CheckpointRecord};
use crate::store::{AuditStore, StoreError};

/// Where requests hand their events: the writer acknowledges once the batch carrying the event is
/// committed, so nothing acknowledged is lost.
#[async_trait]
pub trait AuditSink: Send + Sync {
    async fn record(&self, event: AuditEvent) -> Result<(), StoreError>;
}

/// A signed checkpoint of the head `(seq, hash)` at `now_ms`.
pub fn checkpoint(
    ring: &KeyRing,
    alg: Alg,
    issuer: &str,
    seq: i64,
    hash: &[u8],
    now_ms: i64,
) -> Result<CheckpointRecord, SigningError> {
    let key = ring
        .signer(alg, now_ms / 1000)
        .ok_or(SigningError::NoActiveKey(alg))?;
    let claims = serde_json::json!({
        "iss": issuer,
        "seq": seq,
        "hash": URL_SAFE_NO_PAD.encode(hash),
        "iat": now_ms / 1000,
    });
    Ok(CheckpointRecord {
        seq,
        hash: hash.to_vec(),
        at_ms: now_ms,
        jws: key.sign_jwt(CHECKPOINT_TYP, &claims)?,
    })
}

/// Signs the chain's head and stores the checkpoint, unless the log is empty or the head has not
/// moved past `after`; the sequence number signed.
pub async fn checkpoint_head(
    store: &dyn AuditStore,
    ring: &KeyRing,
    alg: Alg,
    issuer: &str,
    after: i64,
    now_ms: i64,
) -> Result<Option<i64>, CheckpointError> {
    let (seq, hash) = store.audit_head().await?;
    if seq == 0 || seq <= after {
        return Ok(None);
    }
    let record = checkpoint(ring, alg, issuer, seq, &hash, now_ms)?;
    store.insert_checkpoint(&record).await?;
    Ok(Some(seq))
}

/// Why a checkpoint was not written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot sign the checkpoint")]
    Sign(#[from] SigningError),
    #[error("cannot store the checkpoint")]
    Store(#[from] StoreError),
}

/// Retention: where pruning may cut for records older than `cut_ms` — the newest checkpoint signed
/// before the cut (so every record before it is older), whose record is kept as the new first one.
pub fn prune_point(checkpoints: &[CheckpointRecord], cut_ms: i64) -> Option<i64> {
    checkpoints
        .iter()
        .filter(|c| c.at_ms < cut_ms)
        .map(|c| c.seq)
        .max()
}

/// What `audit verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The first record checked (later than asked when older ones were pruned).
    pub first: i64,
    /// The last record checked.
    pub last: i64,
    /// Checkpoints whose signature and hash were checked.
    pub checkpoints: usize,
}

/// Walks the chain from record `from` (1: all; otherwise the record before it is trusted), then
/// checks every checkpoint at or after `from`: its signature by one of the server's keys, its claims
/// against its row, and its hash against the record it names. Names the first bad record.
pub async fn verify(
    store: &dyn AuditStore,
    ring: &KeyRing,
    from: i64,
) -> Result<Verified, VerifyError> {
    const PAGE: i64 = 1000;
    let all_checkpoints = store.checkpoints().await?;
    // Records before `first` were pruned by retention, which keeps the record of a signed
    // checkpoint as the first: that checkpoint vouches for it (and so for its link backwards).
    let first = store.audit_first().await?.unwrap_or(1);
    if first > 1 && !all_checkpoints.iter().any(|c| c.seq == first) {
        return Err(ChainError::Missing(first - 1).into());
    }
    let from = from.max(first);
    let trusted_before = if from == 1 {
        None
    } else if from == first {
        store
            .audit_records(first, 1)
            .await?
            .first()
            .map(|r| r.prev_hash.clone())
    } else {
        match store.audit_records(from - 1, 1).await?.first() {
            Some(r) if r.seq == from - 1 => Some(r.hash.clone()),
            _ => return Err(ChainError::Missing(from - 1).into()),
        }
    };
    let mut walk = match trusted_before {
        Some(prev) => ChainWalk::resume(from, prev),
        None => ChainWalk::new(),
    };
    // Checkpoints to check, and the hash of each checkpointed record, collected on the way.
    let checkpoints: Vec<CheckpointRecord> = all_checkpoints
        .into_iter()
        .filter(|c| c.seq >= from)
        .collect();
    let mut seen = std::collections::HashMap::new();
    loop {
        let page = store.audit_records(walk.last() + 1, PAGE).await?;
        walk.check(&page)?;
        for r in &page {
            if checkpoints.iter().any(|c| c.seq == r.seq) {
                seen.insert(r.seq, r.hash.clone());
            }
        }
        if (page.len() as i64) < PAGE {
            break;
        }
    }
    for c in &checkpoints {
        let bad = |why: &str| Err(ChainError::Checkpoint(c.seq, why.to_owned()).into());
        let mut validation = jsonwebtoken::Validation::default();
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let claims: serde_json::Value = match ring.verify(&c.jws, validation) {
            Ok((header, claims)) if header.typ.as_deref() == Some(CHECKPOINT_TYP) => claims,
            Ok(_) => return bad("not a checkpoint token"),
            Err(e) => return bad(&format!("signature does not verify ({e})")),
        };
        if claims["seq"].as_i64() != Some(c.seq)
            || claims["hash"].as_str() != Some(URL_SAFE_NO_PAD.encode(&c.hash).as_str())
        {
            return bad("its row differs from what was signed");
        }
        match seen.get(&c.seq) {
            None => return bad("the record it covers is missing (truncated?)"),
            Some(h) if *h != c.hash => {
                return bad("the chain was rewritten: the record's hash is not the signed one");
            }
            Some(_) => {}
        }
    }
    let (head_seq, head_hash) = store.audit_head().await?;
    let last = walk.finish(head_seq, &head_hash)?;
    Ok(Verified {
        first: from,
        last,
        checkpoints: checkpoints.len(),
    })
}

/// Why `audit verify` did not vouch for the log: it is broken, or it could not be read.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("audit log broken")]
    Broken(#[from] ChainError),
    #[error("cannot read the audit log")]
    Store(#[from] StoreError),
}

/// Where a request came from, copied into its audit records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

impl RequestContext {
    /// The requester's address as rate limits count it (`limits::address_subject`).
    pub fn source(&self) -> Option<String> {
        self.ip.as_deref().map(super::limits::address_subject)
    }
}

/// The audit sink with the current request's context.
#[derive(Clone, Copy)]
pub struct Audit<'a> {
    pub sink: &'a dyn AuditSink,
    pub context: &'a RequestContext,
}

impl Audit<'_> {
    /// Records `event` with the request's address, user agent and id. A record that cannot be
    /// written fails the request (nothing security-relevant happens unaudited).
    pub async fn record(&self, mut event: AuditEvent) -> Result<(), super::OAuthError> {
        event.ip = event.ip.or_else(|| self.context.ip.clone());
        event.user_agent = event.user_agent.or_else(|| self.context.user_agent.clone());
        event.request_id = event.request_id.or_else(|| self.context.request_id.clone());
        self.sink
            .record(event)
            .await
            .map_err(super::OAuthError::server)
    }
}
