//! The live stats handle: what the pipeline is doing right now, readable from another task
//! (`sluice status` reads the committed state instead; the HTTP server reads this).
//!
//! Writers are the pipeline's own tasks, a few times per batch or commit; readers take a
//! [`StatsSnapshot`]. Nothing here holds a row value.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

use crate::state::TableStats;

/// A cloneable handle on the live stats of one pipeline.
#[derive(Clone, Default)]
pub struct Stats(Arc<Mutex<StatsSnapshot>>);

/// The live stats at one moment.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StatsSnapshot {
    /// `db.table` → counters since the first run (committed ones plus those seen since).
    pub tables: BTreeMap<String, TableStats>,
    pub source: SourceStats,
    /// `next_seq` of the last committed checkpoint (everything below it is durable in every sink).
    pub committed_seq: Option<u64>,
    /// Wall-clock time of the last commit, ms since the epoch.
    pub committed_at_ms: Option<i64>,
    pub sinks: Vec<SinkStats>,
    /// The committed position (source-specific).
    pub position: Option<serde_json::Value>,
    /// Failures by kind (`transient`, `exhausted`, `permanent`) since start; every one was
    /// retried or stopped the pipeline.
    pub errors: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceStats {
    /// The `seq` the next change will get.
    pub next_seq: u64,
    /// Commit time of the newest change read, ms since the epoch.
    pub newest_change_ms: Option<i64>,
    /// The source said it is at the end of the server's log (no change waiting).
    pub caught_up: bool,
    /// How far the reader is behind the server's log end, in commit time: 0 when caught up.
    pub lag_ms: i64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SinkStats {
    pub name: String,
    /// Every change below this `seq` is durable in this sink.
    pub durable_seq: Option<u64>,
    /// How far what this sink made durable is behind the source's log end: 0 when caught up.
    pub lag_ms: i64,
    /// Bytes of events queued for this sink and not yet written.
    pub queue_bytes: usize,
    pub flushes: u64,
    /// Duration of the last flush (a lake commit, an fsync), ms.
    pub last_flush_ms: f64,
    /// Failed writes or flushes since start (each retried under the retry policy).
    pub errors: u64,
}

impl Stats {
    pub fn snapshot(&self) -> StatsSnapshot {
        self.lock().clone()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, StatsSnapshot> {
        // A panic while holding the lock leaves plain counters: still worth reading.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Lag of a position whose newest change was committed at `newest_ms`: 0 when there is nothing
/// newer at the source (`caught_up`), else how old that change is now.
pub fn lag_ms(caught_up: bool, newest_ms: Option<i64>, now_ms: i64) -> i64 {
    match newest_ms {
        _ if caught_up => 0,
        Some(ts) => (now_ms - ts).max(0),
        None => 0,
    }
}
