//! Password hashing: argon2id with configured parameters, run on a bounded pool so a login storm
//! cannot stall token, userinfo or JWKS requests (docs/design.md). Hashes run on tokio's blocking
//! threads, at most `workers` at a time; callers wait asynchronously for a turn, and beyond
//! `max_waiting` waiters they are refused at once ([`HashError::Busy`]) instead of queueing forever.
//!
//! Legacy hashes imported from department systems are verified too (bcrypt, Django PBKDF2-SHA256,
//! salted MD5 / SHA-1 / SHA-256 / SM3 hex) and report `needs_rehash`, so a successful login replaces
//! them with argon2id. Verification of an unknown account runs against a dummy hash with the same
//! parameters, so it costs what a real one costs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use sha2::Digest as _;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use crate::config::PasswordsConfig;
use crate::domain::password::Password;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HashError {
    #[error("too many password checks in progress; try again shortly")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// Digest of a salted legacy hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyDigest {
    Md5,
    Sha1,
    Sha256,
    Sm3,
}

impl LegacyDigest {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "md5" => Some(Self::Md5),
            "sha1" => Some(Self::Sha1),
            "sha256" => Some(Self::Sha256),
            "sm3" => Some(Self::Sm3),
            _ => None,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Self::Md5 => "md5",
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sm3 => "sm3",
        }
    }
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Md5 => md5::Md5::digest(data).to_vec(),
            Self::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Self::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Self::Sm3 => sm3::Sm3::digest(data).to_vec(),
        }
    }
}

/// Where a legacy system put the salt relative to the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaltPosition {
    Prefix,
    Suffix,
}

/// A stored password hash in one of the formats yihao can verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredHash {
    /// PHC string `$argon2id$v=19$m=...,t=...,p=...$salt$hash`.
    Argon2(String),
    /// `$2a$` / `$2b$` / `$2y$` bcrypt.
    Bcrypt(String),
    /// Django's `pbkdf2_sha256$ITERATIONS$SALT$BASE64HASH`.
    DjangoPbkdf2 {
        iterations: u32,
        salt: String,
        hash: Vec<u8>,
    },
    /// `$legacy-DIGEST$prefix|suffix$BASE64SALT$HEX`: hex digest of salt+password or password+salt.
    Salted {
        digest: LegacyDigest,
        position: SaltPosition,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    /// `$wrapped-DIGEST$prefix|suffix$BASE64SALT$PHC`: a salted legacy digest kept only under
    /// argon2id (the PHC string is argon2id of the digest's hex), so the weak digest is not stored
    /// and checking it costs a full argon2id like every other password (security review 18).
    Wrapped {
        digest: LegacyDigest,
        position: SaltPosition,
        salt: Vec<u8>,
        phc: String,
    },
}

