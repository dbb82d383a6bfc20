//! PKCE (RFC 7636) with the S256 method only, required of every client by default (RFC 9700
//! §2.1.1).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::{ErrorCode, OAuthError};

/// RFC 7636 §4.2: `code_challenge = BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))`.
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// RFC 7636 §4.6: "BASE64URL-ENCODE(SHA256(ASCII(code_verifier))) == code_challenge", the verifier
/// 43 to 128 unreserved characters (§4.1). A verifier without a challenge is refused too: it would
/// mean the code was requested without PKCE (RFC 9700 §4.8.2, PKCE downgrade).
pub fn check_pkce(challenge: Option<&str>, verifier: Option<&str>) -> Result<(), OAuthError> {
    match (challenge, verifier) {
        (Some(challenge), Some(verifier)) => {
            let valid_shape = (43..=128).contains(&verifier.len())
                && verifier
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            let computed = s256(verifier);
            if !valid_shape
                || !bool::from(subtle::ConstantTimeEq::ct_eq(
                    computed.as_bytes(),
                    challenge.as_bytes(),
                ))
            {
                return Err(invalid_grant(
                    "code_verifier does not match the code_challenge",
                ));
            }
            Ok(())
        }
        (Some(_), None) => Err(invalid_grant("code_verifier is missing")),
        (None, Some(_)) => Err(invalid_grant(
            "code_verifier sent but no code_challenge was",
        )),
        (None, None) => Ok(()),
    }
}

fn invalid_grant(description: &str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidGrant, description)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn pkce_follows_rfc_7636() {
        assert!(check_pkce(Some(CHALLENGE), Some(VERIFIER)).is_ok());
        assert!(check_pkce(None, None).is_ok());
        for (challenge, verifier) in [
            (Some(CHALLENGE), None),
            (None, Some(VERIFIER)),
            (Some(CHALLENGE), Some(&VERIFIER[1..])),
            // The plain method's "verifier == challenge" is not S256.
            (Some(CHALLENGE), Some(CHALLENGE)),
        ] {
            assert_eq!(
                check_pkce(challenge, verifier).unwrap_err().code,
                ErrorCode::InvalidGrant
            );
        }
    }

    proptest! {
        /// Only the verifier whose S256 hash is the challenge passes.
        #[test]
        fn pkce_accepts_only_the_verifier(verifier in "[A-Za-z0-9._~-]{0,130}") {
            prop_assert_eq!(
                check_pkce(Some(CHALLENGE), Some(&verifier)).is_ok(),
                verifier == VERIFIER
            );
        }
    }
}
