//! A registered client's self-check (docs/integration/README.md, "Debugging a rejected request"): what
//! yihao sees of the client's endpoints from where it runs, and the last refusals it gave the client
//! with their reasons, so a department can debug without calling the operator. Served by the admin
//! API (`GET /admin/api/v1/clients/{id}/check`) and the console's client page.
//!
//! The probes go out through the same HTTP client as back-channel logouts and `jwks_uri` fetches, so
//! in production a private address not listed in `server.outbound_private_networks` shows as refused,
//! exactly as a logout to it would be.

use std::time::Duration;

use futures_util::future::join_all;
use serde::Serialize;
use utoipa::ToSchema;

use super::App;
use crate::protocol::admin::{Actor, AdminError};
use crate::protocol::audit::RequestContext;

/// One probe's outcome.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Check {
    /// `redirect_uri`, `post_logout_redirect_uri`, `frontchannel_logout_uri`,
    /// `backchannel_logout_uri`, `jwks_uri`, `jwks` or `cas_service`.
    pub what: String,
    pub url: String,
    pub ok: bool,
    /// What yihao saw (an HTTP status, a TLS or connection error, the keys found).
    pub detail: String,
}

/// A refusal yihao gave the client, from the audit log.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecentError {
    /// RFC 3339, China Standard Time.
    pub at: String,
    pub event: String,
    pub reason: Option<String>,
    /// The record's details (what was refused; never a person's data).
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

/// The self-check of one client.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SelfCheck {
    pub client_id: String,
    /// Registered at the registration endpoint and not yet approved: signs nobody in.
    pub pending: bool,
    pub checks: Vec<Check>,
    /// The last refusals (newest first, at most 20).
    pub recent_errors: Vec<RecentError>,
}

/// How long one probe may take.
const PROBE: Duration = Duration::from_secs(5);
/// The most addresses one check probes.
const MAX_PROBES: usize = 20;
/// The most of a `jwks_uri` answer read (as the JWKS fetcher, `client_keys`).
const MAX_JWKS_BYTES: usize = 256 * 1024;

enum Probe {
    /// Any HTTP answer means reachable (a callback without its parameters may well answer 400).
    Get,
    /// An empty logout token POSTed: a relying party answers, refusing it.
    PostEmptyLogout,
    /// A JWK Set with at least one key.
    Jwks,
}

impl App {
    /// The self-check of client `id`, for `actor` (who must be allowed to read it; a department
    /// administrator, its own department's clients only). The read is audited.
    pub async fn check_client(
        &self,
        actor: &Actor,
        context: &RequestContext,
        id: &str,
    ) -> Result<SelfCheck, AdminError> {
        let view = self.administration(actor, context).show_client(id).await?;
        let mut planned: Vec<(&str, String, Probe)> = Vec::new();
        for uri in &view.redirect_uris {
            planned.push(("redirect_uri", uri.clone(), Probe::Get));
        }
        for uri in &view.post_logout_redirect_uris {
            planned.push(("post_logout_redirect_uri", uri.clone(), Probe::Get));
        }
        if let Some(uri) = &view.frontchannel_logout_uri {
            planned.push(("frontchannel_logout_uri", uri.clone(), Probe::Get));
        }
        if let Some(uri) = &view.backchannel_logout_uri {
            planned.push((
                "backchannel_logout_uri",
                uri.clone(),
                Probe::PostEmptyLogout,
            ));
        }
        if let Some(uri) = &view.jwks_uri {
            planned.push(("jwks_uri", uri.clone(), Probe::Jwks));
        }
        for service in view.cas_services.iter().filter(|s| !s.ends_with('*')) {
            planned.push(("cas_service", service.clone(), Probe::Get));
        }
        // A bounded check: at most this many addresses, the rest named as not probed.
        let skipped = planned.len().saturating_sub(MAX_PROBES);
        planned.truncate(MAX_PROBES);
        let http = self.client_keys.client();
        let mut checks: Vec<Check> = join_all(
            planned
                .into_iter()
                .map(|(what, url, probe)| self.probe(&http, what, url, probe)),
        )
        .await;
        if skipped > 0 {
            checks.push(Check {
                what: "limit".into(),
                url: String::new(),
                ok: false,
                detail: format!(
                    "{skipped} more address(es) not probed: at most {MAX_PROBES} per check"
                ),
            });
        }
        if let Some(jwks) = &view.jwks {
            let keys = serde_json::from_value::<jsonwebtoken::jwk::JwkSet>(jwks.clone());
            checks.push(Check {
                what: "jwks".into(),
                url: String::new(),
                ok: keys.as_ref().is_ok_and(|k| !k.keys.is_empty()),
                detail: match keys {
                    Ok(k) => format!("{} key(s)", k.keys.len()),
                    Err(e) => format!("not a JWK Set: {e}"),
                },
            });
        }
        let filter = crate::store::AuditFilter {
            since_ms: 0,
            until_ms: i64::MAX,
            client_id: Some(view.client_id.clone()),
            result: Some("failure".into()),
            ..Default::default()
        };
        let records = self
            .store
            .search_audit(&filter, i64::MAX, 20)
            .await
            .map_err(AdminError::from)?;
        let recent_errors = records
            .into_iter()
            .map(|r| RecentError {
                at: crate::domain::date::rfc3339(r.at_ms / 1000),
                event: r.event,
                reason: r.reason,
                details: r.details.and_then(|d| serde_json::from_str(&d).ok()),
            })
            .collect();
        Ok(SelfCheck {
            client_id: view.client_id,
            pending: view.pending,
            checks,
            recent_errors,
        })
    }

