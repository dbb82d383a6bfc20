//! Organisations and the roles people hold in them (docs/organisations.md).

use super::*;

impl Identities {
    /// Registers an organisation by credit code.
    pub async fn create_org(
        &self,
        id: OrgId,
        code: CreditCode,
        name: &str,
        now: i64,
    ) -> Result<Organisation, AccountError> {
        let org = Organisation::new(id, code, name, now)?;
        self.orgs.create_org(&org).await?;
        Ok(org)
    }

    /// Grants a role checked by `Membership::grant`. An administrator is authorised by the legal
    /// representative, an agent by the legal representative or an administrator: the grantor, when
    /// named, must hold such a role in `org` now.
    pub async fn grant(
        &self,
        org: &Organisation,
        m: Membership,
        now: i64,
    ) -> Result<Membership, AccountError> {
        if m.org_id != org.id {
            return Err(IdentifierError("the membership names another organisation".into()).into());
        }
        if self
            .accounts
            .account(m.account_id.as_str())
            .await?
            .is_none()
        {
            return Err(AccountError::NotFound(format!("account {}", m.account_id)));
        }
        if let Some(grantor) = &m.granted_by {
            let allowed: &[Role] = match m.role {
                Role::LegalRepresentative => &[],
                Role::Administrator => &[Role::LegalRepresentative],
                Role::Agent => &[Role::LegalRepresentative, Role::Administrator],
            };
            let holds = self
                .orgs
                .memberships_of(grantor)
                .await?
                .into_iter()
                .any(|held| {
                    held.org_id == org.id && held.is_active(now) && allowed.contains(&held.role)
                });
            if !holds {
                return Err(IdentifierError(format!(
                    "account {grantor} cannot grant the {} role in this organisation",
                    m.role.as_str()
                ))
                .into());
            }
        }
        self.orgs.grant(&m).await?;
        Ok(m)
    }
}
