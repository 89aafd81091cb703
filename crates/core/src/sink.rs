//! The sink contract.
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value as Json;

use crate::error::Result;
use crate::event::ChangeEvent;
use crate::pipeline::SinkSpec;
use crate::schema::TableDdl;

/// Events in commit order, shared by every sink (the pipeline never deep-copies a batch per
/// sink). `bytes` is an estimate of the memory they hold, for the sinks' bounded queues.
#[derive(Debug)]
pub struct EventBatch {
    pub events: Vec<ChangeEvent>,
    pub bytes: usize,
}

pub type Batch = Arc<EventBatch>;

/// A flush started by [`Sink::start_flush`], running while the sink takes more writes.
pub type Flushing = Pin<Box<dyn Future<Output = Result<()>> + Send + 'static>>;

impl EventBatch {
    pub fn new(events: Vec<ChangeEvent>) -> Batch {
        let bytes = events.iter().map(ChangeEvent::approx_bytes).sum();
        Arc::new(Self { events, bytes })
    }

    /// The highest `seq` in the batch.
    pub fn last_seq(&self) -> Option<u64> {
        self.events.last().map(|e| e.seq)
    }
}

/// A destination for change events. Each sink runs in a task of its own (see
/// [`crate::pipeline`]), fed by a bounded queue; it never waits for another sink.
///
/// Contract:
/// - `open` receives the mark this sink returned at the last point it reported durable (`None`
///   on a fresh start) and must make the sink hold exactly what it held then, or skip what it
///   already holds (e.g. the lake reads its own last `seq`). The pipeline then sends the events
///   after the committed checkpoint again, in the same order with the same `seq`; it drops those
///   with a `seq` below what this sink reported durable, so a sink ahead of the others is not
///   sent its own changes twice.
/// - `write` takes a batch in order. It need not be durable yet. Once `write` is called, the
///   sink owns the batch: if the write (or any later `flush`) fails, the sink keeps what it has
///   not made durable, and the next `flush` retries all of it. A failure never drops a change.
/// - `mark` is called right after a transaction boundary and returns what `open` needs to come
///   back to exactly this point. It must be cheap (called once per transaction).
/// - `flush` makes everything written so far durable; it is called on the sink's own
///   `flush_interval`, when `wants_flush` says so, and after a failure (under the pipeline's one
///   retry policy, [`crate::retry`]). Only after it returns does the pipeline count the marks
///   taken before it as durable.
#[async_trait]
pub trait Sink: Send {
    /// Name used as the key of this sink's state and in messages.
    fn name(&self) -> &str;
    async fn open(&mut self, committed: Option<Json>) -> Result<()>;
    async fn write(&mut self, batch: &Batch) -> Result<()>;
    fn mark(&self) -> Json;
    async fn flush(&mut self) -> Result<()>;
    /// A table was dropped, truncated or renamed at the source, where no row event shows it.
    /// It comes in order with the batches around it and is owned like a `write`: durable at
    /// the next flush, kept through a failure. Stream sinks send consumers a control record;
    /// the default ignores it (the lake keeps a dropped table's data and history).
    async fn table_ddl(&mut self, ddl: &TableDdl) -> Result<()> {
        let _ = ddl;
        Ok(())
    }
    /// Starts making everything written so far durable and returns at once, so the sink goes
    /// on taking writes while it runs (the lake writes a sealed buffer while the next one
    /// fills). `None`, the default: the sink cannot, and the pipeline calls `flush` and waits.
    ///
    /// At most one started flush runs at a time: the pipeline calls neither `start_flush` nor
    /// `flush` again before it has finished (it may call `write` and `mark`). If it fails, the
    /// sink still holds what it covered, and the next `flush` retries that together with what
    /// was written since.
    fn start_flush(&mut self) -> Option<Flushing> {
        None
    }
    /// Whether enough is buffered that the sink wants a flush before its interval (e.g. the
    /// lake's `flush_rows`). While a started flush runs, the pipeline stops giving the sink
    /// batches once this says so: what a sink buffers stays bounded.
    fn wants_flush(&self) -> bool {
        false
    }
    /// After a failed `flush`: whether it made part of what it holds durable before failing
    /// (some records of a stream acknowledged, others throttled). The retry budget then starts
    /// again: a sink draining a backlog under throttling is not stopped while it progresses.
    /// Reading it clears it.
    fn take_progress(&mut self) -> bool {
        false
    }
    /// After `open`: the highest `seq` this sink holds that `open` could not take back (a
    /// Delta commit is permanent), if any. A source that cannot replay exactly (a resumed
    /// snapshot reads again at a new point) numbers its events above it, so no new change is
    /// skipped as "already held".
    async fn high_water(&mut self) -> Result<Option<u64>> {
        Ok(None)
    }
}

/// A `[sink.<name>]` section of the config: validated at load, then built into a sink with its
/// schedule. Each sink crate has one; the binary lists them.
pub trait SinkConfig: Send + Sync {
    /// The section's name, `<name>` in `[sink.<name>]`.
    fn name(&self) -> &'static str;
    /// Checks beyond what the types enforce; the message names the key.
    fn validate(&self) -> std::result::Result<(), String> {
        Ok(())
    }
    /// Makes relative paths in the section relative to `base` (the config file's directory).
    fn resolve_paths(&mut self, _base: &Path) {}
    fn build(&self) -> Result<SinkSpec>;
}
