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
    /// What this transform does to each column it touches, for operators (the status page);
    /// never a value. Called about once a second.
    fn columns(&self) -> Vec<ColumnDecision> {
        Vec::new()
    }
}

/// One column's treatment, as an operator reads it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ColumnDecision {
    /// `db.table.column`, or the rule's pattern.
    pub column: String,
    /// What happens to its values: `masked (hash)`, `clear`, `sampling`, ...
    pub decision: String,
    /// Why: the rule, or what detection saw (`email in 98 of 100 sampled values`).
    pub reason: String,
}
