//! OpenID Connect Back-Channel Logout 1.0: when a session ends, every client that received tokens in
//! it and registered a `backchannel_logout_uri` gets a logout token (§2.4: `typ: logout+jwt`; iss,
//! aud, iat, exp, jti, events, sid and sub; no nonce), POSTed as `logout_token` (§2.5).
//!
//! Deliveries go through the durable outbox in the database, so neither a restart nor a relying party
//! that is down loses one: a node claims due rows, signs a fresh token per attempt, and on failure
//! backs off exponentially until `max_attempts`, recording the outcome.

use serde_json::json;

use crate::crypto::random_token;
use crate::crypto::signing::{Alg, KeyRing, SigningError};
use crate::crypto::subject::{SubjectCodec, sector_of};
use crate::domain::client::{Client, ClientId};
use crate::store::{ClientStore, OutboxRecord, OutboxStore, StoreError};

/// The event that marks a logout token (§2.4).
pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// Queues a logout for every client of the ended session `sid` of `account_id` that asked for one.
pub async fn enqueue(
    registry: &dyn ClientStore,
    outbox: &dyn OutboxStore,
    subjects: &SubjectCodec,
    sid: &str,
    account_id: &str,
    clients: &[String],
    now: i64,
) -> Result<usize, StoreError> {
    let mut queued = 0;
    for client_id in clients {
        let Ok(id) = ClientId::parse(client_id) else {
            continue;
        };
        let Some(client) = registry.client(&id).await? else {
            continue;
        };
        let Some(uri) = client.settings().backchannel_logout_uri.clone() else {
            continue;
        };
        let record = OutboxRecord {
            id: random_token(),
            client_id: client_id.clone(),
            uri,
            sub: subjects.encode(&sector_of(&client), account_id),
            sid: Some(sid.to_owned()),
            kind: "backchannel".into(),
            session_index: None,
            status: "pending".into(),
            attempts: 0,
            next_attempt_at: now,
            claimed_until: None,
            last_error: None,
            created_at: now,
            updated_at: now,
        };
        outbox.enqueue_logout(&record).await?;
        queued += 1;
    }
    Ok(queued)
}

/// A logout token for one delivery attempt, signed like the client's ID tokens.
pub fn logout_token(
    issuer: &str,
    ring: &KeyRing,
    default_alg: Alg,
    client: &Client,
    record: &OutboxRecord,
    now: i64,
) -> Result<String, SigningError> {
    let alg = client.settings().id_token_alg.unwrap_or(default_alg);
    let key = ring
        .signer(alg, now)
        .ok_or(SigningError::NoActiveKey(alg))?;
    let mut claims = json!({
        "iss": issuer,
        "aud": client.id().as_str(),
        "iat": now,
        "exp": now + 120,
        "jti": random_token(),
        "events": { EVENT: {} },
        "sub": record.sub,
    });
    if let Some(sid) = &record.sid {
        claims["sid"] = json!(sid);
    }
    key.sign_jwt("logout+jwt", &claims)
}

/// Why a delivery attempt failed (recorded in the outbox row as text).
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("the client no longer exists")]
    ClientGone,
    #[error(transparent)]
    Sign(#[from] SigningError),
    /// The relying party's answer, when not 2xx (e.g. `503 Service Unavailable`).
    #[error("answered {0}")]
    Status(String),
    /// The HTTP client's error (its URL already removed).
    #[error(transparent)]
    Transport(Box<dyn std::error::Error + Send + Sync>),
}

/// Retry policy.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub base_secs: i64,
    pub max_secs: i64,
    pub max_attempts: i64,
}

/// The record after an attempt: delivered, rescheduled with backoff, or given up.
pub fn settle(
    mut record: OutboxRecord,
    outcome: Result<(), DeliveryError>,
    retry: Retry,
    now: i64,
) -> OutboxRecord {
    record.attempts += 1;
    record.updated_at = now;
    match outcome {
        Ok(()) => {
            record.status = "delivered".into();
            record.last_error = None;
        }
        Err(e) => {
            record.last_error = Some(e.to_string());
            if record.attempts >= retry.max_attempts {
                record.status = "failed".into();
            } else {
                let exponent = u32::try_from(record.attempts - 1).unwrap_or(30).min(30);
                let delay = retry
                    .base_secs
                    .saturating_mul(1_i64 << exponent)
                    .min(retry.max_secs);
                record.next_attempt_at = now + delay;
            }
        }
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> OutboxRecord {
        OutboxRecord {
            id: "r".into(),
            client_id: "c".into(),
            uri: "https://rp/logout".into(),
            sub: "s".into(),
            sid: None,
            kind: "backchannel".into(),
            session_index: None,
            status: "pending".into(),
            attempts: 0,
            next_attempt_at: 0,
            claimed_until: None,
            last_error: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn failures_back_off_exponentially_then_give_up() {
        let retry = Retry {
            base_secs: 5,
            max_secs: 60,
            max_attempts: 4,
        };
        let r = settle(
            record(),
            Err(DeliveryError::Status("503 Service Unavailable".into())),
            retry,
            100,
        );
        assert_eq!((r.status.as_str(), r.next_attempt_at), ("pending", 105));
        let r = settle(
            r,
            Err(DeliveryError::Status("503 Service Unavailable".into())),
            retry,
            105,
        );
        assert_eq!(r.next_attempt_at, 115);
        let r = settle(
            r,
            Err(DeliveryError::Status("503 Service Unavailable".into())),
            retry,
            115,
        );
        assert_eq!(r.next_attempt_at, 135);
        let r = settle(
            r,
            Err(DeliveryError::Status("503 Service Unavailable".into())),
            retry,
            135,
        );
        assert_eq!((r.status.as_str(), r.attempts), ("failed", 4));
        let ok = settle(record(), Ok(()), retry, 7);
        assert_eq!(
            (ok.status.as_str(), ok.attempts, ok.last_error),
            ("delivered", 1, None)
        );
    }
}
