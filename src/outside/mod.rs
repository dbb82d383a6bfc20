//! Adapters for the services outside yihao (the ports are in `protocol::outside`; the wire formats
//! in docs/gateways.md): `sms` (dev outbox, http gateway) and `register` (dev file of test
//! identities, http population and market-regulation registers). [`Caller`] is what the http
//! adapters share: one client with the configured TLS, attempts with a timeout each and an overall
//! deadline, and a metric per call. Nothing here logs personal data.

use std::time::{Duration, Instant};

use crate::protocol::outside::OutsideError;
use crate::telemetry::OutsideMetrics;

pub mod register;
pub mod sms;

/// Why an adapter could not be built from its configuration (a file that does not load).
#[derive(Debug, thiserror::Error)]
#[error("{key}: {why}")]
pub struct BuildError {
    pub key: String,
    pub why: String,
}

/// Transport settings of one http adapter.
pub struct CallerSettings<'a> {
    pub service: &'static str,
    pub config_key: &'static str,
    pub timeout_ms: u64,
    pub max_attempts: u32,
    pub client_cert: &'a std::path::Path,
    pub client_key: &'a std::path::Path,
    pub ca_cert: &'a std::path::Path,
}

/// An HTTP answer worth reading: a 2xx status and its body (at most [`Caller::MAX_BODY`] bytes).
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// POSTs JSON to one outside service with bounded attempts.
pub struct Caller {
    http: reqwest::Client,
    service: &'static str,
    timeout: Duration,
    max_attempts: u32,
    metrics: OutsideMetrics,
}

/// One attempt's failure, and whether another attempt may help.
enum Failure {
    Retry(OutsideError),
    Final(OutsideError),
}

impl Caller {
    /// Longest answer read.
    pub const MAX_BODY: usize = 64 * 1024;

    pub fn new(settings: &CallerSettings<'_>, metrics: OutsideMetrics) -> Result<Self, BuildError> {
        let fail = |what: &str, why: String| BuildError {
            key: format!("{}.{what}", settings.config_key),
            why,
        };
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_millis(settings.timeout_ms))
            .user_agent(concat!("yihao/", env!("CARGO_PKG_VERSION")));
        if !settings.client_cert.as_os_str().is_empty() {
            let mut pem = std::fs::read(settings.client_cert)
                .map_err(|e| fail("client_cert", e.to_string()))?;
            pem.push(b'\n');
            pem.extend(
                std::fs::read(settings.client_key)
                    .map_err(|e| fail("client_key", e.to_string()))?,
            );
            let identity = reqwest::Identity::from_pem(&pem)
                .map_err(|e| fail("client_cert", e.to_string()))?;
            builder = builder.identity(identity);
        }
        if !settings.ca_cert.as_os_str().is_empty() {
            let pem =
                std::fs::read(settings.ca_cert).map_err(|e| fail("ca_cert", e.to_string()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| fail("ca_cert", e.to_string()))?;
            builder = builder.tls_built_in_root_certs(false);
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| fail("url", format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            service: settings.service,
            timeout: Duration::from_millis(settings.timeout_ms),
            max_attempts: settings.max_attempts.max(1),
            metrics,
        })
    }

    /// POSTs `body` (JSON) to `url` with `headers`; made again for each attempt by `headers`, so a
    /// signature can carry the attempt's time. Retries after no answer, a 5xx or a 429, at most
    /// `max_attempts` times and within `max_attempts x timeout` overall; a 2xx is the answer, any
    /// other status is final.
    pub async fn post(
        &self,
        url: &str,
        body: &[u8],
        headers: impl Fn() -> Vec<(&'static str, String)>,
    ) -> Result<Answer, OutsideError> {
        let started = Instant::now();
        let deadline = started + self.timeout * self.max_attempts;
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            let outcome = self
                .attempt(url, body, &headers(), left.min(self.timeout))
                .await;
            match outcome {
                Ok(answer) => break Ok(answer),
                Err(Failure::Final(e)) => break Err(e),
                Err(Failure::Retry(e)) => {
                    // A short pause, doubling: 100 ms, 200 ms, ... while the deadline allows.
                    let pause = Duration::from_millis(100 << (attempt - 1).min(5));
                    if attempt >= self.max_attempts || Instant::now() + pause >= deadline {
                        break Err(e);
                    }
                    tokio::time::sleep(pause).await;
                }
            }
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(OutsideError::Timeout { .. }) => "timeout",
            Err(OutsideError::Malformed { .. }) => "malformed",
            Err(_) => "unavailable",
        };
        self.metrics
            .observe(self.service, outcome, started.elapsed());
        if let Err(e) = &result {
            // The error names the service and the status, never the request's content.
            tracing::warn!(service = self.service, attempts = attempt, error = %e, "outside call failed");
        }
        result
    }

    async fn attempt(
        &self,
        url: &str,
        body: &[u8],
        headers: &[(&'static str, String)],
        limit: Duration,
    ) -> Result<Answer, Failure> {
        let service = self.service;
        let ms = u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX);
        let mut request = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let exchange = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let mut body = Vec::new();
            let mut response = response;
            while let Some(chunk) = response.chunk().await? {
                if body.len() + chunk.len() > Self::MAX_BODY {
                    return Ok((status, None));
                }
                body.extend_from_slice(&chunk);
            }
            Ok::<_, reqwest::Error>((status, Some(body)))
        };
        let (status, body) = match tokio::time::timeout(limit, exchange).await {
            Err(_) => return Err(Failure::Retry(OutsideError::Timeout { service, ms })),
            Ok(Err(e)) if e.is_timeout() => {
                return Err(Failure::Retry(OutsideError::Timeout { service, ms }));
            }
            Ok(Err(e)) => {
                return Err(Failure::Retry(OutsideError::Unavailable {
                    service,
                    reason: crate::telemetry::ErrorChain(&e).to_string(),
                }));
            }
            Ok(Ok(answer)) => answer,
        };
        let unavailable = |reason: String| OutsideError::Unavailable { service, reason };
        match status {
            200..=299 => match body {
                Some(body) => Ok(Answer { status, body }),
                None => Err(Failure::Final(OutsideError::Malformed {
                    service,
                    reason: format!("an answer longer than {} bytes", Self::MAX_BODY),
                })),
            },
            429 | 500..=599 => Err(Failure::Retry(unavailable(format!("HTTP {status}")))),
            _ => Err(Failure::Final(unavailable(format!("HTTP {status}")))),
        }
    }
}

/// `value` escaped for the inside of a JSON string.
pub fn json_escape(value: &str) -> String {
    let quoted = serde_json::Value::String(value.to_owned()).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

/// Parses a JSON answer into `T`, or says why it is not the protocol.
pub fn parse_answer<T: serde::de::DeserializeOwned>(
    service: &'static str,
    answer: &Answer,
) -> Result<T, OutsideError> {
    serde_json::from_slice(&answer.body).map_err(|e| OutsideError::Malformed {
        service,
        reason: format!("HTTP {}: {e}", answer.status),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escape_escapes_quotes_backslashes_and_controls() {
        assert_eq!(json_escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(json_escape("x\ny"), "x\\ny");
        assert_eq!(json_escape("验证码"), "验证码");
    }
}
