//! National identifiers (docs/identifiers.md): the resident identity number (GB 11643-1999), the unified
//! social credit code (GB 32100-2015) and mainland mobile numbers, with the masked forms used for
//! display (docs/privacy.md: first 3 and last 4, never first 6 + last 4).
//!
//! Parsing normalises (`x` -> `X`, lower -> upper case, `+86` dropped) and every error says exactly
//! what is wrong. `Debug` of these types prints the masked form, so a stray `{:?}` in a log line
//! cannot leak a number.

use std::fmt;

use super::date::Date;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct IdentifierError(pub String);

fn err<T>(message: impl Into<String>) -> Result<T, IdentifierError> {
    Err(IdentifierError(message.into()))
}

/// ISO 7064 MOD 11-2 over 17 digits: the check character of GB 11643 (and of residence permits and
/// the 2023 permanent-residence card).
pub fn mod11_2_check(first17: &[u8]) -> u8 {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = first17
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    b"10X98765432"[(sum % 11) as usize]
}

/// Checks the shape of 18 characters: 17 digits and a digit or X; returns the upper-case form.
fn mod11_2_shape(raw: &str, what: &str) -> Result<String, IdentifierError> {
    let upper = raw.trim().to_ascii_uppercase();
    let bytes = upper.as_bytes();
    if bytes.len() != 18 {
        return err(format!(
            "{what} must be 18 characters, got {}",
            upper.chars().count()
        ));
    }
    if let Some(i) = bytes[..17].iter().position(|b| !b.is_ascii_digit()) {
        let c = upper[i..].chars().next().unwrap_or('?');
        return err(format!(
            "character {} of the {what} must be a digit, not {c:?}",
            i + 1
        ));
    }
    let last = bytes[17];
    if !(last.is_ascii_digit() || last == b'X') {
        return err(format!(
            "the last character of the {what} must be a digit or X"
        ));
    }
    Ok(upper)
}

/// The MOD 11-2 check of an 18-character number already checked by [`mod11_2_shape`].
fn mod11_2_verify(number: &str) -> Result<(), IdentifierError> {
    let bytes = number.as_bytes();
    let expected = mod11_2_check(&bytes[..17]);
    if bytes[17] != expected {
        return err(format!("check character should be {}", expected as char));
    }
    Ok(())
}

/// Shape and check of an 18-digit MOD 11-2 number (residence permits, permanent-residence card).
pub(crate) fn mod11_2_number(raw: &str, what: &str) -> Result<String, IdentifierError> {
    let number = mod11_2_shape(raw, what)?;
    mod11_2_verify(&number)?;
    Ok(number)
}

const PROVINCES: &[(u8, u8)] = &[
    (11, 15),
    (21, 23),
    (31, 37),
    (41, 46),
    (50, 54),
    (61, 65),
    (71, 71),
    (81, 83),
];

fn two_digits(b: &[u8]) -> u8 {
    (b[0] - b'0') * 10 + (b[1] - b'0')
}

/// A resident identity number (GB 11643-1999): 6-digit address code with a known province prefix,
/// birth date (a real date, not in the future), 3-digit sequence, MOD 11-2 check character.
/// A 15-digit legacy number is upgraded; the original is kept as [`ResidentId::legacy_alias`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ResidentId {
    number: String,
    legacy: Option<String>,
}

impl ResidentId {
    /// Parses and normalises; `now` (epoch seconds) bounds the birth date.
    pub fn parse(raw: &str, now: i64) -> Result<Self, IdentifierError> {
        let trimmed = raw.trim();
        if trimmed.len() == 15 && trimmed.bytes().all(|b| b.is_ascii_digit()) {
            return Self::upgrade(trimmed, now);
        }
        // Field errors first (they say more than a failed checksum), the check character last.
        let number = mod11_2_shape(trimmed, "ID number")?;
        let b = number.as_bytes();
        let province = two_digits(&b[0..2]);
        if !PROVINCES
            .iter()
            .any(|(lo, hi)| (*lo..=*hi).contains(&province))
        {
            return err(format!("{province:02} is not a province code"));
        }
        Self::birth_date(b, now)?;
        mod11_2_verify(&number)?;
        Ok(Self {
            number,
            legacy: None,
        })
    }

