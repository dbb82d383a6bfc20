//! Administrator roles ([`AdminStore`](crate::store::AdminStore)).

use super::Adapter;
use crate::store::{AdminRoleRecord, StoreResult, sql::db_error};

macro_rules! columns {
    () => {
        "account_id, role, department, granted_at, granted_by"
    };
}

#[async_trait::async_trait]
impl crate::store::AdminStore for Adapter {
    async fn grant_role(&self, r: &AdminRoleRecord) -> StoreResult<()> {
        sqlx::query(concat!(
            "INSERT INTO admin_roles (",
            columns!(),
            ") VALUES ($1, $2, $3, $4, $5)"
        ))
        .bind(&r.account_id)
        .bind(&r.role)
        .bind(&r.department)
        .bind(r.granted_at)
        .bind(&r.granted_by)
        .execute(&self.writer)
        .await
        .map_err(|e| {
            db_error(
                || format!("administrator role of account {}", r.account_id),
                e,
            )
        })?;
        Ok(())
    }

    async fn revoke_role(&self, account_id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM admin_roles WHERE account_id = $1")
            .bind(account_id)
            .execute(&self.writer)
            .await
            .map_err(|e| db_error(|| format!("administrator role of account {account_id}"), e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn role_of(&self, account_id: &str) -> StoreResult<Option<AdminRoleRecord>> {
        sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM admin_roles WHERE account_id = $1"
        ))
        .bind(account_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| db_error(|| "administrator role".into(), e))
    }

    async fn admin_roles(&self) -> StoreResult<Vec<AdminRoleRecord>> {
        sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM admin_roles ORDER BY role, account_id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| db_error(|| "administrator roles".into(), e))
    }
}
