//! SSO sessions, pending interactions and authorization codes. Live state is in the ephemeral store;
//! each session also has a durable row (`sessions`) that administrators list and end, and from which
//! logout fans out when it ends for any reason.
//!
//! The browser holds a random 256-bit session secret in a cookie; the store keys the session by
//! `sid` = base64url(SHA-256(secret))[..22], so the store never holds the secret and `sid` can be
//! given to relying parties (OIDC Back-Channel Logout §2.4) without revealing it. Idle expiry is the
//! entry's TTL, renewed on use; absolute expiry is checked against `created_at` and `now`.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::audit::{AuditEvent, AuditSink, EventType};
use super::authorize::AuthorizeRequest;
use crate::crypto::random_token;
use crate::crypto::subject::SubjectCodec;
use crate::store::{ClientStore, Ephemeral, OutboxStore, SessionRecord, SessionStore, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub account_id: String,
    /// When the person last authenticated (OIDC Core §2 `auth_time`).
    pub auth_time: i64,
    /// The assurance level reached by the login (docs/assurance.md: min(account level, method ceiling)).
    pub level: u8,
    /// RFC 8176 authentication methods.
    pub amr: Vec<String>,
    pub created_at: i64,
    /// Clients that received tokens in this session (for logout).
    pub clients: Vec<String>,
    /// This session's own idle and absolute limits (its channel's, `config::ChannelSession`); 0:
    /// the node's `SessionPolicy`.
    #[serde(default)]
    pub idle_secs: u64,
    #[serde(default)]
    pub absolute_secs: u64,
    /// A ceiling the methods alone do not show: a QR sign-in carries the confirming app session's
    /// level (docs/assurance.md); 0: none.
    #[serde(default)]
    pub ceiling: u8,
}

impl Session {
    /// The limits that hold for this session.
    pub fn limits(&self, policy: SessionPolicy) -> SessionPolicy {
        SessionPolicy {
            idle_secs: if self.idle_secs > 0 {
                self.idle_secs
            } else {
                policy.idle_secs
            },
            absolute_secs: if self.absolute_secs > 0 {
                self.absolute_secs
            } else {
                policy.absolute_secs
            },
        }
    }
}

/// The public session id of a cookie secret.
pub fn sid_of(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    URL_SAFE_NO_PAD.encode(digest)[..22].to_owned()
}

fn session_key(sid: &str) -> String {
    format!("session:{sid}")
}

/// Idle and absolute limits.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub idle_secs: u64,
    pub absolute_secs: u64,
}

/// Creates a session; returns the cookie secret and the sid.
pub async fn create(
    ephemeral: &dyn Ephemeral,
    session: &Session,
    policy: SessionPolicy,
) -> Result<(String, String), StoreError> {
    let secret = random_token();
    let sid = sid_of(&secret);
    save(ephemeral, &sid, session, policy).await?;
    Ok((secret, sid))
}

pub async fn save(
    ephemeral: &dyn Ephemeral,
    sid: &str,
    session: &Session,
    policy: SessionPolicy,
) -> Result<(), StoreError> {
    let value = serde_json::to_vec(session).map_err(|e| StoreError::backend("cannot encode", e))?;
    ephemeral
        .put(
            &session_key(sid),
            &value,
            Duration::from_secs(session.limits(policy).idle_secs),
        )
        .await
}

/// The live session of a cookie secret, renewed for another idle period; `None` when unknown,
/// idle-expired or past its absolute lifetime.
pub async fn load(
    ephemeral: &dyn Ephemeral,
    secret: &str,
    policy: SessionPolicy,
    now: i64,
) -> Result<Option<(String, Session)>, StoreError> {
    let sid = sid_of(secret);
    let Some(raw) = ephemeral.get(&session_key(&sid)).await? else {
        return Ok(None);
    };
    let Ok(session) = serde_json::from_slice::<Session>(&raw) else {
        return Ok(None);
    };
    if now >= session.created_at + session.limits(policy).absolute_secs as i64 {
        ephemeral.delete(&session_key(&sid)).await?;
        return Ok(None);
    }
    save(ephemeral, &sid, &session, policy).await?;
    Ok(Some((sid, session)))
}

/// A live session by its public id (for ending it).
pub async fn get(ephemeral: &dyn Ephemeral, sid: &str) -> Result<Option<Session>, StoreError> {
    Ok(ephemeral
        .get(&session_key(sid))
        .await?
        .and_then(|raw| serde_json::from_slice(&raw).ok()))
}

