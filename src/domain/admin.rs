//! Administrator roles and what each may do (docs/administration.md): the separation of duties that
//! classified protection level 3 asks for (三员, GB/T 22239-2019 §8.1.4.2 "authorisation of
//! administrators"): a system administrator (clients, keys, settings; never personal data), a
//! security administrator (accounts, roles, locks, levels; never client secrets or the audit log), an
//! audit administrator (reads, exports and verifies the audit log; changes nothing), and department
//! administrators (the clients of their own department only). An account holds at most one role.

use std::fmt;

use super::account::AccountId;
use super::identifiers::{CreditCode, IdentifierError};

/// One administrator role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AdminRole {
    System,
    Security,
    Audit,
    Department,
}

impl AdminRole {
    pub const ALL: [Self; 4] = [Self::System, Self::Security, Self::Audit, Self::Department];

    pub fn parse(raw: &str) -> Result<Self, IdentifierError> {
        match raw {
            "system" => Ok(Self::System),
            "security" => Ok(Self::Security),
            "audit" => Ok(Self::Audit),
            "department" => Ok(Self::Department),
            other => Err(IdentifierError(format!(
                "{other:?} is not an administrator role (system, security, audit, department)"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::Security => "security",
            Self::Audit => "audit",
            Self::Department => "department",
        }
    }

    /// The OAuth scope a token must carry to act in this role at the admin API.
    pub fn scope(self) -> &'static str {
        match self {
            Self::System => "admin:system",
            Self::Security => "admin:security",
            Self::Audit => "admin:audit",
            Self::Department => "admin:department",
        }
    }

    /// The role an admin scope names.
    pub fn of_scope(scope: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.scope() == scope)
    }

    /// Whether this role may do `action` at all (a department administrator only on its own
    /// department's clients: `protocol::admin::Actor::manages`).
    pub fn may(self, action: Action) -> bool {
        use Action::*;
        match self {
            Self::System => matches!(
                action,
                ClientsRead | ClientsWrite | KeysRead | KeysWrite | ConfigRead | Reports
            ),
            Self::Security => matches!(
                action,
                AccountsSearch
                    | AccountsRead
                    | AccountsWrite
                    | AccountsReveal
                    | RolesRead
                    | RolesWrite
                    | OrgsRead
                    | OrgsWrite
            ),
            Self::Audit => matches!(action, AuditRead | AuditExport | AuditVerify),
            Self::Department => matches!(action, ClientsRead | ClientsWrite),
        }
    }
}

impl fmt::Display for AdminRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an administrator can ask for, grouped as the permission table of docs/administration.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    ClientsRead,
    ClientsWrite,
    KeysRead,
    KeysWrite,
    ConfigRead,
    Reports,
    AccountsSearch,
    AccountsRead,
    AccountsWrite,
    /// See a full ID number or phone number (with a stated reason).
    AccountsReveal,
    RolesRead,
    RolesWrite,
    OrgsRead,
    OrgsWrite,
    AuditRead,
    AuditExport,
    AuditVerify,
}

impl Action {
    /// Every action, in the order of the permission table.
    pub const ALL: [Self; 17] = [
        Self::ClientsRead,
        Self::ClientsWrite,
        Self::KeysRead,
        Self::KeysWrite,
        Self::ConfigRead,
        Self::Reports,
        Self::AccountsSearch,
        Self::AccountsRead,
        Self::AccountsWrite,
        Self::AccountsReveal,
        Self::RolesRead,
        Self::RolesWrite,
        Self::OrgsRead,
        Self::OrgsWrite,
        Self::AuditRead,
        Self::AuditExport,
        Self::AuditVerify,
    ];

    pub fn as_str(self) -> &'static str {
        use Action::*;
        match self {
            ClientsRead => "clients.read",
            ClientsWrite => "clients.write",
            KeysRead => "keys.read",
            KeysWrite => "keys.write",
            ConfigRead => "config.read",
            Reports => "reports.read",
            AccountsSearch => "accounts.search",
            AccountsRead => "accounts.read",
            AccountsWrite => "accounts.write",
            AccountsReveal => "accounts.reveal",
            RolesRead => "roles.read",
            RolesWrite => "roles.write",
            OrgsRead => "orgs.read",
            OrgsWrite => "orgs.write",
            AuditRead => "audit.read",
            AuditExport => "audit.export",
            AuditVerify => "audit.verify",
        }
    }
}

/// An account's administrator role; a department administrator's always names its department,
/// and no other role's does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    account: AccountId,
    role: AdminRole,
    department: Option<CreditCode>,
}

impl Grant {
    pub fn new(
        account: AccountId,
        role: AdminRole,
        department: Option<CreditCode>,
    ) -> Result<Self, IdentifierError> {
        match (role, &department) {
            (AdminRole::Department, None) => Err(IdentifierError(
                "a department administrator needs its department (a unified social credit code)"
                    .into(),
            )),
            (AdminRole::Department, Some(_)) | (_, None) => Ok(Self {
                account,
                role,
                department,
            }),
            (_, Some(_)) => Err(IdentifierError(format!(
                "only a department administrator names a department, not a {role} administrator"
            ))),
        }
    }
    pub fn account(&self) -> &AccountId {
        &self.account
    }
    pub fn role(&self) -> AdminRole {
        self.role
    }
    pub fn department(&self) -> Option<&CreditCode> {
        self.department.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_two_roles_share_a_power_over_people_keys_or_the_audit_log() {
        use Action::*;
        let all = Action::ALL;
        for action in all {
            let holders: Vec<_> = AdminRole::ALL
                .into_iter()
                .filter(|r| r.may(action))
                .collect();
            match action {
                // A department administrator manages its own department's clients.
                ClientsRead | ClientsWrite => {
                    assert_eq!(holders, [AdminRole::System, AdminRole::Department])
                }
                _ => assert_eq!(holders.len(), 1, "{action:?}: {holders:?}"),
            }
        }
        assert!(!AdminRole::System.may(AccountsSearch), "no personal data");
        assert!(!AdminRole::Security.may(ClientsWrite), "no client secrets");
        assert!(!AdminRole::Security.may(AuditRead));
        assert!(all.iter().filter(|a| AdminRole::Audit.may(**a)).count() == 3);
    }

    #[test]
    fn a_department_is_named_by_department_administrators_alone() {
        let id = AccountId::parse("00000000-0000-4000-8000-000000000001").unwrap();
        let code = Some(CreditCode::parse("11110000000000000N").unwrap());
        assert!(Grant::new(id.clone(), AdminRole::Department, None).is_err());
        assert!(Grant::new(id.clone(), AdminRole::System, code.clone()).is_err());
        assert!(Grant::new(id.clone(), AdminRole::Department, code).is_ok());
        assert!(Grant::new(id, AdminRole::Audit, None).is_ok());
        for role in AdminRole::ALL {
            assert_eq!(AdminRole::parse(role.as_str()).unwrap(), role);
            assert_eq!(AdminRole::of_scope(role.scope()), Some(role));
        }
        assert!(AdminRole::parse("root").is_err());
    }
}
