//! SQLite adapter: the embedded default (`sqlite://data/yihao.db`). The file and its folder are
//! created on first start; WAL journal, foreign keys on, a busy timeout instead of instant
//! `SQLITE_BUSY`. Statements live in [`super::sql`].

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Sqlite};

use super::sql::sql_store;
use super::{StoreError, StoreResult};
use crate::config::DatabaseConfig;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    pool: Pool<Sqlite>,
}

impl SqliteStore {
    pub async fn open(config: &DatabaseConfig) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(&config.url)
            .map_err(|e| StoreError::Backend(format!("database.url: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(config.acquire_timeout_secs));
        let file = options.get_filename();
        let on_disk = !file.as_os_str().is_empty() && file.as_os_str() != ":memory:";
        if let Some(dir) = file
            .parent()
            .filter(|d| on_disk && !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Backend(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(config.max_connections)
            .min_connections(config.min_connections)
            .acquire_timeout(Duration::from_secs(config.acquire_timeout_secs))
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Unavailable(format!("cannot open SQLite database: {e}")))?;
        Ok(Self { pool })
    }
}

sql_store!(SqliteStore, Sqlite, "sqlite");
