//! The client credentials grant (RFC 6749 §4.4) for department systems, with resource indicators
//! (RFC 8707): a token for the client itself, never with a person's scopes.

use serde_json::{Value, json};

use super::super::claims::SCOPES;
use super::super::issuer::TokenIssuer;
use super::super::{ErrorCode, OAuthError};
use crate::crypto::random_token;
use crate::domain::client::{Client, GrantType};

/// The pure part of a client_credentials request (RFC 6749 §4.4.2): may the client use the grant,
/// which scopes (its own, never a person's; all of them when none are named), and for which
/// audience (RFC 8707 §2: each `resource` must be one the client may address; the client itself
/// when none is named).
pub fn read_client_credentials(
    client: &Client,
    params: &[(String, String)],
) -> Result<(Vec<String>, Value), OAuthError> {
    if client.is_public() || !client.grant_types().contains(&GrantType::ClientCredentials) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use client_credentials",
        ));
    }
    let get_all = |name: &str| {
        params
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
    };
    let allowed: Vec<&str> = client
        .scopes()
        .iter()
        .map(|s| s.as_str())
        // Every scope the server knows is about a person: a machine client gets only its own.
        .filter(|s| !SCOPES.contains(s))
        .collect();
    let scopes: Vec<String> = match get_all("scope").first() {
        None => allowed.iter().map(|s| (*s).to_owned()).collect(),
        Some(requested) => {
            let requested: Vec<String> = requested
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if let Some(bad) = requested.iter().find(|s| !allowed.contains(&s.as_str())) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    format!("the client may not request {bad}"),
                ));
            }
            requested
        }
    };
    // RFC 8707 §2: "resource" may be repeated; each must be one the client may address.
    let resources = get_all("resource");
    if let Some(bad) = resources
        .iter()
        .find(|r| !client.settings().resources.iter().any(|a| a == *r))
    {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            format!("the client may not ask for {bad}"),
        ));
    }
    let aud: Value = match resources.as_slice() {
        [] => Value::from(client.id().as_str()),
        [one] => Value::from(*one),
        many => Value::from(many.to_vec()),
    };
    Ok((scopes, aud))
}

/// RFC 6749 §4.4 with RFC 8707: a token for the client itself. Only confidential clients; scopes
/// within the client's allowed set (person scopes excluded); `resource` among the client's own.
pub async fn client_credentials(
    issuer: &TokenIssuer<'_>,
    client: &Client,
    params: &[(String, String)],
    now: i64,
) -> Result<Value, OAuthError> {
    let (scopes, aud) = read_client_credentials(client, params)?;
    let secs = issuer.access_secs(client) as i64;
    let claims = json!({
        "iss": issuer.issuer,
        "sub": client.id().as_str(),
        "aud": aud,
        "client_id": client.id().as_str(),
        "scope": scopes.join(" "),
        "jti": random_token(),
        "iat": now,
        "exp": now + secs,
    });
    let token = issuer.sign_access(client, &claims, now)?;
    let body = json!({ "access_token": token, "token_type": "Bearer", "expires_in": secs, "scope": scopes.join(" ") });
    let jti = claims["jti"].as_str().unwrap_or_default();
    issuer
        .audit_issue(client, None, "client_credentials", &body, jti, &[])
        .await?;
    Ok(body)
}
