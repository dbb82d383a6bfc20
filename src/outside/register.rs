//! Register adapters: the population register (实名核验) and the market-regulation register
//! (enterprise check). `dev` answers from a TOML file of fictitious identities
//! (`config/dev-register.toml` built in); `http` POSTs JSON to the provincial platform, with a
//! bearer token and mutual TLS where configured (wire format: docs/gateways.md); `off` refuses.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{BuildError, Caller, CallerSettings, parse_answer};
use crate::config::{Adapter, RegisterConfig};
use crate::domain::account::PersonName;
use crate::domain::document::{Document, DocumentKind};
use crate::domain::identifiers::CreditCode;
use crate::protocol::outside::{
    EnterpriseCheck, EnterpriseRegister, FaceCheck, FaceVerifier, OutsideError, PersonCheck,
    PersonRegister, Representative,
};
use crate::telemetry::OutsideMetrics;

const PERSON: &str = "population_register";
const ENTERPRISE: &str = "enterprise_register";
const FACE: &str = "face_verification";
/// The development face service's token for a live capture of the holder of document `number`:
/// `dev-live-face:` followed by the number.
pub const DEV_LIVENESS_PREFIX: &str = "dev-live-face:";

/// The built-in development identities.
pub const DEV_REGISTER: &str = include_str!("../../config/dev-register.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DevFile {
    #[serde(default)]
    person: Vec<DevPerson>,
    #[serde(default)]
    enterprise: Vec<DevEnterprise>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DevPerson {
    #[serde(default = "resident_id")]
    document: String,
    #[serde(default)]
    country: String,
    number: String,
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DevEnterprise {
    credit_code: String,
    name: String,
    #[serde(default = "resident_id")]
    representative_document: String,
    representative_number: String,
    representative_name: String,
}

fn resident_id() -> String {
    "resident_id".into()
}

/// Development: both registers from one file of fictitious identities.
pub struct DevRegister {
    /// Document index input (kind, country, number) -> name.
    people: HashMap<String, String>,
    /// Credit code -> (name, representative's document index input, representative's name).
    enterprises: HashMap<String, (String, String, String)>,
}

impl DevRegister {
    /// Parses a register file; every number must be valid (a typo in a test file is an error).
    pub fn parse(text: &str, source: &str) -> Result<Self, BuildError> {
        let fail = |why: String| BuildError {
            key: source.to_owned(),
            why,
        };
        let file: DevFile = toml::from_str(text).map_err(|e| fail(e.to_string()))?;
        // A fixed date: the file's numbers are checked as of any plausible day.
        let now = 4_102_444_800; // 2100-01-01
        let document = |kind: &str, country: &str, number: &str| {
            let kind = DocumentKind::parse(kind).map_err(|e| fail(e.0))?;
            let country = (!country.is_empty()).then_some(country);
            Document::parse(kind, country, number, now)
                .map(|d| d.index_input())
                .map_err(|e| fail(format!("{number}: {}", e.0)))
        };
        let mut people = HashMap::new();
        for p in file.person {
            people.insert(document(&p.document, &p.country, &p.number)?, p.name);
        }
        let mut enterprises = HashMap::new();
        for e in file.enterprise {
            let code = CreditCode::parse(&e.credit_code).map_err(|err| fail(err.0))?;
            let representative =
                document(&e.representative_document, "", &e.representative_number)?;
            enterprises.insert(
                code.as_str().to_owned(),
                (e.name, representative, e.representative_name),
            );
        }
        Ok(Self {
            people,
            enterprises,
        })
    }

    /// The file `config` names, or the built-in identities.
    pub fn load(config: &RegisterConfig, key: &str) -> Result<Self, BuildError> {
        if config.dev_file.as_os_str().is_empty() {
            return Self::parse(DEV_REGISTER, "config/dev-register.toml");
        }
        let text = std::fs::read_to_string(&config.dev_file).map_err(|e| BuildError {
            key: format!("verify.{key}.dev_file"),
            why: format!("{}: {e}", config.dev_file.display()),
        })?;
        Self::parse(&text, &config.dev_file.display().to_string())
    }
}

#[async_trait]
impl PersonRegister for DevRegister {
    async fn check(
        &self,
        document: &Document,
        name: &PersonName,
    ) -> Result<PersonCheck, OutsideError> {
        Ok(match self.people.get(&document.index_input()) {
            Some(known) if known == name.as_str() => PersonCheck::Match {
                reference: "dev-register".into(),
            },
            Some(_) => PersonCheck::Mismatch,
            None if !document.kind().is_national_number() => PersonCheck::Unsupported,
            None => PersonCheck::NotFound,
        })
    }
}

#[async_trait]
impl EnterpriseRegister for DevRegister {
    async fn check(
        &self,
        code: &CreditCode,
        name: &str,
        representative: &Representative<'_>,
    ) -> Result<EnterpriseCheck, OutsideError> {
        let Some((known, document, person)) = self.enterprises.get(code.as_str()) else {
            return Ok(EnterpriseCheck::NotFound);
        };
        Ok(if known != name.trim() {
            EnterpriseCheck::NameMismatch
        } else if *document != representative.document.index_input()
            || person != representative.name.as_str()
        {
            EnterpriseCheck::NotRepresentative
        } else {
            EnterpriseCheck::Match {
                reference: "dev-register".into(),
            }
        })
    }
}

/// Development: a face "matches" the register photo of a person of the file when the capture token
/// is [`DEV_LIVENESS_PREFIX`] followed by their document number; any other token is another face.
#[async_trait]
impl FaceVerifier for DevRegister {
    async fn verify(
        &self,
        document: &Document,
        name: &PersonName,
        liveness: &str,
    ) -> Result<FaceCheck, OutsideError> {
        Ok(match self.people.get(&document.index_input()) {
            Some(known) if known == name.as_str() => {
                let expected = format!("{DEV_LIVENESS_PREFIX}{}", document.number());
                if subtle::ConstantTimeEq::ct_eq(liveness.as_bytes(), expected.as_bytes()).into() {
                    FaceCheck::Match {
                        reference: "dev-face".into(),
                    }
                } else {
                    FaceCheck::NoMatch
                }
            }
            _ => FaceCheck::NotFound,
        })
    }
}

/// A person as the http registers receive one.
#[derive(Serialize)]
struct WirePerson<'a> {
    document_type: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    country: &'a str,
    number: &'a str,
    name: &'a str,
}

impl<'a> WirePerson<'a> {
    fn new(document: &'a Document, name: &'a PersonName) -> Self {
        Self {
            document_type: document.kind().as_str(),
            country: document.country(),
            number: document.number(),
            name: name.as_str(),
        }
    }
}

#[derive(Deserialize)]
struct WireAnswer {
    result: String,
    #[serde(default)]
    reference: String,
}

/// An http register: `POST url` with a JSON body, `Authorization: Bearer` when a token is set.
pub struct HttpRegister {
    caller: Caller,
    url: String,
    token: crate::config::Secret,
}

impl HttpRegister {
    pub fn new(
        config: &RegisterConfig,
        service: &'static str,
        config_key: &'static str,
        metrics: OutsideMetrics,
    ) -> Result<Self, BuildError> {
        let caller = Caller::new(
            &CallerSettings {
                service,
                config_key,
                timeout_ms: config.timeout_ms,
                max_attempts: config.max_attempts,
                client_cert: &config.client_cert,
                client_key: &config.client_key,
                ca_cert: &config.ca_cert,
            },
            metrics,
        )?;
        Ok(Self {
            caller,
            url: config.url.clone(),
            token: config.token.clone(),
        })
    }

    async fn ask(&self, service: &'static str, body: &[u8]) -> Result<WireAnswer, OutsideError> {
        let token = self.token.expose();
        let headers = || {
            if token.is_empty() {
                Vec::new()
            } else {
                vec![("authorization", format!("Bearer {token}"))]
            }
        };
        let answer = self.caller.post(&self.url, body, headers).await?;
        parse_answer(service, &answer)
    }
}

fn unknown(service: &'static str, result: &str) -> OutsideError {
    OutsideError::Malformed {
        service,
        reason: format!(
            "unknown result {:?}",
            result.chars().take(40).collect::<String>()
        ),
    }
}

/// The population register over HTTP.
pub struct HttpPersonRegister(pub HttpRegister);

#[async_trait]
impl PersonRegister for HttpPersonRegister {
    async fn check(
        &self,
        document: &Document,
        name: &PersonName,
    ) -> Result<PersonCheck, OutsideError> {
        let body = zeroize::Zeroizing::new(
            serde_json::to_vec(&WirePerson::new(document, name)).unwrap_or_default(),
        );
        let answer = self.0.ask(PERSON, &body).await?;
        Ok(match answer.result.as_str() {
            "match" => PersonCheck::Match {
                reference: answer.reference,
            },
            "mismatch" => PersonCheck::Mismatch,
            "not_found" => PersonCheck::NotFound,
            "unsupported" => PersonCheck::Unsupported,
            other => return Err(unknown(PERSON, other)),
        })
    }
}

/// The face-verification service over HTTP: the person and the capture token; answers `match`,
/// `no_match` or `not_found` (docs/gateways.md).
pub struct HttpFaceVerifier(pub HttpRegister);

#[async_trait]
impl FaceVerifier for HttpFaceVerifier {
    async fn verify(
        &self,
        document: &Document,
        name: &PersonName,
        liveness: &str,
    ) -> Result<FaceCheck, OutsideError> {
        #[derive(Serialize)]
        struct Body<'a> {
            #[serde(flatten)]
            person: WirePerson<'a>,
            liveness: &'a str,
        }
        let body = zeroize::Zeroizing::new(
            serde_json::to_vec(&Body {
                person: WirePerson::new(document, name),
                liveness,
            })
            .unwrap_or_default(),
        );
        let answer = self.0.ask(FACE, &body).await?;
        Ok(match answer.result.as_str() {
            "match" => FaceCheck::Match {
                reference: answer.reference,
            },
            "no_match" => FaceCheck::NoMatch,
            "not_found" => FaceCheck::NotFound,
            other => return Err(unknown(FACE, other)),
        })
    }
}

