//! In-process ephemeral store: the default for a single node. Expired entries are dropped on access
//! and swept out of memory by a background task that visits only what has expired (an expiry index
//! ordered by deadline), so a sweep costs O(expired · log n), not a scan of the whole map.
//! Publish/subscribe reaches subscribers in this process only.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::{broadcast, mpsc};

use super::{Ephemeral, Notice, StoreError, StoreResult, Subscription};

struct Entry {
    value: Vec<u8>,
    deadline: Instant,
    /// Distinguishes this write from an earlier one under the same key in the expiry index.
    seq: u64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    expiry: BTreeMap<(Instant, u64), String>,
    seq: u64,
}

impl Inner {
    fn live(&mut self, key: &str, now: Instant) -> Option<&mut Entry> {
        let expired = self.entries.get(key).is_some_and(|e| e.deadline <= now);
        if expired {
            self.remove(key);
        }
        self.entries.get_mut(key)
    }

    fn insert(&mut self, key: &str, value: Vec<u8>, deadline: Instant) {
        self.seq += 1;
        let seq = self.seq;
        if let Some(old) = self.entries.insert(
            key.to_owned(),
            Entry {
                value,
                deadline,
                seq,
            },
        ) {
            self.expiry.remove(&(old.deadline, old.seq));
        }
        self.expiry.insert((deadline, seq), key.to_owned());
    }

    fn remove(&mut self, key: &str) -> Option<Vec<u8>> {
        let old = self.entries.remove(key)?;
        self.expiry.remove(&(old.deadline, old.seq));
        Some(old.value)
    }

    /// Drops every entry whose deadline has passed; returns how many.
    fn sweep(&mut self, now: Instant) -> usize {
        let mut dropped = 0;
        while let Some(entry) = self.expiry.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            self.entries.remove(&key);
            dropped += 1;
        }
        if dropped > 0
            && self.entries.capacity() > 64
            && self.entries.len() < self.entries.capacity() / 4
        {
            self.entries.shrink_to_fit();
        }
        dropped
    }
}

pub struct MemoryEphemeral {
    inner: Arc<Mutex<Inner>>,
    channels: Mutex<HashMap<String, broadcast::Sender<Vec<u8>>>>,
}

impl MemoryEphemeral {
    /// Creates the store and starts its sweeper on the current tokio runtime; the sweeper stops when
    /// the store is dropped.
    pub fn new(sweep_interval: Duration) -> Arc<Self> {
        let store = Arc::new(Self {
            inner: Arc::new(Mutex::new(Inner::default())),
            channels: Mutex::new(HashMap::new()),
        });
        let weak: Weak<Mutex<Inner>> = Arc::downgrade(&store.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(sweep_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                let dropped = lock(&inner).sweep(Instant::now());
                if dropped > 0 {
                    tracing::trace!(dropped, "swept expired ephemeral entries");
                }
            }
        });
        store
    }

    /// Entries held in memory, expired or not: lets tests see that expiry reclaims memory.
    pub fn held(&self) -> usize {
        lock(&self.inner).entries.len()
    }

    fn state(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }
}

/// A poisoned lock means a panic while holding it; the map is still consistent (every mutation is a
/// single call), so keep serving rather than turning one bug into an outage.
fn lock(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn deadline(ttl: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(ttl)
        .unwrap_or(now + Duration::from_secs(100 * 365 * 86_400))
}

#[async_trait]
impl Ephemeral for MemoryEphemeral {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<()> {
        self.state().insert(key, value.to_vec(), deadline(ttl));
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<bool> {
        let mut state = self.state();
        if state.live(key, Instant::now()).is_some() {
            return Ok(false);
        }
        state.insert(key, value.to_vec(), deadline(ttl));
        Ok(true)
    }

    async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self
            .state()
            .live(key, Instant::now())
            .map(|e| e.value.clone()))
    }

    async fn take(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let mut state = self.state();
        if state.live(key, Instant::now()).is_none() {
            return Ok(None);
        }
        Ok(state.remove(key))
    }

    async fn delete(&self, key: &str) -> StoreResult<bool> {
        let mut state = self.state();
        Ok(state.live(key, Instant::now()).is_some() && state.remove(key).is_some())
    }

    async fn increment(&self, key: &str, window: Duration) -> StoreResult<i64> {
        let mut state = self.state();
        let Some(entry) = state.live(key, Instant::now()) else {
            state.insert(key, b"1".to_vec(), deadline(window));
            return Ok(1);
        };
        let current: i64 = std::str::from_utf8(&entry.value)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| StoreError::failed(format!("{key} does not hold a counter")))?;
        let next = current
            .checked_add(1)
            .ok_or_else(|| StoreError::failed(format!("{key} counter overflow")))?;
        entry.value = next.to_string().into_bytes();
        Ok(next)
    }

    async fn publish(&self, channel: &str, message: &[u8]) -> StoreResult<()> {
        let channels = self
            .channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(tx) = channels.get(channel) {
            // An error only means nobody listens now, which is not a failure of publishing.
            let _ = tx.send(message.to_vec());
        }
        Ok(())
    }

    async fn subscribe(&self, channel: &str) -> StoreResult<Subscription> {
        let mut rx = {
            let mut channels = self
                .channels
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            channels.retain(|_, tx| tx.receiver_count() > 0);
            channels
                .entry(channel.to_owned())
                .or_insert_with(|| broadcast::channel(256).0)
                .subscribe()
        };
        let (tx, out) = mpsc::channel(256);
        let task = tokio::spawn(async move {
            loop {
                let notice = match rx.recv().await {
                    Ok(message) => Notice::Message(message),
                    Err(broadcast::error::RecvError::Lagged(_)) => Notice::Resync,
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                if tx.send(notice).await.is_err() {
                    break;
                }
            }
        });
        Ok(Subscription::new(out, Some(task.abort_handle())))
    }
}