/// `DIGEST$prefix|suffix$BASE64SALT$REST` of a `$legacy-` or `$wrapped-` hash.
fn salted_parts(rest: &str) -> Option<(LegacyDigest, SaltPosition, Vec<u8>, &str)> {
    let mut parts = rest.splitn(4, '$');
    let digest = LegacyDigest::parse(parts.next()?)?;
    let position = match parts.next()? {
        "prefix" => SaltPosition::Prefix,
        "suffix" => SaltPosition::Suffix,
        _ => return None,
    };
    let salt = STANDARD_NO_PAD.decode(parts.next()?).ok()?;
    Some((digest, position, salt, parts.next()?))
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl StoredHash {
    /// Recognises a stored hash string; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        if s.starts_with("$argon2id$") {
            return Some(Self::Argon2(s.to_owned()));
        }
        if ["$2a$", "$2b$", "$2y$"].iter().any(|p| s.starts_with(p)) {
            return Some(Self::Bcrypt(s.to_owned()));
        }
        if let Some(rest) = s.strip_prefix("pbkdf2_sha256$") {
            let mut parts = rest.splitn(3, '$');
            let iterations = parts.next()?.parse().ok().filter(|&n: &u32| n > 0)?;
            let salt = parts.next()?.to_owned();
            let hash = STANDARD.decode(parts.next()?).ok()?;
            return Some(Self::DjangoPbkdf2 {
                iterations,
                salt,
                hash,
            });
        }
        if let Some(rest) = s.strip_prefix("$wrapped-") {
            let (digest, position, salt, last) = salted_parts(rest)?;
            let phc = format!("${last}");
            return phc.starts_with("$argon2id$").then_some(Self::Wrapped {
                digest,
                position,
                salt,
                phc,
            });
        }
        if let Some(rest) = s.strip_prefix("$legacy-") {
            let (digest, position, salt, last) = salted_parts(rest)?;
            let hash = hex_decode(&last.to_ascii_lowercase())?;
            if hash.len() != digest.digest(b"").len() {
                return None;
            }
            return Some(Self::Salted {
                digest,
                position,
                salt,
                hash,
            });
        }
        None
    }

    /// A salted legacy digest from its parts: `hex` is the digest of salt+password (prefix) or
    /// password+salt (suffix). `None` when the hex is not a digest of that kind.
    pub fn salted(
        digest: LegacyDigest,
        position: SaltPosition,
        salt: &[u8],
        hex: &str,
    ) -> Option<Self> {
        let hash = hex_decode(&hex.trim().to_ascii_lowercase())?;
        (hash.len() == digest.digest(b"").len()).then(|| Self::Salted {
            digest,
            position,
            salt: salt.to_vec(),
            hash,
        })
    }

    /// The string stored in the database.
    pub fn encode(&self) -> String {
        match self {
            Self::Argon2(s) | Self::Bcrypt(s) => s.clone(),
            Self::DjangoPbkdf2 {
                iterations,
                salt,
                hash,
            } => {
                format!(
                    "pbkdf2_sha256${iterations}${salt}${}",
                    STANDARD.encode(hash)
                )
            }
            Self::Salted {
                digest,
                position,
                salt,
                hash,
            } => format!(
                "$legacy-{}${}${}${}",
                digest.name(),
                match position {
                    SaltPosition::Prefix => "prefix",
                    SaltPosition::Suffix => "suffix",
                },
                STANDARD_NO_PAD.encode(salt),
                crate::crypto::hex(hash)
            ),
            Self::Wrapped {
                digest,
                position,
                salt,
                phc,
            } => format!(
                "$wrapped-{}${}${}{}",
                digest.name(),
                match position {
                    SaltPosition::Prefix => "prefix",
                    SaltPosition::Suffix => "suffix",
                },
                STANDARD_NO_PAD.encode(salt),
                phc
            ),
        }
    }

    /// The scheme name, for summaries and metrics (never the hash).
    pub fn scheme(&self) -> &'static str {
        match self {
            Self::Argon2(_) => "argon2id",
            Self::Bcrypt(_) => "bcrypt",
            Self::DjangoPbkdf2 { .. } => "pbkdf2_sha256",
            Self::Salted { digest, .. } => match digest {
                LegacyDigest::Md5 => "salted_md5",
                LegacyDigest::Sha1 => "salted_sha1",
                LegacyDigest::Sha256 => "salted_sha256",
                LegacyDigest::Sm3 => "salted_sm3",
            },
            Self::Wrapped { .. } => "wrapped",
        }
    }

    /// The hex digest a salted legacy scheme makes of `password`.
    fn legacy_hex(
        digest: &LegacyDigest,
        position: &SaltPosition,
        salt: &[u8],
        password: &str,
    ) -> Vec<u8> {
        let mut input = Vec::with_capacity(salt.len() + password.len());
        match position {
            SaltPosition::Prefix => {
                input.extend_from_slice(salt);
                input.extend_from_slice(password.as_bytes());
            }
            SaltPosition::Suffix => {
                input.extend_from_slice(password.as_bytes());
                input.extend_from_slice(salt);
            }
        }
        digest.digest(&input)
    }

    fn matches(&self, argon: &Argon2<'_>, password: &str) -> bool {
        match self {
            Self::Argon2(phc) => argon
                .verify_password(password.as_bytes(), phc.as_str())
                .is_ok(),
            Self::Bcrypt(h) => bcrypt::verify(password, h).unwrap_or(false),
            Self::DjangoPbkdf2 {
                iterations,
                salt,
                hash,
            } => {
                let mut out = vec![0u8; hash.len().max(1)];
                pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
                    password.as_bytes(),
                    salt.as_bytes(),
                    *iterations,
                    &mut out,
                );
                out.ct_eq(hash).into()
            }
            Self::Salted {
                digest,
                position,
                salt,
                hash,
            } => Self::legacy_hex(digest, position, salt, password)
                .ct_eq(hash)
                .into(),
            Self::Wrapped {
                digest,
                position,
                salt,
                phc,
            } => {
                let inner = crate::crypto::hex(&Self::legacy_hex(digest, position, salt, password));
                argon
                    .verify_password(inner.as_bytes(), phc.as_str())
                    .is_ok()
            }
        }
    }
}

