//! Login storm isolation: token-endpoint latency at a steady, modest rate, first on an idle server,
//! then while browsers sign in with passwords as fast as the server lets them (every login is an
//! argon2id verification on the bounded hashing pool). If hashing blocked the runtime's workers,
//! the token requests would wait behind it.

use std::sync::Arc;
use std::time::Duration;

use crate::http::basic;
use crate::target::Target;
use crate::{Kind, Measured, measure};

/// Token workers and the period each keeps: 4 × 100/s.
const TOKEN_WORKERS: usize = 4;
const PERIOD: Duration = Duration::from_millis(10);
/// Browsers signing in at once: enough to keep every hashing worker busy with a queue behind it.
const LOGIN_WORKERS: usize = 8;

pub async fn run(target: &Arc<Target>, duration: Duration) -> Vec<(String, Measured)> {
    let (_, id, secret) = &target.machine[0];
    let token = Kind::Post {
        path: target.paths.token.clone(),
        auth: basic(id, secret),
        body: "grant_type=client_credentials&scope=records.read".into(),
    };
    let idle = measure(target, token.clone(), TOKEN_WORKERS, duration, Some(PERIOD)).await;
    let storm = {
        let target = target.clone();
        let people = std::sync::Arc::new(std::sync::Mutex::new(target.sms_people.clone()));
        tokio::spawn(async move {
            measure(
                &target,
                Kind::Login { people },
                LOGIN_WORKERS,
                duration,
                None,
            )
            .await
        })
    };
    let mut during = measure(target, token, TOKEN_WORKERS, duration, Some(PERIOD)).await;
    let logins = storm.await.unwrap_or_default();
    // The two overlapped: the server's CPU is the storm's, not the token requests'.
    during.server_cpu = Duration::ZERO;
    report(target, &idle, &during, &logins);
    vec![
        ("token, idle (400/s paced)".into(), idle),
        ("token, login storm (400/s paced)".into(), during),
        ("login storm (8 browsers)".into(), logins),
    ]
}

fn report(target: &Target, idle: &Measured, during: &Measured, logins: &Measured) {
    eprintln!(
        "{}: token p99 idle {:.2} ms, during the storm {:.2} ms ({:.2}×); {:.1} logins/s during the storm",
        target.name,
        idle.percentile(0.99),
        during.percentile(0.99),
        during.percentile(0.99) / idle.percentile(0.99),
        logins.per_sec()
    );
}
