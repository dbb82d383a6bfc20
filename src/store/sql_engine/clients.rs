//! The client registry ([`ClientStore`](crate::store::ClientStore)).

use super::Adapter;
use super::Db;

#[async_trait::async_trait]
impl crate::store::ClientStore for Adapter {
    async fn insert_client(
        &self,
        client: &crate::domain::client::Client,
    ) -> crate::store::StoreResult<()> {
        bind_client(sqlx::query(crate::store::sql::INSERT_CLIENT), client)
            .execute(&self.writer)
            .await
            .map_err(|e| crate::store::sql::db_error(|| format!("client {}", client.id()), e))?;
        Ok(())
    }

    async fn update_client(
        &self,
        client: &crate::domain::client::Client,
    ) -> crate::store::StoreResult<()> {
        let done = bind_client(sqlx::query(crate::store::sql::UPDATE_CLIENT), client)
            .execute(&self.writer)
            .await
            .map_err(|e| crate::store::sql::db_error(|| format!("client {}", client.id()), e))?;
        if done.rows_affected() == 0 {
            return Err(crate::store::StoreError::NotFound(format!(
                "client {}",
                client.id()
            )));
        }
        Ok(())
    }

    async fn client(
        &self,
        id: &crate::domain::client::ClientId,
    ) -> crate::store::StoreResult<Option<crate::domain::client::Client>> {
        let row: Option<crate::store::sql::ClientRow> =
            sqlx::query_as(crate::store::sql::SELECT_CLIENT)
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| crate::store::sql::db_error(|| format!("client {id}"), e))?;
        row.map(crate::store::sql::ClientRow::into_client)
            .transpose()
    }

    async fn clients(&self) -> crate::store::StoreResult<Vec<crate::domain::client::Client>> {
        let rows: Vec<crate::store::sql::ClientRow> =
            sqlx::query_as(crate::store::sql::SELECT_CLIENTS)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| crate::store::sql::db_error(|| "clients".into(), e))?;
        rows.into_iter()
            .map(crate::store::sql::ClientRow::into_client)
            .collect()
    }

    async fn delete_client(
        &self,
        id: &crate::domain::client::ClientId,
    ) -> crate::store::StoreResult<bool> {
        let done = sqlx::query(crate::store::sql::DELETE_CLIENT)
            .bind(id.as_str())
            .execute(&self.writer)
            .await
            .map_err(|e| crate::store::sql::db_error(|| format!("client {id}"), e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn insert_registration_token(
        &self,
        t: &crate::store::RegistrationToken,
    ) -> crate::store::StoreResult<()> {
        sqlx::query(
            "INSERT INTO registration_tokens (hash, department, issued_by, issued_at, expires_at, used_at, client_id) \
             VALUES ($1, $2, $3, $4, $5, NULL, NULL)",
        )
        .bind(&t.hash)
        .bind(&t.department)
        .bind(&t.issued_by)
        .bind(t.issued_at)
        .bind(t.expires_at)
        .execute(&self.writer)
        .await
        .map_err(|e| crate::store::sql::db_error(|| "registration token".into(), e))?;
        Ok(())
    }

    async fn registration_token(
        &self,
        hash: &[u8],
        now: i64,
    ) -> crate::store::StoreResult<Option<crate::store::RegistrationToken>> {
        sqlx::query_as(
            "SELECT * FROM registration_tokens WHERE hash = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| crate::store::sql::db_error(|| "registration token".into(), e))
    }

    async fn use_registration_token(
        &self,
        hash: &[u8],
        client_id: &str,
        now: i64,
    ) -> crate::store::StoreResult<Option<crate::store::RegistrationToken>> {
        // One statement: two registrations racing for one token cannot both have it.
        sqlx::query_as(
            "UPDATE registration_tokens SET used_at = $2, client_id = $3 \
             WHERE hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING *",
        )
        .bind(hash)
        .bind(now)
        .bind(client_id)
        .fetch_optional(&self.writer)
        .await
        .map_err(|e| crate::store::sql::db_error(|| "registration token".into(), e))
    }
}

/// Binds a client's columns in the order of `INSERT_CLIENT` / `UPDATE_CLIENT` ($1..$29).
fn bind_client<'q>(
    query: sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments>,
    client: &crate::domain::client::Client,
) -> sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments> {
    let r = crate::store::sql::ClientRow::from_client(client);
    query
        .bind(r.id)
        .bind(r.name)
        .bind(r.auth_method)
        .bind(r.redirect_uris)
        .bind(r.post_logout_redirect_uris)
        .bind(r.grant_types)
        .bind(r.scopes)
        .bind(r.first_party)
        .bind(r.secret_hash)
        .bind(r.previous_secret_hash)
        .bind(r.previous_secret_expires_at)
        .bind(r.created_at)
        .bind(r.updated_at)
        .bind(r.id_token_signed_response_alg)
        .bind(r.access_token_secs)
        .bind(r.id_token_secs)
        .bind(r.full_phone)
        .bind(r.access_token_signed_response_alg)
        .bind(r.resources)
        .bind(r.jwks)
        .bind(r.jwks_uri)
        .bind(r.backchannel_logout_uri)
        .bind(r.backchannel_logout_session_required)
        .bind(r.frontchannel_logout_uri)
        .bind(r.frontchannel_logout_session_required)
        .bind(r.secret_sealed)
        .bind(r.previous_secret_sealed)
        .bind(r.channel)
        .bind(r.pkce_optional)
        .bind(r.min_level)
        .bind(r.location)
        .bind(r.department)
        .bind(r.cas_services)
        .bind(r.pending)
        .bind(r.registration_token_hash)
}
