//! The console's sign-in and its short idle limit (docs/administration.md, "The console").
//!
//! The console is yihao's own first-party client (`yihao-console`, public, PKCE S256, minimum level
//! 3): opening it sends the browser to `/authorize` with `prompt=login`, so an administrator signs in
//! afresh with the password and a second factor (classified protection: administrators use two
//! factors). The callback redeems the code here, once: it must be for the console, match the PKCE
//! verifier kept under the `state`, come from a sign-in at level 3, and belong to the SSO session of
//! the browser presenting it (a code carried to another browser, or a login forced on someone else,
//! opens nothing). The person must hold an administrator role.
//!
//! The console session lives in the ephemeral store under the SSO session's id, with the idle limit
//! as its time to live (`admin.console_idle_secs`, at most 30 minutes): every console request
//! renews it; once it lapses the administrator signs in again. Its role is read again on every
//! request, so a revoked role stops the console at once.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Actor;
use super::accounts::person_actor;
use crate::crypto::random_token;
use crate::protocol::pkce;
use crate::protocol::session::{self, Redeemed};
use crate::store::{AdminStore, Ephemeral, StoreError};

/// The console's client id.
pub const CONSOLE_CLIENT: &str = "yihao-console";
/// The level an administrator signs in at.
pub const CONSOLE_LEVEL: u8 = 3;
/// How long a sign-in started at the console may take.
const PENDING_SECS: u64 = 600;

/// Why the callback opened no console.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// Unknown or used `state`, a code that is not the console's or not this browser's.
    #[error("the sign-in could not be completed; start again")]
    Invalid,
    /// The sign-in did not reach level 3.
    #[error("administrators sign in with two factors at level 3")]
    TooWeak,
    /// The sign-in was not a new one (the browser's older session was reused).
    #[error("administrators sign in afresh to open the console")]
    NotFresh,
    /// The person holds no administrator role.
    #[error("this account holds no administrator role")]
    NotAdministrator,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Serialize, Deserialize)]
struct Pending {
    verifier: String,
    /// When the console sent the browser to sign in: the sign-in must be at or after it (a fresh
    /// one, whatever became of `prompt=login` on the way).
    started_at: i64,
}

#[derive(Serialize, Deserialize)]
struct Open {
    account_id: String,
    /// The last console request (the idle timer is checked against `now` too, not only the store's
    /// time to live).
    seen_at: i64,
}

/// The console's sign-ins and sessions.
pub struct Console<'a> {
    pub ephemeral: &'a dyn Ephemeral,
    pub admins: &'a dyn AdminStore,
    pub idle: Duration,
    /// How long a redeemed code's issuance is remembered (the access-token lifetime).
    pub code_memory: Duration,
}

fn pending_key(state: &str) -> String {
    format!(
        "console-login:{}",
        URL_SAFE_NO_PAD.encode(Sha256::digest(state.as_bytes()))
    )
}

fn open_key(sid: &str) -> String {
    format!("console:{sid}")
}

impl Console<'_> {
    /// Starts a sign-in: the `state` and the PKCE `code_challenge` of the authorization request.
    pub async fn begin(&self, now: i64) -> Result<(String, String), StoreError> {
        let state = random_token();
        let verifier = random_token();
        let challenge = pkce::s256(&verifier);
        let value = serde_json::to_vec(&Pending {
            verifier,
            started_at: now,
        })
        .map_err(|e| StoreError::backend("cannot encode", e))?;
        self.ephemeral
            .put(
                &pending_key(&state),
                &value,
                Duration::from_secs(PENDING_SECS),
            )
            .await?;
        Ok((state, challenge))
    }

    /// Completes a sign-in for the browser whose SSO session is `sid`: opens its console session.
    pub async fn finish(
        &self,
        state: &str,
        code: &str,
        sid: Option<&str>,
        now: i64,
    ) -> Result<Actor, ConsoleError> {
        if state.len() > 128 {
            return Err(ConsoleError::Invalid);
        }
        let pending: Pending = self
            .ephemeral
            .take(&pending_key(state))
            .await?
            .and_then(|raw| serde_json::from_slice(&raw).ok())
            .ok_or(ConsoleError::Invalid)?;
        let Redeemed::Grant { grant, .. } =
            session::redeem_code(self.ephemeral, code, self.code_memory).await?
        else {
            return Err(ConsoleError::Invalid);
        };
        let genuine = grant.client_id == CONSOLE_CLIENT
            && pkce::check_pkce(grant.code_challenge.as_deref(), Some(&pending.verifier)).is_ok()
            && sid.is_some_and(|s| s == grant.sid);
        if !genuine {
            return Err(ConsoleError::Invalid);
        }
        if grant.level < CONSOLE_LEVEL {
            return Err(ConsoleError::TooWeak);
        }
        // A fresh sign-in: the person authenticated after the console asked (an older SSO session,
        // reached by leaving out `prompt=login`, opens nothing).
        if grant.auth_time < pending.started_at {
            return Err(ConsoleError::NotFresh);
        }
        let actor = self
            .admins
            .role_of(&grant.account_id)
            .await?
            .as_ref()
            .and_then(person_actor)
            .ok_or(ConsoleError::NotAdministrator)?;
        self.renew(&grant.sid, &grant.account_id, now).await?;
        Ok(actor)
    }

    /// The administrator of the console session of SSO session `sid` (signed in as `account`), its
    /// idle timer renewed; `None` when there is none (never opened, lapsed, or the role is gone).
    pub async fn actor(
        &self,
        sid: &str,
        account: &str,
        now: i64,
    ) -> Result<Option<Actor>, StoreError> {
        let open: Option<Open> = self
            .ephemeral
            .get(&open_key(sid))
            .await?
            .and_then(|raw| serde_json::from_slice(&raw).ok());
        let idle = i64::try_from(self.idle.as_secs()).unwrap_or(i64::MAX);
        if open.is_none_or(|o| o.account_id != account || now - o.seen_at > idle) {
            return Ok(None);
        }
        let Some(actor) = self
            .admins
            .role_of(account)
            .await?
            .as_ref()
            .and_then(person_actor)
        else {
            self.ephemeral.delete(&open_key(sid)).await?;
            return Ok(None);
        };
        self.renew(sid, account, now).await?;
        Ok(Some(actor))
    }

    /// Closes the console session (the SSO session is left to the logout).
    pub async fn end(&self, sid: &str) -> Result<(), StoreError> {
        self.ephemeral.delete(&open_key(sid)).await?;
        Ok(())
    }

    async fn renew(&self, sid: &str, account: &str, now: i64) -> Result<(), StoreError> {
        let value = serde_json::to_vec(&Open {
            account_id: account.to_owned(),
            seen_at: now,
        })
        .map_err(|e| StoreError::backend("cannot encode", e))?;
        self.ephemeral.put(&open_key(sid), &value, self.idle).await
    }
}
