//! Revoked access tokens ([`RevocationStore`](crate::store::RevocationStore)), kept until they expire.

use super::Adapter;

#[async_trait::async_trait]
impl crate::store::RevocationStore for Adapter {
    async fn revoke_token(&self, jti: &str, expires_at: i64) -> crate::store::StoreResult<()> {
        sqlx::query(
            "INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) \
             ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(expires_at)
        .execute(&self.writer)
        .await
        .map_err(|e| crate::store::sql::db_error(|| "revoked token".into(), e))?;
        Ok(())
    }

    async fn token_revoked(&self, jti: &str, now: i64) -> crate::store::StoreResult<bool> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT expires_at FROM revoked_tokens WHERE jti = $1")
                .bind(jti)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| crate::store::sql::db_error(|| "revoked token".into(), e))?;
        Ok(found.is_some_and(|expires_at| now <= expires_at))
    }

    async fn prune_revoked(&self, before: i64) -> crate::store::StoreResult<u64> {
        let done = sqlx::query("DELETE FROM revoked_tokens WHERE expires_at < $1")
            .bind(before)
            .execute(&self.writer)
            .await
            .map_err(|e| crate::store::sql::db_error(|| "revoked tokens".into(), e))?;
        Ok(done.rows_affected())
    }
}