/// The market-regulation register over HTTP.
pub struct HttpEnterpriseRegister(pub HttpRegister);

#[async_trait]
impl EnterpriseRegister for HttpEnterpriseRegister {
    async fn check(
        &self,
        code: &CreditCode,
        name: &str,
        representative: &Representative<'_>,
    ) -> Result<EnterpriseCheck, OutsideError> {
        #[derive(Serialize)]
        struct Body<'a> {
            credit_code: &'a str,
            name: &'a str,
            legal_representative: WirePerson<'a>,
        }
        let body = zeroize::Zeroizing::new(
            serde_json::to_vec(&Body {
                credit_code: code.as_str(),
                name: name.trim(),
                legal_representative: WirePerson::new(representative.document, representative.name),
            })
            .unwrap_or_default(),
        );
        let answer = self.0.ask(ENTERPRISE, &body).await?;
        Ok(match answer.result.as_str() {
            "match" => EnterpriseCheck::Match {
                reference: answer.reference,
            },
            "name_mismatch" => EnterpriseCheck::NameMismatch,
            "not_representative" => EnterpriseCheck::NotRepresentative,
            "not_found" => EnterpriseCheck::NotFound,
            other => return Err(unknown(ENTERPRISE, other)),
        })
    }
}

/// No register here.
pub struct OffRegister;