/// The outcome of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    pub matches: bool,
    /// The stored hash is legacy or has other argon2 parameters: store a fresh one now that the
    /// password is known.
    pub needs_rehash: bool,
}

pub struct PasswordHasher {
    argon: Argon2<'static>,
    params: Params,
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    dummy: String,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PasswordHasher({:?}, max_waiting {})",
            self.params, self.max_waiting
        )
    }
}

/// The argon2 parameters of `passwords.argon2_*` are refused by argon2.
#[derive(Debug, thiserror::Error)]
#[error("passwords.argon2_*: {0}")]
pub struct HasherConfigError(argon2::Error);

impl PasswordHasher {
    pub fn new(config: &PasswordsConfig) -> Result<Self, HasherConfigError> {
        let params = Params::new(
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.argon2_parallelism,
            None,
        )
        .map_err(HasherConfigError)?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let workers = match config.workers {
            0 => std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            n => n,
        };
        // The dummy has the configured parameters and a random salt and output, so verifying
        // against it costs one full hash and never matches. It is written, not computed: computing
        // it would cost a hash (and its memory) at every start.
        let random = |n: usize| {
            let mut bytes = vec![0u8; n];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
            STANDARD_NO_PAD.encode(bytes)
        };
        let dummy = format!(
            "$argon2id$v=19$m={},t={},p={}${}${}",
            params.m_cost(),
            params.t_cost(),
            params.p_cost(),
            random(16),
            random(32)
        );
        Ok(Self {
            argon,
            params,
            permits: Arc::new(Semaphore::new(workers)),
            waiting: AtomicUsize::new(0),
            max_waiting: config.max_waiting,
            dummy,
        })
    }

