//! The committer: writes `state.json` for the newest checkpoint that every sink has reported
//! durable, and tells the source (a watch) what was committed.
use std::collections::BTreeMap;

use serde_json::Value as Json;
use tokio::sync::{mpsc, watch};
use tracing::debug;

use super::queue::Barrier;
use crate::checkpoint::Checkpoint;
use crate::error::Result;
use crate::state::{State, StateStore, TableStats};
use crate::stats::{lag_ms, Stats};

/// A checkpoint the pipeline put in every sink's queue, with what the counters and transforms
/// looked like at it.
pub(super) struct Pending {
    pub checkpoint: Checkpoint,
    pub transform_marks: BTreeMap<String, Json>,
    pub tables: BTreeMap<String, TableStats>,
    pub source_ts_ms: Option<i64>,
}

/// A sink made everything up to `barrier` durable; `mark` is its mark there.
pub(super) struct Durable {
    pub sink: usize,
    pub barrier: Barrier,
    /// Everything below this `seq` is durable in the sink.
    pub next_seq: u64,
    pub mark: Json,
}

pub(super) enum CommitMsg {
    /// Sent before the barrier enters any queue, so it always arrives before the reports.
    Pending(u64, Box<Pending>),
    Durable(Box<Durable>),
    /// The source is at its log end (true) or has read changes since (false).
    CaughtUp(bool),
}

pub(super) struct Committer {
    pub store: StateStore,
    pub state: State,
    pub names: Vec<String>,
    pub committed: watch::Sender<Option<Checkpoint>>,
    pub stats: Stats,
}

impl Committer {
    /// Runs until every sender is gone (the pipeline and every sink task ended); returns the
    /// state as last committed.
    pub async fn run(mut self, mut rx: mpsc::UnboundedReceiver<CommitMsg>) -> Result<State> {
        let mut pending: BTreeMap<u64, Pending> = BTreeMap::new();
        // Per sink, the newest barrier it reported durable (0: the checkpoint of the start).
        let mut durable: Vec<u64> = vec![0; self.names.len()];
        let mut committed_id = 0;
        let mut newest_id = 0;
        let mut caught_up = false;
        while let Some(msg) = rx.recv().await {
            match msg {
                CommitMsg::Pending(id, p) => {
                    newest_id = id;
                    pending.insert(id, *p);
                }
                CommitMsg::CaughtUp(c) => {
                    caught_up = c;
                    // Caught up with everything committed: the state says so (lag 0), also
                    // while idle, when no new checkpoint would rewrite it.
                    if c && committed_id == newest_id && self.state.checkpoint.is_some() && self.state.lag_ms != Some(0) {
                        self.state.lag_ms = Some(0);
                        self.state.committed_at_ms = chrono::Utc::now().timestamp_millis();
                        self.store.save(&self.state)?;
                    }
                }
                CommitMsg::Durable(d) => {
                    let now = chrono::Utc::now().timestamp_millis();
                    {
                        let mut st = self.stats.lock();
                        let s = &mut st.sinks[d.sink];
                        s.durable_seq = Some(d.next_seq);
                        s.durable_change_ms = d.barrier.newest_change_ms;
                    }
                    let name = &self.names[d.sink];
                    self.state.sinks.insert(name.clone(), d.mark);
                    self.state.durable.insert(name.clone(), d.next_seq);
                    durable[d.sink] = d.barrier.id;
                    let min = durable.iter().copied().min().unwrap_or(0);
                    if min > committed_id {
                        let Some(p) = pending.remove(&min) else { continue };
                        pending.retain(|&id, _| id > min);
                        committed_id = min;
                        self.commit(p, caught_up && min == newest_id, now)?;
                    }
                }
            }
        }
        Ok(self.state)
    }

    fn commit(&mut self, p: Pending, at_end: bool, now: i64) -> Result<()> {
        let lag = lag_ms(at_end, p.source_ts_ms, now);
        self.state.checkpoint = Some(p.checkpoint);
        self.state.transforms = p.transform_marks;
        self.state.tables = p.tables;
        self.state.source_ts_ms = p.source_ts_ms;
        self.state.lag_ms = Some(lag);
        self.state.committed_at_ms = now;
        self.store.save(&self.state)?;
        let cp = self.state.checkpoint.clone();
        debug!(next_seq = cp.as_ref().map(|c| c.next_seq), "committed");
        {
            let mut st = self.stats.lock();
            st.committed_seq = cp.as_ref().map(|c| c.next_seq);
            st.committed_at_ms = Some(now);
            st.position = cp.as_ref().map(|c| c.position.clone());
        }
        self.committed.send_replace(cp);
        Ok(())
    }
}