#[async_trait]
impl PersonRegister for OffRegister {
    async fn check(&self, _: &Document, _: &PersonName) -> Result<PersonCheck, OutsideError> {
        Err(OutsideError::Off { service: PERSON })
    }
}

#[async_trait]
impl FaceVerifier for OffRegister {
    async fn verify(
        &self,
        _: &Document,
        _: &PersonName,
        _: &str,
    ) -> Result<FaceCheck, OutsideError> {
        Err(OutsideError::Off { service: FACE })
    }
}

#[async_trait]
impl EnterpriseRegister for OffRegister {
    async fn check(
        &self,
        _: &CreditCode,
        _: &str,
        _: &Representative<'_>,
    ) -> Result<EnterpriseCheck, OutsideError> {
        Err(OutsideError::Off {
            service: ENTERPRISE,
        })
    }
}

/// The population register `config` names.
pub fn person_register(
    config: &RegisterConfig,
    metrics: OutsideMetrics,
) -> Result<Arc<dyn PersonRegister>, BuildError> {
    Ok(match config.adapter {
        Adapter::Dev => Arc::new(DevRegister::load(config, "person")?),
        Adapter::Http => Arc::new(HttpPersonRegister(HttpRegister::new(
            config,
            PERSON,
            "verify.person",
            metrics,
        )?)),
        Adapter::Off => Arc::new(OffRegister),
    })
}