    /// GB 11643 legacy 15-digit numbers: address + YYMMDD + sequence, no check. The century is 19,
    /// or 18 when the sequence is 996-999 (centenarians registered in the 1980s).
    fn upgrade(legacy: &str, now: i64) -> Result<Self, IdentifierError> {
        let century = if matches!(&legacy[12..15], "996" | "997" | "998" | "999") {
            "18"
        } else {
            "19"
        };
        let first17 = format!("{}{century}{}", &legacy[..6], &legacy[6..]);
        let check = mod11_2_check(first17.as_bytes()) as char;
        let upgraded = Self::parse(&format!("{first17}{check}"), now)
            .map_err(|e| IdentifierError(format!("legacy 15-digit number: {e}")))?;
        Ok(Self {
            number: upgraded.number,
            legacy: Some(legacy.to_owned()),
        })
    }

    fn birth_date(b: &[u8], now: i64) -> Result<Date, IdentifierError> {
        let year = i32::from(two_digits(&b[6..8])) * 100 + i32::from(two_digits(&b[8..10]));
        if year < 1800 {
            return err(format!("birth year {year} is too early"));
        }
        let date = Date::new(year, two_digits(&b[10..12]), two_digits(&b[12..14]))
            .map_err(|e| IdentifierError(format!("birth date: {e}")))?;
        if date > Date::cst_from_epoch(now) {
            return err(format!(
                "birth date {:04}-{:02}-{:02} is in the future",
                date.year, date.month, date.day
            ));
        }
        Ok(date)
    }

    /// The normalised 18-character number.
    pub fn as_str(&self) -> &str {
        &self.number
    }
    /// The 15-digit number this one was upgraded from, if any.
    pub fn legacy_alias(&self) -> Option<&str> {
        self.legacy.as_deref()
    }
    pub fn birth_date_of(&self) -> Date {
        let b = self.number.as_bytes();
        Date {
            year: i32::from(two_digits(&b[6..8])) * 100 + i32::from(two_digits(&b[8..10])),
            month: two_digits(&b[10..12]),
            day: two_digits(&b[12..14]),
        }
    }
    /// GB 11643: the 17th character is odd for men, even for women.
    pub fn is_male(&self) -> bool {
        (self.number.as_bytes()[16] - b'0') % 2 == 1
    }
    /// `110***********002X`.
    pub fn masked(&self) -> String {
        mask(&self.number, 3, 4)
    }
}

impl fmt::Debug for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResidentId({})", self.masked())
    }
}

/// Keeps the first `head` and last `tail` characters and stars the rest.
pub fn mask(value: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= head + tail {
        return "*".repeat(chars.len());
    }
    let mut out: String = chars[..head].iter().collect();
    out.extend(std::iter::repeat_n('*', chars.len() - head - tail));
    out.extend(&chars[chars.len() - tail..]);
    out
}

/// The GB 32100 alphabet: value = index. No I, O, S, V, Z.
const USCC_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

fn uscc_value(c: u8) -> Option<u32> {
    USCC_ALPHABET.iter().position(|&a| a == c).map(|i| i as u32)
}

/// A unified social credit code (GB 32100-2015): 18 characters of the code alphabet; registration
/// authority, category, division, the 9-character GB 11714 organisation code (with its own check), and
/// the outer MOD 31 check character.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CreditCode(String);

