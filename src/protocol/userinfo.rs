//! The UserInfo endpoint's answer (OIDC Core §5.3): the claims of the token's scopes about the
//! person behind a validated access token, and the audit record of their release.

use serde_json::{Value, json};

use super::accounts::Identities;
use super::audit::{Audit, AuditEvent, EventType};
use super::bearer::AccessToken;
use super::claims::user_claims;
use super::roles::RoleCheck;
use super::{ErrorCode, OAuthError};
use crate::crypto::subject::{SubjectCodec, sector_of};
use crate::domain::account::{AccountId, AccountStatus};

/// The claims about the person `token` was issued for: `sub`, what its scopes release (the full
/// mobile number only to a client allowed it), and `org` for `org` tokens. A person's claims that
/// go out are audited as an attribute release (docs/privacy.md).
pub async fn userinfo(
    token: &AccessToken,
    subjects: &SubjectCodec,
    identities: &Identities,
    audit: &Audit<'_>,
    now: i64,
) -> Result<Value, OAuthError> {
    let invalid = |d: &str| OAuthError::new(ErrorCode::InvalidToken, d);
    let client = &token.client;
    let account_id = subjects
        .decode(&sector_of(client), &token.sub)
        .ok_or_else(|| invalid("unknown subject"))?;
    let account_id = AccountId::parse(&account_id).map_err(OAuthError::server)?;
    let account = identities
        .account(&account_id)
        .await
        .map_err(OAuthError::server)?
        .ok_or_else(|| invalid("unknown subject"))?;
    if account.status != AccountStatus::Active {
        return Err(invalid("the account is not active"));
    }
    // A token acting for an organisation vouches for the role only while it is held (security
    // review 1).
    if let Some(org) = token.claims.get("org").filter(|o| o.is_object()) {
        let roles = RoleCheck {
            orgs: identities.orgs.as_ref(),
        };
        if !roles
            .holds(account.id.as_str(), org, now)
            .await
            .map_err(OAuthError::server)?
        {
            return Err(invalid("the organisation role of this token has ended"));
        }
    }
    let scopes = &token.scopes;
    let mut body = json!({ "sub": token.sub });
    if let Value::Object(map) = &mut body {
        map.extend(user_claims(&account, scopes, client.settings().full_phone));
    }
    if scopes.iter().any(|s| s == "org") && token.claims.get("org").is_some_and(Value::is_object) {
        body["org"] = token.claims["org"].clone();
    }
    let released: Vec<&String> = body
        .as_object()
        .map(|m| m.keys().filter(|k| *k != "sub").collect())
        .unwrap_or_default();
    if !released.is_empty() {
        audit
            .record(
                AuditEvent::success(EventType::AttributeRelease)
                    .actor(account.id.as_str())
                    .client(client.id().as_str())
                    .details(json!({ "via": "userinfo", "claims": released })),
            )
            .await?;
    }
    Ok(body)
}
