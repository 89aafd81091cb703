//! The sink contract.
use async_trait::async_trait;
use serde_json::Value as Json;

use crate::error::Result;
use crate::event::ChangeEvent;

/// A destination for change events.
///
/// Contract:
/// - `open` receives the state this sink returned from `mark` at the last committed checkpoint
///   (`None` on a fresh start) and must make the sink hold exactly what it held then, or skip
///   what it already holds (e.g. the lake reads its own last `seq`). Events after that point are
///   then sent again in the same order with the same `seq`.
/// - `write` accepts events in order; they need not be durable yet.
/// - `mark` is called right after a transaction boundary and returns what `open` needs to come
///   back to exactly this point. It must be cheap (called once per transaction).
/// - `flush` makes everything written so far durable. The pipeline commits a checkpoint (with
///   the marks taken at it) only after every sink's `flush` returned.
#[async_trait]
pub trait Sink: Send {
    /// Name used as the key of this sink's state and in messages.
    fn name(&self) -> &str;
    async fn open(&mut self, committed: Option<Json>) -> Result<()>;
    async fn write(&mut self, events: &[ChangeEvent]) -> Result<()>;
    fn mark(&self) -> Json;
    async fn flush(&mut self) -> Result<()>;
    /// After `open`: the highest `seq` this sink holds that `open` could not take back (a
    /// Delta commit is permanent), if any. A source that cannot replay exactly (a resumed
    /// snapshot reads again at a new point) numbers its events above it, so no new change is
    /// skipped as "already held".
    async fn high_water(&mut self) -> Result<Option<u64>> {
        Ok(None)
    }
}
