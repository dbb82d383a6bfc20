//! Identity documents of natural persons (docs/identifiers.md). An account holds one or more; each is unique
//! on (kind, issuing country, normalised number). Eighteen-digit MOD 11-2 numbers classify themselves:
//! `81/82/83` + `0000` are Hong Kong / Macao / Taiwan residence permits, a leading `9` the 2023
//! foreign permanent-residence card, anything else a resident ID card.

use std::fmt;

use super::identifiers::{IdentifierError, ResidentId, mask, mod11_2_number};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentKind {
    /// 居民身份证 (GB 11643).
    ResidentId,
    /// 港澳居民居住证: 18 digits, prefix 810000 or 820000.
    HkMacaoResidencePermit,
    /// 台湾居民居住证: 18 digits, prefix 830000.
    TaiwanResidencePermit,
    /// 外国人永久居留身份证 (2023): 18 digits starting with 9.
    ForeignPermanentResidence,
    /// 港澳居民来往内地通行证: H or M + 8 digits.
    HkMacaoTravelPermit,
    /// 台湾居民来往大陆通行证: 8 digits.
    TaiwanTravelPermit,
    /// A passport, keyed by issuing country (ISO 3166-1 alpha-3) + number.
    Passport,
}

impl DocumentKind {
    pub const ALL: [DocumentKind; 7] = [
        Self::ResidentId,
        Self::HkMacaoResidencePermit,
        Self::TaiwanResidencePermit,
        Self::ForeignPermanentResidence,
        Self::HkMacaoTravelPermit,
        Self::TaiwanTravelPermit,
        Self::Passport,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ResidentId => "resident_id",
            Self::HkMacaoResidencePermit => "hk_macao_residence_permit",
            Self::TaiwanResidencePermit => "taiwan_residence_permit",
            Self::ForeignPermanentResidence => "foreign_permanent_residence",
            Self::HkMacaoTravelPermit => "hk_macao_travel_permit",
            Self::TaiwanTravelPermit => "taiwan_travel_permit",
            Self::Passport => "passport",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, IdentifierError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == raw)
            .ok_or_else(|| {
                IdentifierError(format!(
                    "{raw:?} is not a document type (one of: {})",
                    Self::ALL.map(Self::as_str).join(", ")
                ))
            })
    }

    /// Kinds whose numbers are 18-digit MOD 11-2 numbers and classify themselves.
    pub fn is_national_number(self) -> bool {
        matches!(
            self,
            Self::ResidentId
                | Self::HkMacaoResidencePermit
                | Self::TaiwanResidencePermit
                | Self::ForeignPermanentResidence
        )
    }
}

/// A parsed identity document. `number` is normalised; `legacy_alias` is the 15-digit form a resident
/// ID was upgraded from.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Document {
    kind: DocumentKind,
    country: String,
    number: String,
    legacy_alias: Option<String>,
}

impl Document {
    /// An 18-digit national number (or a 15-digit legacy resident ID), classified by its prefix.
    pub fn national(raw: &str, now: i64) -> Result<Self, IdentifierError> {
        let trimmed = raw.trim();
        if trimmed.starts_with('9') && trimmed.len() == 18 {
            let number = mod11_2_number(trimmed, "permanent-residence card number")?;
            return Ok(Self::new(
                DocumentKind::ForeignPermanentResidence,
                "",
                number,
                None,
            ));
        }
        let id = ResidentId::parse(trimmed, now)?;
        let kind = match &id.as_str()[..6] {
            "810000" | "820000" => DocumentKind::HkMacaoResidencePermit,
            "830000" => DocumentKind::TaiwanResidencePermit,
            _ => DocumentKind::ResidentId,
        };
        let alias = id.legacy_alias().map(str::to_owned);
        Ok(Self::new(kind, "", id.as_str().to_owned(), alias))
    }

