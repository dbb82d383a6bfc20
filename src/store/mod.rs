//! Storage ports and their adapters.
//!
//! - [`Store`]: the durable store (clients now; accounts, organisations, consents, refresh-token
//!   families, keys and audit as later capabilities add them). Adapters: [`sqlite`], [`postgres`], both
//!   written once in [`sql`] with portable SQL (`$N` placeholders, TEXT ids, BIGINT epoch seconds).
//! - [`Ephemeral`]: values with a time to live, atomic one-time take, counters with expiry and
//!   publish/subscribe between nodes. Adapters: [`memory`] (in-process) and [`redis`].
//!
//! Only `app.rs` names an adapter; everything else holds `Arc<dyn Store>` / `Arc<dyn Ephemeral>`.
//! Adapters may read the clock for TTLs; they hold no protocol rules.

use std::time::Duration;

use async_trait::async_trait;

use crate::domain::client::{Client, ClientId};

pub mod memory;
pub mod postgres;
pub mod redis;
pub mod sql;
pub mod sqlite;

/// A storage failure. `Conflict` and `NotFound` are outcomes callers act on; `Unavailable` means the
/// backend did not answer; `Corrupt` means stored data no longer parses (a bug or tampering).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} already exists")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The durable store. Every adapter passes `tests/store_contract.rs`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`: for logs, metrics and `/readyz`.
    fn backend(&self) -> &'static str;
    /// A round trip to the database.
    async fn ping(&self) -> StoreResult<()>;
    /// Applies the pending embedded migrations of this engine.
    async fn migrate(&self) -> StoreResult<()>;
    /// Closes the pool, waiting for checked-out connections to come back.
    async fn close(&self);

    /// Registers a client; `Conflict` when its id is taken.
    async fn insert_client(&self, client: &Client) -> StoreResult<()>;
    /// Replaces a registered client; `NotFound` when there is none with that id.
    async fn update_client(&self, client: &Client) -> StoreResult<()>;
    async fn client(&self, id: &ClientId) -> StoreResult<Option<Client>>;
    /// All clients, ordered by id.
    async fn clients(&self) -> StoreResult<Vec<Client>>;
    /// Deletes a client; `false` when there was none.
    async fn delete_client(&self, id: &ClientId) -> StoreResult<bool>;
}

/// What a subscriber receives: a message, or notice that messages may have been missed (the
/// connection to the bus was lost and re-established, or the subscriber fell behind). Consumers that
/// cache reload everything on `Resync`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Message(Vec<u8>),
    Resync,
}

/// A live subscription to one channel. Dropping it unsubscribes.
pub struct Subscription {
    rx: tokio::sync::mpsc::Receiver<Notice>,
    _guard: Option<tokio::task::AbortHandle>,
}

impl Subscription {
    pub(crate) fn new(
        rx: tokio::sync::mpsc::Receiver<Notice>,
        task: Option<tokio::task::AbortHandle>,
    ) -> Self {
        Self { rx, _guard: task }
    }

    /// The next notice; `None` when the store has shut down.
    pub async fn recv(&mut self) -> Option<Notice> {
        self.rx.recv().await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(task) = &self._guard {
            task.abort();
        }
    }
}

/// The ephemeral store. Keys are the caller's; adapters may prefix them. Values are bytes.
#[async_trait]
pub trait Ephemeral: Send + Sync + 'static {
    /// `"memory"` or `"redis"`.
    fn backend(&self) -> &'static str;
    async fn ping(&self) -> StoreResult<()>;
    /// Stores `value` under `key` for `ttl`, replacing what was there.
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<()>;
    /// Stores `value` only if `key` holds nothing; `true` when stored (replay detection).
    async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<bool>;
    async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Removes and returns the value in one atomic step: of two concurrent takes, one gets it.
    async fn take(&self, key: &str) -> StoreResult<Option<Vec<u8>>>;
    /// `true` when something was deleted.
    async fn delete(&self, key: &str) -> StoreResult<bool>;
    /// Adds one to the counter at `key` and returns the new value; the first increment starts its
    /// `window` (the counter expires `window` after it was created, as fixed-window rate limits need).
    async fn increment(&self, key: &str, window: Duration) -> StoreResult<i64>;
    /// Sends `message` to every current subscriber of `channel` on every node.
    async fn publish(&self, channel: &str, message: &[u8]) -> StoreResult<()>;
    /// Subscribes to `channel`; messages published after this returns are delivered.
    async fn subscribe(&self, channel: &str) -> StoreResult<Subscription>;
}
