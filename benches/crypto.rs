//! Cost of the work on a request path, one operation at a time: `cargo bench --bench crypto`.
//! - `sign/raw/*`: the bare signature (the physical floor), then access and ID tokens as issued
//!   (claims serialised, JWS assembled) per algorithm, and an access token's verification
//!   (introspection, userinfo).
//! - `client_secret/verify`, `pkce/s256`, the identifier parsers, a token request's form decode.
//! - `pii/*`: sealing and opening a personal field, and its blind index.
//! - `password/argon2id_verify`: one login's hash on the bounded pool, OWASP parameters (the
//!   defaults), which bounds how many password logins a node serves per core.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use serde_json::json;
use yihao::crypto::signing::{KeyRing, SigningKey};
use yihao::domain::jose::Alg;

const NOW: i64 = 1_800_000_000;

fn key(alg: Alg) -> SigningKey {
    let pkcs8 = SigningKey::generate(alg).unwrap();
    SigningKey::from_pkcs8(
        &format!("bench-{alg}"),
        alg,
        &pkcs8,
        NOW - 10,
        NOW - 10,
        None,
    )
    .unwrap()
}

fn access_claims() -> serde_json::Value {
    json!({
        "iss": "https://id.example.gov.cn",
        "sub": "dept-records",
        "aud": "https://records.example.gov.cn/",
        "client_id": "dept-records",
        "scope": "records.read",
        "iat": NOW,
        "exp": NOW + 900,
        "jti": "3b0c2ad0a1a54f1b8b1f2f0e6a9d7c41",
    })
}

fn id_claims() -> serde_json::Value {
    json!({
        "iss": "https://id.example.gov.cn",
        "sub": "Yb3kS1vJ0qk2m8Xx9c7T5w",
        "aud": "hall",
        "iat": NOW,
        "exp": NOW + 3600,
        "auth_time": NOW - 30,
        "nonce": "n-0S6_WzA2Mj",
        "acr": "urn:yihao:loa:2",
        "amr": ["pwd"],
        "at_hash": "77QmUPtjPfzWtF2AnpK9RQ",
        "sid": "1f6c3d1e6b0f4c5e9a1d2b3c4d5e6f70",
        "name": "张三",
    })
}

fn signing(c: &mut Criterion) {
    let mut group = c.benchmark_group("sign");
    let message = [7u8; 64];
    for alg in [Alg::ES256, Alg::EdDSA, Alg::RS256] {
        let key = key(alg);
        group.bench_function(BenchmarkId::new("raw", alg), |b| {
            b.iter(|| key.sign(&message).unwrap())
        });
        let claims = access_claims();
        group.bench_function(BenchmarkId::new("access_token", alg), |b| {
            b.iter(|| key.sign_jwt("at+jwt", &claims).unwrap())
        });
        let claims = id_claims();
        group.bench_function(BenchmarkId::new("id_token", alg), |b| {
            b.iter(|| key.sign_jwt("JWT", &claims).unwrap())
        });
    }
    group.finish();
    let mut group = c.benchmark_group("verify");
    for alg in [Alg::ES256, Alg::EdDSA, Alg::RS256] {
        let ring = KeyRing::new(vec![key(alg)], 86_400);
        let token = ring.keys()[0].sign_jwt("at+jwt", &access_claims()).unwrap();
        group.bench_function(BenchmarkId::new("access_token", alg), |b| {
            b.iter(|| {
                let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
                validation.validate_exp = false;
                validation.validate_aud = false;
                ring.verify::<serde_json::Value>(&token, validation)
                    .unwrap()
            })
        });
    }
    group.finish();
}

fn request_checks(c: &mut Criterion) {
    let secret = yihao::crypto::random_token();
    let stored = yihao::crypto::hash_secret(&secret);
    c.bench_function("client_secret/verify", |b| {
        b.iter(|| assert!(yihao::crypto::secret_matches(&secret, &stored)))
    });
    // RFC 7636 Appendix B.
    let (challenge, verifier) = (
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
    );
    c.bench_function("pkce/s256", |b| {
        b.iter(|| yihao::protocol::pkce::check_pkce(Some(challenge), Some(verifier)).unwrap())
    });
    use yihao::domain::identifiers::{CreditCode, Phone, ResidentId};
    c.bench_function("identifiers/resident_id", |b| {
        b.iter(|| ResidentId::parse("11010519491231002X", NOW).unwrap())
    });
    c.bench_function("identifiers/credit_code", |b| {
        b.iter(|| CreditCode::parse("91350100M000100Y43").unwrap())
    });
    c.bench_function("identifiers/phone", |b| {
        b.iter(|| Phone::parse("+86 138-0013-8000").unwrap())
    });
    let body = b"grant_type=authorization_code&code=Qcb0Orv1zh30vL1MPRsbm-diHiMwcLyZvn1arpZv-Jxf_11jnpEX3Tgfvk&redirect_uri=https%3A%2F%2Fhall.example.gov.cn%2Fcb&code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let limits = yihao::protocol::form::Limits {
        bytes: 8192,
        count: 64,
    };
    c.bench_function("form/token_request", |b| {
        b.iter(|| yihao::protocol::form::decode(body, limits).unwrap())
    });
}

