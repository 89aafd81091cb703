//! The live stats handle: what the pipeline is doing right now, readable from another task
//! (`sluice status` reads the committed state instead; the HTTP server reads this).
//!
//! Writers are the pipeline's own tasks, a few times per batch or commit; readers take a
//! [`StatsSnapshot`]. Nothing here holds a row value.
use std::collections::{BTreeMap, VecDeque};
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
    /// The latest failures, oldest first, at most [`RECENT_ERRORS`]: what was retried and why.
    pub recent_errors: VecDeque<ErrorNote>,
    /// Full-load progress of this run, by `db.table`, as the source reports it.
    pub full_load: BTreeMap<String, FullLoad>,
    /// What the transforms decided per column (mask rules, PII detection); never a value.
    pub columns: Vec<crate::transform::ColumnDecision>,
}

/// How many failures [`StatsSnapshot::recent_errors`] keeps.
pub const RECENT_ERRORS: usize = 20;

/// One failure that was retried (or stopped a component), as an operator reads it.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorNote {
    /// Wall-clock time, ms since the epoch.
    pub at_ms: i64,
    /// `source` or `sink <name>`.
    pub component: String,
    /// `transient`, `exhausted` or `permanent`.
    pub kind: String,
    /// The error and its causes; errors never carry row values.
    pub message: String,
}

/// A table's full load in this run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FullLoad {
    /// The server's estimate of the table's rows when its read started (may be off either way).
    pub estimated_rows: u64,
    /// Rows the snapshot had already read before this run (a resumed snapshot), counted in
    /// [`TableStats::full_load_rows`] too.
    pub rows_before: u64,
    /// When the read started and, once every row is read, ended; ms since the epoch.
    pub started_ms: i64,
    pub done_ms: Option<i64>,
}

/// Flush durations in Prometheus histogram buckets (seconds, cumulative on output).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Histogram {
    /// Count of observations `<=` each bound of [`FLUSH_BUCKETS`], not cumulative.
    pub buckets: Vec<u64>,
    pub count: u64,
    pub sum_seconds: f64,
}

/// Upper bounds of the flush-duration buckets, seconds (`+Inf` is implied).
pub const FLUSH_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

impl Histogram {
    pub fn observe(&mut self, seconds: f64) {
        if self.buckets.len() != FLUSH_BUCKETS.len() + 1 {
            self.buckets = vec![0; FLUSH_BUCKETS.len() + 1];
        }
        let i = FLUSH_BUCKETS.iter().position(|b| seconds <= *b).unwrap_or(FLUSH_BUCKETS.len());
        self.buckets[i] += 1;
        self.count += 1;
        self.sum_seconds += seconds;
    }

    /// `(upper bound, cumulative count)` per bucket, `+Inf` last, as Prometheus writes them.
    pub fn cumulative(&self) -> impl Iterator<Item = (Option<f64>, u64)> + '_ {
        let bounds = FLUSH_BUCKETS.iter().copied().map(Some).chain(std::iter::once(None));
        bounds.enumerate().scan(0u64, |acc, (i, b)| {
            *acc += self.buckets.get(i).copied().unwrap_or(0);
            Some((b, *acc))
        })
    }
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
    /// When reading resumed after the source was last caught up: the `next_seq` it was caught
    /// up at and the commit time of the first change after it. A sink that held everything up
    /// to there is only behind by what came since.
    #[serde(skip)]
    pub resumed: Option<(u64, i64)>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SinkStats {
    pub name: String,
    /// Every change below this `seq` is durable in this sink.
    pub durable_seq: Option<u64>,
    /// How far what this sink made durable is behind the source's log end: 0 when caught up.
    pub lag_ms: i64,
    /// Commit time of the newest change this sink made durable, ms since the epoch.
    pub durable_change_ms: Option<i64>,
    /// Bytes of events queued for this sink and not yet written.
    pub queue_bytes: usize,
    pub flushes: u64,
    /// Duration of the last flush (a lake commit, an fsync), ms.
    pub last_flush_ms: f64,
    /// Failed writes or flushes since start (each retried under the retry policy).
    pub errors: u64,
    /// Durations of every flush since start.
    pub flush_seconds: Histogram,
}

