//! Which claims about a person go to which client (OIDC Core §5.4, docs/privacy.md).
//!
//! - `profile`: `name`, `gender` (from the resident ID number's 17th digit).
//! - `phone`: `phone_number` masked (`138****1234`) unless the client was allowed the full number,
//!   `phone_number_verified: false`.
//! - `email`: `email`, `email_verified: false`.
//! - `idcard` (restricted: only clients an administrator registered with it can ask): `id_number`,
//!   `id_type` — the ID number is sensitive personal information and goes nowhere else.
//! - `org`: the organisation the person chose to act for at login, if any (carried in the tokens).
//!
//! Nothing here reads the clock or a store.

use serde_json::{Map, Value};

use crate::domain::account::Account;
use crate::domain::document::DocumentKind;
use crate::domain::identifiers::ResidentId;

/// Scopes the server knows, in discovery order.
pub const SCOPES: [&str; 7] = [
    "openid",
    "profile",
    "phone",
    "email",
    "idcard",
    "org",
    "offline_access",
];

/// Claims the server can release, in discovery order (with the ID token's own).
pub const CLAIMS: [&str; 21] = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "sid",
    "at_hash",
    "name",
    "gender",
    "phone_number",
    "phone_number_verified",
    "email",
    "email_verified",
    "id_number",
    "id_type",
    "org",
];

/// The organisation a person acts for (docs/organisations.md): `sub` stays the person; the token carries
/// `org: {credit_code, name, role, delegation: {scope, exp, granted_by}}`. The credit code is not
/// personal data; `granted_by` is the grantor's pairwise `sub` in the same sector, never an internal id.
pub fn org_claim(
    org: &crate::domain::organisation::Organisation,
    m: &crate::domain::organisation::Membership,
    granted_by_sub: Option<String>,
) -> Value {
    serde_json::json!({
        "credit_code": org.credit_code.as_str(),
        "name": org.name,
        "role": m.role.as_str(),
        "delegation": {
            "scope": m.scope.to_list(),
            "exp": m.expires_at,
            "granted_by": granted_by_sub,
        },
    })
}

/// The person's claims the granted `scopes` cover; `full_phone` when the client was allowed the
/// full mobile number.
pub fn user_claims(account: &Account, scopes: &[String], full_phone: bool) -> Map<String, Value> {
    let has = |s: &str| scopes.iter().any(|g| g == s);
    let mut out = Map::new();
    let primary = account.documents.first();
    if has("profile") {
        out.insert("name".into(), Value::from(account.name.as_str()));
        let gender = primary
            .filter(|d| d.kind() == DocumentKind::ResidentId)
            .and_then(|d| ResidentId::parse(d.number(), 253_402_300_799).ok())
            .map(|id| if id.is_male() { "male" } else { "female" });
        if let Some(g) = gender {
            out.insert("gender".into(), Value::from(g));
        }
    }
    if let (true, Some(phone)) = (has("phone"), &account.phone) {
        let shown = if full_phone {
            phone.as_str().to_owned()
        } else {
            phone.masked()
        };
        out.insert("phone_number".into(), Value::from(shown));
        out.insert("phone_number_verified".into(), Value::from(false));
    }
    if let (true, Some(email)) = (has("email"), &account.email) {
        out.insert("email".into(), Value::from(email.as_str()));
        out.insert("email_verified".into(), Value::from(false));
    }
    if let (true, Some(d)) = (has("idcard"), primary) {
        out.insert("id_number".into(), Value::from(d.number()));
        out.insert("id_type".into(), Value::from(d.kind().as_str()));
    }
    out
}

/// Plain-language descriptions for the consent page.
/// `full_phone`: the client is allowed the whole mobile number, and the page says so (security
/// review 19).
pub fn describe(scope: &str, chinese: bool, full_phone: bool) -> Option<&'static str> {
    Some(match (scope, chinese) {
        ("phone", true) if full_phone => "您的完整手机号码",
        ("phone", false) if full_phone => "Your full mobile number",
        ("openid", true) => "确认您的身份（不含个人信息的匿名标识）",
        ("openid", false) => "Confirm who you are (an anonymous identifier, no personal data)",
        ("profile", true) => "您的姓名和性别",
        ("profile", false) => "Your name and gender",
        ("phone", true) => "您的手机号码（部分隐藏）",
        ("phone", false) => "Your mobile number (partly hidden)",
        ("email", true) => "您的电子邮箱",
        ("email", false) => "Your e-mail address",
        ("idcard", true) => "您的身份证件号码（敏感个人信息）",
        ("idcard", false) => "Your identity document number (sensitive personal information)",
        ("org", true) => "您代表办事的单位，以及您在其中的身份和授权",
        ("org", false) => "The organisation you act for, your role in it and your mandate",
        ("offline_access", true) => "在您离开后继续保持访问（可随时撤销）",
        ("offline_access", false) => "Keep access while you are away (you can withdraw it)",
        _ => return None,
    })
}
