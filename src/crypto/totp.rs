//! Time-based one-time passwords (RFC 6238) over HOTP (RFC 4226), as authenticator apps compute
//! them: HMAC-SHA1, 30-second steps from the Unix epoch, six digits (docs/assurance.md, "Second
//! factors").
//!
//! RFC 6238 §4.2: "T = (Current Unix time - T0) / X, where the default floor function is used in
//! the computation", with T0 = 0 and X = 30. RFC 4226 §5.3: "Generate an HMAC-SHA-1 value ... Let
//! Sbits = DT(HS) // DT ... returns a 31-bit string ... Return D = Snum mod 10^Digit".
//! RFC 6238 §5.2: "We RECOMMEND that at most one time step is allowed as the network delay" and
//! "the verifier MUST NOT accept the second attempt of the OTP after the successful validation has
//! been issued for the first OTP": [`verify`] takes the last step accepted and answers the step it
//! accepts now, which the caller stores only if it is later than the last (atomically).

use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Seconds per time step (RFC 6238 §5.2: "We RECOMMEND a default time-step size of 30 seconds").
pub const STEP_SECS: i64 = 30;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Bytes of a new secret: 160 bits, the length of HMAC-SHA1's output (RFC 4226 §4 R6: "The length
/// of the shared secret MUST be at least 128 bits. This document RECOMMENDs a shared secret length
/// of 160 bits.").
pub const SECRET_LEN: usize = 20;

/// A shared secret, zeroed on drop.
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("totp::Secret(..)")
    }
}

impl Secret {
    /// A new random secret.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; SECRET_LEN];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
        Self(Zeroizing::new(bytes))
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Base32 without padding (RFC 4648 §6), as authenticator apps take it.
    pub fn base32(&self) -> String {
        data_encoding::BASE32_NOPAD.encode(&self.0)
    }

    /// The `otpauth://totp/` URI apps read from a QR code (the de-facto "Key Uri Format": label
    /// `issuer:account`, parameters `secret`, `issuer`, `algorithm`, `digits`, `period`).
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> String {
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        format!(
            "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
            enc(issuer),
            enc(account),
            self.base32(),
            enc(issuer),
        )
    }
}

/// The time step of `now` (Unix seconds).
pub fn step_of(now: i64) -> i64 {
    now.div_euclid(STEP_SECS)
}

/// HOTP(K, C) with six digits (RFC 4226 §5.3), zero-padded.
pub fn code_at(secret: &Secret, step: i64) -> String {
    format!(
        "{:0width$}",
        truncated(secret, step, DIGITS),
        width = DIGITS as usize
    )
}

fn truncated(secret: &Secret, counter: i64, digits: u32) -> u32 {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for HMAC.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret.as_bytes()) else {
        return 0;
    };
    mac.update(&counter.to_be_bytes());
    let hs = mac.finalize().into_bytes();
    let offset = usize::from(hs[19] & 0x0f);
    let bin = u32::from_be_bytes([
        hs[offset] & 0x7f,
        hs[offset + 1],
        hs[offset + 2],
        hs[offset + 3],
    ]);
    bin % 10u32.pow(digits)
}

/// Checks `code` at `now`, one step either side (RFC 6238 §5.2), refusing any step at or before
/// `last_step` (the last one accepted: a code is good once). Answers the step it matched.
pub fn verify(secret: &Secret, code: &str, now: i64, last_step: Option<i64>) -> Option<i64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = step_of(now);
    let mut matched = None;
    // Every candidate is computed and compared in constant time, so the timing says nothing about
    // which step (if any) matched.
    for step in [current - 1, current, current + 1] {
        let ok = code_at(secret, step).as_bytes().ct_eq(code.as_bytes());
        if bool::from(ok) && last_step.is_none_or(|last| step > last) {
            matched = Some(step);
        }
    }
    matched
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 rows (seed "12345678901234567890"), eight digits.
    #[test]
    fn rfc_6238_vectors() {
        let secret = Secret::from_bytes(b"12345678901234567890".to_vec());
        for (time, expected) in [
            (59, 94287082),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(truncated(&secret, step_of(time), 8), expected, "T = {time}");
        }
        assert_eq!(code_at(&secret, step_of(59)), "287082");
    }

    #[test]
    fn one_step_either_side_and_never_twice() {
        let secret = Secret::generate();
        let now = 1_800_000_015;
        let step = step_of(now);
        let code = code_at(&secret, step);
        assert_eq!(verify(&secret, &code, now, None), Some(step));
        assert_eq!(verify(&secret, &code, now, Some(step)), None, "replayed");
        let previous = code_at(&secret, step - 1);
        assert_eq!(verify(&secret, &previous, now, None), Some(step - 1));
        assert_eq!(
            verify(&secret, &previous, now, Some(step)),
            None,
            "an older code after a newer one"
        );
        let too_old = code_at(&secret, step - 2);
        assert_eq!(verify(&secret, &too_old, now, None), None);
        let next = code_at(&secret, step + 1);
        assert_eq!(verify(&secret, &next, now, Some(step)), Some(step + 1));
    }

    #[test]
    fn malformed_codes_are_refused() {
        let secret = Secret::generate();
        for bad in ["", "12345", "1234567", "12345a", "１２３４５６"] {
            assert_eq!(verify(&secret, bad, 1_800_000_000, None), None, "{bad:?}");
        }
    }

    #[test]
    fn the_uri_names_the_issuer_and_the_account() {
        let secret = Secret::from_bytes(b"12345678901234567890".to_vec());
        let uri = secret.otpauth_uri("yihao 政务", "138****0000");
        assert!(uri.starts_with("otpauth://totp/yihao%20%E6%94%BF%E5%8A%A1:138%2A%2A%2A%2A0000?"));
        assert!(uri.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&"));
        assert!(uri.ends_with("&digits=6&period=30"));
    }
}
