//! The transform contract: events in, events out, between the source and every sink.
use serde_json::Value as Json;

use crate::error::Result;
use crate::event::ChangeEvent;

/// Maps events to events (masking, selection, renames). Runs once, before every sink, so
/// nothing downstream (sinks, logs, state) ever sees what a transform removed.
///
/// Contract: `apply` is deterministic given the state restored by `open` and the events seen
/// since, so replaying after a crash yields the same output for the same `seq`. `mark` returns
/// the state to persist with each committed checkpoint (`Json::Null` when stateless).
pub trait Transform: Send {
    fn name(&self) -> &str;
    fn open(&mut self, committed: Option<Json>) -> Result<()>;
    fn apply(&mut self, events: Vec<ChangeEvent>) -> Result<Vec<ChangeEvent>>;
    fn mark(&self) -> Json;
}
