//! The SQL adapters' code, written once and compiled once per engine: `sqlite.rs` and
//! `postgres.rs` each include this directory as a module (`#[path = "sql_engine/mod.rs"]`), after
//! naming their adapter (`Adapter`, with `pool` and `writer` fields), their sqlx database (`Db`),
//! `BACKEND` and `MIGRATOR`. The statements are portable (`$N` placeholders, which sqlx-sqlite binds
//! by position; TEXT ids; BIGINT epoch seconds), so the same text serves both; each engine's copy is
//! type-checked against its own driver. The shared row types and conversions are in
//! [`store::sql`](crate::store::sql).
//!
//! Why not one generic `impl<DB: sqlx::Database>`: every query on a generic pool needs the
//! higher-ranked bounds `for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>` and
//! `for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>`, plus `Type + Encode + Decode` for each column
//! type and `FromRow` for each row, repeated on every impl (Rust does not imply where-clauses of a
//! helper trait); and `async_trait` then needs `Send` bounds on the engine's connection and
//! arguments as well. Compiling the same plain code per engine keeps it readable, formatted by
//! rustfmt, and checked by the compiler with concrete types. (Until this layout the same code was
//! a `macro_rules!` body, which rustfmt does not format.)

mod accounts;
mod admins;
mod audit;
mod clients;
mod consents;
mod factors;
mod keys;
mod orgs;
mod outbox;
mod refresh;
mod revocations;
mod sessions;

use super::{ACCOUNTS_BY_NAME, Adapter, BACKEND, Db, MIGRATOR};

#[async_trait::async_trait]
impl crate::store::Store for Adapter {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn ping(&self) -> crate::store::StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(|e| crate::store::sql::db_error(|| "ping".into(), e))?;
        Ok(())
    }

    async fn migrate(&self) -> crate::store::StoreResult<()> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(crate::store::sql::migrate_error)
    }

    async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }
}
