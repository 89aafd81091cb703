//! A sink's queue: batches and barriers in order, bounded in bytes, so a slow sink holds back
//! the source only once its own queue is full, and memory stays bounded whatever the batch
//! sizes.
use std::sync::Arc;

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::schema::TableDdl;
use crate::sink::Batch;

/// A checkpoint's place in the stream: everything before it in the queue forms whole
/// transactions up to the checkpoint `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Barrier {
    /// Increasing per run; the committer's key for the checkpoint.
    pub id: u64,
    /// The checkpoint's `next_seq`.
    pub next_seq: u64,
    /// Commit time of the newest change before it, ms since the epoch (for lag).
    pub newest_change_ms: Option<i64>,
    /// Flush at once instead of at the sink's interval (the first checkpoint of a fresh start).
    pub urgent: bool,
}

pub enum Item {
    /// The permit returns the batch's bytes to the queue once the sink has taken it.
    Events(Batch, OwnedSemaphorePermit),
    Barrier(Barrier),
    /// A whole-table DDL, in its place among the batches.
    TableDdl(Arc<TableDdl>),
}

pub struct QueueTx {
    tx: mpsc::UnboundedSender<Item>,
    budget: Arc<Semaphore>,
    capacity: usize,
}

pub type QueueRx = mpsc::UnboundedReceiver<Item>;

/// A queue holding at most `capacity` bytes of events (a larger batch is let through alone).
pub fn queue(capacity: usize) -> (QueueTx, QueueRx) {
    let (tx, rx) = mpsc::unbounded_channel();
    (QueueTx { tx, budget: Arc::new(Semaphore::new(capacity)), capacity }, rx)
}

/// The receiving sink task ended (it failed or stopped).
#[derive(Debug)]
pub struct Closed;

impl QueueTx {
    /// Waits for room, then queues the batch.
    pub async fn push(&self, batch: &Batch) -> Result<(), Closed> {
        let want = batch.bytes.clamp(1, self.capacity);
        let permit = Arc::clone(&self.budget).acquire_many_owned(want as u32).await.map_err(|_| Closed)?;
        self.tx.send(Item::Events(Arc::clone(batch), permit)).map_err(|_| Closed)
    }

    pub fn barrier(&self, b: Barrier) -> Result<(), Closed> {
        self.tx.send(Item::Barrier(b)).map_err(|_| Closed)
    }

    pub fn table_ddl(&self, ddl: &Arc<TableDdl>) -> Result<(), Closed> {
        self.tx.send(Item::TableDdl(Arc::clone(ddl))).map_err(|_| Closed)
    }

    /// Bytes of events queued and not yet taken by the sink.
    pub fn queued_bytes(&self) -> usize {
        self.capacity - self.budget.available_permits()
    }
}
