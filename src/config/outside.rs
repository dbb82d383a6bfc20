//! The services outside yihao (docs/gateways.md): the SMS gateway, the population register (real-name
//! check) and the market-regulation register (enterprise check); and what registration records.
//! Each names its adapter: `dev` (no network; the default, refused in production), `http`, or `off`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ConfigError, Secret};

/// Which adapter serves a port to the outside world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Adapter {
    /// No network: an outbox file (SMS) or a file of test identities (registers).
    Dev,
    /// The real service over HTTPS.
    Http,
    /// Not offered: the features that need it are hidden.
    Off,
}

/// SMS codes and the gateway that delivers them.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    pub adapter: Adapter,
    pub dev_outbox: PathBuf,
    pub code_secs: u64,
    pub resend_secs: u64,
    pub max_tries: u32,
    pub per_number_per_day: u32,
    pub per_source_per_day: u32,
    pub text_zh: String,
    pub text_en: String,
    pub http: SmsHttpConfig,
}

/// The `http` SMS adapter.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmsHttpConfig {
    pub url: String,
    pub body_template: String,
    pub signing_key: Secret,
    pub timeout_ms: u64,
    pub max_attempts: u32,
}

/// One register (population or market regulation).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterConfig {
    pub adapter: Adapter,
    /// `dev`: a TOML file of test identities; empty: the built-in ones (`config/dev-register.toml`).
    pub dev_file: PathBuf,
    pub url: String,
    pub token: Secret,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub ca_cert: PathBuf,
    pub timeout_ms: u64,
    pub max_attempts: u32,
}

/// The two registers.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyConfig {
    pub person: RegisterConfig,
    pub enterprise: RegisterConfig,
    /// Face verification against the register photo (the step to real-name level 3).
    pub face: RegisterConfig,
    /// The version of the separate consent to face verification a person gives before each check.
    pub face_consent_version: String,
}

/// Self-service registration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationConfig {
    pub terms_version: String,
    pub privacy_version: String,
    pub draft_secs: u64,
    pub closed_erase_after_days: u32,
}

impl SmsConfig {
    pub(super) fn validate(&self, production: bool) -> Result<(), ConfigError> {
        if production && self.adapter == Adapter::Dev {
            return Err(ConfigError::new(
                "sms.adapter",
                "production refuses the dev SMS adapter (codes written to a file): use http or off",
            ));
        }
        if self.code_secs == 0 || self.max_tries == 0 {
            return Err(ConfigError::new(
                "sms.code_secs",
                "codes need a lifetime and at least one try",
            ));
        }
        for (key, text) in [
            ("sms.text_zh", &self.text_zh),
            ("sms.text_en", &self.text_en),
        ] {
            if !text.contains("{code}") {
                return Err(ConfigError::new(key, "must contain {code}"));
            }
        }
        if self.adapter == Adapter::Http {
            check_url("sms.http.url", &self.http.url, production)?;
            if self.http.max_attempts == 0 || self.http.timeout_ms == 0 {
                return Err(ConfigError::new(
                    "sms.http.max_attempts",
                    "the gateway needs a timeout and at least one attempt",
                ));
            }
            example_secret("sms.http.signing_key", &self.http.signing_key, production)?;
            if self.http.signing_key.expose().is_empty() {
                return Err(ConfigError::new(
                    "sms.http.signing_key",
                    "the http SMS adapter signs every request: set a key",
                ));
            }
        }
        Ok(())
    }
}

impl RegisterConfig {
    pub(super) fn validate(&self, key: &str, production: bool) -> Result<(), ConfigError> {
        if production && self.adapter == Adapter::Dev {
            return Err(ConfigError::new(
                &format!("verify.{key}.adapter"),
                "production refuses the dev register (test identities): use http or off",
            ));
        }
        if self.adapter == Adapter::Http {
            check_url(&format!("verify.{key}.url"), &self.url, production)?;
            example_secret(&format!("verify.{key}.token"), &self.token, production)?;
            if self.max_attempts == 0 || self.timeout_ms == 0 {
                return Err(ConfigError::new(
                    &format!("verify.{key}.max_attempts"),
                    "the register needs a timeout and at least one attempt",
                ));
            }
            let cert = self.client_cert.as_os_str().is_empty();
            let key_missing = self.client_key.as_os_str().is_empty();
            if cert != key_missing {
                return Err(ConfigError::new(
                    &format!("verify.{key}.client_cert"),
                    "mutual TLS needs both client_cert and client_key",
                ));
            }
        }
        Ok(())
    }
}

fn example_secret(key: &str, secret: &Secret, production: bool) -> Result<(), ConfigError> {
    let value = secret.expose();
    if production && super::EXAMPLE_SECRETS.iter().any(|s| value.contains(s)) {
        return Err(ConfigError::new(
            key,
            "is still the example value; set the real credential",
        ));
    }
    Ok(())
}

fn check_url(key: &str, raw: &str, production: bool) -> Result<(), ConfigError> {
    let url = url::Url::parse(raw)
        .map_err(|e| ConfigError::new(key, format!("not an absolute URL: {e}")))?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if !production => Ok(()),
        _ => Err(ConfigError::new(
            key,
            "must be an https URL (http only in development)",
        )),
    }
}
