//! The key root: the 32 bytes every key protecting data at rest is derived from (PII sealing and
//! blind indexes, pairwise subjects, client secrets, signing keys). It is stored once, in the
//! `key_root` row, wrapped under the configured master key; rotating the master key re-wraps that
//! row and changes nothing else (docs/privacy.md, "Keys and their rotation").
//!
//! A database set up before the key root existed has its keys derived from the master key itself,
//! so the first root is the master key's own bytes: nothing derived changes when the row appears.

use crate::crypto::MasterKey;
use crate::store::{KeyStore, StoreError};

/// Which configured key opened the key root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opener {
    /// There was none: it was made from `keys.master_key` and stored.
    Created,
    /// `keys.master_key`.
    Current,
    /// `keys.previous_master_keys[i]`: the root should be re-wrapped (`yihao keys rotate-master`).
    Previous(usize),
}

#[derive(Debug, thiserror::Error)]
pub enum KeyRootError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "no configured master key opens this database's key root: keys.master_key is not the key \
         it was set up or last rotated with (put that one in keys.previous_master_keys)"
    )]
    NotOpened,
}

/// Opens the key root with `current` or one of `previous`, making it from `current` when there is
/// none yet (two nodes starting together agree: the second insert loses and reads the first).
pub async fn open(
    store: &dyn KeyStore,
    current: &MasterKey,
    previous: &[MasterKey],
    now: i64,
) -> Result<(MasterKey, Opener), KeyRootError> {
    if let Some(wrapped) = store.key_root().await? {
        return unwrap(&wrapped, current, previous);
    }
    let root = current.first_root();
    if store
        .put_key_root(&current.wrap_root(&root), None, now)
        .await?
    {
        return Ok((root, Opener::Created));
    }
    let wrapped = store.key_root().await?.ok_or(KeyRootError::NotOpened)?;
    unwrap(&wrapped, current, previous)
}

fn unwrap(
    wrapped: &[u8],
    current: &MasterKey,
    previous: &[MasterKey],
) -> Result<(MasterKey, Opener), KeyRootError> {
    if let Some(root) = current.unwrap_root(wrapped) {
        return Ok((root, Opener::Current));
    }
    previous
        .iter()
        .enumerate()
        .find_map(|(i, key)| Some((key.unwrap_root(wrapped)?, Opener::Previous(i))))
        .ok_or(KeyRootError::NotOpened)
}

/// Re-wraps the key root under `current` (the master-key rotation). Returns what opened it:
/// [`Opener::Current`] means there was nothing to do.
pub async fn rewrap(
    store: &dyn KeyStore,
    current: &MasterKey,
    previous: &[MasterKey],
    now: i64,
) -> Result<Opener, KeyRootError> {
    let Some(wrapped) = store.key_root().await? else {
        return Ok(open(store, current, previous, now).await?.1);
    };
    let (root, opener) = unwrap(&wrapped, current, previous)?;
    if opener == Opener::Current {
        return Ok(opener);
    }
    if !store
        .put_key_root(&current.wrap_root(&root), Some(&wrapped), now)
        .await?
    {
        // Another node re-wrapped it meanwhile: it must now open with the current key.
        let again = store.key_root().await?.ok_or(KeyRootError::NotOpened)?;
        unwrap(&again, current, &[])?;
    }
    Ok(opener)
}
