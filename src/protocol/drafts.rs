//! Flows in progress that hold personal data between pages (registration, recovery): kept in the
//! ephemeral store under a random id, sealed (AES-256-GCM, the id as associated data) so a copy of
//! Redis reveals nothing, bound to the browser that started them, and forgotten after their TTL.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::crypto::pii::Sealer;
use crate::store::{Ephemeral, StoreError};

/// Drafts of one kind (`prefix`: `reg`, `recover`).
pub struct Drafts<'a> {
    pub ephemeral: &'a dyn Ephemeral,
    pub sealer: &'a Sealer,
    pub prefix: &'static str,
    pub ttl: Duration,
}

impl Drafts<'_> {
    fn key(&self, id: &str) -> String {
        format!("{}:draft:{id}", self.prefix)
    }

    fn context(&self, id: &str) -> String {
        format!("{}:{id}", self.prefix)
    }

    /// Stores `draft` under `id` (replacing it), sealed.
    pub async fn save<T: Serialize>(&self, id: &str, draft: &T) -> Result<(), StoreError> {
        let plain = zeroize::Zeroizing::new(
            serde_json::to_vec(draft).map_err(|e| StoreError::backend("draft", e))?,
        );
        let sealed = self.sealer.seal(&self.context(id), &plain);
        self.ephemeral.put(&self.key(id), &sealed, self.ttl).await
    }

    /// The draft `id`; `None` when unknown, expired, or not one of ours.
    pub async fn load<T: DeserializeOwned>(&self, id: &str) -> Result<Option<T>, StoreError> {
        if id.is_empty() || id.len() > 64 {
            return Ok(None);
        }
        let Some(sealed) = self.ephemeral.get(&self.key(id)).await? else {
            return Ok(None);
        };
        let Ok(plain) = self.sealer.open(&self.context(id), &sealed) else {
            return Ok(None);
        };
        let plain = zeroize::Zeroizing::new(plain);
        Ok(serde_json::from_slice(&plain).ok())
    }

    pub async fn delete(&self, id: &str) -> Result<(), StoreError> {
        self.ephemeral.delete(&self.key(id)).await.map(|_| ())
    }
}

/// Whether a draft's browser is this one (constant time).
pub fn same_browser(stored: &str, browser: &str) -> bool {
    subtle::ConstantTimeEq::ct_eq(stored.as_bytes(), browser.as_bytes()).into()
}
