//! [`SessionStore`](crate::store::SessionStore) for the SQL engines.

use super::Adapter;

#[async_trait::async_trait]
impl crate::store::SessionStore for Adapter {
    async fn insert_session(
        &self,
        r: &crate::store::SessionRecord,
    ) -> crate::store::StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (sid, account_id, channel, client_id, clients, ip, user_agent, \
             level, amr, created_at, last_seen_at, expires_at, ended_at, end_reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&r.sid)
        .bind(&r.account_id)
        .bind(&r.channel)
        .bind(&r.client_id)
        .bind(crate::store::sql::clients_column(&r.clients))
        .bind(&r.ip)
        .bind(&r.user_agent)
        .bind(r.level)
        .bind(&r.amr)
        .bind(r.created_at)
        .bind(r.last_seen_at)
        .bind(r.expires_at)
        .bind(r.ended_at)
        .bind(&r.end_reason)
        .execute(&self.writer)
        .await
        .map_err(|e| crate::store::sql::db_error(|| "session".into(), e))?;
        Ok(())
    }

    async fn touch_session(
        &self,
        sid: &str,
        clients: &[String],
        now: i64,
    ) -> crate::store::StoreResult<()> {
        let clients = crate::store::sql::clients_column(clients);
        sqlx::query(
            "UPDATE sessions SET clients = $2, last_seen_at = $3 \
             WHERE sid = $1 AND ended_at IS NULL",
        )
        .bind(sid)
        .bind(clients)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(|e| crate::store::sql::db_error(|| "session".into(), e))?;
        Ok(())
    }

    async fn raise_session(
        &self,
        sid: &str,
        level: i64,
        amr: &str,
        now: i64,
    ) -> crate::store::StoreResult<()> {
        sqlx::query(
            "UPDATE sessions SET level = $2, amr = $3, last_seen_at = $4 \
             WHERE sid = $1 AND ended_at IS NULL",
        )
        .bind(sid)
        .bind(level)
        .bind(amr)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(|e| crate::store::sql::db_error(|| "session".into(), e))?;
        Ok(())
    }

    async fn session(
        &self,
        sid: &str,
    ) -> crate::store::StoreResult<Option<crate::store::SessionRecord>> {
        sqlx::query_as::<_, crate::store::sql::SessionRow>("SELECT * FROM sessions WHERE sid = $1")
            .bind(sid)
            .fetch_optional(&self.pool)
            .await
            .map(|row| row.map(Into::into))
            .map_err(|e| crate::store::sql::db_error(|| "session".into(), e))
    }

    async fn sessions_of(
        &self,
        account_id: &str,
        include_ended: bool,
    ) -> crate::store::StoreResult<Vec<crate::store::SessionRecord>> {
        sqlx::query_as::<_, crate::store::sql::SessionRow>(
            "SELECT * FROM sessions WHERE account_id = $1 AND ($2 OR ended_at IS NULL) \
             ORDER BY created_at DESC, sid",
        )
        .bind(account_id)
        .bind(include_ended)
        .fetch_all(&self.pool)
        .await
        .map(|rows| rows.into_iter().map(Into::into).collect())
        .map_err(|e| crate::store::sql::db_error(|| "sessions".into(), e))
    }

    async fn end_session_record(
        &self,
        sid: &str,
        reason: &str,
        now: i64,
    ) -> crate::store::StoreResult<Option<crate::store::SessionRecord>> {
        // Compare-and-set: of two callers ending one session, one gets the row.
        sqlx::query_as::<_, crate::store::sql::SessionRow>(
            "UPDATE sessions SET ended_at = $3, end_reason = $2 \
             WHERE sid = $1 AND ended_at IS NULL RETURNING *",
        )
        .bind(sid)
        .bind(reason)
        .bind(now)
        .fetch_optional(&self.writer)
        .await
        .map(|row| row.map(Into::into))
        .map_err(|e| crate::store::sql::db_error(|| "session".into(), e))
    }

    async fn sessions_due(
        &self,
        now: i64,
        idle_secs: i64,
        limit: i64,
    ) -> crate::store::StoreResult<Vec<crate::store::SessionRecord>> {
        sqlx::query_as::<_, crate::store::sql::SessionRow>(
            "SELECT * FROM sessions WHERE ended_at IS NULL \
             AND (last_seen_at <= $2 OR expires_at <= $1) ORDER BY last_seen_at LIMIT $3",
        )
        .bind(now)
        .bind(now - idle_secs)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map(|rows| rows.into_iter().map(Into::into).collect())
        .map_err(|e| crate::store::sql::db_error(|| "sessions".into(), e))
    }

    async fn sessions_ended_since(&self, since: i64) -> crate::store::StoreResult<Vec<String>> {
        sqlx::query_scalar("SELECT sid FROM sessions WHERE ended_at IS NOT NULL AND ended_at >= $1")
            .bind(since)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| crate::store::sql::db_error(|| "sessions".into(), e))
    }

    async fn prune_sessions(&self, before: i64) -> crate::store::StoreResult<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE ended_at IS NOT NULL AND ended_at < $1")
            .bind(before)
            .execute(&self.writer)
            .await
            .map_err(|e| crate::store::sql::db_error(|| "sessions".into(), e))?;
        Ok(done.rows_affected())
    }

    async fn sign_ins_by_day(
        &self,
        since: i64,
    ) -> crate::store::StoreResult<Vec<(i64, String, i64)>> {
        sqlx::query_as(
            "SELECT (created_at + 28800) / 86400 AS day, channel, COUNT(*) AS n FROM sessions \
             WHERE created_at >= $1 GROUP BY day, channel ORDER BY day, channel",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| crate::store::sql::db_error(|| "sign-ins by day".into(), e))
    }

    async fn open_sessions_by_channel(
        &self,
        now: i64,
    ) -> crate::store::StoreResult<Vec<(String, i64)>> {
        sqlx::query_as(
            "SELECT channel, COUNT(*) AS n FROM sessions WHERE ended_at IS NULL \
             AND expires_at > $1 GROUP BY channel ORDER BY channel",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| crate::store::sql::db_error(|| "open sessions".into(), e))
    }
}