impl Stats {
    pub fn snapshot(&self) -> StatsSnapshot {
        self.lock().clone()
    }

    /// Replaces the whole snapshot (tests of readers).
    pub fn replace(&self, s: StatsSnapshot) {
        *self.lock() = s;
    }

    /// Records a failure: counted by kind and kept among the recent ones.
    pub fn error(&self, component: &str, err: &crate::SluiceError) {
        let mut st = self.lock();
        let kind = err.kind.label().to_string();
        *st.errors.entry(kind.clone()).or_default() += 1;
        if st.recent_errors.len() == RECENT_ERRORS {
            st.recent_errors.pop_front();
        }
        let at_ms = chrono::Utc::now().timestamp_millis();
        st.recent_errors.push_back(ErrorNote { at_ms, component: component.to_string(), kind, message: err.chain() });
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

/// Lag of a sink: 0 when it holds everything the source has checkpointed, else how old the
/// oldest change it does not hold yet is (the change after its durable one, or the first one
/// after the source was last caught up, when the sink held everything up to there).
pub fn sink_lag_ms(sink: &SinkStats, source: &SourceStats, now_ms: i64) -> i64 {
    let durable = sink.durable_seq.unwrap_or(0);
    if durable >= source.next_seq {
        return 0;
    }
    let mut since = sink.durable_change_ms;
    if let Some((seq, first_ms)) = source.resumed {
        if durable >= seq {
            since = Some(since.map_or(first_ms, |d| d.max(first_ms)));
        }
    }
    since.map_or(0, |t| (now_ms - t).max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(durable_seq: u64, durable_change_ms: i64) -> SinkStats {
        SinkStats { durable_seq: Some(durable_seq), durable_change_ms: Some(durable_change_ms), ..SinkStats::default() }
    }

    #[test]
    fn recent_errors_keep_the_last_ones_and_count_all() {
        let stats = Stats::default();
        for i in 0..(RECENT_ERRORS + 5) {
            let kind = if i % 2 == 0 { crate::ErrorKind::Transient } else { crate::ErrorKind::Exhausted };
            stats.error("sink lake", &crate::SluiceError::new(kind, format!("failure {i}")));
        }
        let s = stats.snapshot();
        assert_eq!(s.recent_errors.len(), RECENT_ERRORS);
        assert_eq!(s.recent_errors.front().map(|e| e.message.as_str()), Some("failure 5"));
        assert_eq!(s.recent_errors.back().map(|e| (e.component.as_str(), e.kind.as_str())), Some(("sink lake", "transient")));
        assert_eq!((s.errors["transient"], s.errors["exhausted"]), (13, 12));
    }

    #[test]
    fn sink_lag_is_zero_when_it_holds_everything() {
        let source = SourceStats { next_seq: 100, ..SourceStats::default() };
        assert_eq!(sink_lag_ms(&sink(100, 1_000), &source, 60_000), 0);
    }

    #[test]
    fn sink_lag_grows_while_it_is_stuck() {
        let source = SourceStats { next_seq: 200, ..SourceStats::default() };
        assert_eq!(sink_lag_ms(&sink(100, 1_000), &source, 5_000), 4_000);
        assert_eq!(sink_lag_ms(&sink(100, 1_000), &source, 65_000), 64_000);
    }

    #[test]
    fn an_idle_period_is_not_lag() {
        // Caught up at seq 100 (change at 1 s), idle for an hour, then a change at 3601 s.
        let source = SourceStats { next_seq: 101, resumed: Some((100, 3_601_000)), ..SourceStats::default() };
        assert_eq!(sink_lag_ms(&sink(100, 1_000), &source, 3_601_500), 500);
        // A sink that was already behind before the idle period is behind since then.
        assert_eq!(sink_lag_ms(&sink(50, 900), &source, 3_601_500), 3_600_600);
    }
}
