//! [`AuditStore`](crate::store::AuditStore) for the SQL engines.
//!
//! A batch is one transaction that begins by writing the head row (`UPDATE audit_head SET seq = seq`):
//! on PostgreSQL that takes the row lock, so a second node's batch waits for this one to commit and
//! then reads the moved head; on SQLite the first write takes the database's write lock. Either way
//! no two batches read the same head, and the chain is one line.

use super::Adapter;
use super::Db;

#[async_trait::async_trait]
impl crate::store::AuditStore for Adapter {
    async fn append_audit(
        &self,
        node: &str,
        events: &[(crate::domain::audit::AuditEvent, i64)],
    ) -> crate::store::StoreResult<Vec<crate::domain::audit::AuditRecord>> {
        use crate::store::sql::db_error;
        let err = |e| db_error(|| "audit log".into(), e);
        let mut tx = self.writer.begin().await.map_err(err)?;
        sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1")
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        let (mut seq, mut prev): (i64, Vec<u8>) =
            sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
                .fetch_one(&mut *tx)
                .await
                .map_err(err)?;
        let mut written = Vec::with_capacity(events.len());
        for (event, at_ms) in events {
            seq += 1;
            let r = crate::domain::audit::AuditRecord::chain(event, seq, *at_ms, node, &prev);
            prev = r.hash.clone();
            written.push(r);
        }
        // One multi-row INSERT per 16 records (a statement per record costs a round trip
        // each; on PostgreSQL 64-row statements measured slower than 16-row ones).
        for chunk in written.chunks(16) {
            let mut insert = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO audit_log (seq, at_ms, node, event, result, actor, target, client_id, \
                 channel, ip, user_agent, acr, request_id, reason, details, prev_hash, hash) ",
            );
            insert.push_values(chunk, |mut row, r| {
                row.push_bind(r.seq)
                    .push_bind(r.at_ms)
                    .push_bind(r.node.clone())
                    .push_bind(r.event.clone())
                    .push_bind(r.result.clone())
                    .push_bind(r.actor.clone())
                    .push_bind(r.target.clone())
                    .push_bind(r.client_id.clone())
                    .push_bind(r.channel.clone())
                    .push_bind(r.ip.clone())
                    .push_bind(r.user_agent.clone())
                    .push_bind(r.acr.clone())
                    .push_bind(r.request_id.clone())
                    .push_bind(r.reason.clone())
                    .push_bind(r.details.clone())
                    .push_bind(r.prev_hash.clone())
                    .push_bind(r.hash.clone());
            });
            insert.build().execute(&mut *tx).await.map_err(err)?;
        }
        sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
            .bind(seq)
            .bind(&prev)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        tx.commit().await.map_err(err)?;
        Ok(written)
    }

    async fn audit_head(&self) -> crate::store::StoreResult<(i64, Vec<u8>)> {
        sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| crate::store::sql::db_error(|| "audit head".into(), e))
    }

    async fn audit_records(
        &self,
        from: i64,
        limit: i64,
    ) -> crate::store::StoreResult<Vec<crate::domain::audit::AuditRecord>> {
        sqlx::query_as::<_, crate::store::sql::AuditRow>(
            "SELECT * FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2",
        )
        .bind(from)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map(|rows| rows.into_iter().map(Into::into).collect())
        .map_err(|e| crate::store::sql::db_error(|| "audit log".into(), e))
    }

    async fn audit_about(
        &self,
        id: &str,
        subject: &str,
        before: i64,
        limit: i64,
    ) -> crate::store::StoreResult<Vec<crate::domain::audit::AuditRecord>> {
        // Three indexed look-ups merged, rather than one OR the planner may scan for.
        sqlx::query_as::<_, crate::store::sql::AuditRow>(
            "SELECT * FROM audit_log WHERE seq IN ( \
               SELECT seq FROM (SELECT seq FROM audit_log WHERE actor = $1 AND seq < $3 ORDER BY seq DESC LIMIT $4) a \
               UNION SELECT seq FROM (SELECT seq FROM audit_log WHERE target = $1 AND seq < $3 ORDER BY seq DESC LIMIT $4) b \
               UNION SELECT seq FROM (SELECT seq FROM audit_log WHERE target = $2 AND seq < $3 ORDER BY seq DESC LIMIT $4) c) \
             ORDER BY seq DESC LIMIT $4",
        )
        .bind(id)
        .bind(subject)
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map(|rows| rows.into_iter().map(Into::into).collect())
        .map_err(|e| crate::store::sql::db_error(|| "audit log".into(), e))
    }

    async fn audit_records_since(
        &self,
        at_ms: i64,
        after: i64,
        limit: i64,
    ) -> crate::store::StoreResult<Vec<crate::domain::audit::AuditRecord>> {
        sqlx::query_as::<_, crate::store::sql::AuditRow>(
            "SELECT * FROM audit_log WHERE at_ms >= $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(at_ms)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map(|rows| rows.into_iter().map(Into::into).collect())
        .map_err(|e| crate::store::sql::db_error(|| "audit log".into(), e))
    }

    async fn count_by_client(
        &self,
        event: &str,
        since_ms: i64,
    ) -> crate::store::StoreResult<Vec<(String, i64)>> {
        sqlx::query_as(
            "SELECT client_id, COUNT(*) AS n FROM audit_log WHERE event = $1 AND at_ms >= $2 \
             AND client_id IS NOT NULL GROUP BY client_id ORDER BY client_id",
        )
        .bind(event)
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| crate::store::sql::db_error(|| "audit counts".into(), e))
    }

    async fn search_audit(
        &self,
        filter: &crate::store::AuditFilter,
        before: i64,
        limit: i64,
    ) -> crate::store::StoreResult<Vec<crate::domain::audit::AuditRecord>> {
        // Each filter is either absent (NULL) or an equality on an indexed column (migration 16
        // indexes actor and target; event and time narrow what those find).
        sqlx::query_as::<_, crate::store::sql::AuditRow>(
            "SELECT * FROM audit_log WHERE seq < $1 AND at_ms >= $2 AND at_ms < $3 \
             AND ($4 IS NULL OR event = $4) AND ($5 IS NULL OR actor = $5) \
             AND ($6 IS NULL OR target = $6) AND ($8 IS NULL OR client_id = $8) \
             AND ($9 IS NULL OR result = $9) ORDER BY seq DESC LIMIT $7",
        )
        .bind(before)
        .bind(filter.since_ms)
        .bind(filter.until_ms)
        .bind(filter.event.as_deref())
        .bind(filter.actor.as_deref())
        .bind(filter.target.as_deref())
        .bind(limit)
        .bind(filter.client_id.as_deref())
        .bind(filter.result.as_deref())
        .fetch_all(&self.pool)
        .await
        .map(|rows| rows.into_iter().map(Into::into).collect())
        .map_err(|e| crate::store::sql::db_error(|| "audit log".into(), e))
    }

    async fn insert_checkpoint(
        &self,
        c: &crate::domain::audit::CheckpointRecord,
    ) -> crate::store::StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO audit_checkpoints (seq, hash, at_ms, jws) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (seq) DO NOTHING",
        )
        .bind(c.seq)
        .bind(&c.hash)
        .bind(c.at_ms)
        .bind(&c.jws)
        .execute(&self.writer)
        .await
        .map_err(|e| crate::store::sql::db_error(|| "audit checkpoint".into(), e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn checkpoints(
        &self,
    ) -> crate::store::StoreResult<Vec<crate::domain::audit::CheckpointRecord>> {
        sqlx::query_as::<_, crate::store::sql::CheckpointRow>(
            "SELECT * FROM audit_checkpoints ORDER BY seq",
        )
        .fetch_all(&self.pool)
        .await
        .map(|rows| rows.into_iter().map(Into::into).collect())
        .map_err(|e| crate::store::sql::db_error(|| "audit checkpoints".into(), e))
    }

    async fn audit_first(&self) -> crate::store::StoreResult<Option<i64>> {
        sqlx::query_scalar("SELECT MIN(seq) FROM audit_log")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| crate::store::sql::db_error(|| "audit log".into(), e))
    }

    async fn prune_audit(&self, keep_from: i64) -> crate::store::StoreResult<u64> {
        let done = sqlx::query("DELETE FROM audit_log WHERE seq < $1")
            .bind(keep_from)
            .execute(&self.writer)
            .await
            .map_err(|e| crate::store::sql::db_error(|| "audit log".into(), e))?;
        Ok(done.rows_affected())
    }
}
