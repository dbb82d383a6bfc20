//! The audit chain on each engine: tampering done with SQL is named by `verify`, two nodes writing at
//! once produce one valid chain, and a restart continues it. SQLite always; PostgreSQL when
//! YIHAO_TEST_DATABASE_URL is set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use yihao::app::App;
use yihao::domain::audit::ChainError;
use yihao::protocol::audit::{AuditEvent, AuditSink, EventType};

use common::verify_audit;

/// A node on `database`, with its folder or schema kept alive by the caller.
async fn node(
    tc: &common::TestConfig,
    database: &yihao::config::DatabaseConfig,
    name: &str,
) -> Arc<App> {
    let mut config = tc.config.clone();
    config.database = database.clone();
    config.audit.node = name.into();
    App::build(config).await.unwrap()
}

async fn write(app: &App, n: usize, tag: &str) {
    for i in 0..n {
        app.audit
            .record(
                AuditEvent::success(EventType::LoginSuccess)
                    .actor(format!("{tag}-{i}"))
                    .client("hall"),
            )
            .await
            .unwrap();
    }
}

async fn checkpoint(app: &App) {
    let (seq, hash) = app.store.audit_head().await.unwrap();
    let c = yihao::protocol::audit::checkpoint(
        &app.keys.ring(),
        yihao::crypto::signing::Alg::RS256,
        &app.config.server.issuer,
        seq,
        &hash,
        app.clock.now_ms(),
    )
    .unwrap();
    assert!(app.store.insert_checkpoint(&c).await.unwrap());
}

/// Runs SQL on the node's database directly, as someone with database access would.
async fn sql(database: &yihao::config::DatabaseConfig, statements: &[&str]) {
    if database.url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(&database.url).await.unwrap();
        for s in statements {
            sqlx::query(sqlx::AssertSqlSafe(s.to_string()))
                .execute(&pool)
                .await
                .unwrap();
        }
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(&database.url).await.unwrap();
        for s in statements {
            sqlx::query(sqlx::AssertSqlSafe(s.to_string()))
                .execute(&pool)
                .await
                .unwrap();
        }
        pool.close().await;
    }
}

/// The chain of 20 records, checkpointed at 20, then `tamper`ed with: verify names `expected`.
async fn tampered(
    tc: &common::TestConfig,
    database: &yihao::config::DatabaseConfig,
    tamper: &[&str],
    expected: ChainError,
) {
    let app = node(tc, database, "node-a").await;
    write(&app, 20, "p").await;
    checkpoint(&app).await;
    assert_eq!(verify_audit(&app).await, Ok(20));
    sql(database, tamper).await;
    assert_eq!(verify_audit(&app).await, Err(expected));
}

/// Recomputes every hash from `from` on (and the head) as an attacker with the algorithm would.
async fn rewrite_from(app: &App, database: &yihao::config::DatabaseConfig, from: i64) {
    let records = app.store.audit_records(1, 1000).await.unwrap();
    let mut prev = records[(from - 2) as usize].hash.clone();
    let mut statements = Vec::new();
    for r in records.iter().filter(|r| r.seq >= from) {
        let mut r = r.clone();
        r.prev_hash = prev.clone();
        r.hash = r.computed_hash().to_vec();
        statements.push(format!(
            "UPDATE audit_log SET prev_hash = {}, hash = {} WHERE seq = {}",
            blob(database, &r.prev_hash),
            blob(database, &r.hash),
            r.seq
        ));
        prev = r.hash;
    }
    let last = records.last().unwrap().seq;
    statements.push(format!(
        "UPDATE audit_head SET hash = {} WHERE seq = {last}",
        blob(database, &prev)
    ));
    let refs: Vec<&str> = statements.iter().map(String::as_str).collect();
    sql(database, &refs).await;
}

fn blob(database: &yihao::config::DatabaseConfig, bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if database.url.starts_with("sqlite") {
        format!("X'{hex}'")
    } else {
        format!("'\\x{hex}'::bytea")
    }
}