    async fn probe(&self, http: &reqwest::Client, what: &str, url: String, probe: Probe) -> Check {
        let check = |ok: bool, detail: String| Check {
            what: what.to_owned(),
            url: url.clone(),
            ok,
            detail,
        };
        let parsed = match url::Url::parse(&url) {
            Ok(u) => u,
            Err(e) => return check(false, format!("not a URL: {e}")),
        };
        match parsed.scheme() {
            "https" => {}
            "http" => {
                return check(
                    false,
                    "plain http, not TLS: accepted on a loopback host for development only".into(),
                );
            }
            other => {
                return check(
                    true,
                    format!(
                        "a native app's own scheme ({other}:): opened on the device, not checked from the server"
                    ),
                );
            }
        }
        if let Err(e) = self.client_keys.destinations.check_url(&url) {
            return check(false, e.to_string());
        }
        let request = match probe {
            Probe::Get | Probe::Jwks => http.get(url.as_str()),
            Probe::PostEmptyLogout => http.post(url.as_str()).form(&[("logout_token", "")]),
        };
        let answer = match request.timeout(PROBE).send().await {
            Ok(a) => a,
            Err(e) => {
                return check(
                    false,
                    format!(
                        "no answer over TLS: {}",
                        crate::telemetry::ErrorChain(&e.without_url())
                    ),
                );
            }
        };
        let status = answer.status();
        match probe {
            Probe::Get => check(true, format!("answered {status} over TLS")),
            Probe::PostEmptyLogout => check(
                true,
                format!(
                    "answered {status} over TLS to an empty logout token (a refusal is expected)"
                ),
            ),
            Probe::Jwks => {
                if !status.is_success() {
                    return check(false, format!("answered {status}"));
                }
                let mut answer = answer;
                let mut body = Vec::new();
                loop {
                    match answer.chunk().await {
                        Ok(Some(chunk)) if body.len() + chunk.len() <= MAX_JWKS_BYTES => {
                            body.extend_from_slice(&chunk);
                        }
                        Ok(Some(_)) => {
                            return check(false, format!("more than {MAX_JWKS_BYTES} bytes"));
                        }
                        Ok(None) => break,
                        Err(e) => {
                            return check(
                                false,
                                format!(
                                    "the answer broke off: {}",
                                    crate::telemetry::ErrorChain(&e.without_url())
                                ),
                            );
                        }
                    }
                }
                match serde_json::from_slice::<jsonwebtoken::jwk::JwkSet>(&body) {
                    Ok(set) if !set.keys.is_empty() => {
                        check(true, format!("{} key(s) over TLS", set.keys.len()))
                    }
                    Ok(_) => check(false, "a JWK Set without keys".into()),
                    Err(e) => check(false, format!("not a JWK Set: {e}")),
                }
            }
        }
    }
}
