//! Signing keys, JWKS and compact JWS.
//!
//! Keys are parsed once (at start-up or reload) into aws-lc-rs key pairs and kept: jsonwebtoken 11
//! builds a new signer from DER inside every `encode`, which costs 586 µs per RSA signature instead
//! of 222 µs here (docs/design.md). A JWS is `base64url(header) . base64url(claims) .
//! base64url(signature)` (RFC 7515 §7.1); jsonwebtoken stays in use for verification.
//!
//! Lifecycle: a key is published (JWKS) from its creation, signs from `not_before` (a new key is
//! published for a while before it signs, so relying parties have fetched it), stops signing at
//! `retired_at`, and stays published until `retired_at + the longest token lifetime`, so every token
//! it signed can still be verified.

use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::{Value, json};
use zeroize::Zeroizing;

pub use crate::domain::jose::Alg;

/// Why a key could not be made, read or used, or a token not verified.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("cannot generate a {alg} key")]
    Generate {
        alg: Alg,
        #[source]
        source: aws_lc_rs::error::Unspecified,
    },
    #[error("signing key {kid} is not a valid {alg} key")]
    Rejected {
        kid: String,
        alg: Alg,
        #[source]
        source: aws_lc_rs::error::KeyRejected,
    },
    #[error("signing key {kid}: unexpected P-256 public key")]
    BadPoint { kid: String },
    #[error("signing key {kid}: its public JWK is not usable")]
    Jwk {
        kid: String,
        #[source]
        source: jsonwebtoken::errors::Error,
    },
    #[error("the {alg} signature failed")]
    Sign {
        alg: Alg,
        #[source]
        source: aws_lc_rs::error::Unspecified,
    },
    #[error("the claims cannot be encoded")]
    Encode(#[source] serde_json::Error),
    #[error("no {0} signing key is active")]
    NoActiveKey(Alg),
    #[error("the token names no key")]
    NoKeyId,
    #[error("the token was not signed by this server")]
    UnknownKey,
    #[error("the token's algorithm is not its key's")]
    WrongAlgorithm,
    #[error(transparent)]
    Invalid(jsonwebtoken::errors::Error),
}

