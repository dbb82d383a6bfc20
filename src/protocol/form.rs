//! Strict reading of `application/x-www-form-urlencoded` data: query strings and form bodies.
//!
//! RFC 6749 Appendix B: parameters are encoded "using the application/x-www-form-urlencoded
//! content type ... with a character encoding of UTF-8". The usual decoders (WHATWG's, which `url`
//! implements) replace bytes that are not UTF-8 with U+FFFD, so two different requests could read as
//! the same parameters; here such a request is refused instead. Names and values are bounded in
//! length and number, so no handler sees a parameter larger than the limit, whatever the body limit.

use std::fmt;

use percent_encoding::percent_decode;

/// How long and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest name or value, in bytes once decoded.
    pub bytes: usize,
    /// Most `name=value` pairs.
    pub count: usize,
}

/// Why a query string or form body was refused. Values are never echoed: they may be secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormError {
    /// A name or value does not decode to UTF-8. Holds the parameter's name when that is readable.
    NotUtf8(Option<String>),
    /// A name or value is longer than the limit.
    TooLong { name: Option<String>, limit: usize },
    /// More pairs than the limit.
    TooMany { limit: usize },
}

impl fmt::Display for FormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotUtf8(Some(name)) => write!(f, "the parameter {name} is not UTF-8"),
            Self::NotUtf8(None) => f.write_str("a parameter name is not UTF-8"),
            Self::TooLong {
                name: Some(name),
                limit,
            } => write!(f, "the parameter {name} is longer than {limit} bytes"),
            Self::TooLong { name: None, limit } => {
                write!(f, "a parameter name is longer than {limit} bytes")
            }
            Self::TooMany { limit } => write!(f, "more than {limit} parameters"),
        }
    }
}

impl std::error::Error for FormError {}

/// Decodes `raw` into `(name, value)` pairs in order, or refuses it. Empty pieces (`a=1&&b=2`) are
/// skipped, as the WHATWG decoder does; `+` is a space; a `%` not followed by two hex digits stays
/// as it is.
pub fn decode(raw: &[u8], limits: Limits) -> Result<Vec<(String, String)>, FormError> {
    let mut pairs = Vec::new();
    for piece in raw.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        if pairs.len() == limits.count {
            return Err(FormError::TooMany {
                limit: limits.count,
            });
        }
        let (name, value) = match piece.iter().position(|&b| b == b'=') {
            Some(i) => (&piece[..i], &piece[i + 1..]),
            None => (piece, &[][..]),
        };
        let name = text(name, limits).map_err(|e| match e {
            Piece::NotUtf8 => FormError::NotUtf8(None),
            Piece::TooLong => FormError::TooLong {
                name: None,
                limit: limits.bytes,
            },
        })?;
        let value = text(value, limits).map_err(|e| {
            let name = Some(shown(&name));
            match e {
                Piece::NotUtf8 => FormError::NotUtf8(name),
                Piece::TooLong => FormError::TooLong {
                    name,
                    limit: limits.bytes,
                },
            }
        })?;
        pairs.push((name, value));
    }
    Ok(pairs)
}

enum Piece {
    NotUtf8,
    TooLong,
}

fn text(encoded: &[u8], limits: Limits) -> Result<String, Piece> {
    let plus_as_space: Vec<u8>;
    let encoded = if encoded.contains(&b'+') {
        plus_as_space = encoded
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        &plus_as_space[..]
    } else {
        encoded
    };
    let decoded: Vec<u8> = percent_decode(encoded).collect();
    if decoded.len() > limits.bytes {
        return Err(Piece::TooLong);
    }
    String::from_utf8(decoded).map_err(|_| Piece::NotUtf8)
}

/// A parameter name as it may appear in an error message: at most 64 characters.
fn shown(name: &str) -> String {
    match name.char_indices().nth(64) {
        Some((end, _)) => format!("{}…", &name[..end]),
        None => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIMITS: Limits = Limits {
        bytes: 16,
        count: 4,
    };

    fn ok(raw: &str) -> Vec<(String, String)> {
        decode(raw.as_bytes(), LIMITS).unwrap()
    }

    #[test]
    fn decodes_as_the_whatwg_decoder_when_the_input_is_utf8() {
        assert_eq!(
            ok("a=1&&b=%E4%BD%A0+x&c&d=%zz"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "你 x".into()),
                ("c".into(), String::new()),
                ("d".into(), "%zz".into()),
            ]
        );
        assert_eq!(ok("x=a%2Bb%3D"), vec![("x".into(), "a+b=".into())]);
        assert!(ok("").is_empty());
    }

    #[test]
    fn refuses_what_is_not_utf8_instead_of_replacing_it() {
        assert_eq!(
            decode(b"state=%FF", LIMITS),
            Err(FormError::NotUtf8(Some("state".into())))
        );
        assert_eq!(
            decode(b"state=\xff", LIMITS),
            Err(FormError::NotUtf8(Some("state".into())))
        );
        assert_eq!(decode(b"%C0%AF=1", LIMITS), Err(FormError::NotUtf8(None)));
        // An overlong encoding of "/" and a lone surrogate are not UTF-8 either.
        assert!(decode(b"a=%C0%AF", LIMITS).is_err());
        assert!(decode(b"a=%ED%A0%80", LIMITS).is_err());
    }

    #[test]
    fn bounds_length_after_decoding_and_count() {
        assert!(decode(b"a=0123456789abcdef", LIMITS).is_ok());
        assert_eq!(
            decode(b"a=0123456789abcdefg", LIMITS),
            Err(FormError::TooLong {
                name: Some("a".into()),
                limit: 16
            })
        );
        // Sixteen bytes of UTF-8 in 48 encoded ones: within the limit.
        assert!(
            decode(
                "a=%E4%BD%A0%E4%BD%A0%E4%BD%A0%E4%BD%A0%E4%BD%A0a".as_bytes(),
                LIMITS
            )
            .is_ok()
        );
        assert_eq!(
            decode(b"0123456789abcdefg=1", LIMITS),
            Err(FormError::TooLong {
                name: None,
                limit: 16
            })
        );
        assert!(decode(b"a&b&c&d", LIMITS).is_ok());
        assert_eq!(
            decode(b"a&b&c&d&e", LIMITS),
            Err(FormError::TooMany { limit: 4 })
        );
        let long_name = "n".repeat(100);
        let e = decode(
            format!("{long_name}={}", "v".repeat(101)).as_bytes(),
            Limits {
                bytes: 100,
                count: 4,
            },
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            format!("the parameter {}… is longer than 100 bytes", "n".repeat(64))
        );
    }

    proptest! {
        /// Whatever the bytes, decoding never panics, and whenever it accepts, it agrees with the
        /// WHATWG decoder (`url::form_urlencoded`).
        #[test]
        fn accepts_only_what_the_whatwg_decoder_reads_losslessly(raw in proptest::collection::vec(any::<u8>(), 0..64)) {
            let limits = Limits { bytes: 64, count: 64 };
            if let Ok(pairs) = decode(&raw, limits) {
                let whatwg: Vec<(String, String)> =
                    url::form_urlencoded::parse(&raw).into_owned().collect();
                prop_assert_eq!(pairs, whatwg);
            }
        }

        /// Any UTF-8 pairs, encoded, come back as they were.
        #[test]
        fn round_trips_utf8(pairs in proptest::collection::vec(("\\PC{1,8}", "\\PC{0,8}"), 0..8)) {
            let raw = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&pairs)
                .finish();
            let limits = Limits { bytes: 64, count: 64 };
            prop_assert_eq!(decode(raw.as_bytes(), limits).unwrap(), pairs);
        }
    }
}
