//! The last 15 minutes of the live stats, one sample a second, for the status page's charts
//! (lag, rows/s per table). Kept here, not in the pipeline: only the status server needs it.
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value as Json};
use sluice_core::stats::{Stats, StatsSnapshot};

/// 15 minutes at one sample a second.
const KEPT: usize = 900;
pub const EVERY: Duration = Duration::from_secs(1);

#[derive(Clone, Default)]
pub struct History(Arc<Mutex<Inner>>);

#[derive(Default)]
struct Inner {
    /// Table names in the order they first appeared; samples index into it.
    tables: Vec<String>,
    samples: VecDeque<Sample>,
}

struct Sample {
    at_ms: i64,
    lag_ms: i64,
    /// Rows read so far per table (snapshot reads and changes), by index into `tables`.
    rows: Vec<u64>,
}

impl History {
    /// Samples `stats` every [`EVERY`] until the task is aborted.
    pub fn spawn(&self, stats: Stats) -> tokio::task::JoinHandle<()> {
        let history = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                history.record(&stats.snapshot(), chrono::Utc::now().timestamp_millis());
            }
        })
    }

    pub(super) fn record(&self, s: &StatsSnapshot, at_ms: i64) {
        let mut h = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut rows = vec![0; h.tables.len()];
        for (name, t) in &s.tables {
            let i = match h.tables.iter().position(|n| n == name) {
                Some(i) => i,
                None => {
                    h.tables.push(name.clone());
                    rows.push(0);
                    h.tables.len() - 1
                }
            };
            rows[i] = t.full_load_rows + t.inserts + t.updates + t.deletes;
        }
        if h.samples.len() == KEPT {
            h.samples.pop_front();
        }
        h.samples.push_back(Sample { at_ms, lag_ms: s.source.lag_ms, rows });
    }

    /// `{"at_ms": [...], "lag_ms": [...], "rows_per_s": {table: [...]}}`, oldest first; rates
    /// are per interval between samples, so they have one entry less than `at_ms`.
    pub fn to_json(&self) -> Json {
        let h = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let at: Vec<i64> = h.samples.iter().map(|s| s.at_ms).collect();
        let lag: Vec<i64> = h.samples.iter().map(|s| s.lag_ms).collect();
        let pairs = || h.samples.iter().zip(h.samples.iter().skip(1));
        let rates = h.tables.iter().enumerate().map(|(i, name)| {
            let per_s: Vec<f64> = pairs()
                .map(|(a, b)| {
                    let secs = ((b.at_ms - a.at_ms) as f64 / 1e3).max(1e-3);
                    let n = |s: &Sample| s.rows.get(i).copied().unwrap_or(0);
                    (n(b).saturating_sub(n(a)) as f64 / secs).round()
                })
                .collect();
            (name.clone(), json!(per_s))
        });
        json!({ "at_ms": at, "lag_ms": lag, "rows_per_s": rates.collect::<serde_json::Map<_, _>>() })
    }

    /// Rows per second of `table` over the last `window` samples (0 when unknown).
    pub fn rate(&self, table: &str, window: usize) -> f64 {
        let h = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(i) = h.tables.iter().position(|n| n == table) else { return 0.0 };
        let (Some(last), Some(first)) = (h.samples.back(), h.samples.iter().rev().nth(window.min(h.samples.len().saturating_sub(1))))
        else {
            return 0.0;
        };
        let n = |s: &Sample| s.rows.get(i).copied().unwrap_or(0);
        let secs = (last.at_ms - first.at_ms) as f64 / 1e3;
        if secs <= 0.0 {
            return 0.0;
        }
        n(last).saturating_sub(n(first)) as f64 / secs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::state::TableStats;

    fn snap(rows: &[(&str, u64)], lag_ms: i64) -> StatsSnapshot {
        let mut s = StatsSnapshot::default();
        for (t, n) in rows {
            s.tables.insert(t.to_string(), TableStats { inserts: *n, ..TableStats::default() });
        }
        s.source.lag_ms = lag_ms;
        s
    }

    #[test]
    fn rates_per_table_and_window() {
        let h = History::default();
        h.record(&snap(&[("a.t", 0)], 5), 0);
        h.record(&snap(&[("a.t", 100), ("a.u", 10)], 0), 1000);
        h.record(&snap(&[("a.t", 300), ("a.u", 10)], 0), 2000);
        let j = h.to_json();
        assert_eq!(j["lag_ms"], json!([5, 0, 0]));
        assert_eq!(j["rows_per_s"]["a.t"], json!([100.0, 200.0]));
        assert_eq!(j["rows_per_s"]["a.u"], json!([10.0, 0.0]));
        assert_eq!(h.rate("a.t", 1), 200.0);
        assert_eq!(h.rate("a.t", 10), 150.0);
        assert_eq!(h.rate("nope", 10), 0.0);
    }

    #[test]
    fn keeps_fifteen_minutes() {
        let h = History::default();
        for i in 0..(KEPT as i64 + 10) {
            h.record(&snap(&[("a.t", i as u64)], 0), i * 1000);
        }
        let j = h.to_json();
        assert_eq!(j["at_ms"].as_array().map(Vec::len), Some(KEPT));
        assert_eq!(j["at_ms"][0], json!(10_000));
    }
}
