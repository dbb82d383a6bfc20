//! Passkeys (WebAuthn Level 3, through kanidm's `webauthn-rs`; docs/assurance.md, "Passkeys"):
//! registration on the personal page, sign-in with a passkey alone (discoverable credentials, user
//! verification required: `amr` `hwk` `mfa`, ceiling 3), and a passkey as the second factor of a
//! password or SMS sign-in (`hwk`).
//!
//! WebAuthn L3 §7.2 step 22: "If authData.signCount is nonzero or storedSignCount is nonzero ...
//! less than or equal to storedSignCount: This is a signal that the authenticator may be cloned".
//! The stored counter is the database's (`account_factors.counter`): it is put into the credential
//! before each check, `webauthn-rs` refuses a counter that does not move forward
//! (`CredentialPossibleCompromise`), and the new value is written only if it is still later than
//! the stored one (atomic across nodes). A cloned authenticator is refused and audited.
//!
//! Ceremony state (the challenge) waits in the ephemeral store, taken once. The user handle an
//! authenticator keeps is a keyed hash of the account id (no account id or number leaves yihao).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;
use webauthn_rs::Webauthn;
use webauthn_rs::prelude::{
    Credential, DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Uuid, WebauthnError,
};

use super::OAuthError;
use super::audit::{Audit, AuditEvent, EventType};
use super::factors::{PASSKEY, SecondFactors, factor_context, label};
use crate::crypto::pii::Sealer;
use crate::store::{Ephemeral, FactorRecord, FactorStore, StoreError};

/// How long a ceremony waits for the authenticator (WebAuthn's recommended timeout is 300 s).
pub const CEREMONY_TTL: Duration = Duration::from_secs(300);

/// Why a passkey was not registered or accepted. None says which accounts or credentials exist.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    #[error("the passkey ceremony expired or was already used; start again")]
    Expired,
    #[error("the authenticator's answer is not valid")]
    Invalid,
    #[error("this passkey is not one of this account's")]
    Unknown,
    #[error("the authenticator may have been copied: its signature counter went back")]
    Cloned,
    #[error("this passkey is registered already")]
    Taken,
    #[error("a name has 1 to 40 printable characters")]
    BadLabel,
    #[error(transparent)]
    Server(#[from] OAuthError),
}

impl From<StoreError> for PasskeyError {
    fn from(e: StoreError) -> Self {
        Self::Server(OAuthError::server(e))
    }
}

/// A sign-in ceremony in progress: a passkey alone (any account), or the second factor of one.
#[derive(Serialize, Deserialize)]
enum Ceremony {
    Discoverable(DiscoverableAuthentication),
    Of {
        account_id: String,
        state: PasskeyAuthentication,
    },
}

/// The ports and settings of passkeys.
pub struct Passkeys<'a> {
    pub webauthn: &'a Webauthn,
    pub store: &'a dyn FactorStore,
    pub ephemeral: &'a dyn Ephemeral,
    /// Seals the stored credentials (the `factors` key).
    pub sealer: &'a Sealer,
    /// Keys the user handles.
    pub handle_key: &'a [u8; 32],
    pub audit: Audit<'a>,
}

fn registration_key(account_id: &str) -> String {
    format!("passkey-reg:{account_id}")
}

fn ceremony_key(id: &str) -> String {
    format!("passkey-auth:{id}")
}

fn bad(_: impl std::fmt::Debug) -> PasskeyError {
    PasskeyError::Invalid
}

