//! The http adapters of the ports to the outside world, against a local server that answers like
//! the real service: correctly, slowly, with 5xx, with a refusal, and with what is not the protocol.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use common::gateway::Gateway;
use yihao::config::{Config, RegisterConfig, Secret};
use yihao::domain::account::PersonName;
use yihao::domain::document::Document;
use yihao::domain::identifiers::{CreditCode, Phone};
use yihao::outside::register::{self, HttpRegister};
use yihao::outside::sms::HttpSms;
use yihao::protocol::outside::{
    EnterpriseCheck, OutsideError, PersonCheck, Representative, SmsGateway, SmsMessage, SmsPurpose,
};
use yihao::telemetry::OutsideMetrics;

fn message() -> SmsMessage {
    SmsMessage {
        phone: Phone::parse("13812341234").unwrap(),
        purpose: SmsPurpose::Register,
        code: "654321".to_owned().into(),
        minutes: 5,
        text: "验证码 654321".to_owned().into(),
    }
}

fn sms(gateway: &Gateway, attempts: u32) -> HttpSms {
    let mut config = Config::load_with_env(None, []).unwrap().sms.http;
    config.url = gateway.url();
    config.signing_key = Secret::new("gateway-key");
    config.timeout_ms = 300;
    config.max_attempts = attempts;
    config.body_template =
        r#"{"mobile":"{phone}","template":"SMS_1","params":{"code":"{code}"},"text":"{text}"}"#
            .into();
    HttpSms::new(&config, OutsideMetrics::default()).unwrap()
}

#[tokio::test]
async fn the_sms_gateway_receives_the_templated_body_signed_with_hmac_sha256() {
    let gateway = Gateway::start().await;
    sms(&gateway, 1).send(&message()).await.unwrap();
    let received = gateway.received();
    assert_eq!(received.len(), 1);
    let r = &received[0];
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["mobile"], "13812341234");
    assert_eq!(body["params"]["code"], "654321");
    assert_eq!(body["text"], "验证码 654321");
    let timestamp = r.headers["x-yihao-timestamp"].to_str().unwrap();
    let signature = r.headers["x-yihao-signature"].to_str().unwrap();
    // Checked with OpenSSL, an implementation that is not ours.
    let mut input = timestamp.as_bytes().to_vec();
    input.push(b'\n');
    input.extend_from_slice(&r.body);
    let out = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", "gateway-key", "-r"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(&input)?;
            child.wait_with_output()
        })
        .unwrap();
    let expected = String::from_utf8(out.stdout).unwrap();
    assert_eq!(expected.split_whitespace().next().unwrap(), signature);
}

#[tokio::test]
async fn a_5xx_is_retried_within_the_limit_and_a_refusal_is_not() {
    let gateway = Gateway::start().await;
    gateway.set("flaky");
    sms(&gateway, 3).send(&message()).await.unwrap();
    assert_eq!(gateway.received().len(), 2, "503 then ok");

    let gateway = Gateway::start().await;
    gateway.set("down");
    let err = sms(&gateway, 3).send(&message()).await.unwrap_err();
    assert!(matches!(err, OutsideError::Unavailable { .. }), "{err}");
    assert_eq!(gateway.received().len(), 3, "at most max_attempts");

    let gateway = Gateway::start().await;
    gateway.set("reject");
    let err = sms(&gateway, 3).send(&message()).await.unwrap_err();
    assert!(err.to_string().contains("HTTP 400"), "{err}");
    assert_eq!(gateway.received().len(), 1, "a 4xx is final");
}

#[tokio::test]
async fn a_slow_gateway_is_abandoned_at_its_deadline() {
    let gateway = Gateway::start().await;
    gateway.set("slow");
    let started = std::time::Instant::now();
    let err = sms(&gateway, 2).send(&message()).await.unwrap_err();
    assert!(matches!(err, OutsideError::Timeout { .. }), "{err}");
    // Two attempts of 300 ms each at most (the deadline is 2 x 300 ms).
    assert!(started.elapsed() < std::time::Duration::from_millis(1500));
}