/// Removes the live session only (its durable row is ended by [`Sessions::end`]).
pub async fn end(ephemeral: &dyn Ephemeral, sid: &str) -> Result<bool, StoreError> {
    ephemeral.delete(&session_key(sid)).await
}

/// Why a session ended; recorded in its row. Back-channel logout goes out for every reason (OIDC
/// Back-Channel Logout 1.0 §2: "when the End-User logs out", and equally when the OP ends the session).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// RP-initiated or on the logout page.
    Logout,
    /// An administrator (`yihao session revoke`).
    Admin,
    /// The account's password changed.
    PasswordChanged,
    /// Idle or absolute limit reached.
    Expired,
    /// The same browser signed in again.
    Replaced,
    /// A role the person held for an organisation ended (revoked, or the organisation suspended).
    RoleEnded,
    /// The owner closed the account.
    AccountClosed,
    /// The account's second factors were reset (a lost factor): every other session ends.
    FactorsReset,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::Admin => "admin",
            Self::PasswordChanged => "password_changed",
            Self::Expired => "expired",
            Self::Replaced => "replaced",
            Self::RoleEnded => "role_ended",
            Self::AccountClosed => "account_closed",
            Self::FactorsReset => "factors_reset",
        }
    }
}

/// The ports ending a session touches.
#[derive(Clone, Copy)]
pub struct Sessions<'a> {
    /// The durable session rows.
    pub rows: &'a dyn SessionStore,
    /// The clients to notify, and the outbox their logouts go through.
    pub clients: &'a dyn ClientStore,
    pub outbox: &'a dyn OutboxStore,
    pub ephemeral: &'a dyn Ephemeral,
    pub subjects: &'a SubjectCodec,
    pub audit: &'a dyn AuditSink,
}

impl Sessions<'_> {
    /// Records a new session durably (after [`create`]): who, where from, which service.
    pub async fn record(&self, record: &SessionRecord) -> Result<(), StoreError> {
        self.rows.insert_session(record).await
    }

    /// Ends a session everywhere: marks its row ended (once, across nodes and the CLI), queues a
    /// back-channel logout for every client that received tokens in it, and removes the live session
    /// from this store (other nodes' in-process stores drop it at their next [`Sessions::sweep`]).
    /// Returns whether this call ended it; ending an ended or unknown session changes nothing.
    pub async fn end(&self, sid: &str, reason: EndReason, now: i64) -> Result<bool, StoreError> {
        let ended = self
            .rows
            .end_session_record(sid, reason.as_str(), now)
            .await?;
        if let Some(row) = &ended {
            super::backchannel::enqueue(
                self.clients,
                self.outbox,
                self.subjects,
                sid,
                &row.account_id,
                &row.clients,
                now,
            )
            .await?;
            // CAS 3.0 §2.3.3: a LogoutRequest to each service a ticket was issued for in the session.
            let forgotten = self.outbox.enqueue_cas_logouts(sid, None, now).await?;
            // A ticket of the ended session, not yet validated, validates nothing now.
            for key in forgotten {
                self.ephemeral.delete(&key).await?;
            }
        }
        end(self.ephemeral, sid).await?;
        // Audited once the session is over everywhere, so a failing audit write cannot leave it
        // half-ended.
        if let Some(row) = &ended {
            self.audit
                .record(
                    AuditEvent::success(EventType::SessionEnd)
                        .actor(row.account_id.as_str())
                        .target(sid)
                        .details(serde_json::json!({
                            "reason": reason.as_str(),
                            "clients": row.clients,
                        })),
                )
                .await?;
        }
        Ok(ended.is_some())
    }

    /// Ends every open session of an account; how many.
    pub async fn end_all(
        &self,
        account_id: &str,
        reason: EndReason,
        now: i64,
    ) -> Result<usize, StoreError> {
        let mut ended = 0;
        for row in self.rows.sessions_of(account_id, false).await? {
            if self.end(&row.sid, reason, now).await? {
                ended += 1;
            }
        }
        Ok(ended)
    }

    /// Signs an account out everywhere: ends every open session (each service gets a back-channel
    /// logout) and revokes every live refresh token. How many of each.
    pub async fn sign_out_everywhere(
        &self,
        refresh: &dyn crate::store::RefreshStore,
        account_id: &str,
        reason: EndReason,
        now: i64,
    ) -> Result<(usize, u64), StoreError> {
        let ended = self.end_all(account_id, reason, now).await?;
        let revoked = refresh.revoke_account_refresh(account_id, now).await?;
        Ok((ended, revoked))
    }

    /// One pass of a node's session sweeper. Sessions ended elsewhere since `since` (another node,
    /// the CLI) leave this node's live store; open sessions past their absolute limit, or not seen for
    /// an idle period, are looked up in the live store: still there (used since) they are marked seen,
    /// gone (the idle timer ran out) they end as expired, which fans out back-channel logout.
    /// Returns how many expired.
    pub async fn sweep(
        &self,
        policy: SessionPolicy,
        since: i64,
        now: i64,
    ) -> Result<usize, StoreError> {
        for sid in self.rows.sessions_ended_since(since).await? {
            end(self.ephemeral, &sid).await?;
        }
        let mut expired = 0;
        let due = self
            .rows
            .sessions_due(now, policy.idle_secs as i64, 200)
            .await?;
        for row in due {
            let live = match get(self.ephemeral, &row.sid).await? {
                Some(s) if now < row.expires_at => Some(s),
                _ => None,
            };
            match live {
                Some(s) => self.rows.touch_session(&row.sid, &s.clients, now).await?,
                None => {
                    if self.end(&row.sid, EndReason::Expired, now).await? {
                        expired += 1;
                    }
                }
            }
        }
        Ok(expired)
    }
}