impl Passkeys<'_> {
    /// The user handle of an account: 16 bytes of HMAC-SHA256(key, account id), as a UUID.
    pub fn handle(&self, account_id: &str) -> Uuid {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.handle_key) else {
            return Uuid::nil();
        };
        mac.update(account_id.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    /// The account's passkeys, opened, with their rows; each credential carries the stored counter.
    async fn passkeys_of(
        &self,
        account_id: &str,
    ) -> Result<Vec<(FactorRecord, Passkey)>, StoreError> {
        let rows = self.store.factors_of(account_id).await?;
        Ok(rows
            .into_iter()
            .filter(|f| f.kind == PASSKEY)
            .filter_map(|f| self.open(&f).map(|p| (f, p)))
            .collect())
    }

    fn open(&self, row: &FactorRecord) -> Option<Passkey> {
        let bytes = self
            .sealer
            .open(&factor_context(&row.id), &row.secret)
            .ok()?;
        let mut credential: Credential = serde_json::from_slice::<Passkey>(&bytes).ok()?.into();
        credential.counter = u32::try_from(row.counter).unwrap_or(u32::MAX);
        Some(credential.into())
    }

    /// Starts registering a passkey for the account: the options for
    /// `navigator.credentials.create` (discoverable, user verification required; the account's
    /// passkeys excluded). `user_name` and `display_name` are what the authenticator shows: masked.
    pub async fn start_registration(
        &self,
        account_id: &str,
        user_name: &str,
        display_name: &str,
    ) -> Result<Value, PasskeyError> {
        let exclude = self
            .passkeys_of(account_id)
            .await?
            .iter()
            .map(|(_, p)| p.cred_id().clone())
            .collect();
        let (options, state) = self
            .webauthn
            .start_passkey_registration(
                self.handle(account_id),
                user_name,
                display_name,
                Some(exclude),
            )
            .map_err(|e| OAuthError::server(StoreError::failed(format!("webauthn: {e}"))))?;
        let state = serde_json::to_vec(&state).map_err(bad)?;
        self.ephemeral
            .put(&registration_key(account_id), &state, CEREMONY_TTL)
            .await?;
        let mut options = serde_json::to_value(&options).map_err(bad)?;
        // A passkey is a discoverable credential (WebAuthn L3 §5.4.6 "residentKey": "required"),
        // so that it can sign in without a name typed first; webauthn-rs asks for "discouraged".
        if let Some(selection) = options
            .pointer_mut("/publicKey/authenticatorSelection")
            .and_then(Value::as_object_mut)
        {
            selection.insert("residentKey".into(), json!("required"));
            selection.insert("requireResidentKey".into(), json!(true));
        }
        Ok(options)
    }

    /// Finishes a registration with the authenticator's answer (JSON): the passkey is stored
    /// sealed, with its counter and backup flags, and audited. The first factor of an account
    /// comes with recovery codes.
    pub async fn finish_registration(
        &self,
        factors: &SecondFactors<'_>,
        account_id: &str,
        answer: &str,
        name: &str,
        now: i64,
    ) -> Result<Option<Vec<String>>, PasskeyError> {
        let label = label(name).ok_or(PasskeyError::BadLabel)?;
        let state = self
            .ephemeral
            .take(&registration_key(account_id))
            .await?
            .ok_or(PasskeyError::Expired)?;
        let state: PasskeyRegistration = serde_json::from_slice(&state).map_err(bad)?;
        let answer: RegisterPublicKeyCredential = serde_json::from_str(answer).map_err(bad)?;
        let passkey = match self.webauthn.finish_passkey_registration(&answer, &state) {
            Ok(p) => p,
            Err(e) => {
                tracing::info!(error = %e, "passkey registration refused");
                self.record_failure(account_id, None, "registration_refused")
                    .await?;
                return Err(PasskeyError::Invalid);
            }
        };
        let credential_id = URL_SAFE_NO_PAD.encode(passkey.cred_id());
        if self
            .store
            .factor_by_credential(&credential_id)
            .await?
            .is_some()
        {
            self.record_failure(account_id, None, "registered_already")
                .await?;
            return Err(PasskeyError::Taken);
        }
        let credential: Credential = passkey.clone().into();
        let id = uuid::Uuid::new_v4().to_string();
        let first = self.store.factors_of(account_id).await?.is_empty();
        let sealed = self.sealer.seal(
            &factor_context(&id),
            &serde_json::to_vec(&passkey).map_err(bad)?,
        );
        let record = FactorRecord {
            id: id.clone(),
            account_id: account_id.to_owned(),
            kind: PASSKEY.to_owned(),
            label,
            credential_id: Some(credential_id),
            secret: sealed,
            counter: i64::from(credential.counter),
            backup_eligible: credential.backup_eligible,
            backup_state: credential.backup_state,
            created_at: now,
            last_used_at: None,
        };
        self.store.add_factor(&record).await?;
        let audited = self
            .audit
            .record(
                AuditEvent::success(EventType::FactorEnrolled)
                    .actor(account_id)
                    .target(id.as_str())
                    .details(json!({
                        "kind": PASSKEY,
                        "backup_eligible": credential.backup_eligible,
                        "backup_state": credential.backup_state,
                    })),
            )
            .await;
        if let Err(e) = audited {
            let _ = self.store.remove_factor(account_id, &id).await;
            return Err(e.into());
        }
        if first && factors.recovery_codes_left(account_id).await? == 0 {
            let codes = factors
                .new_recovery_codes(account_id, now)
                .await
                .map_err(|e| match e {
                    super::factors::FactorError::Server(e) => PasskeyError::Server(e),
                    other => PasskeyError::Server(OAuthError::server(StoreError::failed(
                        other.to_string(),
                    ))),
                })?;
            return Ok(Some(codes));
        }
        Ok(None)
    }

    /// Starts a sign-in ceremony `id` (an interaction's): with a passkey alone when `account_id`
    /// is `None`, else with one of that account's passkeys (a second factor; `None` is answered
    /// when it has none). The options for `navigator.credentials.get`.
    pub async fn start_authentication(
        &self,
        id: &str,
        account_id: Option<&str>,
    ) -> Result<Option<Value>, PasskeyError> {
        let server = |e: WebauthnError| {
            PasskeyError::Server(OAuthError::server(StoreError::failed(format!(
                "webauthn: {e}"
            ))))
        };
        let (options, ceremony) = match account_id {
            None => {
                let (options, state) = self
                    .webauthn
                    .start_discoverable_authentication()
                    .map_err(server)?;
                (options, Ceremony::Discoverable(state))
            }
            Some(account_id) => {
                let keys: Vec<Passkey> = self
                    .passkeys_of(account_id)
                    .await?
                    .into_iter()
                    .map(|(_, p)| p)
                    .collect();
                if keys.is_empty() {
                    return Ok(None);
                }
                let (options, state) = self
                    .webauthn
                    .start_passkey_authentication(&keys)
                    .map_err(server)?;
                let ceremony = Ceremony::Of {
                    account_id: account_id.to_owned(),
                    state,
                };
                (options, ceremony)
            }
        };
        let state = serde_json::to_vec(&ceremony).map_err(bad)?;
        self.ephemeral
            .put(&ceremony_key(id), &state, CEREMONY_TTL)
            .await?;
        let mut options = serde_json::to_value(&options).map_err(bad)?;
        // A modal request started by the person's button, not the autofill ("conditional") one.
        if let Some(o) = options.as_object_mut() {
            o.remove("mediation");
        }
        Ok(Some(options))
    }

    /// Finishes sign-in ceremony `id` with the authenticator's answer (JSON): the account whose
    /// passkey signed. For a second factor the passkey must be one of the ceremony's account. The
    /// counter moves forward or the passkey is refused as possibly cloned; both audited.
    pub async fn finish_authentication(
        &self,
        id: &str,
        answer: &str,
        now: i64,
    ) -> Result<String, PasskeyError> {
        let state = self
            .ephemeral
            .take(&ceremony_key(id))
            .await?
            .ok_or(PasskeyError::Expired)?;
        let ceremony: Ceremony = serde_json::from_slice(&state).map_err(bad)?;
        let answer: PublicKeyCredential = serde_json::from_str(answer).map_err(bad)?;
        let credential_id = URL_SAFE_NO_PAD.encode(answer.get_credential_id());
        let Some(row) = self.store.factor_by_credential(&credential_id).await? else {
            let actor = match &ceremony {
                Ceremony::Of { account_id, .. } => Some(account_id.as_str()),
                Ceremony::Discoverable(_) => None,
            };
            self.record_failure(actor.unwrap_or("unknown"), None, "unknown_credential")
                .await?;
            return Err(PasskeyError::Unknown);
        };
        let passkey = self.open(&row).ok_or(PasskeyError::Invalid)?;
        let checked = match ceremony {
            Ceremony::Of { account_id, state } => {
                if account_id != row.account_id {
                    // Another account's passkey offered as this account's second factor.
                    self.record_failure(&account_id, None, "another_account")
                        .await?;
                    return Err(PasskeyError::Unknown);
                }
                self.webauthn.finish_passkey_authentication(&answer, &state)
            }
            Ceremony::Discoverable(state) => {
                let (handle, _) = self
                    .webauthn
                    .identify_discoverable_authentication(&answer)
                    .map_err(bad)?;
                if handle != self.handle(&row.account_id) {
                    self.record_failure(&row.account_id, Some(&row.id), "user_handle")
                        .await?;
                    return Err(PasskeyError::Unknown);
                }
                self.webauthn
                    .finish_discoverable_authentication_v2(&answer, state, &passkey)
            }
        };
        let result = match checked {
            Ok(r) => r,
            Err(WebauthnError::CredentialPossibleCompromise) => {
                self.cloned(&row).await?;
                return Err(PasskeyError::Cloned);
            }
            Err(e) => {
                tracing::info!(error = %e, "passkey assertion refused");
                self.record_failure(&row.account_id, Some(&row.id), "invalid")
                    .await?;
                return Err(PasskeyError::Invalid);
            }
        };
        let counter = i64::from(result.counter());
        if !self
            .store
            .advance_factor(&row.id, counter, result.backup_state(), now)
            .await?
        {
            // Another node accepted the same or a later counter meanwhile.
            self.cloned(&row).await?;
            return Err(PasskeyError::Cloned);
        }
        self.audit
            .record(
                AuditEvent::success(EventType::FactorUsed)
                    .actor(row.account_id.as_str())
                    .target(row.id.as_str())
                    .details(json!({
                        "kind": PASSKEY,
                        "counter": counter,
                        "backup_state": result.backup_state(),
                    })),
            )
            .await?;
        Ok(row.account_id)
    }

    /// A passkey whose counter went back: refused, and removed from the account at once (two
    /// copies exist; which one is the person's cannot be told), both audited. The person registers
    /// a new one.
    async fn cloned(&self, row: &FactorRecord) -> Result<(), OAuthError> {
        self.record_failure(&row.account_id, Some(&row.id), "cloned")
            .await?;
        self.audit
            .record(
                AuditEvent::success(EventType::FactorRemoved)
                    .actor("system")
                    .target(row.id.as_str())
                    .details(json!({
                        "kind": PASSKEY,
                        "account": row.account_id,
                        "reason": "cloned",
                    })),
            )
            .await?;
        self.store
            .remove_factor(&row.account_id, &row.id)
            .await
            .map_err(OAuthError::server)?;
        Ok(())
    }

    async fn record_failure(
        &self,
        account_id: &str,
        factor_id: Option<&str>,
        reason: &str,
    ) -> Result<(), OAuthError> {
        let mut event = AuditEvent::failure(EventType::FactorUsed, reason)
            .actor(account_id)
            .details(json!({ "kind": PASSKEY }));
        if let Some(id) = factor_id {
            event = event.target(id);
        }
        self.audit.record(event).await
    }
}
