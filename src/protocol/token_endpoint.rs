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
            ports.ephemeral,
            self.clients,
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
            ports.ephemeral,
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

    /// The authenticated client, within its rate limit.
    async fn client(
        &self,
        params: &[(String, String)],
        authorization: Option<&[u8]>,
        now: i64,
    ) -> Result<Client, OAuthError> {
        let presented = Presented::read(params, authorization)?;
        let outcome = authenticate_client(self.clients, &presented, &self.assertions, now).await;
        if let Err(e) = &outcome
            && e.code == ErrorCode::InvalidClient
        {
            // The claimed client id, as presented (not trusted: it failed).
            let claimed = presented
                .basic
                .as_ref()
                .map(|(id, _)| id.clone())
                .or(presented.form_client_id.clone());
            let mut event = AuditEvent::failure(EventType::ClientAuthFailure, "invalid_client")
                .details(json!({ "error": e.description }));
            event.target = claimed.map(|c| c.chars().take(128).collect());
            self.issuer.audit.record(event).await?;
        }
        let client = outcome?;
        let verdict = limits::hit(self.ports.ephemeral, self.limit, client.id().as_str(), now)
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
