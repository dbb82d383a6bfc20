//! Second factors, recovery codes and the two-factor rule ([`FactorStore`](crate::store::FactorStore)).

use super::Adapter;
use crate::store::{FactorRecord, StoreResult, sql::db_error};

macro_rules! columns {
    () => {
        "id, account_id, kind, label, credential_id, secret, counter, backup_eligible, \
         backup_state, created_at, last_used_at"
    };
}

#[async_trait::async_trait]
impl crate::store::FactorStore for Adapter {
    async fn factors_of(&self, account_id: &str) -> StoreResult<Vec<FactorRecord>> {
        sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM account_factors WHERE account_id = $1 ORDER BY created_at, id"
        ))
        .bind(account_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| db_error(|| "factors".into(), e))
    }

    async fn factor_by_credential(&self, credential_id: &str) -> StoreResult<Option<FactorRecord>> {
        sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM account_factors WHERE credential_id = $1"
        ))
        .bind(credential_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| db_error(|| "factor".into(), e))
    }

    async fn add_factor(&self, f: &FactorRecord) -> StoreResult<()> {
        sqlx::query(concat!(
            "INSERT INTO account_factors (",
            columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(&f.id)
        .bind(&f.account_id)
        .bind(&f.kind)
        .bind(&f.label)
        .bind(&f.credential_id)
        .bind(&f.secret)
        .bind(f.counter)
        .bind(f.backup_eligible)
        .bind(f.backup_state)
        .bind(f.created_at)
        .bind(f.last_used_at)
        .execute(&self.writer)
        .await
        .map_err(|e| db_error(|| format!("factor {}", f.id), e))?;
        Ok(())
    }

    async fn remove_factor(&self, account_id: &str, id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM account_factors WHERE account_id = $1 AND id = $2")
            .bind(account_id)
            .bind(id)
            .execute(&self.writer)
            .await
            .map_err(|e| db_error(|| format!("factor {id}"), e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn advance_factor(
        &self,
        id: &str,
        counter: i64,
        backup_state: bool,
        now: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE account_factors SET counter = $2, backup_state = $3, last_used_at = $4 \
             WHERE id = $1 AND (counter < $2 OR (counter = 0 AND $2 = 0))",
        )
        .bind(id)
        .bind(counter)
        .bind(backup_state)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(|e| db_error(|| format!("factor {id}"), e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn replace_recovery_codes(
        &self,
        account_id: &str,
        hashes: &[Vec<u8>],
        now: i64,
    ) -> StoreResult<()> {
        let context = || "recovery codes".to_owned();
        let mut tx = self
            .writer
            .begin()
            .await
            .map_err(|e| db_error(context, e))?;
        sqlx::query("DELETE FROM account_recovery_codes WHERE account_id = $1")
            .bind(account_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| db_error(context, e))?;
        for hash in hashes {
            sqlx::query(
                "INSERT INTO account_recovery_codes (account_id, code_hash, created_at) \
                 VALUES ($1, $2, $3)",
            )
            .bind(account_id)
            .bind(hash)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| db_error(context, e))?;
        }
        tx.commit().await.map_err(|e| db_error(context, e))
    }

    async fn spend_recovery_code(
        &self,
        account_id: &str,
        hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<bool>> {
        let context = || "recovery code".to_owned();
        let done = sqlx::query(
            "UPDATE account_recovery_codes SET used_at = $3 \
             WHERE account_id = $1 AND code_hash = $2 AND used_at IS NULL",
        )
        .bind(account_id)
        .bind(hash)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(|e| db_error(context, e))?;
        if done.rows_affected() > 0 {
            return Ok(Some(true));
        }
        let known: Option<i64> = sqlx::query_scalar(
            "SELECT created_at FROM account_recovery_codes WHERE account_id = $1 AND code_hash = $2",
        )
        .bind(account_id)
        .bind(hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| db_error(context, e))?;
        Ok(known.map(|_| false))
    }

    async fn recovery_codes_left(&self, account_id: &str) -> StoreResult<i64> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM account_recovery_codes WHERE account_id = $1 AND used_at IS NULL",
        )
        .bind(account_id)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| db_error(|| "recovery codes".into(), e))
    }

    async fn set_second_factor_required(
        &self,
        account_id: &str,
        required: bool,
        now: i64,
    ) -> StoreResult<()> {
        let query = if required {
            sqlx::query(
                "INSERT INTO account_second_factor_policy (account_id, set_at) VALUES ($1, $2) \
                 ON CONFLICT (account_id) DO NOTHING",
            )
            .bind(account_id)
            .bind(now)
        } else {
            sqlx::query("DELETE FROM account_second_factor_policy WHERE account_id = $1")
                .bind(account_id)
        };
        query
            .execute(&self.writer)
            .await
            .map_err(|e| db_error(|| "second factor rule".into(), e))?;
        Ok(())
    }

    async fn second_factor_required(&self, account_id: &str) -> StoreResult<bool> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT set_at FROM account_second_factor_policy WHERE account_id = $1",
        )
        .bind(account_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| db_error(|| "second factor rule".into(), e))?;
        Ok(found.is_some())
    }
}
