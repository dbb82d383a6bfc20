//! Person accounts (docs/identifiers.md, docs/assurance.md): an opaque id (the stable source of `sub`), one or more identity
//! documents, name, phone, optional e-mail, real-name level with the evidence of how it was reached,
//! and status.

use std::fmt;

use super::document::Document;
use super::identifiers::{IdentifierError, Phone};

/// An opaque account id: 1 to 64 of `a-z 0-9 -`. Never derived from personal data.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(String);

impl AccountId {
    pub fn parse(raw: &str) -> Result<Self, IdentifierError> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(IdentifierError(format!("{raw:?} is not an account id")))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A person's name as registered: 1 to 100 characters, no control characters, outer spaces trimmed.
/// Stored as written (never indexed by plain value).
#[derive(Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, IdentifierError> {
        let name = raw.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(IdentifierError("a name has 1 to 100 characters".into()));
        }
        if name.chars().any(char::is_control) {
            return Err(IdentifierError("a name has no control characters".into()));
        }
        Ok(Self(name.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The first character and a star for each other one: `张*`, `欧***` (a family name of two
    /// characters is not told apart from a given name).
    pub fn masked(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        match chars.len() {
            1 => "*".into(),
            n => std::iter::once(chars[0])
                .chain(std::iter::repeat_n('*', n - 1))
                .collect(),
        }
    }
}

impl fmt::Debug for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PersonName({})", self.masked())
    }
}

/// An e-mail address, checked for shape only (a mailbox is proven by sending to it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, IdentifierError> {
        let e = raw.trim();
        let shape = e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        });
        if !shape || e.len() > 254 || e.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(IdentifierError(format!("{e:?} is not an e-mail address")));
        }
        Ok(Self(e.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountStatus {
    Active,
    /// Locked by an administrator (not the temporary lockout after failed logins).
    Locked,
    Disabled,
    /// Closed by its owner (PIPL art. 47): no sign-in; personal data erased after
    /// `registration.closed_erase_after_days`.
    Closed,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Locked => "locked",
            Self::Disabled => "disabled",
            Self::Closed => "closed",
        }
    }
    pub fn parse(raw: &str) -> Result<Self, IdentifierError> {
        match raw {
            "active" => Ok(Self::Active),
            "locked" => Ok(Self::Locked),
            "disabled" => Ok(Self::Disabled),
            "closed" => Ok(Self::Closed),
            _ => Err(IdentifierError(format!("{raw:?} is not an account status"))),
        }
    }
}

/// Real-name level 1-4 (docs/assurance.md), published as `acr` `urn:yihao:loa:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Level(u8);

impl Level {
    pub fn new(n: u8) -> Result<Self, IdentifierError> {
        if (1..=4).contains(&n) {
            Ok(Self(n))
        } else {
            Err(IdentifierError(format!(
                "real-name level {n} does not exist (1 to 4)"
            )))
        }
    }
    pub fn get(self) -> u8 {
        self.0
    }
    pub fn acr(self) -> String {
        format!("urn:yihao:loa:{}", self.0)
    }
}

/// How a real-name level was reached (docs/assurance.md), each with the highest level it can establish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofMethod {
    /// Nothing checked yet: the identity is as declared (registered by an operator or the holder).
    SelfDeclared,
    /// Phone verified by SMS code, identity self-declared.
    SmsCode,
    /// Name + ID number checked against the population (or legal-person) register.
    RegisterCheck,
    /// Live face check against the register photo.
    FaceCheck,
    /// ID-card chip read + face.
    CardChipFace,
    /// Digital certificate (SM2/RSA USB key).
    Certificate,
    /// Electronic business licence.
    ElectronicLicence,
    /// In person at a window or kiosk with card reader + face.
    InPerson,
    /// Carried over from a department system; what that system had checked is not re-proven here.
    LegacyImport,
}

