//! Personal data at rest (docs/privacy.md): ID numbers and phone numbers are sealed with AES-256-GCM and
//! found through a keyed blind index (HMAC-SHA256 over the normalised value), never an unkeyed hash.
//!
//! Keys are derived from the master key: the blind-index key once, and one encryption key per
//! version (`pii/aes-256-gcm/v{n}`). A sealed value starts with its version, so any node can open any
//! version and rotating (`keys.pii_version` + `yihao keys rotate-pii`) needs no coordination. The
//! associated data binds a ciphertext to its table, column and row: a value copied into another row
//! does not open.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::MasterKey;

const VERSION_LEN: usize = 4;
const NONCE_LEN: usize = 12;

/// A blind index value: HMAC-SHA256 of a normalised value under the index key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlindIndex(pub [u8; 32]);

impl fmt::Debug for BlindIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "BlindIndex({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

impl BlindIndex {
    /// Lower-case hex: a keyed hash that is safe in logs and ephemeral-store keys.
    pub fn hex(&self) -> String {
        super::hex(&self.0)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PiiError {
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed value does not open (wrong key, or moved from another row)")]
    Tampered,
}

pub struct Pii {
    index_key: Zeroizing<[u8; 32]>,
    sealer: Sealer,
}

impl fmt::Debug for Pii {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Pii(active version {}, keys redacted)",
            self.sealer.active
        )
    }
}

impl Pii {
    pub fn new(master: &MasterKey, active_version: u32) -> Self {
        Self {
            index_key: master.derive("pii/blind-index"),
            sealer: Sealer::new(master, "pii/aes-256-gcm", active_version),
        }
    }

    pub fn active_version(&self) -> u32 {
        self.sealer.active
    }

    /// The blind index of `value` for one purpose ("document", "phone"): equal inputs give equal
    /// outputs; without the key nothing can be learnt or brute-forced from it.
    pub fn blind_index(&self, purpose: &str, value: &str) -> BlindIndex {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.index_key.as_slice())
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        BlindIndex(mac.finalize().into_bytes().into())
    }

    /// Seals `plaintext` under the active version; `context` names where it is stored
    /// (`"accounts.phone:ACCOUNT_ID"`).
    pub fn seal(&self, context: &str, plaintext: &str) -> Vec<u8> {
        self.sealer.seal(context, plaintext.as_bytes())
    }

    /// The version a sealed value was made with.
    pub fn version_of(sealed: &[u8]) -> Result<u32, PiiError> {
        Sealer::version_of(sealed)
    }

    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<String, PiiError> {
        let plain = self.sealer.open(context, sealed)?;
        String::from_utf8(plain).map_err(|_| PiiError::Malformed)
    }
}

/// AES-256-GCM under keys derived from the master key for one purpose (`label`) and a version. A
/// sealed value is `version (4 bytes, big endian) || nonce (12) || ciphertext+tag`; every version can
/// be derived, so any node opens any version.
pub struct Sealer {
    master: Zeroizing<[u8; 32]>,
    active: u32,
    ciphers: Mutex<HashMap<u32, Aes256Gcm>>,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealer(active version {}, keys redacted)", self.active)
    }
}

impl Sealer {
    pub fn new(master: &MasterKey, label: &str, active_version: u32) -> Self {
        let sealer = Self {
            master: master.derive(label),
            active: active_version.max(1),
            ciphers: Mutex::new(HashMap::new()),
        };
        // Built at start-up, not on a request path.
        sealer.with_cipher(sealer.active, |_| ());
        sealer
    }