    /// A document of a stated kind. National kinds must match what the number says it is; a passport
    /// needs its issuing country.
    pub fn parse(
        kind: DocumentKind,
        country: Option<&str>,
        raw: &str,
        now: i64,
    ) -> Result<Self, IdentifierError> {
        if kind != DocumentKind::Passport && country.is_some_and(|c| !c.is_empty()) {
            return Err(IdentifierError(format!(
                "a {} has no issuing country",
                kind.as_str()
            )));
        }
        let number = raw.trim().to_ascii_uppercase();
        match kind {
            k if k.is_national_number() => {
                let doc = Self::national(raw, now)?;
                if doc.kind != k {
                    return Err(IdentifierError(format!(
                        "this number is a {}, not a {}",
                        doc.kind.as_str(),
                        k.as_str()
                    )));
                }
                Ok(doc)
            }
            DocumentKind::HkMacaoTravelPermit => {
                let b = number.as_bytes();
                let ok = b.len() == 9
                    && matches!(b[0], b'H' | b'M')
                    && b[1..].iter().all(u8::is_ascii_digit);
                if !ok {
                    return Err(IdentifierError(
                        "a Hong Kong/Macao travel permit number is H or M followed by 8 digits"
                            .into(),
                    ));
                }
                Ok(Self::new(kind, "", number, None))
            }
            DocumentKind::TaiwanTravelPermit => {
                if number.len() != 8 || !number.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(IdentifierError(
                        "a Taiwan travel permit number has 8 digits".into(),
                    ));
                }
                Ok(Self::new(kind, "", number, None))
            }
            _ => {
                let country = country.unwrap_or_default().trim().to_ascii_uppercase();
                if country.len() != 3 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
                    return Err(IdentifierError(
                        "a passport needs its issuing country as an ISO 3166-1 alpha-3 code (e.g. CHN, FRA)".into(),
                    ));
                }
                if !(5..=17).contains(&number.len())
                    || !number.bytes().all(|b| b.is_ascii_alphanumeric())
                {
                    return Err(IdentifierError(
                        "a passport number has 5 to 17 letters and digits".into(),
                    ));
                }
                Ok(Self::new(kind, &country, number, None))
            }
        }
    }

    fn new(
        kind: DocumentKind,
        country: &str,
        number: String,
        legacy_alias: Option<String>,
    ) -> Self {
        Self {
            kind,
            country: country.to_owned(),
            number,
            legacy_alias,
        }
    }

    pub fn kind(&self) -> DocumentKind {
        self.kind
    }
    /// The issuing country of a passport; empty for other kinds.
    pub fn country(&self) -> &str {
        &self.country
    }
    pub fn number(&self) -> &str {
        &self.number
    }
    pub fn legacy_alias(&self) -> Option<&str> {
        self.legacy_alias.as_deref()
    }

    /// What the blind index is computed over: kind, country and number, so the same digits under two
    /// kinds are two documents.
    pub fn index_input(&self) -> String {
        format!("{}|{}|{}", self.kind.as_str(), self.country, self.number)
    }

    /// First 3 and last 4 for long numbers, first 1 and last 2 for short ones (docs/privacy.md).
    pub fn masked(&self) -> String {
        if self.number.len() >= 10 {
            mask(&self.number, 3, 4)
        } else {
            mask(&self.number, 1, 2)
        }
    }
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Document({} {} {})",
            self.kind.as_str(),
            self.country,
            self.masked()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_780_800;

    #[test]
    fn national_numbers_classify_themselves() {
        let kind = |n: &str| Document::national(n, NOW).unwrap().kind();
        assert_eq!(kind("11010519491231002X"), DocumentKind::ResidentId);
        assert_eq!(
            kind("810000199501010023"),
            DocumentKind::HkMacaoResidencePermit
        );
        let tw = format!(
            "83000019900101002{}",
            crate::domain::identifiers::mod11_2_check(b"83000019900101002") as char
        );
        assert_eq!(kind(&tw), DocumentKind::TaiwanResidencePermit);
        let foreign = format!(
            "93115619900101001{}",
            crate::domain::identifiers::mod11_2_check(b"93115619900101001") as char
        );
        assert_eq!(kind(&foreign), DocumentKind::ForeignPermanentResidence);
        let legacy = Document::national("110105491231002", NOW).unwrap();
        assert_eq!(legacy.number(), "11010519491231002X");
        assert_eq!(legacy.legacy_alias(), Some("110105491231002"));
    }

    #[test]
    fn stated_kinds_are_checked() {
        let p = |k, c: Option<&str>, n: &str| Document::parse(k, c, n, NOW);
        assert!(
            p(
                DocumentKind::TaiwanResidencePermit,
                None,
                "11010519491231002X"
            )
            .unwrap_err()
            .0
            .contains("is a resident_id")
        );
        assert_eq!(
            p(DocumentKind::HkMacaoTravelPermit, None, "h12345678")
                .unwrap()
                .number(),
            "H12345678"
        );
        assert!(p(DocumentKind::HkMacaoTravelPermit, None, "X12345678").is_err());
        p(DocumentKind::TaiwanTravelPermit, None, "12345678").unwrap();
        assert!(p(DocumentKind::TaiwanTravelPermit, None, "1234567").is_err());
        let pass = p(DocumentKind::Passport, Some("fra"), "19av12345").unwrap();
        assert_eq!((pass.country(), pass.number()), ("FRA", "19AV12345"));
        assert!(
            p(DocumentKind::Passport, None, "19AV12345")
                .unwrap_err()
                .0
                .contains("country")
        );
        assert!(p(DocumentKind::ResidentId, Some("CHN"), "11010519491231002X").is_err());
        assert_ne!(
            p(DocumentKind::Passport, Some("FRA"), "E1234567")
                .unwrap()
                .index_input(),
            p(DocumentKind::Passport, Some("DEU"), "E1234567")
                .unwrap()
                .index_input()
        );
    }

    #[test]
    fn debug_and_masks_hide_the_number() {
        let d = Document::national("11010519491231002X", NOW).unwrap();
        assert_eq!(d.masked(), "110***********002X");
        assert!(!format!("{d:?}").contains("19491231"));
        let t = Document::parse(DocumentKind::TaiwanTravelPermit, None, "12345678", NOW).unwrap();
        assert_eq!(t.masked(), "1*****78");
    }
}