macro_rules! audit_suite {
    ($backend:ident, $open:expr, $var:expr) => {
        mod $backend {
            use super::*;

            async fn open() -> Option<(common::TestConfig, yihao::config::DatabaseConfig, Box<dyn std::any::Any>)> {
                let tc = common::test_config();
                #[allow(clippy::redundant_closure_call)]
                let Some((database, guard)) = ($open)(&tc).await else {
                    common::not_configured($var);
                    return None;
                };
                Some((tc, database, guard))
            }

            #[tokio::test]
            async fn a_changed_record_is_named() {
                let Some((tc, db, _g)) = open().await else { return };
                tampered(&tc, &db, &["UPDATE audit_log SET actor = 'someone-else' WHERE seq = 7"], ChainError::Altered(7)).await;
            }

            #[tokio::test]
            async fn a_deleted_record_is_named() {
                let Some((tc, db, _g)) = open().await else { return };
                tampered(&tc, &db, &["DELETE FROM audit_log WHERE seq = 7"], ChainError::Missing(7)).await;
            }

            #[tokio::test]
            async fn the_oldest_records_deleted_without_retention_are_named() {
                let Some((tc, db, _g)) = open().await else { return };
                // Retention keeps a checkpointed record as the new first one; record 4 is not.
                tampered(&tc, &db, &["DELETE FROM audit_log WHERE seq <= 3"], ChainError::Missing(3)).await;
            }

            #[tokio::test]
            async fn an_inserted_record_is_named() {
                let Some((tc, db, _g)) = open().await else { return };
                // Make room at 10 by renumbering the rest, then copy record 9's successor link into a
                // forged record 10 (its prev_hash right, its content new).
                tampered(
                    &tc,
                    &db,
                    &[
                        "UPDATE audit_log SET seq = seq + 100 WHERE seq >= 10",
                        "UPDATE audit_log SET seq = seq - 99 WHERE seq >= 110",
                        "INSERT INTO audit_log (seq, at_ms, node, event, result, actor, prev_hash, hash) \
                         SELECT 10, at_ms, node, 'admin_client', 'success', 'forger', hash, hash FROM audit_log WHERE seq = 9",
                    ],
                    ChainError::Altered(10),
                )
                .await;
            }

            #[tokio::test]
            async fn a_rewritten_chain_is_caught_by_the_signed_checkpoint() {
                let Some((tc, db, _g)) = open().await else { return };
                let app = node(&tc, &db, "node-a").await;
                write(&app, 20, "p").await;
                checkpoint(&app).await;
                sql(&db, &["UPDATE audit_log SET actor = 'someone-else' WHERE seq = 5"]).await;
                rewrite_from(&app, &db, 5).await;
                assert_eq!(
                    verify_audit(&app).await,
                    Err(ChainError::Checkpoint(
                        20,
                        "the chain was rewritten: the record's hash is not the signed one".into()
                    ))
                );
            }

            #[tokio::test]
            async fn a_truncated_chain_is_caught() {
                let Some((tc, db, _g)) = open().await else { return };
                tampered(
                    &tc,
                    &db,
                    &[
                        "DELETE FROM audit_log WHERE seq > 15",
                        "UPDATE audit_head SET seq = 15, hash = (SELECT hash FROM audit_log WHERE seq = 15)",
                    ],
                    ChainError::Checkpoint(20, "the record it covers is missing (truncated?)".into()),
                )
                .await;
            }

            #[tokio::test]
            async fn two_nodes_writing_at_once_make_one_chain_and_a_restart_continues_it() {
                let Some((tc, db, _g)) = open().await else { return };
                let (a, b) = (node(&tc, &db, "node-a").await, node(&tc, &db, "node-b").await);
                let writers: Vec<_> = [("a", a.clone()), ("b", b.clone())]
                    .into_iter()
                    .flat_map(|(tag, app)| {
                        (0..4).map(move |w| {
                            let app = app.clone();
                            tokio::spawn(async move { write(&app, 50, &format!("{tag}{w}")).await })
                        })
                    })
                    .collect();
                for w in writers {
                    w.await.unwrap();
                }
                assert_eq!(verify_audit(&a).await, Ok(400));
                let records = a.store.audit_records(1, 1000).await.unwrap();
                for name in ["node-a", "node-b"] {
                    assert_eq!(records.iter().filter(|r| r.node == name).count(), 200);
                }
                drop((a, b));
                let again = node(&tc, &db, "node-a").await;
                write(&again, 3, "after-restart").await;
                assert_eq!(verify_audit(&again).await, Ok(403));
            }
        }
    };
}

audit_suite!(
    sqlite,
    |tc: &common::TestConfig| {
        let db = tc.config.database.clone();
        async move { Some((db, Box::new(()) as Box<dyn std::any::Any>)) }
    },
    ""
);
audit_suite!(
    postgres,
    |_: &common::TestConfig| async {
        let db = common::postgres_database().await?;
        Some((db.config.clone(), Box::new(db) as Box<dyn std::any::Any>))
    },
    common::PG_URL_VAR
);
