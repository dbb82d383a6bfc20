//! A client assertion (RFC 7523 §2.2, OIDC Core §9) of arbitrary text: its header and unverified
//! issuer read, then verified as `client_secret_jwt` (HMAC with a secret) and as `private_key_jwt`
//! (EC P-256, RSA and Ed25519 public keys), each with only its own algorithms. Nothing may panic; what
//! verifies keeps the contract (a jti, at most five minutes to live).
#![no_main]

use std::sync::LazyLock;

use jsonwebtoken::DecodingKey;
use libfuzzer_sys::fuzz_target;
use yihao::protocol::client_auth::{self, ASYMMETRIC, HMAC};

const NOW: i64 = 1_795_795_200;

struct Keys {
    hmac: Vec<DecodingKey>,
    public: Vec<DecodingKey>,
    audiences: Vec<String>,
}

static KEYS: LazyLock<Keys> = LazyLock::new(|| Keys {
    hmac: vec![DecodingKey::from_secret(include_bytes!("../keys/secret"))],
    public: vec![
        DecodingKey::from_ec_pem(include_bytes!("../keys/ec.pub.pem")).expect("ec"),
        DecodingKey::from_rsa_pem(include_bytes!("../keys/rsa.pub.pem")).expect("rsa"),
        DecodingKey::from_ed_pem(include_bytes!("../keys/ed25519.pub.pem")).expect("ed25519"),
    ],
    audiences: vec![
        "http://localhost:8080".to_owned(),
        "http://localhost:8080/token".to_owned(),
    ],
});

fuzz_target!(|data: &[u8]| {
    let Ok(assertion) = std::str::from_utf8(data) else {
        return;
    };
    let Ok((header, client_id)) = client_auth::read_assertion(assertion) else {
        return;
    };
    let keys = &*KEYS;
    let as_secret = client_auth::verify_assertion(
        assertion,
        &header,
        &client_id,
        &HMAC,
        &keys.hmac,
        &keys.audiences,
        NOW,
    );
    let as_private_key = client_auth::verify_assertion(
        assertion,
        &header,
        &client_id,
        &ASYMMETRIC,
        &keys.public,
        &keys.audiences,
        NOW,
    );
    // The seeds hold correctly signed assertions, so some inputs verify: they keep the contract.
    for (jti, exp) in [as_secret, as_private_key].into_iter().flatten() {
        assert!(!jti.is_empty() && jti.len() <= 256);
        assert!(exp - NOW <= 300, "accepted an assertion living too long");
    }
});