/// The face-verification service `config` names.
pub fn face_verifier(
    config: &RegisterConfig,
    metrics: OutsideMetrics,
) -> Result<Arc<dyn FaceVerifier>, BuildError> {
    Ok(match config.adapter {
        Adapter::Dev => Arc::new(DevRegister::load(config, "face")?),
        Adapter::Http => Arc::new(HttpFaceVerifier(HttpRegister::new(
            config,
            FACE,
            "verify.face",
            metrics,
        )?)),
        Adapter::Off => Arc::new(OffRegister),
    })
}

/// The market-regulation register `config` names.
pub fn enterprise_register(
    config: &RegisterConfig,
    metrics: OutsideMetrics,
) -> Result<Arc<dyn EnterpriseRegister>, BuildError> {
    Ok(match config.adapter {
        Adapter::Dev => Arc::new(DevRegister::load(config, "enterprise")?),
        Adapter::Http => Arc::new(HttpEnterpriseRegister(HttpRegister::new(
            config,
            ENTERPRISE,
            "verify.enterprise",
            metrics,
        )?)),
        Adapter::Off => Arc::new(OffRegister),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev() -> DevRegister {
        DevRegister::parse(DEV_REGISTER, "built-in").unwrap()
    }

    #[tokio::test]
    async fn the_built_in_register_knows_its_people_by_number_and_name() {
        let register = dev();
        let doc = Document::national("110101199003070011", 1_800_000_000).unwrap();
        let name = |n| PersonName::parse(n).unwrap();
        assert!(matches!(
            PersonRegister::check(&register, &doc, &name("测试李四")).await,
            Ok(PersonCheck::Match { .. })
        ));
        assert_eq!(
            PersonRegister::check(&register, &doc, &name("李四"))
                .await
                .unwrap(),
            PersonCheck::Mismatch
        );
        let unknown = Document::national("440305200002290029", 1_800_000_000).unwrap();
        assert_eq!(
            PersonRegister::check(&register, &unknown, &name("测试李四"))
                .await
                .unwrap(),
            PersonCheck::NotFound
        );
        let passport = Document::parse(
            DocumentKind::Passport,
            Some("FRA"),
            "12AB34567",
            1_800_000_000,
        )
        .unwrap();
        assert_eq!(
            PersonRegister::check(&register, &passport, &name("Jean Dupont"))
                .await
                .unwrap(),
            PersonCheck::Unsupported
        );
    }

    #[tokio::test]
    async fn the_enterprise_check_needs_the_name_and_the_legal_representative() {
        let register = dev();
        let code = CreditCode::parse("91512081MA62K0260E").unwrap();
        let doc = Document::national("110101199003070011", 1_800_000_000).unwrap();
        let li = PersonName::parse("测试李四").unwrap();
        let rep = Representative {
            document: &doc,
            name: &li,
        };
        assert!(matches!(
            EnterpriseRegister::check(&register, &code, "测试云端科技有限公司", &rep).await,
            Ok(EnterpriseCheck::Match { .. })
        ));
        assert_eq!(
            EnterpriseRegister::check(&register, &code, "别的公司", &rep)
                .await
                .unwrap(),
            EnterpriseCheck::NameMismatch
        );
        let other = Document::national("310104198506150023", 1_800_000_000).unwrap();
        let wang = PersonName::parse("测试王芳").unwrap();
        let not_rep = Representative {
            document: &other,
            name: &wang,
        };
        assert_eq!(
            EnterpriseRegister::check(&register, &code, "测试云端科技有限公司", &not_rep)
                .await
                .unwrap(),
            EnterpriseCheck::NotRepresentative
        );
    }

    #[test]
    fn a_register_file_with_a_bad_number_is_refused() {
        let err = DevRegister::parse(
            "[[person]]\nnumber = \"110105194912310021\"\nname = \"x\"\n",
            "f",
        )
        .err()
        .unwrap();
        assert!(err.why.contains("110105194912310021"), "{err}");
    }
}