enum Pair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A parsed signing key with its public JWK.
pub struct SigningKey {
    pub kid: String,
    pub alg: Alg,
    pub created_at: i64,
    pub not_before: i64,
    pub retired_at: Option<i64>,
    pair: Pair,
    jwk: Value,
    /// For verification with jsonwebtoken, built once.
    decoding: jsonwebtoken::DecodingKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SigningKey({} {}, private part redacted)",
            self.kid, self.alg
        )
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl SigningKey {
    /// A new key pair and its PKCS#8 DER (to be sealed and stored), zeroed when dropped.
    pub fn generate(alg: Alg) -> Result<Zeroizing<Vec<u8>>, SigningError> {
        let fail = |source| SigningError::Generate { alg, source };
        Ok(Zeroizing::new(match alg {
            Alg::RS256 => RsaKeyPair::generate(KeySize::Rsa2048)
                .map_err(fail)?
                .as_der()
                .map_err(fail)?
                .as_ref()
                .to_vec(),
            Alg::ES256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .map_err(fail)?
                .to_pkcs8v1()
                .map_err(fail)?
                .as_ref()
                .to_vec(),
            Alg::EdDSA => Ed25519KeyPair::generate()
                .map_err(fail)?
                .to_pkcs8()
                .map_err(fail)?
                .as_ref()
                .to_vec(),
        }))
    }

    /// Parses a stored key once.
    pub fn from_pkcs8(
        kid: &str,
        alg: Alg,
        pkcs8: &[u8],
        created_at: i64,
        not_before: i64,
        retired_at: Option<i64>,
    ) -> Result<Self, SigningError> {
        let bad = |source| SigningError::Rejected {
            kid: kid.to_owned(),
            alg,
            source,
        };
        let (pair, mut jwk) = match alg {
            Alg::RS256 => {
                let pair = RsaKeyPair::from_pkcs8(pkcs8).map_err(bad)?;
                let public = pair.public_key();
                let jwk = json!({
                    "kty": "RSA",
                    "n": b64(public.modulus().big_endian_without_leading_zero()),
                    "e": b64(public.exponent().big_endian_without_leading_zero()),
                });
                (Pair::Rsa(pair), jwk)
            }
            Alg::ES256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                    .map_err(bad)?;
                // Uncompressed point: 0x04 || x (32) || y (32).
                let point = pair.public_key().as_ref();
                if point.len() != 65 {
                    return Err(SigningError::BadPoint {
                        kid: kid.to_owned(),
                    });
                }
                let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..])});
                (Pair::Ec(pair), jwk)
            }
            Alg::EdDSA => {
                let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(bad)?;
                let jwk =
                    json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref())});
                (Pair::Ed(pair), jwk)
            }
        };
        jwk["kid"] = Value::from(kid);
        jwk["use"] = Value::from("sig");
        jwk["alg"] = Value::from(alg.as_str());
        let jwk_error = |source| SigningError::Jwk {
            kid: kid.to_owned(),
            source,
        };
        let parsed: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone())
            .map_err(|e| jwk_error(jsonwebtoken::errors::Error::from(e)))?;
        let decoding = jsonwebtoken::DecodingKey::from_jwk(&parsed).map_err(jwk_error)?;
        Ok(Self {
            kid: kid.to_owned(),
            alg,
            created_at,
            not_before,
            retired_at,
            pair,
            jwk,
            decoding,
        })
    }

    /// The public JWK (RFC 7517): `kty`, key parameters, `kid`, `use`, `alg`; never a private part.
    pub fn jwk(&self) -> &Value {
        &self.jwk
    }

    /// Signs with the key's algorithm.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        let rng = SystemRandom::new();
        let failed = |source| SigningError::Sign {
            alg: self.alg,
            source,
        };
        match &self.pair {
            Pair::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature)
                    .map_err(failed)?;
                Ok(signature)
            }
            Pair::Ec(pair) => Ok(pair.sign(&rng, message).map_err(failed)?.as_ref().to_vec()),
            Pair::Ed(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }

    /// A compact JWS of `claims` with header `{alg, kid, typ}`.
    pub fn sign_jwt(&self, typ: &str, claims: &impl Serialize) -> Result<String, SigningError> {
        let header = json!({"alg": self.alg.as_str(), "kid": self.kid, "typ": typ});
        let header = serde_json::to_vec(&header).map_err(SigningError::Encode)?;
        let claims = serde_json::to_vec(claims).map_err(SigningError::Encode)?;
        let mut jws = String::with_capacity(64 + claims.len() * 4 / 3 + 400);
        URL_SAFE_NO_PAD.encode_string(&header, &mut jws);
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(&claims, &mut jws);
        let signature = self.sign(jws.as_bytes())?;
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut jws);
        Ok(jws)
    }

    pub fn signs_at(&self, now: i64) -> bool {
        self.not_before <= now && self.retired_at.is_none_or(|r| now < r)
    }

    pub fn published_at(&self, now: i64, longest_token_secs: i64) -> bool {
        self.retired_at.is_none_or(|r| now < r + longest_token_secs)
    }
}

/// The keys a node holds, with the JWKS document rendered once per load.
pub struct KeyRing {
    keys: Vec<SigningKey>,
    longest_token_secs: i64,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|k| &k.kid))
            .finish()
    }
}

impl KeyRing {
    pub fn new(mut keys: Vec<SigningKey>, longest_token_secs: i64) -> Self {
        // Newest first, so the first key that signs is the current one.
        keys.sort_by(|a, b| {
            b.not_before
                .cmp(&a.not_before)
                .then(b.created_at.cmp(&a.created_at))
        });
        Self {
            keys,
            longest_token_secs,
        }
    }

    /// The key that signs for `alg` now: the newest whose time has come and that is not retired.
    pub fn signer(&self, alg: Alg, now: i64) -> Option<&SigningKey> {
        self.keys.iter().find(|k| k.alg == alg && k.signs_at(now))
    }

    pub fn by_kid(&self, kid: &str) -> Option<&SigningKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    pub fn keys(&self) -> &[SigningKey] {
        &self.keys
    }

