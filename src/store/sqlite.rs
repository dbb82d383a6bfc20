//! SQLite adapter: the embedded default (`sqlite://data/yihao.db`). The file and its folder are
//! created on first start; WAL journal, foreign keys on, a busy timeout instead of instant
//! `SQLITE_BUSY`. Statements live in [`super::sql`].

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Sqlite};

use super::{StoreError, StoreResult};
use crate::config::DatabaseConfig;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    /// Readers: WAL lets them run beside the writer.
    pool: Pool<Sqlite>,
    /// The one writer connection.
    writer: Pool<Sqlite>,
}

impl SqliteStore {
    pub async fn open(config: &DatabaseConfig) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(&config.url)
            .map_err(|e| StoreError::backend("database.url", e))?
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
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::backend(format!("cannot create {}", dir.display()), e))?;
        }
        let open = |max: u32, min: u32| {
            SqlitePoolOptions::new()
                .max_connections(max)
                .min_connections(min)
                .acquire_timeout(Duration::from_secs(config.acquire_timeout_secs))
                .connect_with(options.clone())
        };
        let cannot = |e| StoreError::unavailable("cannot open SQLite database", e);
        // The writer first: it creates the file and switches it to WAL.
        let writer = open(1, 1).await.map_err(cannot)?;
        let pool = open(config.max_connections, config.min_connections)
            .await
            .map_err(cannot)?;
        Ok(Self { pool, writer })
    }
}

// The SQL written once for both engines, compiled here for Sqlite (see `sql_engine/mod.rs`).
type Adapter = SqliteStore;
type Db = Sqlite;
const BACKEND: &str = "sqlite";
/// Accounts by name prefix (`AccountStore::accounts_by_name`): SQLite compares text as bytes, which
/// for UTF-8 is code-point order, on the index `accounts_by_name (name, id)`.
const ACCOUNTS_BY_NAME: &str = "SELECT * FROM accounts WHERE name >= $1 AND name < $2 \
     AND (name > $3 OR (name = $3 AND id > $4)) ORDER BY name, id LIMIT $5";
#[path = "sql_engine/mod.rs"]
#[allow(
    clippy::duplicate_mod,
    reason = "the same SQL code, compiled once per engine"
)]
mod sql_engine;
