//! Liveness, readiness and metrics.
//! - `GET /healthz`: the process serves HTTP. Touches nothing else, so an orchestrator restarts only
//!   a process that is really stuck.
//! - `GET /readyz`: the database and the cache both answer within a second: 200, or 503 with a JSON
//!   body naming what is down, so a load balancer stops sending traffic to this node.
//! - `GET /metrics`: Prometheus / OpenMetrics text.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use crate::store::StoreResult;

const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn readyz(State(app): State<AppState>) -> Response {
    let (database, cache) = tokio::join!(probe(app.store.ping()), probe(app.ephemeral.ping()));
    let mut down = Vec::new();
    let mut checks = serde_json::Map::new();
    for (name, backend, result) in [
        ("database", app.store.backend(), database),
        ("cache", app.ephemeral.backend(), cache),
    ] {
        let detail = match result {
            Ok(()) => json!({ "status": "up", "backend": backend }),
            Err(problem) => {
                // The backend's own error text stays in the log: it can name hosts, users and
                // versions, and /readyz answers anyone (security review 20).
                let problem = crate::telemetry::ErrorChain(&problem);
                tracing::warn!(component = name, backend, problem = %problem, "not ready");
                down.push(name);
                json!({ "status": "down", "backend": backend })
            }
        };
        checks.insert(name.to_owned(), detail);
    }
    let (status, word) = if down.is_empty() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    let body = json!({ "status": word, "down": down, "checks": checks });
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Why a backend is not ready.
#[derive(Debug, thiserror::Error)]
enum ProbeError {
    #[error(transparent)]
    Failed(crate::store::StoreError),
    #[error("no answer within {} ms", PROBE_TIMEOUT.as_millis())]
    Timeout,
}

async fn probe(check: impl Future<Output = StoreResult<()>>) -> Result<(), ProbeError> {
    match tokio::time::timeout(PROBE_TIMEOUT, check).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ProbeError::Failed(e)),
        Err(_) => Err(ProbeError::Timeout),
    }
}

/// `GET /metrics`, behind `server.metrics_token` when it is set (security review 20).
pub async fn metrics(State(app): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    let token = app.config.server.metrics_token.expose();
    if !token.is_empty() {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let matches: bool =
            subtle::ConstantTimeEq::ct_eq(presented.as_bytes(), token.as_bytes()).into();
        if !matches {
            return super::error::metrics_unauthorized();
        }
    }
    let mut response = app.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}
