//! The change event: one row change, ordered by `seq`.
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::schema::SchemaRef;
use crate::value::Row;

/// Operation, with Debezium's letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "c")]
    Insert,
    #[serde(rename = "u")]
    Update,
    #[serde(rename = "d")]
    Delete,
    /// A row read by the initial snapshot.
    #[serde(rename = "r")]
    Read,
}

impl Op {
    pub fn code(self) -> &'static str {
        match self {
            Op::Insert => "c",
            Op::Update => "u",
            Op::Delete => "d",
            Op::Read => "r",
        }
    }
}

/// Where in the source a change came from (informational; resuming uses checkpoints).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct SourceInfo {
    /// The source that read it, Debezium's `source.connector` (e.g. "mysql").
    pub connector: &'static str,
    /// Binlog file name (empty for snapshot reads that precede any binlog event).
    pub file: String,
    /// Position of the rows event in that file.
    pub pos: u64,
    /// GTID of the transaction, where the server has one (`0-1-42` on MariaDB, `uuid:n` on MySQL).
    pub gtid: Option<String>,
    pub server_id: u32,
    pub snapshot: bool,
    /// Read from the binlog while a snapshot was resumed or read by watermarks: such changes are
    /// numbered above whatever a sink holds, which may already include this very change (under
    /// an earlier seq), so a sink must apply it idempotently (an upsert, never a blind append).
    #[serde(skip)]
    pub replayed: bool,
}

/// One row change. `seq` is unique per change and sorts in commit order; it is assigned by the
/// source deterministically from the last committed checkpoint, so a re-read after a crash yields
/// the same numbers for the same changes.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    pub op: Op,
    pub schema: SchemaRef,
    pub before: Option<Row>,
    pub after: Option<Row>,
    /// Source commit time, milliseconds since the epoch (UTC).
    pub ts_ms: i64,
    /// Transaction id: the GTID where present, else `file:pos` of the transaction start. Shared
    /// by every change of the transaction (one reference count per change, no copy).
    pub tx: Option<Arc<str>>,
    pub seq: u64,
    /// Shared by every change of one rows event (or snapshot chunk).
    pub source: Arc<SourceInfo>,
}

impl ChangeEvent {
    /// The row image that identifies the row: `after` for inserts/updates/reads, `before` for deletes.
    pub fn row(&self) -> &Row {
        match (&self.after, &self.before) {
            (Some(a), _) if self.op != Op::Delete => a,
            (_, Some(b)) => b,
            (Some(a), None) => a,
            (None, None) => unreachable_row(),
        }
    }

    /// Memory held by this event, roughly (for byte-bounded queues; no allocation).
    pub fn approx_bytes(&self) -> usize {
        let image = |r: &Option<Row>| r.as_ref().map_or(0, |r| r.iter().map(crate::value::Value::approx_bytes).sum::<usize>());
        std::mem::size_of::<Self>() + image(&self.before) + image(&self.after)
    }

    /// Primary-key values rendered as text, used to partition streams per row.
    pub fn key_string(&self) -> String {
        let row = self.row();
        if self.schema.key.is_empty() {
            return row.iter().map(|v| v.render()).collect::<Vec<_>>().join("|");
        }
        self.schema.key.iter().map(|&i| row[i].render()).collect::<Vec<_>>().join("|")
    }
}

fn unreachable_row() -> &'static Row {
    static EMPTY: Row = Vec::new();
    &EMPTY
}
