//! Consent decisions ([`ConsentStore`](crate::store::ConsentStore)).

use super::Adapter;

#[async_trait::async_trait]
impl crate::store::ConsentStore for Adapter {
    async fn consents_of(
        &self,
        account_id: &str,
    ) -> crate::store::StoreResult<Vec<crate::store::ConsentRecord>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT client_id, scopes, granted_at FROM consents WHERE account_id = $1 \
             ORDER BY granted_at DESC, client_id",
        )
        .bind(account_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| crate::store::sql::db_error(|| "consent".into(), e))?;
        rows.into_iter()
            .map(|(client_id, scopes, granted_at)| {
                let scopes = serde_json::from_str(&scopes).map_err(|e| {
                    crate::store::StoreError::Corrupt(format!(
                        "consent {account_id}/{client_id}: {e}"
                    ))
                })?;
                Ok(crate::store::ConsentRecord {
                    client_id,
                    scopes,
                    granted_at,
                })
            })
            .collect()
    }

    async fn delete_consent(
        &self,
        account_id: &str,
        client_id: &str,
    ) -> crate::store::StoreResult<bool> {
        let done = sqlx::query("DELETE FROM consents WHERE account_id = $1 AND client_id = $2")
            .bind(account_id)
            .bind(client_id)
            .execute(&self.writer)
            .await
            .map_err(|e| crate::store::sql::db_error(|| "consent".into(), e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn consented_scopes(
        &self,
        account_id: &str,
        client_id: &str,
    ) -> crate::store::StoreResult<Vec<String>> {
        let scopes: Option<String> = sqlx::query_scalar(
            "SELECT scopes FROM consents WHERE account_id = $1 AND client_id = $2",
        )
        .bind(account_id)
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| crate::store::sql::db_error(|| "consent".into(), e))?;
        match scopes {
            None => Ok(Vec::new()),
            Some(json) => serde_json::from_str(&json).map_err(|e| {
                crate::store::StoreError::Corrupt(format!("consent {account_id}/{client_id}: {e}"))
            }),
        }
    }

    async fn save_consent(
        &self,
        account_id: &str,
        client_id: &str,
        scopes: &[String],
        now: i64,
    ) -> crate::store::StoreResult<()> {
        sqlx::query(
            "INSERT INTO consents (account_id, client_id, scopes, granted_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (account_id, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at",
        )
        .bind(account_id)
        .bind(client_id)
        .bind(serde_json::to_string(scopes).unwrap_or_default())
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(|e| crate::store::sql::db_error(|| "consent".into(), e))?;
        Ok(())
    }
}
