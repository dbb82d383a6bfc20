//! The back-channel logout outbox ([`OutboxStore`](crate::store::OutboxStore)): rows claimed with a lease, so one node sends each.

use super::Adapter;

#[async_trait::async_trait]
impl crate::store::OutboxStore for Adapter {
    async fn enqueue_logout(
        &self,
        r: &crate::store::OutboxRecord,
    ) -> crate::store::StoreResult<()> {
        sqlx::query(
            "INSERT INTO logout_outbox (id, client_id, uri, sub, sid, status, attempts, next_attempt_at, \
             claimed_until, last_error, created_at, updated_at, kind, session_index) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&r.id)
        .bind(&r.client_id)
        .bind(&r.uri)
        .bind(&r.sub)
        .bind(&r.sid)
        .bind(&r.status)
        .bind(r.attempts)
        .bind(r.next_attempt_at)
        .bind(r.claimed_until)
        .bind(&r.last_error)
        .bind(r.created_at)
        .bind(r.updated_at)
        .bind(&r.kind)
        .bind(&r.session_index)
        .execute(&self.writer)
        .await
        .map_err(|e| crate::store::sql::db_error(|| "logout delivery".into(), e))?;
        Ok(())
    }

    async fn claim_logouts(
        &self,
        now: i64,
        lease_secs: i64,
        limit: i64,
    ) -> crate::store::StoreResult<Vec<crate::store::OutboxRecord>> {
        // The outer conditions are re-checked on each row when another node updated it first
        // (PostgreSQL re-evaluates them on the new row version), so a row is claimed once.
        sqlx::query_as(
            "UPDATE logout_outbox SET claimed_until = $2 WHERE id IN (SELECT id FROM logout_outbox \
             WHERE status = 'pending' AND next_attempt_at <= $1 AND (claimed_until IS NULL OR claimed_until < $1) \
             ORDER BY next_attempt_at LIMIT $3) AND status = 'pending' AND (claimed_until IS NULL OR claimed_until < $1) \
             RETURNING *",
        )
        .bind(now)
        .bind(now + lease_secs)
        .bind(limit)
        .fetch_all(&self.writer)
        .await
        .map_err(|e| crate::store::sql::db_error(|| "logout outbox".into(), e))
    }

    async fn settle_logout(&self, r: &crate::store::OutboxRecord) -> crate::store::StoreResult<()> {
        sqlx::query(
            "UPDATE logout_outbox SET status = $2, attempts = $3, next_attempt_at = $4, claimed_until = NULL, \
             last_error = $5, updated_at = $6 WHERE id = $1",
        )
        .bind(&r.id)
        .bind(&r.status)
        .bind(r.attempts)
        .bind(r.next_attempt_at)
        .bind(&r.last_error)
        .bind(r.updated_at)
        .execute(&self.writer)
        .await
        .map_err(|e| crate::store::sql::db_error(|| "logout delivery".into(), e))?;
        Ok(())
    }

    async fn logout_deliveries(
        &self,
        client_id: &str,
    ) -> crate::store::StoreResult<Vec<crate::store::OutboxRecord>> {
        sqlx::query_as(
            "SELECT * FROM logout_outbox WHERE client_id = $1 ORDER BY created_at DESC, id",
        )
        .bind(client_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| crate::store::sql::db_error(|| "logout outbox".into(), e))
    }

    async fn remember_cas_ticket(
        &self,
        t: &crate::store::CasTicketRecord,
    ) -> crate::store::StoreResult<Vec<String>> {
        sqlx::query(
            "INSERT INTO cas_tickets (ticket, stored_key, sid, client_id, service, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&t.ticket)
        .bind(&t.stored_key)
        .bind(&t.sid)
        .bind(&t.client_id)
        .bind(&t.service)
        .bind(t.created_at)
        .execute(&self.writer)
        .await
        .map_err(|e| crate::store::sql::db_error(|| "CAS ticket".into(), e))?;
        // The newest tickets of a service in a session are enough for its single logout: a
        // session asking again and again does not grow the table (or the logouts) without bound.
        let dropped: Vec<(String,)> = sqlx::query_as(
            "DELETE FROM cas_tickets WHERE sid = $1 AND client_id = $2 AND ticket NOT IN \
             (SELECT ticket FROM cas_tickets WHERE sid = $1 AND client_id = $2 \
              ORDER BY created_at DESC, ticket LIMIT $3) RETURNING stored_key",
        )
        .bind(&t.sid)
        .bind(&t.client_id)
        .bind(crate::store::CAS_TICKETS_KEPT)
        .fetch_all(&self.writer)
        .await
        .map_err(|e| crate::store::sql::db_error(|| "CAS ticket".into(), e))?;
        Ok(dropped.into_iter().map(|(k,)| k).collect())
    }

    async fn enqueue_cas_logouts(
        &self,
        sid: &str,
        client_id: Option<&str>,
        now: i64,
    ) -> crate::store::StoreResult<Vec<String>> {
        let err = |e| crate::store::sql::db_error(|| "CAS logout".into(), e);
        let mut tx = self.writer.begin().await.map_err(err)?;
        let issued: Vec<crate::store::CasTicketRecord> = sqlx::query_as(
            "DELETE FROM cas_tickets WHERE sid = $1 AND client_id = COALESCE($2, client_id) RETURNING *",
        )
        .bind(sid)
        .bind(client_id)
                .fetch_all(&mut *tx)
                .await
                .map_err(err)?;
        for t in &issued {
            sqlx::query(
                "INSERT INTO logout_outbox (id, client_id, uri, sub, sid, status, attempts, next_attempt_at, \
                 claimed_until, last_error, created_at, updated_at, kind, session_index) \
                 VALUES ($1, $2, $3, '', $4, 'pending', 0, $5, NULL, NULL, $5, $5, 'cas', $6)",
            )
            .bind(crate::crypto::random_token())
            .bind(&t.client_id)
            .bind(&t.service)
            .bind(sid)
            .bind(now)
            .bind(&t.ticket)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        }
        tx.commit().await.map_err(err)?;
        Ok(issued.into_iter().map(|t| t.stored_key).collect())
    }
}