impl CreditCode {
    pub fn parse(raw: &str) -> Result<Self, IdentifierError> {
        let code = raw.trim().to_ascii_uppercase();
        let b = code.as_bytes();
        if b.len() != 18 {
            return err(format!(
                "a credit code has 18 characters, got {}",
                code.chars().count()
            ));
        }
        if let Some(i) = b.iter().position(|&c| uscc_value(c).is_none()) {
            let c = code[i..].chars().next().unwrap_or('?');
            return err(format!(
                "character {} ({c}) is not in the credit-code alphabet (digits and letters except I, O, S, V, Z)",
                i + 1
            ));
        }
        // The outer check first: it catches any single wrong character, wherever it is.
        const OUTER: [u32; 17] = [
            1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
        ];
        let outer_sum: u32 = b[..17]
            .iter()
            .zip(OUTER)
            .map(|(&c, w)| uscc_value(c).unwrap_or(0) * w)
            .sum();
        let outer = USCC_ALPHABET[((31 - outer_sum % 31) % 31) as usize];
        if b[17] != outer {
            return err(format!("check character should be {}", outer as char));
        }
        // GB 11714 over positions 9-16; letters count A=10 .. Z=35 here (not their alphabet index).
        const INNER: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];
        let inner_sum: u32 = b[8..16]
            .iter()
            .zip(INNER)
            .map(|(&c, w)| if c.is_ascii_digit() { u32::from(c - b'0') } else { u32::from(c - b'A') + 10 } * w)
            .sum();
        let inner = match 11 - inner_sum % 11 {
            10 => b'X',
            11 => b'0',
            n => b'0' + n as u8,
        };
        if b[16] != inner {
            return err(format!(
                "organisation code check (character 17) should be {}",
                inner as char
            ));
        }
        Ok(Self(code))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The code whose first 16 characters are `first16`, with both check characters computed (for
    /// generating test organisations: the sandbox). `None` when a character is outside the alphabet.
    pub fn complete(first16: &str) -> Option<Self> {
        // Position 17 is GB 11714's check and position 18 the outer one; try each pair the alphabet
        // allows (at most 31 x 31): `parse` is the one place the rules are written.
        let candidates: Vec<char> = USCC_ALPHABET.iter().map(|&c| c as char).collect();
        candidates.iter().find_map(|&inner| {
            candidates
                .iter()
                .find_map(|&outer| Self::parse(&format!("{first16}{inner}{outer}")).ok())
        })
    }

    /// The kind of organisation from positions 1-2 (a soft table: unknown pairs are "other").
    pub fn category(&self) -> OrgCategory {
        OrgCategory::from_code(&self.0[..2])
    }
}

impl fmt::Debug for CreditCode {
    /// Not personal data (docs/organisations.md), so shown whole.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CreditCode({})", self.0)
    }
}

impl fmt::Display for CreditCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Organisation categories by registration authority + category (GB 32100 Annex; soft).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgCategory {
    Enterprise,
    SoleTrader,
    FarmersCooperative,
    GovernmentOrgan,
    PublicInstitution,
    SocialOrganisation,
    Other,
}

impl OrgCategory {
    fn from_code(first_two: &str) -> Self {
        match first_two {
            "91" => Self::Enterprise,
            "92" => Self::SoleTrader,
            "93" => Self::FarmersCooperative,
            "11" => Self::GovernmentOrgan,
            "12" => Self::PublicInstitution,
            "51" | "52" | "53" => Self::SocialOrganisation,
            _ => Self::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enterprise => "enterprise",
            Self::SoleTrader => "sole_trader",
            Self::FarmersCooperative => "farmers_cooperative",
            Self::GovernmentOrgan => "government_organ",
            Self::PublicInstitution => "public_institution",
            Self::SocialOrganisation => "social_organisation",
            Self::Other => "other",
        }
    }
}

