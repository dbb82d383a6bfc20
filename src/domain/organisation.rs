//! Organisations and the people who act for them (docs/organisations.md). An organisation is keyed by its
//! unified social credit code. Person accounts hold roles in it: legal representative, administrator
//! (authorised by the legal representative) and agent (经办人: for all business or listed service
//! items, always with an expiry).

use std::fmt;

use super::account::AccountId;
use super::identifiers::{CreditCode, IdentifierError, OrgCategory};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrgId(String);

impl OrgId {
    pub fn parse(raw: &str) -> Result<Self, IdentifierError> {
        AccountId::parse(raw)
            .map(|a| Self(a.as_str().to_owned()))
            .map_err(|_| IdentifierError(format!("{raw:?} is not an organisation id")))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgStatus {
    Active,
    Suspended,
}

impl OrgStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }
    pub fn parse(raw: &str) -> Result<Self, IdentifierError> {
        match raw {
            "active" => Ok(Self::Active),
            "suspended" => Ok(Self::Suspended),
            _ => Err(IdentifierError(format!(
                "{raw:?} is not an organisation status"
            ))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation {
    pub id: OrgId,
    pub credit_code: CreditCode,
    pub name: String,
    pub status: OrgStatus,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Organisation {
    pub fn new(
        id: OrgId,
        credit_code: CreditCode,
        name: &str,
        now: i64,
    ) -> Result<Self, IdentifierError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(IdentifierError(
                "an organisation name has 1 to 200 printable characters".into(),
            ));
        }
        Ok(Self {
            id,
            credit_code,
            name: name.to_owned(),
            status: OrgStatus::Active,
            created_at: now,
            updated_at: now,
        })
    }
    pub fn category(&self) -> OrgCategory {
        self.credit_code.category()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    LegalRepresentative,
    Administrator,
    Agent,
}

impl Role {
    pub const ALL: [Role; 3] = [Self::LegalRepresentative, Self::Administrator, Self::Agent];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LegalRepresentative => "legal_representative",
            Self::Administrator => "administrator",
            Self::Agent => "agent",
        }
    }
    pub fn parse(raw: &str) -> Result<Self, IdentifierError> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == raw)
            .ok_or_else(|| {
                IdentifierError(format!(
                    "{raw:?} is not a role (one of: {})",
                    Self::ALL.map(Self::as_str).join(", ")
                ))
            })
    }
}

/// What a role may do for the organisation: all business, or listed service-item codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Items(Vec<String>),
}

impl Scope {
    /// `"all"`, or service-item codes (1 to 64 of letters, digits, `.`, `_`, `-`), at least one.
    pub fn parse(items: &[String]) -> Result<Self, IdentifierError> {
        if items.is_empty() || (items.len() == 1 && items[0] == "all") {
            return Ok(Self::All);
        }
        let mut out: Vec<String> = Vec::with_capacity(items.len());
        for item in items {
            let ok = !item.is_empty()
                && item.len() <= 64
                && item
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !ok || item == "all" {
                return Err(IdentifierError(format!(
                    "{item:?} is not a service-item code"
                )));
            }
            if !out.contains(item) {
                out.push(item.clone());
            }
        }
        Ok(Self::Items(out))
    }

    /// The form stored and printed: `["all"]` or the codes.
    pub fn to_list(&self) -> Vec<String> {
        match self {
            Self::All => vec!["all".into()],
            Self::Items(items) => items.clone(),
        }
    }

    pub fn covers(&self, item: &str) -> bool {
        match self {
            Self::All => true,
            Self::Items(items) => items.iter().any(|i| i == item),
        }
    }
}

/// A role held by a person in an organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub org_id: OrgId,
    pub account_id: AccountId,
    pub role: Role,
    pub scope: Scope,
    pub expires_at: Option<i64>,
    /// The account that granted it; `None` when an operator registered it (e.g. from the business
    /// licence register).
    pub granted_by: Option<AccountId>,
    pub granted_at: i64,
}

impl Membership {
    /// Checks a grant: an agent's mandate always expires, in the future; the legal representative
    /// and administrators act for all business.
    pub fn grant(
        org_id: OrgId,
        account_id: AccountId,
        role: Role,
        scope: Scope,
        expires_at: Option<i64>,
        granted_by: Option<AccountId>,
        now: i64,
    ) -> Result<Self, IdentifierError> {
        match role {
            Role::Agent if expires_at.is_none() => {
                return Err(IdentifierError(
                    "an agent's mandate needs an expiry (--expires)".into(),
                ));
            }
            Role::LegalRepresentative | Role::Administrator if scope != Scope::All => {
                return Err(IdentifierError(format!(
                    "a {} acts for all business; a scope is only for agents",
                    role.as_str()
                )));
            }
            _ => {}
        }
        if expires_at.is_some_and(|e| e <= now) {
            return Err(IdentifierError("the expiry must be in the future".into()));
        }
        if granted_by.as_ref() == Some(&account_id) {
            return Err(IdentifierError("nobody grants a role to themselves".into()));
        }
        Ok(Self {
            org_id,
            account_id,
            role,
            scope,
            expires_at,
            granted_by,
            granted_at: now,
        })
    }

    pub fn is_active(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|e| now < e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (OrgId, AccountId, AccountId) {
        (
            OrgId::parse("o1").unwrap(),
            AccountId::parse("a1").unwrap(),
            AccountId::parse("a2").unwrap(),
        )
    }

    #[test]
    fn mandates_follow_the_role_rules() {
        let (org, a1, a2) = ids();
        let items = Scope::parse(&["330100-001".into(), "tax.declare".into()]).unwrap();
        let agent = Membership::grant(
            org.clone(),
            a1.clone(),
            Role::Agent,
            items.clone(),
            Some(200),
            Some(a2.clone()),
            100,
        )
        .unwrap();
        assert!(agent.is_active(199) && !agent.is_active(200));
        assert!(agent.scope.covers("tax.declare") && !agent.scope.covers("other"));
        assert!(
            Membership::grant(
                org.clone(),
                a1.clone(),
                Role::Agent,
                Scope::All,
                None,
                None,
                100
            )
            .is_err()
        );
        assert!(
            Membership::grant(
                org.clone(),
                a1.clone(),
                Role::Administrator,
                items,
                None,
                None,
                100
            )
            .is_err()
        );
        assert!(
            Membership::grant(
                org.clone(),
                a1.clone(),
                Role::Agent,
                Scope::All,
                Some(50),
                None,
                100
            )
            .is_err()
        );
        assert!(
            Membership::grant(
                org.clone(),
                a1.clone(),
                Role::Administrator,
                Scope::All,
                None,
                Some(a1.clone()),
                100
            )
            .is_err()
        );
        let admin = Membership::grant(
            org,
            a1,
            Role::Administrator,
            Scope::All,
            None,
            Some(a2),
            100,
        )
        .unwrap();
        assert!(admin.is_active(i64::MAX));
    }

    #[test]
    fn scopes_parse() {
        assert_eq!(Scope::parse(&[]).unwrap(), Scope::All);
        assert_eq!(Scope::parse(&["all".into()]).unwrap(), Scope::All);
        assert!(Scope::parse(&["a b".into()]).is_err());
        assert!(Scope::parse(&["x".into(), "all".into()]).is_err());
        assert_eq!(
            Scope::parse(&["x".into(), "x".into()]).unwrap().to_list(),
            vec!["x"]
        );
    }
}
