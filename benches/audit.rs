//! Audit record cost: `cargo bench --bench audit`. SQLite (a file in a temporary folder) always;
//! PostgreSQL when YIHAO_TEST_DATABASE_URL is set (its own schema, dropped afterwards).
//! - `append/N`: one transaction of N records through the store (the writer's unit of work).
//! - `record/concurrent_64`: 64 requests recording at once through the writer (group commit), as
//!   a busy node does; the time per element is the cost per event seen by the system.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use yihao::protocol::audit::{AuditEvent, AuditSink, EventType};
use yihao::store::Store;

fn event(i: usize) -> AuditEvent {
    AuditEvent::success(EventType::TokenIssued)
        .actor("6f0c6b6e-2c8e-4d54-9a53-7c1c2c9d0001")
        .client("hall")
        .details(serde_json::json!({ "grant_type": "authorization_code", "scope": "openid profile", "jti": i }))
}

async fn sqlite(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    let mut config = yihao::config::Config::load_with_env(None, []).unwrap();
    config.database.url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = yihao::app::open_store(&config.database).await.unwrap();
    store.migrate().await.unwrap();
    store
}

async fn postgres() -> Option<(Arc<dyn Store>, String, String)> {
    let base = std::env::var("YIHAO_TEST_DATABASE_URL").ok()?;
    let schema = format!("yihao_bench_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::PgPool::connect(&base).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let mut config = yihao::config::Config::load_with_env(None, []).unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    config.database.url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    let store = yihao::app::open_store(&config.database).await.unwrap();
    store.migrate().await.unwrap();
    Some((store, base, schema))
}

fn bench_store(c: &mut Criterion, rt: &tokio::runtime::Runtime, name: &str, store: Arc<dyn Store>) {
    let mut group = c.benchmark_group(format!("audit_{name}"));
    for n in [1usize, 16, 128] {
        let events: Vec<(AuditEvent, i64)> =
            (0..n).map(|i| (event(i), 1_800_000_000_000)).collect();
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("append", n), &events, |b, events| {
            b.to_async(rt)
                .iter(|| async { store.append_audit("bench", events).await.unwrap() });
        });
    }
    let auditor = rt.block_on(async {
        yihao::app::Auditor::start(
            store.clone(),
            "bench".into(),
            4096,
            prometheus_client::metrics::counter::Counter::default(),
            std::sync::Arc::new(yihao::clock::SystemClock),
        )
    });
    group.throughput(Throughput::Elements(64));
    group.bench_function("record/concurrent_64", |b| {
        b.to_async(rt).iter(|| {
            let auditor = auditor.clone();
            async move {
                let all = (0..64).map(|i| {
                    let auditor = auditor.clone();
                    async move { auditor.record(event(i)).await.unwrap() }
                });
                futures::future::join_all(all).await;
            }
        });
    });
    group.finish();
}

fn audit(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = rt.block_on(sqlite(&dir));
    bench_store(c, &rt, "sqlite", store);
    if let Some((store, base, schema)) = rt.block_on(postgres()) {
        bench_store(c, &rt, "postgres", store);
        rt.block_on(async {
            let admin = sqlx::PgPool::connect(&base).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .execute(&admin)
                .await
                .unwrap();
        });
    }
}

criterion_group!(benches, audit);
criterion_main!(benches);
