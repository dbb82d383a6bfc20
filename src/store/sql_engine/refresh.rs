//! Refresh-token families ([`RefreshStore`](crate::store::RefreshStore)): rotation and reuse detection in one conditional UPDATE.

use super::Adapter;

#[async_trait::async_trait]
impl crate::store::RefreshStore for Adapter {
    async fn insert_refresh(
        &self,
        r: &crate::store::RefreshRecord,
    ) -> crate::store::StoreResult<()> {
        // Never into a family that a reuse has revoked meanwhile (security review 20: a rotation
        // racing a reuse added a live token to a revoked family).
        let done = sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, family_id, client_id, account_id, grant_json, issued_at, \
             expires_at, family_expires_at, used_at, revoked_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 WHERE NOT EXISTS \
             (SELECT 1 FROM refresh_tokens WHERE family_id = $2 AND revoked_at IS NOT NULL)",
        )
        .bind(&r.token_hash)
        .bind(&r.family_id)
        .bind(&r.client_id)
        .bind(&r.account_id)
        .bind(&r.grant_json)
        .bind(r.issued_at)
        .bind(r.expires_at)
        .bind(r.family_expires_at)
        .bind(r.used_at)
        .bind(r.revoked_at)
        .execute(&self.writer)
        .await
        .map_err(|e| crate::store::sql::db_error(|| "refresh token".into(), e))?;
        if done.rows_affected() == 0 {
            return Err(crate::store::StoreError::Conflict(
                "a revoked refresh-token family".into(),
            ));
        }
        Ok(())
    }

    async fn rotate_refresh(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> crate::store::StoreResult<crate::store::Rotation> {
        let err = |e| crate::store::sql::db_error(|| "refresh token".into(), e);
        let rotated: Option<crate::store::RefreshRecord> = sqlx::query_as(
            "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL \
             AND revoked_at IS NULL AND expires_at > $2 AND family_expires_at > $2 RETURNING *",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.writer)
        .await
        .map_err(err)?;
        if let Some(r) = rotated {
            return Ok(crate::store::Rotation::Rotated(r));
        }
        let existing: Option<crate::store::RefreshRecord> =
            sqlx::query_as("SELECT * FROM refresh_tokens WHERE token_hash = $1")
                .bind(token_hash)
                .fetch_optional(&self.writer)
                .await
                .map_err(err)?;
        match existing {
            Some(r) if r.used_at.is_some() => {
                sqlx::query("UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL")
                    .bind(&r.family_id)
                    .bind(now)
                    .execute(&self.writer)
                    .await
                    .map_err(err)?;
                Ok(crate::store::Rotation::Reused(r))
            }
            _ => Ok(crate::store::Rotation::Invalid),
        }
    }

    async fn refresh(
        &self,
        token_hash: &[u8],
    ) -> crate::store::StoreResult<Option<crate::store::RefreshRecord>> {
        sqlx::query_as("SELECT * FROM refresh_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| crate::store::sql::db_error(|| "refresh token".into(), e))
    }

    async fn revoke_family(&self, family_id: &str, now: i64) -> crate::store::StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL",
        )
        .bind(family_id)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(|e| crate::store::sql::db_error(|| "refresh token".into(), e))?;
        Ok(done.rows_affected())
    }

    async fn live_refresh_of(
        &self,
        account_id: &str,
        now: i64,
    ) -> crate::store::StoreResult<Vec<crate::store::RefreshRecord>> {
        sqlx::query_as(
            "SELECT * FROM refresh_tokens WHERE account_id = $1 AND used_at IS NULL \
             AND revoked_at IS NULL AND expires_at > $2 AND family_expires_at > $2",
        )
        .bind(account_id)
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| crate::store::sql::db_error(|| "refresh tokens".into(), e))
    }

    async fn revoke_client_refresh(
        &self,
        account_id: &str,
        client_id: &str,
        now: i64,
    ) -> crate::store::StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $3 \
             WHERE account_id = $1 AND client_id = $2 AND revoked_at IS NULL",
        )
        .bind(account_id)
        .bind(client_id)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(|e| crate::store::sql::db_error(|| "refresh token".into(), e))?;
        Ok(done.rows_affected())
    }

    async fn revoke_account_refresh(
        &self,
        account_id: &str,
        now: i64,
    ) -> crate::store::StoreResult<u64> {
        let done = sqlx::query("UPDATE refresh_tokens SET revoked_at = $2 WHERE account_id = $1 AND revoked_at IS NULL")
            .bind(account_id)
            .bind(now)
            .execute(&self.writer)
            .await
            .map_err(|e| crate::store::sql::db_error(|| "refresh token".into(), e))?;
        Ok(done.rows_affected())
    }
}