/// A mainland China mobile number: 11 digits, `1` then 3-9. Spaces, hyphens and a `+86` / `0086` /
/// `86` prefix are dropped.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> Result<Self, IdentifierError> {
        let compact: String = raw
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
            .collect();
        let digits = compact
            .strip_prefix("+86")
            .or_else(|| compact.strip_prefix("0086"))
            .or_else(|| {
                if compact.len() == 13 {
                    compact.strip_prefix("86")
                } else {
                    None
                }
            })
            .unwrap_or(&compact);
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return err("a mobile number has only digits");
        }
        if digits.len() != 11 {
            return err(format!(
                "a mainland mobile number has 11 digits, got {}",
                digits.len()
            ));
        }
        let b = digits.as_bytes();
        if b[0] != b'1' || !(b'3'..=b'9').contains(&b[1]) {
            return err("a mainland mobile number starts with 13 to 19");
        }
        Ok(Self(digits.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `138****1234`.
    pub fn masked(&self) -> String {
        mask(&self.0, 3, 4)
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 2026-11-27 12:00 UTC.
    const NOW: i64 = 1_795_780_800;

    #[test]
    fn domain_vectors_for_resident_ids() {
        for ok in [
            "11010519491231002X",
            "440305200002290029",
            "510104200808080072",
            "810000199501010023",
        ] {
            assert_eq!(ResidentId::parse(ok, NOW).unwrap().as_str(), ok);
        }
        assert_eq!(
            ResidentId::parse("11010519491231002x", NOW)
                .unwrap()
                .as_str(),
            "11010519491231002X"
        );
        assert_eq!(
            ResidentId::parse("110105194912310021", NOW).unwrap_err().0,
            "check character should be X"
        );
        assert!(
            ResidentId::parse("110101199002300010", NOW)
                .unwrap_err()
                .0
                .contains("no 30 February")
        );
        let up = ResidentId::parse("110105491231002", NOW).unwrap();
        assert_eq!(up.as_str(), "11010519491231002X");
        assert_eq!(up.legacy_alias(), Some("110105491231002"));
        assert_eq!(up.masked(), "110***********002X");
        assert!(!up.is_male());
    }

    #[test]
    fn resident_id_errors_say_what_is_wrong() {
        let e = |s: &str| ResidentId::parse(s, NOW).unwrap_err().0;
        assert!(
            e("1101051949123100").contains("18 characters"),
            "{}",
            e("1101051949123100")
        );
        assert!(e("11010519491231002Y").contains("digit or X"));
        assert!(e("1101051949123X002X").contains("character 14"));
        assert!(
            e("991051194912310020").contains("not a province code")
                || e("991051194912310020").contains("check")
        );
        // 2027-01-01 is after NOW.
        let future = format!(
            "11010520270101001{}",
            mod11_2_check(b"11010520270101001") as char
        );
        assert!(e(&future).contains("in the future"), "{}", e(&future));
        let bad_province = format!(
            "99010519491231002{}",
            mod11_2_check(b"99010519491231002") as char
        );
        assert_eq!(e(&bad_province), "99 is not a province code");
    }

    #[test]
    fn domain_vectors_for_credit_codes() {
        for ok in [
            "91512081MA62K0260E",
            "9144030071526726XG",
            "911101051234567883",
            "92440305MA5F0000X6",
            "12510104000000123E",
        ] {
            assert_eq!(CreditCode::parse(ok).unwrap().as_str(), ok);
            assert_eq!(CreditCode::parse(&ok.to_lowercase()).unwrap().as_str(), ok);
        }
        assert_eq!(
            CreditCode::parse("91310115MA1G4L1WXK").unwrap_err().0,
            "check character should be 7"
        );
        assert!(
            CreditCode::parse("91110105123456788I")
                .unwrap_err()
                .0
                .contains("(I) is not in the credit-code alphabet")
        );
        assert_eq!(
            CreditCode::parse("91512081MA62K0260E").unwrap().category(),
            OrgCategory::Enterprise
        );
        assert_eq!(
            CreditCode::parse("92440305MA5F0000X6").unwrap().category(),
            OrgCategory::SoleTrader
        );
        assert_eq!(
            CreditCode::parse("12510104000000123E").unwrap().category(),
            OrgCategory::PublicInstitution
        );
    }

    #[test]
    fn phones_normalise_and_mask() {
        for raw in [
            "13812341234",
            "+86 138-1234-1234",
            "008613812341234",
            "8613812341234",
        ] {
            assert_eq!(Phone::parse(raw).unwrap().as_str(), "13812341234", "{raw}");
        }
        assert_eq!(Phone::parse("13812341234").unwrap().masked(), "138****1234");
        assert!(
            Phone::parse("12812341234")
                .unwrap_err()
                .0
                .contains("13 to 19")
        );
        assert!(
            Phone::parse("1381234123")
                .unwrap_err()
                .0
                .contains("11 digits")
        );
        assert!(Phone::parse("1381234123a").is_err());
        assert!(!format!("{:?}", Phone::parse("13812341234").unwrap()).contains("81234"));
    }

    fn valid_resident_id() -> impl Strategy<Value = String> {
        let provinces: Vec<u8> = PROVINCES.iter().flat_map(|(lo, hi)| *lo..=*hi).collect();
        (
            prop::sample::select(provinces),
            0u32..10_000,
            1900i32..=2025,
            1u8..=12,
            1u8..=31,
            0u32..1000,
        )
            .prop_filter_map("real date", |(p, area, y, m, d, seq)| {
                Date::new(y, m, d).ok()?;
                let first17 = format!("{p:02}{area:04}{y:04}{m:02}{d:02}{seq:03}");
                Some(format!(
                    "{first17}{}",
                    mod11_2_check(first17.as_bytes()) as char
                ))
            })
    }

    fn valid_credit_code() -> impl Strategy<Value = String> {
        let alphabet = prop::sample::select(USCC_ALPHABET.to_vec());
        (prop::collection::vec(alphabet.clone(), 8), prop::collection::vec(alphabet, 8)).prop_map(|(head, org)| {
            let mut s: Vec<u8> = head;
            s.extend(&org);
            const INNER: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];
            let sum: u32 = org
                .iter()
                .zip(INNER)
                .map(|(&c, w)| if c.is_ascii_digit() { u32::from(c - b'0') } else { u32::from(c - b'A') + 10 } * w)
                .sum();
            s.push(match 11 - sum % 11 { 10 => b'X', 11 => b'0', n => b'0' + n as u8 });
            const OUTER: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
            let sum: u32 = s.iter().zip(OUTER).map(|(&c, w)| uscc_value(c).unwrap() * w).sum();
            s.push(USCC_ALPHABET[((31 - sum % 31) % 31) as usize]);
            String::from_utf8(s).unwrap()
        })
    }

    proptest! {
        #[test]
        fn every_valid_resident_id_parses_and_round_trips(id in valid_resident_id()) {
            let parsed = ResidentId::parse(&id, NOW).unwrap();
            prop_assert_eq!(parsed.as_str(), id.as_str());
            prop_assert_eq!(&ResidentId::parse(&id.to_lowercase(), NOW).unwrap(), &parsed);
            let masked = parsed.masked();
            prop_assert_eq!(&masked[..3], &id[..3]);
            prop_assert_eq!(&masked[14..], &id[14..]);
            prop_assert_eq!(&masked[3..14], "***********");
        }

        #[test]
        fn every_single_character_change_to_a_resident_id_is_refused(
            id in valid_resident_id(), pos in 0usize..18, replacement in prop::sample::select(b"0123456789X".to_vec())
        ) {
            let mut changed = id.clone().into_bytes();
            prop_assume!(changed[pos] != replacement);
            changed[pos] = replacement;
            let changed = String::from_utf8(changed).unwrap();
            prop_assert!(ResidentId::parse(&changed, NOW).is_err(), "{} accepted", changed);
        }

        #[test]
        fn every_valid_credit_code_parses(code in valid_credit_code()) {
            let parsed = CreditCode::parse(&code).unwrap();
            prop_assert_eq!(parsed.as_str(), code.as_str());
            let lower = CreditCode::parse(&code.to_lowercase()).unwrap();
            prop_assert_eq!(lower.as_str(), code.as_str());
        }

        #[test]
        fn every_single_character_change_to_a_credit_code_is_refused(
            code in valid_credit_code(), pos in 0usize..18, replacement in prop::sample::select(USCC_ALPHABET.to_vec())
        ) {
            let mut changed = code.clone().into_bytes();
            prop_assume!(changed[pos] != replacement);
            changed[pos] = replacement;
            let changed = String::from_utf8(changed).unwrap();
            prop_assert!(CreditCode::parse(&changed).is_err(), "{} accepted", changed);
        }

        #[test]
        fn parsers_never_panic(s in "\\PC{0,40}") {
            let _ = ResidentId::parse(&s, NOW);
            let _ = CreditCode::parse(&s);
            let _ = Phone::parse(&s);
        }
    }
}
