//! The endpoints a client calls with its credentials: token (RFC 6749 §3.2), introspection (RFC
//! 7662 §2) and revocation (RFC 7009 §2). Each request is one call here: authenticate the client
//! (a failure is audited with the client id as presented), count it against the client's rate
//! limit (the first refusal of a window is audited), then run the grant, the introspection or the
//! revocation.

use serde_json::{Value, json};

use super::audit::{AuditEvent, EventType};
use super::client_auth::{AssertionContext, Presented, authenticate_client};
use super::grants::{self, GrantPorts};
use super::issuer::TokenIssuer;
use super::limits::{self, Verdict};
use super::token_lookup::token_param;
use super::{ErrorCode, OAuthError};
use crate::domain::client::Client;
use crate::store::ClientLookup;

/// Everything the three endpoints read and write, for one request.
pub struct TokenEndpoint<'a> {
    /// Signs and audits (with the request's context).
    pub issuer: TokenIssuer<'a>,
    pub clients: &'a dyn ClientLookup,
    pub assertions: AssertionContext<'a>,
    pub ports: GrantPorts<'a>,
    /// The per-client limit (`limits.token_per_client_per_sec`).
    pub limit: limits::Rule,
    /// Failed client authentications per source address (`limits.client_auth_failures_per_ip_per_min`).
    pub failure_limit: limits::Rule,
}

impl TokenEndpoint<'_> {
    /// `POST /token`: the token response of the grant named by `grant_type`.
    pub async fn token(
        &self,
        params: &[(String, String)],
        authorization: Option<&[u8]>,
        now: i64,
    ) -> Result<Value, OAuthError> {
        let client = self.client(params, authorization, now).await?;
        grants::grant(&self.issuer, &self.ports, &client, params, now).await
    }

    /// `POST /device_authorization` (RFC 8628 §3.1: "the client authentication requirements of
    /// Section 3.2.1 of \[RFC6749\] apply"): a device code and a user code.
    pub async fn device_authorization(
        &self,
        params: &[(String, String)],
        authorization: Option<&[u8]>,
        now: i64,
    ) -> Result<Value, OAuthError> {
        let client = self.client(params, authorization, now).await?;
        super::device::start(
            self.ports.ephemeral,
            self.ports.device,
            self.issuer.issuer,
            &client,
            params,
            now,
        )
        .await
    }

    /// `POST /introspect`.
    pub async fn introspect(
        &self,
        params: &[(String, String)],
        authorization: Option<&[u8]>,
        now: i64,
    ) -> Result<Value, OAuthError> {
        let (client, token) = self.client_and_token(params, authorization, now).await?;
        let ports = &self.ports;
        let roles = super::roles::RoleCheck {
            orgs: ports.identities.orgs.as_ref(),
        };
        super::introspect::introspect(
            &self.issuer,
            ports.refresh,
            ports.revocations,
            self.clients,
            ports.identities.accounts.as_ref(),
            &roles,
            &client,
            token,
            now,
        )
        .await
    }

    /// `POST /revoke`: always `{}` once the client is authenticated (RFC 7009 §2.2).
    pub async fn revoke(
        &self,
        params: &[(String, String)],
        authorization: Option<&[u8]>,
        now: i64,
    ) -> Result<Value, OAuthError> {
        let (client, token) = self.client_and_token(params, authorization, now).await?;
        let ports = &self.ports;
        super::revoke::revoke(
            &self.issuer,
            ports.refresh,
            ports.revocations,
            &client,
            token,
            now,
        )
        .await?;
        Ok(json!({}))
    }

    /// The authenticated client and the `token` its request names.
    async fn client_and_token<'p>(
        &self,
        params: &'p [(String, String)],
        authorization: Option<&[u8]>,
        now: i64,
    ) -> Result<(Client, &'p str), OAuthError> {
        let client = self.client(params, authorization, now).await?;
        Ok((client, token_param(params)?))
    }

    /// Counts a failed client authentication against its source and audits the first of each
    /// window (with the client id as presented, not trusted: it failed). Without a source address
    /// every failure is audited.
    async fn failed(
        &self,
        presented: &Presented,
        error: &OAuthError,
        source: Option<&str>,
        now: i64,
    ) -> Result<(), OAuthError> {
        let count = match source {
            Some(source) => {
                limits::hit_counted(self.ports.ephemeral, self.failure_limit, source, now)
                    .await
                    .map_err(OAuthError::server)?
                    .0
            }
            None => 1,
        };
        let audit = &self.issuer.audit;
        if count <= 1 {
            let claimed = presented
                .basic
                .as_ref()
                .map(|(id, _)| id.clone())
                .or(presented.form_client_id.clone());
            let mut event = AuditEvent::failure(EventType::ClientAuthFailure, "invalid_client")
                .details(json!({ "error": error.description }));
            event.target = claimed.map(|c| c.chars().take(128).collect());
            // Under the client named too when it is registered, so its statistics and its
            // self-check show the refusal (a made-up id fills no one's list).
            let registered = match event
                .target
                .as_deref()
                .and_then(|c| crate::domain::client::ClientId::parse(c).ok())
            {
                Some(id) => self.clients.client(&id).await.ok().flatten().is_some(),
                None => false,
            };
            if registered {
                event.client_id = event.target.clone();
            }
            audit.record(event).await?;
        }
        Ok(())
    }

    /// The authenticated client, within its rate limit.
    async fn client(
        &self,
        params: &[(String, String)],
        authorization: Option<&[u8]>,
        now: i64,
    ) -> Result<Client, OAuthError> {
        // A source that failed too often this window is refused before any work (security review 7).
        let source = self.issuer.audit.context.source();
        if let Some(source) = &source
            && let Verdict::Limited(_) =
                limits::peek(self.ports.ephemeral, self.failure_limit, source, now)
                    .await
                    .map_err(OAuthError::server)?
        {
            // Counted too, so the first refusal of the window is the one audited.
            let (_, verdict) =
                limits::hit_counted(self.ports.ephemeral, self.failure_limit, source, now)
                    .await
                    .map_err(OAuthError::server)?;
            if let Verdict::Limited(limited) = verdict {
                if limited.first {
                    self.issuer
                        .audit
                        .record(
                            AuditEvent::failure(EventType::RateLimited, limited.rule)
                                .details(json!({ "retry_after": limited.retry_after })),
                        )
                        .await?;
                }
                return Err(OAuthError::rate_limited(limited));
            }
        }
        let presented = Presented::read(params, authorization)?;
        let outcome = authenticate_client(self.clients, &presented, &self.assertions, now).await;
        if let Err(e) = &outcome
            && e.code == ErrorCode::InvalidClient
        {
            self.failed(&presented, e, source.as_deref(), now).await?;
        }
        let client = outcome?;
        // A public client proves nothing but its id, which anyone may know: its budget is kept per
        // source address too, so nobody can spend another's (security review 12).
        let subject = match (client.is_public(), &source) {
            (true, Some(source)) => format!("{}@{source}", client.id()),
            _ => client.id().as_str().to_owned(),
        };
        let verdict = limits::hit(self.ports.ephemeral, self.limit, &subject, now)
            .await
            .map_err(OAuthError::server)?;
        if let Verdict::Limited(limited) = verdict {
            if limited.first {
                self.issuer
                    .audit
                    .record(
                        AuditEvent::failure(EventType::RateLimited, limited.rule)
                            .actor(client.id().as_str())
                            .client(client.id().as_str())
                            .details(json!({ "retry_after": limited.retry_after })),
                    )
                    .await?;
            }
            return Err(OAuthError::rate_limited(limited));
        }
        Ok(client)
    }
}
