//! PostgreSQL adapter, for several nodes sharing one database. Statements live in [`super::sql`].
//! The pool connects lazily, so a server started while the database is briefly away reports it on
//! `/readyz` instead of crashing; `migrate` needs it to answer.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Pool, Postgres};

use super::{StoreError, StoreResult};
use crate::config::DatabaseConfig;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PostgresStore {
    pool: Pool<Postgres>,
    /// The same pool: PostgreSQL takes concurrent writers.
    writer: Pool<Postgres>,
}

impl PostgresStore {
    pub async fn open(config: &DatabaseConfig) -> StoreResult<Self> {
        // The driver's error may quote the URL: only its redacted text goes on, not the error.
        let options = PgConnectOptions::from_str(&config.url).map_err(|e| {
            StoreError::failed(format!(
                "database.url: {}",
                crate::config::redact_url(&e.to_string())
            ))
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .min_connections(config.min_connections)
            .acquire_timeout(Duration::from_secs(config.acquire_timeout_secs))
            .connect_lazy_with(options.application_name("yihao"));
        Ok(Self {
            writer: pool.clone(),
            pool,
        })
    }
}

// The SQL written once for both engines, compiled here for Postgres (see `sql_engine/mod.rs`).
type Adapter = PostgresStore;
type Db = Postgres;
const BACKEND: &str = "postgres";
/// Accounts by name prefix (`AccountStore::accounts_by_name`): compared in the "C" collation (byte,
/// so code-point, order, whatever the database's collation), on the expression index
/// `accounts_by_name`; a range, not LIKE, so a prepared statement's generic plan uses the index.
const ACCOUNTS_BY_NAME: &str = "SELECT * FROM accounts WHERE (name COLLATE \"C\") >= $1 \
     AND (name COLLATE \"C\") < $2 AND ((name COLLATE \"C\") > $3 \
     OR ((name COLLATE \"C\") = $3 AND (id COLLATE \"C\") > $4)) \
     ORDER BY (name COLLATE \"C\"), (id COLLATE \"C\") LIMIT $5";
#[path = "sql_engine/mod.rs"]
#[allow(
    clippy::duplicate_mod,
    reason = "the same SQL code, compiled once per engine"
)]
mod sql_engine;
