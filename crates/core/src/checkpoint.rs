//! Resumable positions.
use serde::{Deserialize, Serialize};

/// A point the pipeline can resume from: everything before it has been emitted, nothing after.
/// `position` is source-specific (binlog file/pos/GTIDs, snapshot progress) and opaque here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub position: serde_json::Value,
    /// The `seq` the next change will get.
    pub next_seq: u64,
}