    /// Verifies a token signed by one of the keys published at `now` (security review 14: a key
    /// retired long ago no longer vouches for anything; a revoked key is not in the ring at all).
    pub fn verify_token<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        validation: jsonwebtoken::Validation,
        now: i64,
    ) -> Result<(jsonwebtoken::Header, T), SigningError> {
        self.verify_with(token, validation, |k| {
            k.published_at(now, self.longest_token_secs)
        })
    }

    /// Verifies a JWS made by any key of the ring, published or not (audit checkpoints signed
    /// years ago): the header's `kid` and `alg` must name a key of the ring with that algorithm.
    /// `validation` says which claims to check; its algorithm is set from the key.
    pub fn verify<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        validation: jsonwebtoken::Validation,
    ) -> Result<(jsonwebtoken::Header, T), SigningError> {
        self.verify_with(token, validation, |_| true)
    }

    fn verify_with<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        mut validation: jsonwebtoken::Validation,
        usable: impl Fn(&SigningKey) -> bool,
    ) -> Result<(jsonwebtoken::Header, T), SigningError> {
        let header = jsonwebtoken::decode_header(token).map_err(SigningError::Invalid)?;
        let kid = header.kid.as_deref().ok_or(SigningError::NoKeyId)?;
        let key = self
            .by_kid(kid)
            .filter(|k| usable(k))
            .ok_or(SigningError::UnknownKey)?;
        let alg = match key.alg {
            Alg::RS256 => jsonwebtoken::Algorithm::RS256,
            Alg::ES256 => jsonwebtoken::Algorithm::ES256,
            Alg::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        };
        if header.alg != alg {
            return Err(SigningError::WrongAlgorithm);
        }
        validation.algorithms = vec![alg];
        let data = jsonwebtoken::decode::<T>(token, &key.decoding, &validation)
            .map_err(SigningError::Invalid)?;
        Ok((data.header, data.claims))
    }

    /// The JWKS (RFC 7517 §5) of every published key.
    pub fn jwks(&self, now: i64) -> Value {
        let keys: Vec<&Value> = self
            .keys
            .iter()
            .filter(|k| k.published_at(now, self.longest_token_secs))
            .map(SigningKey::jwk)
            .collect();
        json!({ "keys": keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, jwk::Jwk};

    fn key(alg: Alg, kid: &str, not_before: i64, retired_at: Option<i64>) -> SigningKey {
        let der = SigningKey::generate(alg).unwrap();
        SigningKey::from_pkcs8(kid, alg, &der, 0, not_before, retired_at).unwrap()
    }

    #[test]
    fn every_algorithm_signs_jwts_that_jsonwebtoken_verifies_from_the_jwk() {
        for (alg, jalg) in [
            (Alg::RS256, Algorithm::RS256),
            (Alg::ES256, Algorithm::ES256),
            (Alg::EdDSA, Algorithm::EdDSA),
        ] {
            let k = key(alg, &format!("k-{alg}"), 0, None);
            let claims = json!({"sub": "a1", "aud": "hall", "exp": 4_000_000_000u64, "iss": "https://id.example.gov.cn"});
            let jws = k.sign_jwt("JWT", &claims).unwrap();
            let jwk: Jwk = serde_json::from_value(k.jwk().clone()).unwrap();
            let mut v = Validation::new(jalg);
            v.set_audience(&["hall"]);
            let decoded = decode::<Value>(&jws, &DecodingKey::from_jwk(&jwk).unwrap(), &v).unwrap();
            assert_eq!(decoded.claims["sub"], "a1");
            assert_eq!(decoded.header.kid.as_deref(), Some(k.kid.as_str()));
            let text = k.jwk().to_string();
            assert!(
                !text.contains("\"d\"") && !text.contains("\"p\""),
                "private part in JWK: {text}"
            );
            assert_eq!(k.jwk()["use"], "sig");
            assert_eq!(k.jwk()["alg"], alg.as_str());
        }
    }

    #[test]
    fn the_ring_signs_with_the_newest_active_key_and_publishes_retired_ones_for_a_while() {
        let old = key(Alg::ES256, "old", 0, Some(1000));
        let current = key(Alg::ES256, "current", 1000, None);
        let next = key(Alg::ES256, "next", 5000, None);
        let ring = KeyRing::new(vec![old, next, current], 600);
        assert_eq!(ring.signer(Alg::ES256, 999).unwrap().kid, "old");
        assert_eq!(ring.signer(Alg::ES256, 1000).unwrap().kid, "current");
        assert_eq!(ring.signer(Alg::ES256, 5000).unwrap().kid, "next");
        assert!(ring.signer(Alg::RS256, 5000).is_none());
        let kids = |now| {
            ring.jwks(now)["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["kid"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            kids(1500),
            vec!["next", "current", "old"],
            "a new key is published before it signs"
        );
        assert_eq!(
            kids(1600),
            vec!["next", "current"],
            "a retired key leaves after the longest token lifetime"
        );
    }
}
