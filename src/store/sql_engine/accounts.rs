//! [`AccountStore`](crate::store::AccountStore) for the SQL engines.
//! Personal numbers arrive sealed and blind-indexed; this code never sees them in plain text.

use super::Adapter;
use super::Db;

#[async_trait::async_trait]
impl crate::store::AccountStore for Adapter {
    async fn create_account(
        &self,
        account: &crate::store::AccountRecord,
        documents: &[crate::store::DocumentRecord],
        password_hash: Option<&str>,
        legacy_ids: &[crate::store::LegacyIdRecord],
        agreements: &[crate::store::AgreementRecord],
    ) -> crate::store::StoreResult<()> {
        use crate::store::sql::db_error;
        let err = |e| db_error(|| "account".into(), e);
        let mut tx = self.writer.begin().await.map_err(err)?;
        sqlx::query(
            "INSERT INTO accounts (id, name, phone_index, phone_sealed, email, level, \
             proof_method, proof_source, proof_at, status, pii_version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&account.id)
        .bind(&account.name)
        .bind(&account.phone_index)
        .bind(&account.phone_sealed)
        .bind(&account.email)
        .bind(account.level)
        .bind(&account.proof_method)
        .bind(&account.proof_source)
        .bind(account.proof_at)
        .bind(&account.status)
        .bind(account.pii_version)
        .bind(account.created_at)
        .bind(account.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(err)?;
        for d in documents {
            insert_document(d)
                .execute(&mut *tx)
                .await
                .map_err(|e| db_error(|| "document".into(), e))?;
        }
        if let Some(hash) = password_hash {
            sqlx::query(
                "INSERT INTO credentials (account_id, hash, changed_at) VALUES ($1, $2, $3)",
            )
            .bind(&account.id)
            .bind(hash)
            .bind(account.created_at)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        }
        for r in legacy_ids {
            insert_legacy_id(r)
                .execute(&mut *tx)
                .await
                .map_err(|e| db_error(|| "legacy id".into(), e))?;
        }
        for a in agreements {
            sqlx::query(
                "INSERT INTO account_agreements (account_id, kind, version, agreed_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(&a.account_id)
            .bind(&a.kind)
            .bind(&a.version)
            .bind(a.agreed_at)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        }
        tx.commit().await.map_err(err)?;
        Ok(())
    }

    async fn delete_account(&self, id: &str) -> crate::store::StoreResult<bool> {
        let done = sqlx::query("DELETE FROM accounts WHERE id = $1")
            .bind(id)
            .execute(&self.writer)
            .await
            .map_err(|e| crate::store::sql::db_error(|| "account".into(), e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn closed_before(
        &self,
        before: i64,
        limit: i64,
    ) -> crate::store::StoreResult<Vec<String>> {
        sqlx::query_scalar(
            "SELECT id FROM accounts WHERE status = 'closed' AND updated_at < $1 ORDER BY id LIMIT $2",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| crate::store::sql::db_error(|| "accounts".into(), e))
    }

    async fn add_agreement(
        &self,
        a: &crate::store::AgreementRecord,
    ) -> crate::store::StoreResult<()> {
        sqlx::query(
            "INSERT INTO account_agreements (account_id, kind, version, agreed_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (account_id, kind, version) \
             DO UPDATE SET agreed_at = excluded.agreed_at",
        )
        .bind(&a.account_id)
        .bind(&a.kind)
        .bind(&a.version)
        .bind(a.agreed_at)
        .execute(&self.writer)
        .await
        .map_err(|e| crate::store::sql::db_error(|| "agreement".into(), e))?;
        Ok(())
    }

    async fn agreements(
        &self,
        account_id: &str,
    ) -> crate::store::StoreResult<Vec<crate::store::AgreementRecord>> {
        sqlx::query_as(
            "SELECT account_id, kind, version, agreed_at FROM account_agreements \
             WHERE account_id = $1 ORDER BY agreed_at, kind",
        )
        .bind(account_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| crate::store::sql::db_error(|| "agreements".into(), e))
    }

    async fn account(
        &self,
        id: &str,
    ) -> crate::store::StoreResult<Option<crate::store::AccountRecord>> {
        sqlx::query_as("SELECT * FROM accounts WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| crate::store::sql::db_error(|| format!("account {id}"), e))
    }

    async fn account_documents(
        &self,
        id: &str,
    ) -> crate::store::StoreResult<Vec<crate::store::DocumentRecord>> {
        sqlx::query_as("SELECT * FROM account_documents WHERE account_id = $1 ORDER BY created_at, number_index")
            .bind(id)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| crate::store::sql::db_error(|| format!("account {id}"), e))
    }

    async fn account_id_by_document(
        &self,
        index: &[u8],
    ) -> crate::store::StoreResult<Option<String>> {
        sqlx::query_scalar(
            "SELECT account_id FROM account_documents WHERE number_index = $1 OR alias_index = $1",
        )
        .bind(index)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| crate::store::sql::db_error(|| "document".into(), e))
    }

    async fn account_id_by_phone(&self, index: &[u8]) -> crate::store::StoreResult<Option<String>> {
        sqlx::query_scalar("SELECT id FROM accounts WHERE phone_index = $1")
            .bind(index)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| crate::store::sql::db_error(|| "phone".into(), e))
    }

    async fn accounts(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> crate::store::StoreResult<Vec<crate::store::AccountRecord>> {
        sqlx::query_as("SELECT * FROM accounts WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after.unwrap_or(""))
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| crate::store::sql::db_error(|| "accounts".into(), e))
    }

    async fn accounts_by_name(
        &self,
        prefix: &str,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> crate::store::StoreResult<Vec<crate::store::AccountRecord>> {
        // Every name that starts with `prefix` sorts at or after it and before it followed by the
        // last code point.
        let upper = format!("{prefix}\u{10FFFF}");
        let (name, id) = after.unwrap_or(("", ""));
        sqlx::query_as(super::ACCOUNTS_BY_NAME)
            .bind(prefix)
            .bind(upper)
            .bind(name)
            .bind(id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| crate::store::sql::db_error(|| "accounts by name".into(), e))
    }

    async fn update_account(
        &self,
        a: &crate::store::AccountRecord,
    ) -> crate::store::StoreResult<()> {
        let done = sqlx::query(
            "UPDATE accounts SET name = $2, phone_index = $3, phone_sealed = $4, email = $5, \
             level = $6, proof_method = $7, proof_source = $8, proof_at = $9, status = $10, \
             pii_version = $11, updated_at = $12 WHERE id = $1",
        )
        .bind(&a.id)
        .bind(&a.name)
        .bind(&a.phone_index)
        .bind(&a.phone_sealed)
        .bind(&a.email)
        .bind(a.level)
        .bind(&a.proof_method)
        .bind(&a.proof_source)
        .bind(a.proof_at)
        .bind(&a.status)
        .bind(a.pii_version)
        .bind(a.updated_at)
        .execute(&self.writer)
        .await
        .map_err(|e| crate::store::sql::db_error(|| format!("account {}", a.id), e))?;
        if done.rows_affected() == 0 {
            return Err(crate::store::StoreError::NotFound(format!(
                "account {}",
                a.id
            )));
        }
        Ok(())
    }

    async fn add_document(
        &self,
        d: &crate::store::DocumentRecord,
    ) -> crate::store::StoreResult<()> {
        insert_document(d)
            .execute(&self.writer)
            .await
            .map_err(|e| crate::store::sql::db_error(|| "document".into(), e))?;
        Ok(())
    }

    async fn password_hash(&self, account_id: &str) -> crate::store::StoreResult<Option<String>> {
        sqlx::query_scalar("SELECT hash FROM credentials WHERE account_id = $1")
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| crate::store::sql::db_error(|| format!("account {account_id}"), e))
    }

    async fn password_history(&self, account_id: &str) -> crate::store::StoreResult<Vec<String>> {
        sqlx::query_scalar(
            "SELECT hash FROM password_history WHERE account_id = $1 ORDER BY id DESC",
        )
        .bind(account_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| crate::store::sql::db_error(|| format!("account {account_id}"), e))
    }

    async fn set_password(
        &self,
        account_id: &str,
        hash: &str,
        now: i64,
        keep_previous: i64,
    ) -> crate::store::StoreResult<()> {
        let err = |e| crate::store::sql::db_error(|| format!("account {account_id}"), e);
        let mut tx = self.writer.begin().await.map_err(err)?;
        sqlx::query(
            "INSERT INTO password_history (account_id, hash, created_at) \
             SELECT account_id, hash, changed_at FROM credentials WHERE account_id = $1",
        )
        .bind(account_id)
        .execute(&mut *tx)
        .await
        .map_err(err)?;
        let done = sqlx::query(
            "INSERT INTO credentials (account_id, hash, changed_at) VALUES ($1, $2, $3) \
             ON CONFLICT (account_id) DO UPDATE SET hash = excluded.hash, changed_at = excluded.changed_at",
        )
        .bind(account_id)
        .bind(hash)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
                crate::store::StoreError::NotFound(format!("account {account_id}"))
            }
            e => err(e),
        })?;
        debug_assert_eq!(done.rows_affected(), 1);
        sqlx::query(
            "DELETE FROM password_history WHERE account_id = $1 AND id NOT IN \
             (SELECT id FROM password_history WHERE account_id = $1 ORDER BY id DESC LIMIT $2)",
        )
        .bind(account_id)
        .bind(keep_previous)
        .execute(&mut *tx)
        .await
        .map_err(err)?;
        tx.commit().await.map_err(err)?;
        Ok(())
    }

    async fn replace_password_hash(
        &self,
        account_id: &str,
        old: &str,
        new: &str,
    ) -> crate::store::StoreResult<bool> {
        let done =
            sqlx::query("UPDATE credentials SET hash = $3 WHERE account_id = $1 AND hash = $2")
                .bind(account_id)
                .bind(old)
                .bind(new)
                .execute(&self.writer)
                .await
                .map_err(|e| crate::store::sql::db_error(|| format!("account {account_id}"), e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn add_legacy_id(
        &self,
        r: &crate::store::LegacyIdRecord,
    ) -> crate::store::StoreResult<bool> {
        // Insert, or learn who holds it, in one round trip.
        let holder: Option<String> = sqlx::query_scalar(
            "INSERT INTO legacy_ids (source, user_index, user_sealed, account_id, pii_version) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (source, user_index) DO NOTHING RETURNING account_id",
        )
        .bind(&r.source)
        .bind(&r.user_index)
        .bind(&r.user_sealed)
        .bind(&r.account_id)
        .bind(r.pii_version)
        .fetch_optional(&self.writer)
        .await
        .map_err(|e| crate::store::sql::db_error(|| "legacy id".into(), e))?;
        if holder.is_some() {
            return Ok(true);
        }
        let holder = self
            .account_id_by_legacy_id(&r.source, &r.user_index)
            .await?;
        match holder {
            Some(holder) if holder == r.account_id => Ok(false),
            _ => Err(crate::store::StoreError::Conflict("legacy id".into())),
        }
    }

    async fn account_id_by_legacy_id(
        &self,
        source: &str,
        user_index: &[u8],
    ) -> crate::store::StoreResult<Option<String>> {
        sqlx::query_scalar(
            "SELECT account_id FROM legacy_ids WHERE source = $1 AND user_index = $2",
        )
        .bind(source)
        .bind(user_index)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| crate::store::sql::db_error(|| "legacy id".into(), e))
    }

    async fn legacy_ids(
        &self,
        account_id: &str,
    ) -> crate::store::StoreResult<Vec<crate::store::LegacyIdRecord>> {
        sqlx::query_as("SELECT * FROM legacy_ids WHERE account_id = $1 ORDER BY source, user_index")
            .bind(account_id)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| crate::store::sql::db_error(|| "legacy id".into(), e))
    }

    async fn accounts_sealed_otherwise(
        &self,
        version: i64,
        limit: i64,
    ) -> crate::store::StoreResult<Vec<crate::store::AccountRecord>> {
        sqlx::query_as("SELECT * FROM accounts WHERE pii_version <> $1 AND phone_sealed IS NOT NULL ORDER BY id LIMIT $2")
            .bind(version)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| crate::store::sql::db_error(|| "accounts".into(), e))
    }

    async fn documents_sealed_otherwise(
        &self,
        version: i64,
        limit: i64,
    ) -> crate::store::StoreResult<Vec<crate::store::DocumentRecord>> {
        sqlx::query_as("SELECT * FROM account_documents WHERE pii_version <> $1 ORDER BY number_index LIMIT $2")
            .bind(version)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| crate::store::sql::db_error(|| "documents".into(), e))
    }

    async fn legacy_ids_sealed_otherwise(
        &self,
        version: i64,
        limit: i64,
    ) -> crate::store::StoreResult<Vec<crate::store::LegacyIdRecord>> {
        sqlx::query_as(
            "SELECT * FROM legacy_ids WHERE pii_version <> $1 ORDER BY source, user_index LIMIT $2",
        )
        .bind(version)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| crate::store::sql::db_error(|| "legacy ids".into(), e))
    }

