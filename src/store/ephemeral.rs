//! The ephemeral store's port: values with a time to live, atomic one-time take, counters with a
//! window, and publish/subscribe between nodes. Adapters: [`memory`](super::memory) (in-process)
//! and [`redis`](super::redis).

use std::time::Duration;

use async_trait::async_trait;

use super::StoreResult;

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
