//! SMS gateway adapters: `dev` (an outbox file of JSON lines, read by the tests and `yihao sms
//! outbox`), `http` (a templated, signed POST to the configured gateway; docs/gateways.md) and
//! `off`.

use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{BuildError, Caller, CallerSettings, json_escape};
use crate::config::{SmsConfig, SmsHttpConfig};
use crate::protocol::outside::{OutsideError, SmsGateway, SmsMessage};
use crate::telemetry::OutsideMetrics;

const SERVICE: &str = "sms_gateway";

/// One message in the development outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// Epoch seconds when it was "sent".
    pub at: i64,
    pub phone: String,
    pub purpose: String,
    pub code: String,
    pub text: String,
}

/// Development: appends each message to a file; nothing leaves the machine. The file holds codes in
/// clear, which is why production refuses this adapter.
pub struct DevSms {
    path: PathBuf,
    lock: std::sync::Mutex<()>,
}

impl DevSms {
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            lock: std::sync::Mutex::new(()),
        }
    }

    fn append(&self, entry: &OutboxEntry) -> std::io::Result<()> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        let mut line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        // One write of the whole line: lines from several processes do not interleave.
        file.write_all(&line)
    }
}

#[async_trait]
impl SmsGateway for DevSms {
    async fn send(&self, message: &SmsMessage) -> Result<(), OutsideError> {
        let entry = OutboxEntry {
            at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            phone: message.phone.as_str().to_owned(),
            purpose: message.purpose.as_str().to_owned(),
            code: message.code.to_string(),
            text: message.text.to_string(),
        };
        self.append(&entry).map_err(|e| OutsideError::Unavailable {
            service: SERVICE,
            reason: format!("cannot write the development outbox: {e}"),
        })
    }
}

/// The development outbox's messages, oldest first (a missing file is an empty outbox; a line that
/// does not parse is skipped).
pub fn read_outbox(path: &Path) -> std::io::Result<Vec<OutboxEntry>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(text
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect())
}

/// Production: the gateway's URL, a body made from the configured template, signed with
/// HMAC-SHA256 over the timestamp and the body.
pub struct HttpSms {
    caller: Caller,
    config: SmsHttpConfig,
}

impl HttpSms {
    pub fn new(config: &SmsHttpConfig, metrics: OutsideMetrics) -> Result<Self, BuildError> {
        let none = Path::new("");
        let caller = Caller::new(
            &CallerSettings {
                service: SERVICE,
                config_key: "sms.http",
                timeout_ms: config.timeout_ms,
                max_attempts: config.max_attempts,
                client_cert: none,
                client_key: none,
                ca_cert: none,
            },
            metrics,
        )?;
        Ok(Self {
            caller,
            config: config.clone(),
        })
    }

    /// The body for `message`: the template with each placeholder replaced by its JSON-escaped value.
    pub fn body(template: &str, message: &SmsMessage) -> String {
        template
            .replace("{phone}", &json_escape(message.phone.as_str()))
            .replace("{code}", &json_escape(&message.code))
            .replace("{minutes}", &message.minutes.to_string())
            .replace("{purpose}", message.purpose.as_str())
            .replace("{text}", &json_escape(&message.text))
    }

    /// hex(HMAC-SHA256(key, timestamp + "\n" + body)).
    pub fn signature(key: &[u8], timestamp: &str, body: &[u8]) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(timestamp.as_bytes());
        mac.update(b"\n");
        mac.update(body);
        crate::crypto::hex(&mac.finalize().into_bytes())
    }
}

#[async_trait]
impl SmsGateway for HttpSms {
    async fn send(&self, message: &SmsMessage) -> Result<(), OutsideError> {
        let body = zeroize::Zeroizing::new(Self::body(&self.config.body_template, message));
        let key = self.config.signing_key.expose().as_bytes();
        let headers = || {
            let timestamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
                .to_string();
            let signature = Self::signature(key, &timestamp, body.as_bytes());
            vec![
                ("x-yihao-timestamp", timestamp),
                ("x-yihao-signature", signature),
            ]
        };
        self.caller
            .post(&self.config.url, body.as_bytes(), headers)
            .await
            .map(|_| ())
    }
}

/// No SMS here: every send fails, and the pages do not offer what needs a code.
pub struct OffSms;

#[async_trait]
impl SmsGateway for OffSms {
    async fn send(&self, _: &SmsMessage) -> Result<(), OutsideError> {
        Err(OutsideError::Off { service: SERVICE })
    }
}

/// The gateway `config` names.
pub fn gateway(
    config: &SmsConfig,
    metrics: OutsideMetrics,
) -> Result<std::sync::Arc<dyn SmsGateway>, BuildError> {
    use crate::config::Adapter;
    Ok(match config.adapter {
        Adapter::Dev => std::sync::Arc::new(DevSms::new(&config.dev_outbox)),
        Adapter::Http => std::sync::Arc::new(HttpSms::new(&config.http, metrics)?),
        Adapter::Off => std::sync::Arc::new(OffSms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::identifiers::Phone;
    use crate::protocol::outside::SmsPurpose;

    fn message() -> SmsMessage {
        SmsMessage {
            phone: Phone::parse("13812341234").unwrap(),
            purpose: SmsPurpose::Login,
            code: "012345".to_owned().into(),
            minutes: 5,
            text: "code \"012345\"\n".to_owned().into(),
        }
    }

    #[test]
    fn the_body_template_escapes_every_value() {
        let body = HttpSms::body(
            r#"{"to":"{phone}","t":"{text}","c":"{code}","m":{minutes},"p":"{purpose}"}"#,
            &message(),
        );
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["to"], "13812341234");
        assert_eq!(parsed["t"], "code \"012345\"\n");
        assert_eq!(parsed["c"], "012345");
        assert_eq!(parsed["m"], 5);
        assert_eq!(parsed["p"], "login");
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_newline_body() {
        // Computed independently: printf '1700000000\n{}' | openssl dgst -sha256 -hmac Jefe
        assert_eq!(
            HttpSms::signature(b"Jefe", "1700000000", b"{}"),
            "753dcc0e598a27727081529f1014852d3958106c16845940e12f47facfab1583"
        );
    }

    #[tokio::test]
    async fn the_dev_outbox_keeps_each_message_as_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/outbox.jsonl");
        let dev = DevSms::new(&path);
        dev.send(&message()).await.unwrap();
        dev.send(&message()).await.unwrap();
        let entries = read_outbox(&path).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].code, "012345");
        assert_eq!(entries[0].purpose, "login");
        assert!(read_outbox(&dir.path().join("none")).unwrap().is_empty());
    }
}