    /// Runs `job` on a blocking thread once a worker is free.
    async fn on_pool<T: Send + 'static>(
        &self,
        job: impl FnOnce(Argon2<'static>) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting + self.permits_total() {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(HashError::Busy);
        }
        let permit = self.permits.clone().acquire_owned().await;
        let argon = self.argon.clone();
        let result = match permit {
            Ok(permit) => tokio::task::spawn_blocking(move || {
                let out = job(argon);
                drop(permit);
                out
            })
            .await
            .map_err(|e| HashError::Failed(e.to_string())),
            Err(e) => Err(HashError::Failed(e.to_string())),
        };
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        result
    }

    fn permits_total(&self) -> usize {
        // Callers holding a permit are counted in `waiting` too.
        self.permits.available_permits().max(1)
    }

    /// A fresh argon2id PHC string.
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let password = password.expose().to_owned();
        self.on_pool(move |argon| {
            argon
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
        })
        .await?
        .map_err(|e| HashError::Failed(e.to_string()))
    }

    /// A salted legacy digest wrapped in argon2id, for storing instead of the digest itself;
    /// other hashes are returned as they are.
    pub async fn wrap(&self, stored: &StoredHash) -> Result<StoredHash, HashError> {
        let StoredHash::Salted {
            digest,
            position,
            salt,
            hash,
        } = stored
        else {
            return Ok(stored.clone());
        };
        let inner = crate::crypto::hex(hash);
        let phc = self
            .on_pool(move |argon| argon.hash_password(inner.as_bytes()).map(|h| h.to_string()))
            .await?
            .map_err(|e| HashError::Failed(e.to_string()))?;
        Ok(StoredHash::Wrapped {
            digest: *digest,
            position: *position,
            salt: salt.clone(),
            phc,
        })
    }

    /// Verifies against `stored`, or against the dummy when there is no account (same cost, never a
    /// match).
    pub async fn verify(
        &self,
        password: &Password,
        stored: Option<&str>,
    ) -> Result<Verification, HashError> {
        let known = stored.and_then(StoredHash::parse);
        let is_real = known.is_some();
        let target = known.unwrap_or_else(|| StoredHash::Argon2(self.dummy.clone()));
        let needs_rehash = match &target {
            StoredHash::Argon2(phc) => !self.has_current_params(phc),
            _ => true,
        };
        let password = password.expose().to_owned();
        let matches = self
            .on_pool(move |argon| target.matches(&argon, &password))
            .await?;
        Ok(Verification {
            matches: matches && is_real,
            needs_rehash,
        })
    }

    fn has_current_params(&self, phc: &str) -> bool {
        let p = &self.params;
        phc.contains(&format!(
            "$m={},t={},p={}$",
            p.m_cost(),
            p.t_cost(),
            p.p_cost()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordsConfig {
        PasswordsConfig {
            argon2_memory_kib: 64,
            argon2_iterations: 1,
            argon2_parallelism: 1,
            ..PasswordsConfig::default()
        }
    }

    /// Security review 18: imported salted MD5/SHA-1 hashes were stored as they came and checked in
    /// microseconds. Wrapped, only argon2id of the digest is kept, and it checks like any password.
    #[tokio::test]
    async fn a_weak_legacy_digest_is_kept_only_wrapped_in_argon2id() {
        let hasher = PasswordHasher::new(&cheap()).unwrap();
        let md5 = crate::crypto::hex(&LegacyDigest::Md5.digest(b"abcLegacy#2019"));
        let salted =
            StoredHash::salted(LegacyDigest::Md5, SaltPosition::Prefix, b"abc", &md5).unwrap();
        let wrapped = hasher.wrap(&salted).await.unwrap();
        let stored = wrapped.encode();
        assert!(stored.starts_with("$wrapped-md5$prefix$"), "{stored}");
        assert!(!stored.contains(&md5), "the digest itself is not stored");
        assert_eq!(StoredHash::parse(&stored), Some(wrapped.clone()));
        assert_eq!(wrapped.scheme(), "wrapped");
        let right = hasher
            .verify(&Password::new("Legacy#2019"), Some(&stored))
            .await
            .unwrap();
        assert!(right.matches && right.needs_rehash);
        let wrong = hasher
            .verify(&Password::new("Legacy#2018"), Some(&stored))
            .await
            .unwrap();
        assert!(!wrong.matches);
        // Other hashes stay as they are.
        let bcrypt = StoredHash::Bcrypt("$2b$04$abc".into());
        assert_eq!(hasher.wrap(&bcrypt).await.unwrap(), bcrypt);
    }

    #[tokio::test]
    async fn argon2id_round_trips_with_configured_parameters() {
        let hasher = PasswordHasher::new(&cheap()).unwrap();
        let pw = Password::new("Correct-Horse9");
        let phc = hasher.hash(&pw).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
        assert_eq!(
            hasher.verify(&pw, Some(&phc)).await.unwrap(),
            Verification {
                matches: true,
                needs_rehash: false
            }
        );
        assert!(
            !hasher
                .verify(&Password::new("wrong"), Some(&phc))
                .await
                .unwrap()
                .matches
        );
        let stronger = PasswordHasher::new(&PasswordsConfig {
            argon2_memory_kib: 128,
            ..cheap()
        })
        .unwrap();
        assert!(stronger.verify(&pw, Some(&phc)).await.unwrap().needs_rehash);
    }

    #[tokio::test]
    async fn unknown_accounts_never_match() {
        let hasher = PasswordHasher::new(&cheap()).unwrap();
        let dummy_pw = Password::new("yihao dummy password for unknown accounts");
        assert!(!hasher.verify(&dummy_pw, None).await.unwrap().matches);
        assert!(
            !hasher
                .verify(&dummy_pw, Some("garbage"))
                .await
                .unwrap()
                .matches
        );
    }

    #[tokio::test]
    async fn legacy_formats_verify_and_ask_for_rehash() {
        let hasher = PasswordHasher::new(&cheap()).unwrap();
        let pw = Password::new("Legacy#2019");
        let bcrypt = bcrypt::hash_with_salt("Legacy#2019", 4, [7u8; 16])
            .unwrap()
            .format_for_version(bcrypt::Version::TwoY);
        let mut django = vec![0u8; 32];
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(b"Legacy#2019", b"s4lt", 1000, &mut django);
        let django = format!("pbkdf2_sha256$1000$s4lt${}", STANDARD.encode(&django));
        let md5_prefix = format!(
            "$legacy-md5$prefix${}${}",
            STANDARD_NO_PAD.encode(b"abc"),
            crate::crypto::hex(&LegacyDigest::Md5.digest(b"abcLegacy#2019"))
        );
        let sm3_suffix = format!(
            "$legacy-sm3$suffix${}${}",
            STANDARD_NO_PAD.encode(b"xyz"),
            crate::crypto::hex(&LegacyDigest::Sm3.digest(b"Legacy#2019xyz"))
        );
        let sha1 = format!(
            "$legacy-sha1$suffix$${}",
            crate::crypto::hex(&LegacyDigest::Sha1.digest(b"Legacy#2019"))
        );
        for stored in [&bcrypt, &django, &md5_prefix, &sm3_suffix, &sha1] {
            let parsed =
                StoredHash::parse(stored).unwrap_or_else(|| panic!("{stored} not recognised"));
            assert_eq!(&parsed.encode(), stored);
            let v = hasher.verify(&pw, Some(stored)).await.unwrap();
            assert_eq!(
                v,
                Verification {
                    matches: true,
                    needs_rehash: true
                },
                "{stored}"
            );
            assert!(
                !hasher
                    .verify(&Password::new("legacy#2019"), Some(stored))
                    .await
                    .unwrap()
                    .matches,
                "{stored}"
            );
        }
        // SM3 of "abc" (GB/T 32905 example).
        assert_eq!(
            crate::crypto::hex(&LegacyDigest::Sm3.digest(b"abc")),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
    }

    #[tokio::test]
    async fn a_full_pool_refuses_instead_of_queueing_forever() {
        let hasher = Arc::new(
            PasswordHasher::new(&PasswordsConfig {
                workers: 1,
                max_waiting: 0,
                ..cheap()
            })
            .unwrap(),
        );
        let gate = Arc::new(std::sync::Barrier::new(2));
        let held = {
            let (hasher, gate) = (hasher.clone(), gate.clone());
            tokio::spawn(async move {
                hasher
                    .on_pool(move |_| {
                        gate.wait();
                    })
                    .await
            })
        };
        while hasher.permits.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(hasher.hash(&Password::new("x")).await, Err(HashError::Busy));
        gate.wait();
        held.await.unwrap().unwrap();
        hasher.hash(&Password::new("Now-it-works1")).await.unwrap();
    }
}
