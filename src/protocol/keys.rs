//! Signing-key lifecycle over the store: load and parse once, make the first key of each algorithm,
//! rotate (the new key is published `publish_before_use_secs` before it signs, and the key it
//! replaces stops signing then), retire. Nodes hold a [`KeyRing`] and swap it on reload.

use std::sync::{Arc, RwLock};
use zeroize::Zeroizing;

use crate::crypto::MasterKey;
use crate::crypto::pii::Sealer;
use crate::crypto::signing::{Alg, KeyRing, SigningKey};
use crate::store::{KeyStore, SigningKeyRecord, StoreError};
use crate::telemetry::ErrorChain;

/// Channel on which nodes hear that the signing keys changed.
pub const KEYS_CHANNEL: &str = "keys";

pub struct Keys {
    store: Arc<dyn KeyStore>,
    sealer: Sealer,
    publish_before_use: i64,
    longest_token: i64,
    ring: RwLock<Arc<KeyRing>>,
}

fn context(kid: &str) -> String {
    format!("signing_keys.private:{kid}")
}

impl Keys {
    /// Loads the keys, making an immediately active key for every algorithm that has none.
    pub async fn start(
        store: Arc<dyn KeyStore>,
        master: &MasterKey,
        publish_before_use_secs: u64,
        longest_token_secs: u64,
        now: i64,
    ) -> Result<Self, StoreError> {
        let keys = Self {
            store,
            sealer: Sealer::new(master, "signing-keys/aes-256-gcm", 1),
            publish_before_use: i64::try_from(publish_before_use_secs).unwrap_or(i64::MAX / 4),
            longest_token: i64::try_from(longest_token_secs).unwrap_or(i64::MAX / 4),
            ring: RwLock::new(Arc::new(KeyRing::new(Vec::new(), 0))),
        };
        keys.reload().await?;
        let missing: Vec<Alg> = Alg::ALL
            .into_iter()
            .filter(|&alg| keys.ring().signer(alg, now).is_none())
            .collect();
        for alg in &missing {
            keys.create(*alg, now, now).await?;
            tracing::info!(alg = %alg, "created a signing key");
        }
        if !missing.is_empty() {
            keys.reload().await?;
        }
        Ok(keys)
    }

    /// The current ring (cheap: an `Arc` clone).
    pub fn ring(&self) -> Arc<KeyRing> {
        self.ring
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Re-reads every key from the store and swaps the ring.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let mut parsed = Vec::new();
        for r in self.store.signing_keys().await? {
            // A revoked key is gone: it signs, publishes and verifies nothing.
            if r.revoked_at.is_some() {
                continue;
            }
            let alg = Alg::parse(&r.alg).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let der = self
                .sealer
                .open(&context(&r.kid), &r.private_sealed)
                .map(Zeroizing::new)
                .map_err(|e| StoreError::Corrupt(format!("signing key {}: {e}", r.kid)))?;
            parsed.push(
                SigningKey::from_pkcs8(&r.kid, alg, &der, r.created_at, r.not_before, r.retired_at)
                    .map_err(|e| StoreError::Corrupt(ErrorChain(&e).to_string()))?,
            );
        }
        let ring = Arc::new(KeyRing::new(parsed, self.longest_token));
        *self
            .ring
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = ring;
        Ok(())
    }

    async fn create(
        &self,
        alg: Alg,
        now: i64,
        not_before: i64,
    ) -> Result<SigningKeyRecord, StoreError> {
        let der =
            SigningKey::generate(alg).map_err(|e| StoreError::backend("key generation", e))?;
        let kid = format!(
            "{}-{}",
            alg.as_str().to_ascii_lowercase(),
            &uuid::Uuid::new_v4().simple().to_string()[..16]
        );
        let record = SigningKeyRecord {
            private_sealed: self.sealer.seal(&context(&kid), &der),
            kid,
            alg: alg.as_str().to_owned(),
            created_at: now,
            not_before,
            retired_at: None,
            revoked_at: None,
        };
        self.store.insert_signing_key(&record).await?;
        Ok(record)
    }

    /// A new key for `alg`: published now, signing from `now + publish_before_use_secs`, when the
    /// key it replaces stops signing.
    pub async fn rotate(&self, alg: Alg, now: i64) -> Result<SigningKeyRecord, StoreError> {
        let starts = now + self.publish_before_use;
        let current: Vec<String> = self
            .ring()
            .keys()
            .iter()
            .filter(|k| k.alg == alg && k.retired_at.is_none())
            .map(|k| k.kid.clone())
            .collect();
        let record = self.create(alg, now, starts).await?;
        for kid in current {
            self.store.retire_signing_key(&kid, starts).await?;
        }
        self.reload().await?;
        Ok(record)
    }

    /// Withdraws a key at once (a compromised key, security review 14): from now it neither signs,
    /// nor is published, nor verifies any token, on every node after its reload. Refused while no
    /// other key signs for its algorithm now (rotate first; to switch at once, rotate with
    /// `keys.publish_before_use_secs` = 0).
    pub async fn revoke(&self, kid: &str, now: i64) -> Result<bool, StoreError> {
        let ring = self.ring();
        let Some(key) = ring.by_kid(kid) else {
            return Ok(false);
        };
        let other_signer = ring
            .keys()
            .iter()
            .any(|k| k.alg == key.alg && k.kid != kid && k.signs_at(now));
        if !other_signer {
            return Err(StoreError::failed(format!(
                "no other {} key signs now: run `yihao keys rotate --alg {}` first",
                key.alg, key.alg
            )));
        }
        let done = self.store.revoke_signing_key(kid, now).await?;
        self.reload().await?;
        Ok(done)
    }

    /// Stops a key signing now; it stays in the JWKS until its tokens have expired. Refused for the
    /// last key that would sign for its algorithm (rotate first).
    pub async fn retire(&self, kid: &str, now: i64) -> Result<bool, StoreError> {
        let ring = self.ring();
        let Some(key) = ring.by_kid(kid) else {
            return Ok(false);
        };
        let successor = ring
            .keys()
            .iter()
            .any(|k| k.alg == key.alg && k.kid != kid && k.retired_at.is_none());
        if !successor {
            return Err(StoreError::failed(format!(
                "{kid} is the last {} key: run `yihao keys rotate --alg {}` first",
                key.alg, key.alg
            )));
        }
        let done = self.store.retire_signing_key(kid, now).await?;
        self.reload().await?;
        Ok(done)
    }
}