    async fn reseal_phone(
        &self,
        id: &str,
        expected: &[u8],
        sealed: &[u8],
        version: i64,
    ) -> crate::store::StoreResult<bool> {
        let done = sqlx::query("UPDATE accounts SET phone_sealed = $3, pii_version = $4 WHERE id = $1 AND phone_sealed = $2")
            .bind(id)
            .bind(expected)
            .bind(sealed)
            .bind(version)
            .execute(&self.writer)
            .await
            .map_err(|e| crate::store::sql::db_error(|| format!("account {id}"), e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn reseal_document(
        &self,
        number_index: &[u8],
        number_sealed: &[u8],
        alias_sealed: Option<&[u8]>,
        version: i64,
    ) -> crate::store::StoreResult<bool> {
        let done = sqlx::query("UPDATE account_documents SET number_sealed = $2, alias_sealed = $3, pii_version = $4 WHERE number_index = $1")
            .bind(number_index)
            .bind(number_sealed)
            .bind(alias_sealed)
            .bind(version)
            .execute(&self.writer)
            .await
            .map_err(|e| crate::store::sql::db_error(|| "document".into(), e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn reseal_legacy_id(
        &self,
        source: &str,
        user_index: &[u8],
        sealed: &[u8],
        version: i64,
    ) -> crate::store::StoreResult<bool> {
        let done = sqlx::query("UPDATE legacy_ids SET user_sealed = $3, pii_version = $4 WHERE source = $1 AND user_index = $2")
            .bind(source)
            .bind(user_index)
            .bind(sealed)
            .bind(version)
            .execute(&self.writer)
            .await
            .map_err(|e| crate::store::sql::db_error(|| "legacy id".into(), e))?;
        Ok(done.rows_affected() == 1)
    }
}

fn insert_legacy_id(
    r: &crate::store::LegacyIdRecord,
) -> sqlx::query::Query<'_, Db, <Db as sqlx::Database>::Arguments> {
    sqlx::query(
        "INSERT INTO legacy_ids (source, user_index, user_sealed, account_id, pii_version) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&r.source)
    .bind(&r.user_index)
    .bind(&r.user_sealed)
    .bind(&r.account_id)
    .bind(r.pii_version)
}

fn insert_document(
    d: &crate::store::DocumentRecord,
) -> sqlx::query::Query<'_, Db, <Db as sqlx::Database>::Arguments> {
    sqlx::query(
        "INSERT INTO account_documents (number_index, account_id, kind, country, number_sealed, \
         alias_index, alias_sealed, pii_version, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&d.number_index)
    .bind(&d.account_id)
    .bind(&d.kind)
    .bind(&d.country)
    .bind(&d.number_sealed)
    .bind(&d.alias_index)
    .bind(&d.alias_sealed)
    .bind(d.pii_version)
    .bind(d.created_at)
}
