//! Key material and hashing: the master key, random tokens, client-secret hashes.
//!
//! Signing keys and JWKS, password hashing, PII encryption and blind indexes join here as their
//! capabilities land. Nothing here logs a secret; `Debug` of key types prints a redaction.

use std::fmt;
use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::config::KeysConfig;

pub mod client_secret;
pub mod password;
pub mod pii;
pub mod signing;
pub mod subject;
pub mod totp;
use crate::domain::client::SecretHash;

/// A 32-byte key: the configured master key (which wraps the key root), or the key root, from which
/// the keys protecting data at rest are derived (docs/privacy.md, "Keys and their rotation"). Its bytes, and every key
/// derived from it, are overwritten with zeros when dropped (security review 20), so a key does not
/// outlive its holder in freed memory.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct MasterKey {
    bytes: [u8; 32],
    development: bool,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "MasterKey([redacted], development: {})",
            self.development
        )
    }
}

/// The purpose of the key that wraps the key root, and the associated data of the wrapped root.
const ROOT_WRAP: &str = "key-root/wrap";
const ROOT_CONTEXT: &str = "key_root";

/// Where the development master key lives inside `keys.dev_dir`.
pub const DEV_MASTER_KEY_FILE: &str = "dev-master.key";

impl MasterKey {
    /// The configured key, or else the development key in `keys.dev_dir`, generated on first use
    /// (readable by the owner only). Production configurations never reach the second branch:
    /// `Config::validate` refuses an empty `keys.master_key` there.
    pub fn load(config: &KeysConfig) -> Result<Self, MasterKeyError> {
        if !config.master_key.is_empty() {
            let bytes =
                decode_key(config.master_key.expose()).map_err(|why| MasterKeyError::Bad {
                    place: "keys.master_key".into(),
                    why,
                })?;
            return Ok(Self {
                bytes,
                development: false,
            });
        }
        let path = config.dev_dir.join(DEV_MASTER_KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let text = Zeroizing::new(text);
                let bytes = decode_key(text.trim()).map_err(|why| MasterKeyError::Bad {
                    place: path.display().to_string(),
                    why,
                })?;
                Ok(Self {
                    bytes,
                    development: true,
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = Zeroizing::new([0u8; 32]);
                rand::rng().fill_bytes(bytes.as_mut());
                write_private(&path, Zeroizing::new(STANDARD.encode(*bytes)).as_bytes()).map_err(
                    |source| MasterKeyError::Io {
                        doing: "write",
                        path: path.display().to_string(),
                        source,
                    },
                )?;
                tracing::warn!(path = %path.display(), "generated a development master key");
                Ok(Self {
                    bytes: *bytes,
                    development: true,
                })
            }
            Err(source) => Err(MasterKeyError::Io {
                doing: "read",
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// A (non-development) key from its bytes: for tools and tests that hold one already.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self {
            bytes,
            development: false,
        }
    }

    /// `keys.previous_master_keys`, each checked like `keys.master_key`.
    pub fn load_previous(config: &KeysConfig) -> Result<Vec<Self>, MasterKeyError> {
        config
            .previous_master_keys
            .iter()
            .enumerate()
            .map(|(i, key)| {
                let bytes = decode_key(key.expose()).map_err(|why| MasterKeyError::Bad {
                    place: format!("keys.previous_master_keys[{i}]"),
                    why,
                })?;
                Ok(Self::from_bytes(bytes))
            })
            .collect()
    }

    pub fn is_development(&self) -> bool {
        self.development
    }

    /// The key root that starts from this key: the same bytes, so a database set up before the key
    /// root existed keeps every derived key.
    pub fn first_root(&self) -> Self {
        Self {
            bytes: self.bytes,
            development: self.development,
        }
    }

    /// `root` sealed under this key (AES-256-GCM under a key derived for the purpose), for the
    /// `key_root` row.
    pub fn wrap_root(&self, root: &MasterKey) -> Vec<u8> {
        pii::Sealer::new(self, ROOT_WRAP, 1).seal(ROOT_CONTEXT, &root.bytes)
    }

    /// The key root from its wrapped form, when this key wrapped it.
    pub fn unwrap_root(&self, wrapped: &[u8]) -> Option<Self> {
        let plain = Zeroizing::new(
            pii::Sealer::new(self, ROOT_WRAP, 1)
                .open(ROOT_CONTEXT, wrapped)
                .ok()?,
        );
        Some(Self {
            bytes: <[u8; 32]>::try_from(plain.as_slice()).ok()?,
            development: self.development,
        })
    }

    /// A 32-byte key for one purpose, derived as HMAC-SHA256(master, "yihao/" + purpose): keys for
    /// different purposes are independent, and none reveals the master key.
    pub fn derive(&self, purpose: &str) -> Zeroizing<[u8; 32]> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.bytes)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(b"yihao/");
        mac.update(purpose.as_bytes());
        Zeroizing::new(mac.finalize().into_bytes().into())
    }
}

/// Why the master key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("{place}: {why}")]
    Bad { place: String, why: &'static str },
    #[error("cannot {doing} {path}")]
    Io {
        doing: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn decode_key(text: &str) -> Result<[u8; 32], &'static str> {
    let bytes = Zeroizing::new(STANDARD.decode(text).map_err(|_| "is not base64")?);
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| "must be 32 bytes (44 base64 characters)")
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Lower-case hex of `bytes` (hashes, fingerprints, signatures in logs, keys and headers).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random token of 256 bits, base64url without padding (43 characters): client secrets,
/// authorization codes, session ids.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of a client secret. A slow hash adds nothing to a 256-bit random secret (docs/design.md).
pub fn hash_secret(secret: &str) -> SecretHash {
    SecretHash(Sha256::digest(secret.as_bytes()).into())
}

/// Compares a presented secret with a stored hash in constant time.
pub fn secret_matches(presented: &str, stored: &SecretHash) -> bool {
    hash_secret(presented).0.ct_eq(&stored.0).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn development_master_key_is_generated_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let config = KeysConfig {
            dev_dir: dir.path().join("keys"),
            master_key: Secret::default(),
            previous_master_keys: Vec::new(),
            pii_version: 1,
            publish_before_use_secs: 86_400,
            reload_secs: 60,
        };
        let first = MasterKey::load(&config).unwrap();
        let again = MasterKey::load(&config).unwrap();
        assert!(first.is_development());
        assert_eq!(first.derive("pii"), again.derive("pii"));
        assert_ne!(first.derive("pii"), first.derive("kek"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(config.dev_dir.join(DEV_MASTER_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "development key readable by others");
        }
    }

    /// Security review 20: key material is overwritten when dropped. A type losing that property
    /// (a field that does not zeroize, a derive removed) stops this test from compiling.
    #[test]
    fn key_material_is_zeroed_on_drop() {
        fn zeroed_on_drop<T: ZeroizeOnDrop>() {}
        zeroed_on_drop::<MasterKey>();
        zeroed_on_drop::<Secret>();
        zeroed_on_drop::<Zeroizing<[u8; 32]>>();
        zeroed_on_drop::<aes_gcm::aes::Aes256>();

        let mut secret = Secret::new("s3cret");
        secret.zeroize();
        assert!(secret.is_empty());
        let mut key = MasterKey {
            bytes: [7; 32],
            development: true,
        };
        key.zeroize();
        assert_eq!(key.bytes, [0; 32]);
        assert!(!key.development);
    }

    #[test]
    fn configured_master_key_must_be_32_bytes_of_base64() {
        let keys = |k: &str| KeysConfig {
            dev_dir: "unused".into(),
            previous_master_keys: Vec::new(),
            master_key: Secret::new(k),
            pii_version: 1,
            publish_before_use_secs: 86_400,
            reload_secs: 60,
        };
        assert!(
            !MasterKey::load(&keys(&STANDARD.encode([1u8; 32])))
                .unwrap()
                .is_development()
        );
        assert!(
            MasterKey::load(&keys("short"))
                .unwrap_err()
                .to_string()
                .contains("keys.master_key")
        );
        assert!(
            MasterKey::load(&keys(&STANDARD.encode([1u8; 16])))
                .unwrap_err()
                .to_string()
                .contains("32 bytes")
        );
        assert!(
            !format!(
                "{:?}",
                MasterKey::load(&keys(&STANDARD.encode([1u8; 32]))).unwrap()
            )
            .contains("AQEB")
        );
    }

    #[test]
    fn secrets_are_random_and_compared_by_hash() {
        let a = random_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token());
        let stored = hash_secret(&a);
        assert!(secret_matches(&a, &stored));
        assert!(!secret_matches(&random_token(), &stored));
    }
}
