//! Registered clients held in memory. Every token, introspection and authorization request names a
//! client, so each node reads them here instead of asking the database: the whole registry is loaded
//! at start-up and again every `cache.clients_reload_ms`, and a client is dropped from memory as soon
//! as its change is announced on the clients channel (the CLI announces every change; through Redis
//! that reaches every node, with the in-process store the periodic reload does). A client not held
//! (registered since the last reload) is read from the store and kept.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;

use super::{ClientLookup, ClientStore, StoreResult};
use crate::domain::client::{Client, ClientId};

/// Channel on which running nodes hear that a client changed (payload: the client_id).
pub const CLIENTS_CHANNEL: &str = "clients";

pub struct ClientCache {
    store: Arc<dyn ClientStore>,
    clients: RwLock<HashMap<String, Client>>,
}

impl ClientCache {
    /// An empty cache over `store`; [`ClientCache::reload`] fills it.
    pub fn new(store: Arc<dyn ClientStore>) -> Self {
        Self {
            store,
            clients: RwLock::default(),
        }
    }

    /// Replaces what is held with the registry as the store has it now.
    pub async fn reload(&self) -> StoreResult<()> {
        let all = self.store.clients().await?;
        let fresh = all
            .into_iter()
            .map(|c| (c.id().as_str().to_owned(), c))
            .collect();
        *self.clients.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    /// The client with this id: from memory, else from the store (and then kept); none while it
    /// waits for approval.
    pub async fn client(&self, id: &ClientId) -> StoreResult<Option<Client>> {
        let held = self
            .clients
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id.as_str())
            .cloned();
        if held.is_some() {
            return Ok(held.filter(|c| !c.settings().pending));
        }
        let found = ClientStore::client(self.store.as_ref(), id).await?;
        if let Some(client) = &found {
            self.clients
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id.as_str().to_owned(), client.clone());
        }
        // A client waiting for approval signs nobody in and gets no token: to the protocol it is
        // not registered yet (docs/integration/registration.md).
        Ok(found.filter(|c| !c.settings().pending))
    }

    /// The held client `choose` picks among all held (a CAS login looks its service up this way; a
    /// client registered since the last reload is found after the next one).
    pub fn pick(
        &self,
        choose: impl for<'a> FnOnce(&mut dyn Iterator<Item = &'a Client>) -> Option<&'a Client>,
    ) -> Option<Client> {
        let held = self.clients.read().unwrap_or_else(|e| e.into_inner());
        choose(&mut held.values().filter(|c| !c.settings().pending)).cloned()
    }

    /// Drops one client, so the next request reads it from the store.
    pub fn forget(&self, id: &str) {
        self.clients
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}

#[async_trait]
impl ClientLookup for ClientCache {
    async fn client(&self, id: &ClientId) -> StoreResult<Option<Client>> {
        ClientCache::client(self, id).await
    }
}