/// An authorization request waiting for the person to log in or consent. Its forms must carry
/// `csrf`, and come from the browser it was started in (`browser`: the hash of that browser's
/// cookie), so a form posted from another site or another browser is refused, while two tabs of one
/// browser each keep working.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interaction {
    pub request: AuthorizeRequest,
    pub csrf: String,
    pub browser: String,
    /// The account that logged in during this interaction, waiting for consent.
    pub account_id: Option<String>,
    pub created_at: i64,
    /// The page it was started for: only that page's form may use it (security review 20: a
    /// consent interaction posted to `/select-org` skipped the consent).
    #[serde(default)]
    pub step: Step,
}

/// The page an interaction belongs to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    #[default]
    Login,
    Consent,
    ChooseOrganisation,
    /// A second factor for a step-up (or its enrolment, for two-factor accounts without one).
    SecondFactor,
    /// A proofing step (face verification in the app or at a kiosk) for a step-up.
    Proofing,
}

pub const INTERACTION_SECS: u64 = 600;

fn interaction_key(id: &str) -> String {
    format!("interaction:{id}")
}

pub async fn save_interaction(
    ephemeral: &dyn Ephemeral,
    id: &str,
    interaction: &Interaction,
) -> Result<(), StoreError> {
    let value =
        serde_json::to_vec(interaction).map_err(|e| StoreError::backend("cannot encode", e))?;
    ephemeral
        .put(
            &interaction_key(id),
            &value,
            Duration::from_secs(INTERACTION_SECS),
        )
        .await
}

pub async fn load_interaction(
    ephemeral: &dyn Ephemeral,
    id: &str,
) -> Result<Option<Interaction>, StoreError> {
    if id.len() > 64 {
        return Ok(None);
    }
    Ok(ephemeral
        .get(&interaction_key(id))
        .await?
        .and_then(|raw| serde_json::from_slice(&raw).ok()))
}

pub async fn end_interaction(ephemeral: &dyn Ephemeral, id: &str) -> Result<(), StoreError> {
    ephemeral.delete(&interaction_key(id)).await.map(|_| ())
}

/// A logout that waits for the person's confirmation (RP-Initiated Logout 1.0 §2: the request
/// could not be tied to the session).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLogout {
    /// Where to send the browser afterwards (already checked against the client's registration).
    pub redirect: Option<String>,
    pub state: Option<String>,
    pub csrf: String,
    /// Hash of the browser cookie of the browser that asked.
    pub browser: String,
    pub ui_locales: Vec<String>,
}

fn logout_key(id: &str) -> String {
    format!("logout:{id}")
}

pub async fn save_logout(
    ephemeral: &dyn Ephemeral,
    id: &str,
    pending: &PendingLogout,
) -> Result<(), StoreError> {
    let value = serde_json::to_vec(pending).map_err(|e| StoreError::backend("cannot encode", e))?;
    ephemeral
        .put(
            &logout_key(id),
            &value,
            Duration::from_secs(INTERACTION_SECS),
        )
        .await
}