fn personal_data(c: &mut Criterion) {
    use base64::Engine;
    let mut config = yihao::config::Config::load_with_env(None, []).unwrap();
    config.keys.master_key =
        yihao::config::Secret::new(base64::engine::general_purpose::STANDARD.encode([42u8; 32]));
    let master = yihao::crypto::MasterKey::load(&config.keys).unwrap();
    let pii = yihao::crypto::pii::Pii::new(&master, 1);
    let sealed = pii.seal("account:document", "11010519491231002X");
    c.bench_function("pii/seal", |b| {
        b.iter(|| pii.seal("account:document", "11010519491231002X"))
    });
    c.bench_function("pii/open", |b| {
        b.iter(|| pii.open("account:document", &sealed).unwrap())
    });
    c.bench_function("pii/blind_index", |b| {
        b.iter(|| pii.blind_index("document", "resident_id:11010519491231002X"))
    });

    let rt = tokio::runtime::Runtime::new().unwrap();
    let hasher = yihao::crypto::password::PasswordHasher::new(&config.passwords).unwrap();
    let password = yihao::domain::password::Password::new("Bench#2026pass");
    let stored = rt.block_on(hasher.hash(&password)).unwrap();
    let mut group = c.benchmark_group("password");
    group.sample_size(20);
    group.bench_function("argon2id_verify", |b| {
        b.to_async(&rt).iter(|| async {
            assert!(
                hasher
                    .verify(&password, Some(&stored))
                    .await
                    .unwrap()
                    .matches
            )
        })
    });
    group.finish();
}

/// A gateway that accepts every message (the cost of the code itself, not of a delivery).
struct Accepting;

#[async_trait::async_trait]
impl yihao::protocol::outside::SmsGateway for Accepting {
    async fn send(
        &self,
        _: &yihao::protocol::outside::SmsMessage,
    ) -> Result<(), yihao::protocol::outside::OutsideError> {
        Ok(())
    }
}

/// One SMS code sent and verified on the in-process store: the resend gate, the two daily caps,
/// the keyed hashes, the store writes, the try count and the single-use take.
fn sms_codes(c: &mut Criterion) {
    use yihao::protocol::outside::SmsPurpose;
    use yihao::protocol::sms_code::{CodeKey, Delivery, SmsCodes};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut config = yihao::config::Config::load_with_env(None, []).unwrap().sms;
    config.resend_secs = 0;
    config.per_number_per_day = u32::MAX;
    config.per_source_per_day = u32::MAX;
    let ephemeral = rt.block_on(async {
        yihao::store::memory::MemoryEphemeral::new(std::time::Duration::from_secs(1))
    });
    let key = CodeKey(zeroize::Zeroizing::new([9; 32]));
    let codes = SmsCodes {
        ephemeral: ephemeral.as_ref(),
        gateway: &Accepting,
        key: &key,
        config: &config,
    };
    let phone = yihao::domain::identifiers::Phone::parse("13812341234").unwrap();
    // The decoy path does all the work of a real send and stores a hash no code has; a real
    // verify needs the code, which only the gateway sees, so the two are measured apart.
    c.bench_function("sms_code/send", |b| {
        b.to_async(&rt).iter(|| async {
            codes
                .send(
                    SmsPurpose::Login,
                    &phone,
                    Delivery::Decoy,
                    Some("10.0.0.1"),
                    "{code}",
                    1_800_000_000,
                )
                .await
                .unwrap()
        })
    });
    c.bench_function("sms_code/verify_wrong", |b| {
        b.to_async(&rt).iter(|| async {
            let _ = codes
                .send(
                    SmsPurpose::Login,
                    &phone,
                    Delivery::Decoy,
                    None,
                    "{code}",
                    1_800_000_000,
                )
                .await;
            codes
                .verify(SmsPurpose::Login, &phone, "123456", 1_800_000_000)
                .await
                .unwrap_err()
        })
    });
}

/// A second factor: a TOTP code checked (three HMAC-SHA1 and constant-time compares), the secret
/// opened first as a login does, and the step-up decision.
fn second_factors(c: &mut Criterion) {
    use yihao::crypto::totp;
    let secret = totp::Secret::generate();
    let now = 1_800_000_015;
    let code = totp::code_at(&secret, totp::step_of(now));
    c.bench_function("totp/verify", |b| {
        b.iter(|| totp::verify(&secret, &code, now, Some(totp::step_of(now) - 1)))
    });
    let master = yihao::crypto::MasterKey::from_bytes([7u8; 32]);
    let sealer = yihao::crypto::pii::Sealer::new(&master, "factors", 1);
    let sealed = sealer.seal("factor:f1", secret.as_bytes());
    c.bench_function("totp/open_and_verify", |b| {
        b.iter(|| {
            let opened = totp::Secret::from_bytes(sealer.open("factor:f1", &sealed).unwrap());
            totp::verify(&opened, &code, now, None)
        })
    });
    let amr = vec!["pwd".to_owned()];
    let reach = yihao::protocol::assurance::Reach {
        proofed: 3,
        face: true,
        has_factor: true,
    };
    let requirement = yihao::protocol::assurance::Requirement {
        must: 3,
        wish: 3,
        two_factors: false,
    };
    c.bench_function("assurance/step_up", |b| {
        b.iter(|| yihao::protocol::assurance::step_up(requirement, 2, &amr, &reach))
    });
}

criterion_group!(
    benches,
    signing,
    request_checks,
    personal_data,
    sms_codes,
    second_factors
);
criterion_main!(benches);
