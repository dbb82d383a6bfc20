//! Signing keys ([`KeyStore`](crate::store::KeyStore)), stored sealed.

use super::Adapter;

#[async_trait::async_trait]
impl crate::store::KeyStore for Adapter {
    async fn insert_signing_key(
        &self,
        k: &crate::store::SigningKeyRecord,
    ) -> crate::store::StoreResult<()> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_sealed, created_at, not_before, retired_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&k.kid)
        .bind(&k.alg)
        .bind(&k.private_sealed)
        .bind(k.created_at)
        .bind(k.not_before)
        .bind(k.retired_at)
        .execute(&self.writer)
        .await
        .map_err(|e| crate::store::sql::db_error(|| format!("signing key {}", k.kid), e))?;
        Ok(())
    }

    async fn signing_keys(&self) -> crate::store::StoreResult<Vec<crate::store::SigningKeyRecord>> {
        sqlx::query_as("SELECT * FROM signing_keys ORDER BY created_at, kid")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| crate::store::sql::db_error(|| "signing keys".into(), e))
    }

    async fn revoke_signing_key(&self, kid: &str, at: i64) -> crate::store::StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE signing_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE kid = $1",
        )
        .bind(kid)
        .bind(at)
        .execute(&self.writer)
        .await
        .map_err(|e| crate::store::sql::db_error(|| format!("signing key {kid}"), e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn retire_signing_key(&self, kid: &str, at: i64) -> crate::store::StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE signing_keys SET retired_at = CASE WHEN retired_at IS NULL OR retired_at > $2 \
             THEN $2 ELSE retired_at END WHERE kid = $1",
        )
        .bind(kid)
        .bind(at)
        .execute(&self.writer)
        .await
        .map_err(|e| crate::store::sql::db_error(|| format!("signing key {kid}"), e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn key_root(&self) -> crate::store::StoreResult<Option<Vec<u8>>> {
        sqlx::query_scalar("SELECT wrapped FROM key_root WHERE id = 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| crate::store::sql::db_error(|| "key root".into(), e))
    }

    async fn put_key_root(
        &self,
        wrapped: &[u8],
        replacing: Option<&[u8]>,
        at: i64,
    ) -> crate::store::StoreResult<bool> {
        let query = match replacing {
            None => sqlx::query(
                "INSERT INTO key_root (id, wrapped, updated_at) VALUES (1, $1, $2) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(wrapped)
            .bind(at),
            Some(old) => sqlx::query(
                "UPDATE key_root SET wrapped = $1, updated_at = $2 WHERE id = 1 AND wrapped = $3",
            )
            .bind(wrapped)
            .bind(at)
            .bind(old),
        };
        let done = query
            .execute(&self.writer)
            .await
            .map_err(|e| crate::store::sql::db_error(|| "key root".into(), e))?;
        Ok(done.rows_affected() > 0)
    }
}