impl ProofMethod {
    pub const ALL: [ProofMethod; 9] = [
        Self::SelfDeclared,
        Self::SmsCode,
        Self::RegisterCheck,
        Self::FaceCheck,
        Self::CardChipFace,
        Self::Certificate,
        Self::ElectronicLicence,
        Self::InPerson,
        Self::LegacyImport,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SelfDeclared => "self_declared",
            Self::SmsCode => "sms_code",
            Self::RegisterCheck => "register_check",
            Self::FaceCheck => "face_check",
            Self::CardChipFace => "card_chip_face",
            Self::Certificate => "certificate",
            Self::ElectronicLicence => "electronic_licence",
            Self::InPerson => "in_person",
            Self::LegacyImport => "legacy_import",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, IdentifierError> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == raw)
            .ok_or_else(|| {
                IdentifierError(format!(
                    "{raw:?} is not a proofing method (one of: {})",
                    Self::ALL.map(Self::as_str).join(", ")
                ))
            })
    }

    /// The highest level this method establishes.
    pub fn ceiling(self) -> u8 {
        match self {
            Self::SelfDeclared | Self::SmsCode | Self::LegacyImport => 1,
            Self::RegisterCheck => 2,
            Self::FaceCheck | Self::CardChipFace => 3,
            Self::Certificate | Self::ElectronicLicence | Self::InPerson => 4,
        }
    }
}

/// The evidence behind an account's real-name level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    level: Level,
    method: ProofMethod,
    source: String,
    verified_at: i64,
}

impl Evidence {
    /// `source`: who checked (a register, a window, a system), free text up to 200 characters.
    pub fn new(
        level: Level,
        method: ProofMethod,
        source: &str,
        verified_at: i64,
    ) -> Result<Self, IdentifierError> {
        if level.get() > method.ceiling() {
            return Err(IdentifierError(format!(
                "{} establishes at most real-name level {}, not {}",
                method.as_str(),
                method.ceiling(),
                level.get()
            )));
        }
        let source = source.trim();
        if source.chars().count() > 200 || source.chars().any(char::is_control) {
            return Err(IdentifierError(
                "the evidence source has at most 200 printable characters".into(),
            ));
        }
        Ok(Self {
            level,
            method,
            source: source.to_owned(),
            verified_at,
        })
    }
    pub fn level(&self) -> Level {
        self.level
    }
    pub fn method(&self) -> ProofMethod {
        self.method
    }
    pub fn source(&self) -> &str {
        &self.source
    }
    pub fn verified_at(&self) -> i64 {
        self.verified_at
    }
}

/// A person account. Holds at least one document; `documents[0]` is the primary one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub name: PersonName,
    pub documents: Vec<Document>,
    pub phone: Option<Phone>,
    pub email: Option<Email>,
    pub evidence: Evidence,
    pub status: AccountStatus,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Account {
    /// Every number the password must not contain: documents, their legacy aliases, the phone.
    pub fn personal_numbers(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.documents.iter().map(Document::number).collect();
        out.extend(self.documents.iter().filter_map(Document::legacy_alias));
        out.extend(self.phone.as_ref().map(Phone::as_str));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_mask_all_but_the_family_name() {
        assert_eq!(PersonName::parse(" 张三 ").unwrap().masked(), "张*");
        assert_eq!(PersonName::parse("欧阳娜娜").unwrap().masked(), "欧***");
        assert!(PersonName::parse("").is_err());
        assert!(PersonName::parse("a\nb").is_err());
        assert!(!format!("{:?}", PersonName::parse("张三").unwrap()).contains('三'));
    }

    #[test]
    fn evidence_cannot_claim_more_than_its_method_establishes() {
        let at = 1_700_000_000;
        Evidence::new(
            Level::new(2).unwrap(),
            ProofMethod::RegisterCheck,
            "population register",
            at,
        )
        .unwrap();
        let e =
            Evidence::new(Level::new(3).unwrap(), ProofMethod::RegisterCheck, "x", at).unwrap_err();
        assert!(e.0.contains("at most real-name level 2"), "{e}");
        Evidence::new(
            Level::new(4).unwrap(),
            ProofMethod::InPerson,
            "window 3",
            at,
        )
        .unwrap();
        assert!(
            Evidence::new(
                Level::new(2).unwrap(),
                ProofMethod::LegacyImport,
                "hall",
                at
            )
            .is_err()
        );
        assert!(Level::new(5).is_err() && Level::new(0).is_err());
        assert_eq!(Level::new(3).unwrap().acr(), "urn:yihao:loa:3");
    }

    #[test]
    fn ids_and_emails_are_checked() {
        AccountId::parse("5f0e8c1a-2b3c-4d5e-8f90-123456789abc").unwrap();
        assert!(AccountId::parse("Has Upper").is_err());
        Email::parse("zhang.san@example.gov.cn").unwrap();
        for bad in ["no-at", "@x.cn", "a@b", "a@.cn", "a b@x.cn"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }
}