    fn with_cipher<T>(&self, version: u32, f: impl FnOnce(&Aes256Gcm) -> T) -> T {
        let mut ciphers = self
            .ciphers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let cipher = ciphers.entry(version).or_insert_with(|| {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.master.as_slice())
                .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
            mac.update(format!("v{version}").as_bytes());
            let key: Zeroizing<[u8; 32]> = Zeroizing::new(mac.finalize().into_bytes().into());
            Aes256Gcm::new(&(*key).into())
        });
        f(cipher)
    }

    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plaintext,
            aad: context.as_bytes(),
        };
        let sealed = self.with_cipher(self.active, |c| {
            c.encrypt(Nonce::from_slice(&nonce), payload)
        });
        let mut out = Vec::with_capacity(VERSION_LEN + NONCE_LEN + plaintext.len() + 16);
        out.extend_from_slice(&self.active.to_be_bytes());
        out.extend_from_slice(&nonce);
        // AES-GCM encryption fails only for inputs over 64 GiB.
        out.extend_from_slice(&sealed.unwrap_or_default());
        out
    }

    pub fn version_of(sealed: &[u8]) -> Result<u32, PiiError> {
        let v: [u8; VERSION_LEN] = sealed
            .get(..VERSION_LEN)
            .and_then(|v| v.try_into().ok())
            .ok_or(PiiError::Malformed)?;
        Ok(u32::from_be_bytes(v))
    }

    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, PiiError> {
        let version = Self::version_of(sealed)?;
        if sealed.len() < VERSION_LEN + NONCE_LEN + 16 {
            return Err(PiiError::Malformed);
        }
        let (nonce, body) = sealed[VERSION_LEN..].split_at(NONCE_LEN);
        let payload = Payload {
            msg: body,
            aad: context.as_bytes(),
        };
        self.with_cipher(version, |c| c.decrypt(Nonce::from_slice(nonce), payload))
            .map_err(|_| PiiError::Tampered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master(byte: u8) -> MasterKey {
        MasterKey::from_bytes([byte; 32])
    }

    #[test]
    fn sealed_values_open_only_in_their_context() {
        let pii = Pii::new(&master(1), 1);
        let sealed = pii.seal("accounts.phone:a1", "13812341234");
        assert!(!sealed.windows(11).any(|w| w == b"13812341234"));
        assert_eq!(
            pii.open("accounts.phone:a1", &sealed).unwrap(),
            "13812341234"
        );
        assert_eq!(
            pii.open("accounts.phone:a2", &sealed),
            Err(PiiError::Tampered)
        );
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(
            pii.open("accounts.phone:a1", &flipped),
            Err(PiiError::Tampered)
        );
        assert_eq!(pii.open("x", b"short"), Err(PiiError::Malformed));
        assert_ne!(
            pii.seal("c", "same"),
            pii.seal("c", "same"),
            "nonces repeat"
        );
    }

    #[test]
    fn every_version_opens_after_rotation() {
        let old = Pii::new(&master(1), 1);
        let new = Pii::new(&master(1), 2);
        let sealed_v1 = old.seal("c", "v1 data");
        let sealed_v2 = new.seal("c", "v2 data");
        assert_eq!(Pii::version_of(&sealed_v2).unwrap(), 2);
        assert_eq!(new.open("c", &sealed_v1).unwrap(), "v1 data");
        assert_eq!(
            old.open("c", &sealed_v2).unwrap(),
            "v2 data",
            "a node behind on the version still reads"
        );
        assert!(
            Pii::new(&master(2), 1).open("c", &sealed_v1).is_err(),
            "another master key opens it"
        );
    }

    #[test]
    fn blind_indexes_are_keyed_and_separated_by_purpose() {
        let a = Pii::new(&master(1), 1);
        let b = Pii::new(&master(2), 1);
        assert_eq!(
            a.blind_index("phone", "13812341234"),
            a.blind_index("phone", "13812341234")
        );
        assert_ne!(
            a.blind_index("phone", "13812341234"),
            b.blind_index("phone", "13812341234")
        );
        assert_ne!(
            a.blind_index("phone", "13812341234"),
            a.blind_index("document", "13812341234")
        );
        use sha2::Digest;
        let unkeyed: [u8; 32] = sha2::Sha256::digest(b"13812341234").into();
        assert_ne!(a.blind_index("phone", "13812341234").0, unkeyed);
    }
}
