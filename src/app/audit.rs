//! The audit writer (docs/design.md, "Audit writer"): requests hand events to one task per process through a
//! bounded channel and wait until the batch carrying theirs is committed (group commit), so nothing
//! acknowledged is lost and one transaction serves many events; no request holds a lock for audit.
//! When the channel is full the event waits for room (counted and logged), it is never dropped.
//! The task ends when every handle is gone, after draining what was queued.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use crate::clock::Clock;
use crate::protocol::audit::{AuditEvent, AuditSink};
use crate::store::{AuditStore, StoreError};
use crate::telemetry::ErrorChain;

/// Events written per transaction at most.
const MAX_BATCH: usize = 512;

struct Pending {
    event: AuditEvent,
    at_ms: i64,
    done: oneshot::Sender<Result<(), Arc<StoreError>>>,
}

/// A handle to this process's audit writer.
#[derive(Clone)]
pub struct Auditor {
    tx: mpsc::Sender<Pending>,
    /// Events that found the channel full (a metric).
    full: prometheus_client::metrics::counter::Counter,
    /// Stamps each event when it is handed over.
    clock: Arc<dyn Clock>,
}

impl Auditor {
    /// Starts the writer for `node` (the name recorded with each record) over `store`.
    pub fn start(
        store: Arc<dyn AuditStore>,
        node: String,
        capacity: usize,
        full: prometheus_client::metrics::counter::Counter,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        tokio::spawn(write_batches(store, node, rx));
        Self { tx, full, clock }
    }
}

async fn write_batches(store: Arc<dyn AuditStore>, node: String, mut rx: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let events: Vec<(AuditEvent, i64)> =
            batch.iter().map(|p| (p.event.clone(), p.at_ms)).collect();
        let outcome = store
            .append_audit(&node, &events)
            .await
            .map(|_| ())
            .map_err(Arc::new);
        if let Err(e) = &outcome {
            tracing::error!(error = %ErrorChain(e.as_ref()), events = batch.len(), "audit records not written");
        }
        for p in batch.drain(..) {
            let _ = p.done.send(outcome.clone());
        }
    }
}

#[async_trait]
impl AuditSink for Auditor {
    async fn record(&self, event: AuditEvent) -> Result<(), StoreError> {
        let (done, wait) = oneshot::channel();
        let pending = Pending {
            event,
            at_ms: self.clock.now_ms(),
            done,
        };
        let stopped = || StoreError::failed("the audit writer has stopped");
        match self.tx.try_send(pending) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(pending)) => {
                self.full.inc();
                tracing::warn!("audit queue full; the request waits for room");
                self.tx.send(pending).await.map_err(|_| stopped())?;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(stopped()),
        }
        wait.await
            .map_err(|_| stopped())?
            .map_err(|e| StoreError::unavailable("the audit batch was not written", e))
    }
}