/// Takes a pending logout (one use).
pub async fn take_logout(
    ephemeral: &dyn Ephemeral,
    id: &str,
) -> Result<Option<PendingLogout>, StoreError> {
    if id.len() > 64 {
        return Ok(None);
    }
    Ok(ephemeral
        .take(&logout_key(id))
        .await?
        .and_then(|raw| serde_json::from_slice(&raw).ok()))
}

/// What an authorization code stands for (RFC 6749 §4.1.2: bound to the client and redirect URI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub account_id: String,
    pub scopes: Vec<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: i64,
    pub level: u8,
    pub amr: Vec<String>,
    pub sid: String,
    pub claims_userinfo: Vec<String>,
    pub claims_id_token: Vec<String>,
    /// The organisation context chosen at login (`claims::org_claim`), for `org` requests.
    #[serde(default)]
    pub org: Option<serde_json::Value>,
}

fn code_key(code: &str) -> String {
    format!(
        "code:{}",
        URL_SAFE_NO_PAD.encode(Sha256::digest(code.as_bytes()))
    )
}

fn used_code_key(code: &str) -> String {
    format!(
        "code-used:{}",
        URL_SAFE_NO_PAD.encode(Sha256::digest(code.as_bytes()))
    )
}

/// Stores a grant under a new code (stored only as its hash) for `ttl`.
pub async fn issue_code(
    ephemeral: &dyn Ephemeral,
    grant: &CodeGrant,
    ttl: Duration,
) -> Result<String, StoreError> {
    let code = random_token();
    let value = serde_json::to_vec(grant).map_err(|e| StoreError::backend("cannot encode", e))?;
    ephemeral.put(&code_key(&code), &value, ttl).await?;
    Ok(code)
}

/// What a code's first redemption issues, named when the code is taken and recorded before anything
/// is issued: a replay, even one racing the first exchange, knows what to revoke (RFC 6749 §4.1.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issuance {
    /// The access token's `jti`.
    pub jti: String,
    /// The refresh-token family, if the exchange starts one.
    pub family: Option<String>,
}

/// What presenting a code found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// The code was live; it is now spent, and `issuance` is what its exchange must issue.
    Grant {
        grant: Box<CodeGrant>,
        issuance: Issuance,
    },
    /// The code was redeemed before: what its first use issued, to revoke.
    Replayed(Issuance),
    /// Never issued, expired, or too old to remember.
    Unknown,
}

/// Takes a code once (atomic on every adapter) and records, for `remember` (the access token's
/// lifetime), what its exchange will issue.
pub async fn redeem_code(
    ephemeral: &dyn Ephemeral,
    code: &str,
    remember: Duration,
) -> Result<Redeemed, StoreError> {
    if code.len() > 128 {
        return Ok(Redeemed::Unknown);
    }
    if let Some(raw) = ephemeral.take(&code_key(code)).await? {
        let Ok(grant) = serde_json::from_slice::<CodeGrant>(&raw) else {
            return Ok(Redeemed::Unknown);
        };
        let issuance = Issuance {
            jti: random_token(),
            family: Some(random_token()),
        };
        let value =
            serde_json::to_vec(&issuance).map_err(|e| StoreError::backend("cannot encode", e))?;
        ephemeral
            .put(&used_code_key(code), &value, remember)
            .await?;
        return Ok(Redeemed::Grant {
            grant: Box::new(grant),
            issuance,
        });
    }
    let Some(first_use) = ephemeral.get(&used_code_key(code)).await? else {
        return Ok(Redeemed::Unknown);
    };
    // A node of the previous release recorded the bare `jti`.
    Ok(Redeemed::Replayed(
        serde_json::from_slice(&first_use).unwrap_or_else(|_| Issuance {
            jti: String::from_utf8_lossy(&first_use).into_owned(),
            family: None,
        }),
    ))
}

fn replayed_key(code: &str) -> String {
    format!(
        "code-replayed:{}",
        URL_SAFE_NO_PAD.encode(Sha256::digest(code.as_bytes()))
    )
}

/// Marks a code as replayed, so an exchange of it still in flight revokes what it issued.
pub async fn mark_replayed(
    ephemeral: &dyn Ephemeral,
    code: &str,
    ttl: Duration,
) -> Result<(), StoreError> {
    ephemeral.put(&replayed_key(code), b"1", ttl).await
}

/// Whether a replay of `code` was seen.
pub async fn was_replayed(ephemeral: &dyn Ephemeral, code: &str) -> Result<bool, StoreError> {
    Ok(ephemeral.get(&replayed_key(code)).await?.is_some())
}
