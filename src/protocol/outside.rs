//! What yihao needs from the services outside it (docs/gateways.md), in domain types: an SMS gateway,
//! the population register (实名核验) and the market-regulation register (enterprise check). The
//! adapters (`dev`, `http`) live in `crate::outside`; only the composition root names one.
//!
//! A slow or failing service never holds a request past its timeout: every adapter answers within its
//! configured limit, with [`OutsideError`] when the service did not give a usable answer.

use async_trait::async_trait;
use zeroize::Zeroizing;

use crate::domain::account::PersonName;
use crate::domain::document::Document;
use crate::domain::identifiers::{CreditCode, Phone};

/// Why an outside service gave no usable answer. Shown to the person as "the service is not
/// available, try again later"; logged without personal data.
#[derive(Debug, thiserror::Error)]
pub enum OutsideError {
    #[error("the {service} did not answer within {ms} ms")]
    Timeout { service: &'static str, ms: u64 },
    #[error("the {service} is unavailable: {reason}")]
    Unavailable {
        service: &'static str,
        reason: String,
    },
    #[error("the {service} answered something that is not its protocol: {reason}")]
    Malformed {
        service: &'static str,
        reason: String,
    },
    #[error("the {service} is not offered here")]
    Off { service: &'static str },
}

/// What an SMS code is for: part of the text's context and of the code's key, so a code sent for one
/// purpose opens nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsPurpose {
    Register,
    Login,
    Recover,
    /// The old number, when the phone changes.
    PhoneOld,
    /// The new number, when the phone changes.
    PhoneNew,
    Unlock,
    /// Resetting lost second factors (with a fresh real-name check).
    FactorReset,
}

impl SmsPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Login => "login",
            Self::Recover => "recover",
            Self::PhoneOld => "phone_old",
            Self::PhoneNew => "phone_new",
            Self::Unlock => "unlock",
            Self::FactorReset => "factor_reset",
        }
    }
}

/// One message to send.
pub struct SmsMessage {
    pub phone: Phone,
    pub purpose: SmsPurpose,
    /// The code alone (gateways with registered templates send only the parameters).
    pub code: Zeroizing<String>,
    pub minutes: u64,
    /// The whole text, in the person's language.
    pub text: Zeroizing<String>,
}

impl std::fmt::Debug for SmsMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsMessage")
            .field("phone", &self.phone)
            .field("purpose", &self.purpose)
            .finish_non_exhaustive()
    }
}

/// Delivers text messages.
#[async_trait]
pub trait SmsGateway: Send + Sync {
    /// `Ok` once the gateway accepted the message for delivery.
    async fn send(&self, message: &SmsMessage) -> Result<(), OutsideError>;
}

/// The population register's answer about a document and a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonCheck {
    /// The register holds this document under this name; `reference` is its record of the check.
    Match { reference: String },
    /// The register holds the document under another name.
    Mismatch,
    /// The register does not know the document.
    NotFound,
    /// The register cannot check this kind of document (a foreign passport): identity self-declared.
    Unsupported,
}

/// 实名核验: checks a document and name against the population register.
#[async_trait]
pub trait PersonRegister: Send + Sync {
    async fn check(
        &self,
        document: &Document,
        name: &PersonName,
    ) -> Result<PersonCheck, OutsideError>;
}

/// The face-verification service's answer (人脸核验).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaceCheck {
    /// The live face is the register photo's person; `reference` is the service's record.
    Match { reference: String },
    /// A face, but not this person's, or the capture was not live.
    NoMatch,
    /// The register has no photo for this document.
    NotFound,
}

/// Matches a live face, captured by the app or a kiosk with the provincial platform's SDK, against
/// the register photo of a document. yihao passes on only the platform's token for the capture
/// (`liveness`); it never receives or keeps an image (docs/privacy.md).
#[async_trait]
pub trait FaceVerifier: Send + Sync {
    async fn verify(
        &self,
        document: &Document,
        name: &PersonName,
        liveness: &str,
    ) -> Result<FaceCheck, OutsideError>;
}

/// The person an enterprise check names as legal representative.
pub struct Representative<'a> {
    pub document: &'a Document,
    pub name: &'a PersonName,
}

/// The market-regulation register's answer about an enterprise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnterpriseCheck {
    /// Name and legal representative as registered; `reference` is the register's record.
    Match { reference: String },
    /// Registered under another name.
    NameMismatch,
    /// Registered, but the person is not its legal representative.
    NotRepresentative,
    /// No such credit code, or deregistered.
    NotFound,
}

/// Checks an enterprise's name and legal representative against the market-regulation register.
#[async_trait]
pub trait EnterpriseRegister: Send + Sync {
    async fn check(
        &self,
        code: &CreditCode,
        name: &str,
        representative: &Representative<'_>,
    ) -> Result<EnterpriseCheck, OutsideError>;
}
