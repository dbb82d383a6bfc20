//! [`OrgStore`](crate::store::OrgStore) for the SQL engines.

use super::{Adapter, Db};

#[async_trait::async_trait]
impl crate::store::OrgStore for Adapter {
    async fn create_org(
        &self,
        org: &crate::domain::organisation::Organisation,
    ) -> crate::store::StoreResult<()> {
        insert_org(org)
            .execute(&self.writer)
            .await
            .map_err(|e| crate::store::sql::db_error(|| "organisation".into(), e))?;
        Ok(())
    }

    async fn create_org_with(
        &self,
        org: &crate::domain::organisation::Organisation,
        first: &crate::domain::organisation::Membership,
    ) -> crate::store::StoreResult<()> {
        let err = |e| crate::store::sql::db_error(|| "organisation".into(), e);
        let mut tx = self.writer.begin().await.map_err(err)?;
        insert_org(org).execute(&mut *tx).await.map_err(err)?;
        let r = crate::store::sql::MemberRow::from_membership(first);
        sqlx::query(
            "INSERT INTO org_members (org_id, account_id, role, scope, expires_at, granted_by, granted_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(r.org_id)
        .bind(r.account_id)
        .bind(r.role)
        .bind(r.scope)
        .bind(r.expires_at)
        .bind(r.granted_by)
        .bind(r.granted_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| crate::store::sql::db_error(|| "member".into(), e))?;
        tx.commit().await.map_err(err)?;
        Ok(())
    }

    async fn org(
        &self,
        id: &crate::domain::organisation::OrgId,
    ) -> crate::store::StoreResult<Option<crate::domain::organisation::Organisation>> {
        let row: Option<crate::store::sql::OrgRow> =
            sqlx::query_as("SELECT * FROM organisations WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| crate::store::sql::db_error(|| format!("organisation {id}"), e))?;
        row.map(crate::store::sql::OrgRow::into_org).transpose()
    }

    async fn org_by_code(
        &self,
        code: &crate::domain::identifiers::CreditCode,
    ) -> crate::store::StoreResult<Option<crate::domain::organisation::Organisation>> {
        let row: Option<crate::store::sql::OrgRow> =
            sqlx::query_as("SELECT * FROM organisations WHERE credit_code = $1")
                .bind(code.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| crate::store::sql::db_error(|| format!("organisation {code}"), e))?;
        row.map(crate::store::sql::OrgRow::into_org).transpose()
    }

    async fn orgs(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> crate::store::StoreResult<Vec<crate::domain::organisation::Organisation>> {
        let rows: Vec<crate::store::sql::OrgRow> =
            sqlx::query_as("SELECT * FROM organisations WHERE id > $1 ORDER BY id LIMIT $2")
                .bind(after.unwrap_or(""))
                .bind(limit)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| crate::store::sql::db_error(|| "organisations".into(), e))?;
        rows.into_iter()
            .map(crate::store::sql::OrgRow::into_org)
            .collect()
    }

    async fn update_org(
        &self,
        org: &crate::domain::organisation::Organisation,
    ) -> crate::store::StoreResult<()> {
        let done = sqlx::query(
            "UPDATE organisations SET name = $2, status = $3, updated_at = $4 WHERE id = $1",
        )
        .bind(org.id.as_str())
        .bind(&org.name)
        .bind(org.status.as_str())
        .bind(org.updated_at)
        .execute(&self.writer)
        .await
        .map_err(|e| crate::store::sql::db_error(|| format!("organisation {}", org.id), e))?;
        if done.rows_affected() == 0 {
            return Err(crate::store::StoreError::NotFound(format!(
                "organisation {}",
                org.id
            )));
        }
        Ok(())
    }

    async fn grant(
        &self,
        m: &crate::domain::organisation::Membership,
    ) -> crate::store::StoreResult<()> {
        let r = crate::store::sql::MemberRow::from_membership(m);
        sqlx::query(
            "INSERT INTO org_members (org_id, account_id, role, scope, expires_at, granted_by, granted_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (org_id, account_id, role) DO UPDATE SET \
             scope = excluded.scope, expires_at = excluded.expires_at, granted_by = excluded.granted_by, \
             granted_at = excluded.granted_at",
        )
        .bind(r.org_id)
        .bind(r.account_id)
        .bind(r.role)
        .bind(r.scope)
        .bind(r.expires_at)
        .bind(r.granted_by)
        .bind(r.granted_at)
        .execute(&self.writer)
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
                crate::store::StoreError::NotFound("organisation or account".into())
            }
            e => crate::store::sql::db_error(|| "legal representative".into(), e),
        })?;
        Ok(())
    }

    async fn members(
        &self,
        org: &crate::domain::organisation::OrgId,
    ) -> crate::store::StoreResult<Vec<crate::domain::organisation::Membership>> {
        let rows: Vec<crate::store::sql::MemberRow> =
            sqlx::query_as("SELECT * FROM org_members WHERE org_id = $1 ORDER BY role, account_id")
                .bind(org.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(|e| crate::store::sql::db_error(|| format!("organisation {org}"), e))?;
        rows.into_iter()
            .map(crate::store::sql::MemberRow::into_membership)
            .collect()
    }

    async fn memberships_of(
        &self,
        account: &crate::domain::account::AccountId,
    ) -> crate::store::StoreResult<Vec<crate::domain::organisation::Membership>> {
        let rows: Vec<crate::store::sql::MemberRow> =
            sqlx::query_as("SELECT * FROM org_members WHERE account_id = $1 ORDER BY org_id, role")
                .bind(account.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(|e| crate::store::sql::db_error(|| format!("account {account}"), e))?;
        rows.into_iter()
            .map(crate::store::sql::MemberRow::into_membership)
            .collect()
    }

    async fn revoke(
        &self,
        org: &crate::domain::organisation::OrgId,
        account: &crate::domain::account::AccountId,
        role: crate::domain::organisation::Role,
    ) -> crate::store::StoreResult<bool> {
        let done = sqlx::query(
            "DELETE FROM org_members WHERE org_id = $1 AND account_id = $2 AND role = $3",
        )
        .bind(org.as_str())
        .bind(account.as_str())
        .bind(role.as_str())
        .execute(&self.writer)
        .await
        .map_err(|e| crate::store::sql::db_error(|| format!("organisation {org}"), e))?;
        Ok(done.rows_affected() > 0)
    }
}

fn insert_org(
    org: &crate::domain::organisation::Organisation,
) -> sqlx::query::Query<'_, Db, <Db as sqlx::Database>::Arguments> {
    sqlx::query(
        "INSERT INTO organisations (id, credit_code, name, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(org.id.as_str())
    .bind(org.credit_code.as_str())
    .bind(&org.name)
    .bind(org.status.as_str())
    .bind(org.created_at)
    .bind(org.updated_at)
}