fn register_config(gateway: &Gateway) -> RegisterConfig {
    let mut config = Config::load_with_env(None, []).unwrap().verify.person;
    config.adapter = yihao::config::Adapter::Http;
    config.url = gateway.url();
    config.token = Secret::new("platform-token");
    config.timeout_ms = 300;
    config.max_attempts = 1;
    config
}

fn person() -> (Document, PersonName) {
    (
        Document::national("110101199003070011", 1_800_000_000).unwrap(),
        PersonName::parse("测试李四").unwrap(),
    )
}

#[tokio::test]
async fn the_population_register_answers_each_result_and_gets_the_token() {
    let gateway = Gateway::start().await;
    let people =
        register::person_register(&register_config(&gateway), OutsideMetrics::default()).unwrap();
    let (doc, name) = person();
    for (answer, expected) in [
        (
            r#"{"result":"match","reference":"R-1"}"#,
            PersonCheck::Match {
                reference: "R-1".into(),
            },
        ),
        (r#"{"result":"mismatch"}"#, PersonCheck::Mismatch),
        (r#"{"result":"not_found"}"#, PersonCheck::NotFound),
        (r#"{"result":"unsupported"}"#, PersonCheck::Unsupported),
    ] {
        gateway.set(answer);
        assert_eq!(people.check(&doc, &name).await.unwrap(), expected);
    }
    let r = gateway.received().pop().unwrap();
    assert_eq!(r.headers["authorization"], "Bearer platform-token");
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["document_type"], "resident_id");
    assert_eq!(body["number"], "110101199003070011");
    assert_eq!(body["name"], "测试李四");
}

#[tokio::test]
async fn the_face_service_gets_the_person_and_the_capture_token_and_answers_each_result() {
    use yihao::protocol::outside::FaceCheck;
    let gateway = Gateway::start().await;
    let faces =
        register::face_verifier(&register_config(&gateway), OutsideMetrics::default()).unwrap();
    let (doc, name) = person();
    for (answer, expected) in [
        (
            r#"{"result":"match","reference":"F-9"}"#,
            FaceCheck::Match {
                reference: "F-9".into(),
            },
        ),
        (r#"{"result":"no_match"}"#, FaceCheck::NoMatch),
        (r#"{"result":"not_found"}"#, FaceCheck::NotFound),
    ] {
        gateway.set(answer);
        assert_eq!(
            faces.verify(&doc, &name, "capture-77").await.unwrap(),
            expected
        );
    }
    let r = gateway.received().pop().unwrap();
    assert_eq!(r.headers["authorization"], "Bearer platform-token");
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["number"], "110101199003070011");
    assert_eq!(body["name"], "测试李四");
    assert_eq!(body["liveness"], "capture-77");
    gateway.set(r#"{"result":"maybe"}"#);
    assert!(matches!(
        faces.verify(&doc, &name, "capture-78").await,
        Err(OutsideError::Malformed { .. })
    ));
    gateway.set("slow");
    assert!(matches!(
        faces.verify(&doc, &name, "capture-79").await,
        Err(OutsideError::Timeout { .. })
    ));
}

#[tokio::test]
async fn a_register_that_is_malformed_slow_or_down_is_an_error_not_an_answer() {
    let gateway = Gateway::start().await;
    let people =
        register::person_register(&register_config(&gateway), OutsideMetrics::default()).unwrap();
    let (doc, name) = person();
    for (behaviour, want) in [
        ("malformed", "malformed"),
        (r#"{"result":"maybe"}"#, "malformed"),
        ("slow", "timeout"),
        ("down", "unavailable"),
    ] {
        gateway.set(behaviour);
        let err = people.check(&doc, &name).await.unwrap_err();
        let got = match err {
            OutsideError::Malformed { .. } => "malformed",
            OutsideError::Timeout { .. } => "timeout",
            OutsideError::Unavailable { .. } => "unavailable",
            OutsideError::Off { .. } => "off",
        };
        assert_eq!(got, want, "{behaviour}");
    }
}

#[tokio::test]
async fn the_enterprise_register_is_asked_with_the_legal_representative() {
    let gateway = Gateway::start().await;
    let enterprises =
        register::enterprise_register(&register_config(&gateway), OutsideMetrics::default())
            .unwrap();
    let (doc, name) = person();
    let rep = Representative {
        document: &doc,
        name: &name,
    };
    let code = CreditCode::parse("91512081MA62K0260E").unwrap();
    gateway.set(r#"{"result":"not_representative"}"#);
    assert_eq!(
        enterprises
            .check(&code, "测试云端科技有限公司", &rep)
            .await
            .unwrap(),
        EnterpriseCheck::NotRepresentative
    );
    let body: serde_json::Value =
        serde_json::from_slice(&gateway.received().pop().unwrap().body).unwrap();
    assert_eq!(body["credit_code"], "91512081MA62K0260E");
    assert_eq!(body["legal_representative"]["number"], "110101199003070011");
}

#[test]
fn an_adapter_with_a_missing_client_certificate_does_not_start() {
    let mut config = Config::load_with_env(None, []).unwrap().verify.person;
    config.url = "https://127.0.0.1:9/check".into();
    config.client_cert = PathBuf::from("/nonexistent/cert.pem");
    config.client_key = PathBuf::from("/nonexistent/key.pem");
    let err = HttpRegister::new(
        &config,
        "population_register",
        "verify.person",
        OutsideMetrics::default(),
    )
    .err()
    .unwrap();
    assert!(
        err.to_string().contains("verify.person.client_cert"),
        "{err}"
    );
}

/// A register on HTTPS that requires a client certificate from `ca` (mutual TLS), answering every
/// request with `answer`. Returns its URL.
async fn mutual_tls_register(
    ca: &rcgen::Issuer<'static, rcgen::KeyPair>,
    ca_der: rustls::pki_types::CertificateDer<'static>,
    answer: &'static str,
) -> String {
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server_cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&server_key, ca)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca_der).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![server_cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://127.0.0.1:{}/check",
        listener.local_addr().unwrap().port()
    );
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // Without a client certificate the handshake fails here.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n) = tls.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request);
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    url
}

#[tokio::test]
async fn the_register_is_reached_over_mutual_tls_and_refuses_a_caller_without_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let ca_der = ca_cert.der().clone();
    let ca = rcgen::Issuer::new(ca_params, ca_key);
    let client_key = rcgen::KeyPair::generate().unwrap();
    let client_cert = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .signed_by(&client_key, &ca)
        .unwrap();
    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let ca_pem = write("ca.pem", ca_cert.pem());
    let cert_pem = write("client.pem", client_cert.pem());
    let key_pem = write("client-key.pem", client_key.serialize_pem());
    let url = mutual_tls_register(&ca, ca_der, r#"{"result":"match","reference":"MTLS-1"}"#).await;

    let mut config = Config::load_with_env(None, []).unwrap().verify.person;
    config.adapter = yihao::config::Adapter::Http;
    config.url = url;
    config.timeout_ms = 2000;
    config.max_attempts = 1;
    config.ca_cert = ca_pem;
    let (doc, name) = person();
    // Without a client certificate: the platform refuses the handshake.
    let anonymous = register::person_register(&config, OutsideMetrics::default()).unwrap();
    let err = anonymous.check(&doc, &name).await.unwrap_err();
    assert!(matches!(err, OutsideError::Unavailable { .. }), "{err}");
    // With it: the answer.
    config.client_cert = cert_pem;
    config.client_key = key_pem;
    let with_cert = register::person_register(&config, OutsideMetrics::default()).unwrap();
    assert_eq!(
        with_cert.check(&doc, &name).await.unwrap(),
        PersonCheck::Match {
            reference: "MTLS-1".into()
        }
    );
}
