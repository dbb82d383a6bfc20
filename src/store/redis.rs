//! Redis adapter: the ephemeral store shared by several nodes. One multiplexed connection behind a
//! `ConnectionManager`, which reconnects by itself after Redis restarts; commands time out instead of
//! hanging while it is away. Atomicity comes from Redis: `GETDEL` for one-time take, `SET NX PX` for
//! put-if-absent, a Lua script for increment-with-expiry. Every key and channel carries the configured
//! prefix. Each subscription holds its own pub/sub connection and re-subscribes after a disconnect,
//! telling the subscriber with [`Notice::Resync`] that messages may have been missed.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Client, Script};
use tokio::sync::mpsc;

use super::{Ephemeral, Notice, StoreError, StoreResult, Subscription};
use crate::config::CacheConfig;

/// INCR, and start the window on the first increment: one round trip, atomic.
const INCREMENT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
";

pub struct RedisEphemeral {
    client: Client,
    conn: ConnectionManager,
    prefix: String,
    increment: Script,
    connect_timeout: Duration,
}

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::unavailable("redis", e)
}

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisEphemeral {
    /// Prepares the connection without waiting for Redis: a node whose Redis is briefly away starts,
    /// reports it on `/readyz`, and serves once Redis answers.
    pub fn open(config: &CacheConfig) -> StoreResult<Self> {
        let client =
            Client::open(config.url.as_str()).map_err(|e| StoreError::backend("cache.url", e))?;
        let connect_timeout = Duration::from_millis(config.connect_timeout_ms);
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(Duration::from_millis(config.response_timeout_ms)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), manager_config)
            .map_err(|e| StoreError::backend("cache.url", e))?;
        Ok(Self {
            client,
            conn,
            prefix: config.key_prefix.clone(),
            increment: Script::new(INCREMENT),
            connect_timeout,
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    async fn pubsub(
        client: &Client,
        channel: &str,
        timeout: Duration,
    ) -> StoreResult<redis::aio::PubSub> {
        let connect = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        match tokio::time::timeout(timeout, connect).await {
            Ok(result) => result.map_err(unavailable),
            Err(_) => Err(StoreError::Unavailable {
                context: "redis: subscribe timed out".into(),
                source: None,
            }),
        }
    }
}

#[async_trait]
impl Ephemeral for RedisEphemeral {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        let _: () = redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("PX")
            .arg(millis(ttl))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<bool> {
        let mut conn = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(millis(ttl))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(set.is_some())
    }

    async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let mut conn = self.conn.clone();
        conn.get(self.key(key)).await.map_err(unavailable)
    }

    async fn take(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let mut conn = self.conn.clone();
        redis::cmd("GETDEL")
            .arg(self.key(key))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn delete(&self, key: &str) -> StoreResult<bool> {
        let mut conn = self.conn.clone();
        let n: i64 = conn.del(self.key(key)).await.map_err(unavailable)?;
        Ok(n > 0)
    }

    async fn increment(&self, key: &str, window: Duration) -> StoreResult<i64> {
        let mut conn = self.conn.clone();
        self.increment
            .key(self.key(key))
            .arg(millis(window))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| match e.kind() {
                redis::ErrorKind::Server(_) => StoreError::backend(key.to_owned(), e),
                _ => unavailable(e),
            })
    }

    async fn publish(&self, channel: &str, message: &[u8]) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        let _: i64 = conn
            .publish(self.key(channel), message)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn subscribe(&self, channel: &str) -> StoreResult<Subscription> {
        let channel = self.key(channel);
        let timeout = self.connect_timeout;
        // Subscribed before returning, so a publish that follows is delivered.
        let first = Self::pubsub(&self.client, &channel, timeout).await?;
        let client = self.client.clone();
        let (tx, rx) = mpsc::channel(256);
        let task = tokio::spawn(async move {
            let mut pubsub = Some(first);
            let mut backoff = Duration::from_millis(50);
            loop {
                let Some(live) = pubsub.take() else {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    match Self::pubsub(&client, &channel, timeout).await {
                        Ok(p) => {
                            backoff = Duration::from_millis(50);
                            pubsub = Some(p);
                            if tx.send(Notice::Resync).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "redis subscription not restored yet")
                        }
                    }
                    continue;
                };
                let mut messages = live.into_on_message();
                while let Some(msg) = messages.next().await {
                    if tx
                        .send(Notice::Message(msg.get_payload_bytes().to_vec()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                tracing::warn!(channel = %channel, "redis subscription lost; resubscribing");
            }
        });
        Ok(Subscription::new(rx, Some(task.abort_handle())))
    }
}
