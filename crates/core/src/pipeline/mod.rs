//! The pipeline runner (DESIGN.md "Pipeline"):
//!
//! ```text
//! source task ──events, checkpoints──> head: transforms (once, in order), counters
//!     ▲                                  │ fan-out of shared batches + barriers
//!     │ committed checkpoint (watch)     ├──> queue ──> sink task (own flush_interval, retries)
//!     │                                  └──> queue ──> sink task ...
//!     └── committer: state.json at the newest barrier every sink reported durable
//! ```
//!
//! A checkpoint travels through every sink's queue as a barrier; each sink task reports
//! "durable through barrier N" on its own schedule, and the committer writes the state for the
//! newest barrier all of them reached. A slow sink holds back the source only once its own
//! queue (bounded in bytes) is full, and never delays what the other sinks deliver.
mod committer;
mod queue;
mod sink_task;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use self::committer::{CommitMsg, Committer, Pending};
use self::queue::{queue, Barrier, QueueTx};
use self::sink_task::SinkTask;
use crate::checkpoint::Checkpoint;
use crate::error::{Result, SluiceError};
use crate::event::{ChangeEvent, Op};
use crate::retry::RetryPolicy;
use crate::schema::TableDdl;
use crate::sink::{Batch, EventBatch, Sink};
use crate::source::{Source, SourceMsg};
use crate::state::{StateStore, TableStats};
use crate::stats::{lag_ms, sink_lag_ms, SinkStats, Stats};
use crate::transform::Transform;

/// Messages buffered between the source and the head.
const SOURCE_CHANNEL: usize = 32;
/// Bytes of events each sink's queue may hold before the source waits.
pub const SINK_QUEUE_BYTES: usize = 8 << 20;
/// Checkpoints closer together than this share one barrier: a barrier per transaction would
/// cost every sink a mark and the committer a counter copy per transaction at high rates.
const BARRIER_EVERY: Duration = Duration::from_millis(20);

/// A sink's queue closed under the head: its task ended, and its own error is the one to report.
/// How often the transforms' column decisions are copied into the live stats.
const DECISIONS_EVERY: Duration = Duration::from_secs(1);

const SINK_GONE: &str = "a sink stopped";

/// Why `run` returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// `--once`: caught up with the log end seen at start.
    CaughtUp,
    /// A shutdown signal.
    Shutdown,
}

/// A sink with its own schedule.
pub struct SinkSpec {
    pub sink: Box<dyn Sink>,
    /// How often it makes what it has durable (and so how often it can report progress).
    pub flush_interval: Duration,
    pub retry: RetryPolicy,
}

impl SinkSpec {
    /// A sink flushed every `flush_interval`, whose failures are retried for up to `retry_for`.
    pub fn new(sink: Box<dyn Sink>, flush_interval: Duration, retry_for: Duration) -> Self {
        Self { sink, flush_interval, retry: RetryPolicy::new(retry_for) }
    }
}

pub struct Pipeline {
    pub source: Box<dyn Source>,
    /// Applied in order to every batch before any sink sees it.
    pub transforms: Vec<Box<dyn Transform>>,
    pub sinks: Vec<SinkSpec>,
    pub store: StateStore,
    pub once: bool,
    /// Live stats, readable while the pipeline runs.
    pub stats: Stats,
    /// Recorded in the state with every commit (see [`crate::state::State::capture`]).
    pub capture: Option<serde_json::Value>,
}

/// The head's side of the sinks.
struct Fanout {
    queues: Vec<QueueTx>,
    commits: mpsc::UnboundedSender<CommitMsg>,
    next_barrier: u64,
    last_barrier: Instant,
    /// A checkpoint not yet put in the queues (see [`BARRIER_EVERY`]).
    unsent: Option<Checkpoint>,
    /// The checkpoint of the last barrier.
    last_sent: Option<Checkpoint>,
}

impl Pipeline {
    /// Runs until `shutdown` resolves, the source or a sink fails, or (with `once`) the source
    /// caught up. On every exit path, what every sink made durable is committed first.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<Stopped> {
        let Pipeline { mut source, mut transforms, mut sinks, store, once, stats, capture } = self;
        let mut state = store.load()?;
        if capture.is_some() {
            state.capture = capture;
        }
        for t in &mut transforms {
            t.open(state.transforms.get(t.name()).cloned())?;
        }
        let resume = state.checkpoint.clone();
        let resume_seq = resume.as_ref().map_or(0, |c| c.next_seq);
        let mut held: Option<u64> = None;
        let mut held_below = Vec::with_capacity(sinks.len());
        for spec in &mut sinks {
            let name = spec.sink.name().to_string();
            spec.sink.open(state.sinks.get(&name).cloned()).await.map_err(|e| e.context(format!("sink {name}")))?;
            let below = state.durable.get(&name).copied().unwrap_or(resume_seq).max(resume_seq);
            if below > resume_seq {
                held = held.max(Some(below - 1));
            }
            held = held.max(spec.sink.high_water().await?);
            held_below.push(below);
        }
        if let Some(h) = held {
            if h >= resume_seq || resume.is_none() {
                debug!(held = h, "a sink holds changes past the committed checkpoint");
                source.sinks_hold_up_to(h);
            }
        }
        source.snapshot_requests(crate::requests::SnapshotRequests::new(store.dir()));
        match &resume {
            Some(cp) => info!(next_seq = cp.next_seq, position = %cp.position, "resuming from committed checkpoint"),
            None => info!("no committed checkpoint: starting fresh"),
        }
        let fresh = resume.is_none();
        let mut tables = state.tables.clone();
        let mut source_ts_ms = state.source_ts_ms;
        {
            let mut st = stats.lock();
            st.tables = tables.clone();
            st.committed_seq = resume.as_ref().map(|c| c.next_seq);
            st.position = resume.as_ref().map(|c| c.position.clone());
            st.source.next_seq = resume_seq;
            st.sinks = sinks.iter().map(|s| SinkStats { name: s.sink.name().to_string(), ..SinkStats::default() }).collect();
        }

        let (commit_tx, commit_rx) = mpsc::unbounded_channel();
        let (committed_tx, mut committed_rx) = watch::channel(resume.clone());
        let names: Vec<String> = sinks.iter().map(|s| s.sink.name().to_string()).collect();
        let committer = Committer { store, state, names, committed: committed_tx, stats: stats.clone() };
        let mut committer_task = tokio::spawn(committer.run(commit_rx));

        let mut sink_tasks = JoinSet::new();
        let mut queues = Vec::with_capacity(sinks.len());
        for (index, (spec, below)) in sinks.into_iter().zip(held_below).enumerate() {
            let (qtx, qrx) = queue(SINK_QUEUE_BYTES);
            let task = SinkTask {
                index,
                sink: spec.sink,
                flush_interval: spec.flush_interval,
                retry: spec.retry,
                held_below: below,
                reports: commit_tx.clone(),
                stats: stats.clone(),
                durations: Vec::new(),
            };
            sink_tasks.spawn(task.run(qrx));
            queues.push(qtx);
        }
        let mut fan =
            Fanout { queues, commits: commit_tx, next_barrier: 1, last_barrier: Instant::now(), unsent: None, last_sent: resume.clone() };

        let (tx, mut rx) = mpsc::channel(SOURCE_CHANNEL);
        let source_watch = committed_rx.clone();
        let mut source_task = tokio::spawn(async move { source.run(resume, tx, source_watch).await });

        let mut ticker = tokio::time::interval(BARRIER_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        let mut committed_once = !fresh;
        let mut last_decisions: Option<Instant> = None;
        let mut caught_up = false;

        let outcome: Result<Stopped> = loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break Ok(Stopped::Shutdown),
                Some(done) = sink_tasks.join_next() => break Err(sink_ended(done)),
                done = &mut committer_task => break Err(committer_ended(done)),
                msg = rx.recv() => match msg {
                    Some(SourceMsg::Events(events)) => {
                        let events = match apply_all(&mut transforms, events) {
                            Ok(events) => events,
                            Err(e) => break Err(e),
                        };
                        if events.is_empty() {
                            continue;
                        }
                        count(&mut tables, &events, &mut source_ts_ms);
                        let resumed = caught_up;
                        if caught_up {
                            caught_up = false;
                            let _ = fan.commits.send(CommitMsg::CaughtUp(false));
                        }
                        stats_after_events(&stats, &tables, &events, source_ts_ms, resumed);
                        let batch = EventBatch::new(events);
                        // A checkpoint not yet sent is now behind these events: the next one covers it.
                        fan.unsent = None;
                        tokio::select! {
                            biased;
                            () = &mut shutdown => break Ok(Stopped::Shutdown),
                            Some(done) = sink_tasks.join_next() => break Err(sink_ended(done)),
                            pushed = fan.push(&batch) => if let Err(e) = pushed { break Err(e) },
                        }
                        queue_stats(&stats, &fan);
                    }
                    Some(SourceMsg::Checkpoint(cp)) => {
                        if fan.last_sent.as_ref() == Some(&cp) {
                            // An idle heartbeat at the same place: nothing new to make durable.
                            continue;
                        }
                        stats.lock().source.next_seq = cp.next_seq;
                        let urgent = !committed_once;
                        fan.unsent = Some(cp);
                        if urgent || fan.last_barrier.elapsed() >= BARRIER_EVERY {
                            let barrier = fan.send_barrier(&transforms, &tables, source_ts_ms, urgent);
                            if let Err(e) = barrier {
                                break Err(e);
                            }
                        }
                        if urgent {
                            // The very first checkpoint is committed before anything else is
                            // sent: until then a crash would leave sinks holding changes with
                            // no position to resume from.
                            tokio::select! {
                                biased;
                                () = &mut shutdown => break Ok(Stopped::Shutdown),
                                Some(done) = sink_tasks.join_next() => break Err(sink_ended(done)),
                                r = committed_rx.wait_for(Option::is_some) => if r.is_err() { break Err(SluiceError::permanent("the committer stopped")) },
                            }
                            committed_once = true;
                        }
                    }
                    Some(SourceMsg::Idle) => {
                        if !caught_up {
                            caught_up = true;
                            let _ = fan.commits.send(CommitMsg::CaughtUp(true));
                            let mut st = stats.lock();
                            st.source.caught_up = true;
                            st.source.lag_ms = 0;
                        }
                    }
                    Some(SourceMsg::CaughtUp) if once => break Ok(Stopped::CaughtUp),
                    Some(SourceMsg::CaughtUp) => debug!("caught up with the log end seen at start"),
                    Some(SourceMsg::FullLoad { table, estimated_rows, done }) => full_load(&stats, &tables, &table, estimated_rows, done),
                    Some(SourceMsg::Retrying(err)) => stats.error("source", &err),
                    Some(SourceMsg::TableDdl(ddl)) => {
                        info!(table = %ddl.table, change = ddl.kind.dms_operation(), "table DDL at the source");
                        if let Err(e) = fan.table_ddl(ddl) {
                            break Err(e);
                        }
                    }
                    None => break Err(source_result(&mut source_task).await),
                },
                _ = ticker.tick() => {
                    if fan.unsent.is_some() {
                        if let Err(e) = fan.send_barrier(&transforms, &tables, source_ts_ms, false) {
                            break Err(e);
                        }
                    }
                    refresh_lag(&stats, source_ts_ms);
                    // Sinks drain their queues without the head: refresh what is still queued.
                    queue_stats(&stats, &fan);
                    if last_decisions.is_none_or(|t| t.elapsed() >= DECISIONS_EVERY) {
                        last_decisions = Some(Instant::now());
                        stats.lock().columns = transforms.iter().flat_map(|t| t.columns()).collect();
                    }
                }
            }
        };
        rx.close();
        source_task.abort();
        // What every sink made durable is committed even when stopping on an error: the next
        // run resumes there. The last checkpoint goes to the sinks, which flush and end.
        if fan.unsent.is_some() {
            let _ = fan.send_barrier(&transforms, &tables, source_ts_ms, false);
        }
        let Fanout { queues, commits, .. } = fan;
        drop(queues);
        drop(commits);
        let mut sink_error: Option<SluiceError> = None;
        while let Some(done) = sink_tasks.join_next().await {
            if let Some(e) = sink_result(done) {
                sink_error.get_or_insert(e);
            }
        }
        // The loop polls the committer to its end only when it failed, and then `outcome` is its
        // error: a JoinHandle must not be awaited twice.
        let committed = if committer_task.is_finished() && outcome.is_err() {
            Ok(None)
        } else {
            match (&mut committer_task).await {
                Ok(Ok(state)) => Ok(Some(state)),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(SluiceError::permanent(format!("the committer task panicked: {e}"))),
            }
        };
        let outcome = match (outcome, sink_error) {
            // A sink's own error says more than "its queue closed".
            (Ok(_), Some(e)) => Err(e),
            (Err(e), Some(se)) if e.message == SINK_GONE => Err(se),
            (o, _) => o,
        };
        match (outcome, committed) {
            (Err(e), Err(c)) => {
                warn!(error = %c.chain(), "could not commit the last checkpoint while stopping");
                Err(e)
            }
            (Err(e), Ok(_)) => Err(e),
            (Ok(_), Err(c)) => Err(c),
            (Ok(s), Ok(state)) => {
                info!(next_seq = state.and_then(|s| s.checkpoint).map(|c| c.next_seq), "stopped cleanly");
                Ok(s)
            }
        }
    }
}

fn stats_after_events(
    stats: &Stats,
    tables: &BTreeMap<String, TableStats>,
    events: &[ChangeEvent],
    source_ts_ms: Option<i64>,
    resumed: bool,
) {
    let mut st = stats.lock();
    if resumed {
        let first_ms = events.first().map_or(0, |e| e.ts_ms);
        st.source.resumed = Some((st.source.next_seq, first_ms));
    }
    for ev in dedup_tables(events) {
        let name = ev.schema.id.to_string();
        if let Some(t) = tables.get(&name) {
            st.tables.insert(name, t.clone());
        }
    }
    st.source.caught_up = false;
    st.source.newest_change_ms = source_ts_ms;
    let now = chrono::Utc::now().timestamp_millis();
    st.source.lag_ms = lag_ms(false, source_ts_ms, now);
    sink_lags(&mut st, now);
}

/// A table's full load started (with the server's estimate) or ended.
fn full_load(stats: &Stats, tables: &BTreeMap<String, TableStats>, table: &crate::TableId, estimated_rows: u64, done: bool) {
    let name = table.to_string();
    let now = chrono::Utc::now().timestamp_millis();
    let mut st = stats.lock();
    let entry = st.full_load.entry(name.clone()).or_insert_with(|| crate::stats::FullLoad {
        estimated_rows,
        rows_before: tables.get(&name).map_or(0, |t| t.full_load_rows),
        started_ms: now,
        done_ms: None,
    });
    if done {
        entry.done_ms = Some(now);
    }
}

fn queue_stats(stats: &Stats, fan: &Fanout) {
    let mut st = stats.lock();
    for (s, q) in st.sinks.iter_mut().zip(&fan.queues) {
        s.queue_bytes = q.queued_bytes();
    }
}

fn refresh_lag(stats: &Stats, source_ts_ms: Option<i64>) {
    let mut st = stats.lock();
    let caught_up = st.source.caught_up;
    let now = chrono::Utc::now().timestamp_millis();
    st.source.lag_ms = lag_ms(caught_up, source_ts_ms, now);
    sink_lags(&mut st, now);
}

fn sink_lags(st: &mut crate::stats::StatsSnapshot, now_ms: i64) {
    for s in &mut st.sinks {
        s.lag_ms = sink_lag_ms(s, &st.source, now_ms);
    }
}

impl Fanout {
    async fn push(&self, batch: &Batch) -> Result<()> {
        for q in &self.queues {
            q.push(batch).await.map_err(|_| SluiceError::permanent(SINK_GONE))?;
        }
        Ok(())
    }

    fn table_ddl(&self, ddl: TableDdl) -> Result<()> {
        let ddl = Arc::new(ddl);
        for q in &self.queues {
            q.table_ddl(&ddl).map_err(|_| SluiceError::permanent(SINK_GONE))?;
        }
        Ok(())
    }

    /// Puts the unsent checkpoint in every queue, after telling the committer about it.
    fn send_barrier(
        &mut self,
        transforms: &[Box<dyn Transform>],
        tables: &BTreeMap<String, TableStats>,
        source_ts_ms: Option<i64>,
        urgent: bool,
    ) -> Result<()> {
        let Some(checkpoint) = self.unsent.take() else { return Ok(()) };
        let id = self.next_barrier;
        self.next_barrier += 1;
        self.last_barrier = Instant::now();
        let barrier = Barrier { id, next_seq: checkpoint.next_seq, newest_change_ms: source_ts_ms, urgent };
        self.last_sent = Some(checkpoint.clone());
        let transform_marks = transforms.iter().map(|t| (t.name().to_string(), t.mark())).collect();
        let pending = Pending { checkpoint, transform_marks, tables: tables.clone(), source_ts_ms };
        self.commits.send(CommitMsg::Pending(id, Box::new(pending))).map_err(|_| SluiceError::permanent("the committer stopped"))?;
        for q in &self.queues {
            q.barrier(barrier).map_err(|_| SluiceError::permanent(SINK_GONE))?;
        }
        Ok(())
    }
}

/// Counts each event in its table (one map lookup per run of events of the same table).
fn count(tables: &mut BTreeMap<String, TableStats>, events: &[ChangeEvent], source_ts_ms: &mut Option<i64>) {
    let mut i = 0;
    while i < events.len() {
        let schema = &events[i].schema;
        let stats = tables.entry(schema.id.to_string()).or_default();
        while i < events.len() && Arc::ptr_eq(&events[i].schema, schema) {
            let ev = &events[i];
            stats.count(ev.op, ev.ts_ms);
            if ev.op != Op::Read {
                *source_ts_ms = Some(source_ts_ms.map_or(ev.ts_ms, |t| t.max(ev.ts_ms)));
            }
            i += 1;
        }
    }
}

/// The first event of each run of events of one table.
fn dedup_tables(events: &[ChangeEvent]) -> impl Iterator<Item = &ChangeEvent> {
    events.iter().enumerate().filter(|(i, e)| *i == 0 || !Arc::ptr_eq(&events[i - 1].schema, &e.schema)).map(|(_, e)| e)
}

fn apply_all(transforms: &mut [Box<dyn Transform>], mut events: Vec<ChangeEvent>) -> Result<Vec<ChangeEvent>> {
    for t in transforms.iter_mut() {
        events = t.apply(events)?;
    }
    Ok(events)
}

fn sink_result(done: std::result::Result<Result<()>, tokio::task::JoinError>) -> Option<SluiceError> {
    match done {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(e) => Some(SluiceError::permanent(format!("a sink task panicked: {e}"))),
    }
}

/// A sink task ended while the pipeline ran: it failed for good.
fn sink_ended(done: std::result::Result<Result<()>, tokio::task::JoinError>) -> SluiceError {
    sink_result(done).unwrap_or_else(|| SluiceError::permanent("a sink stopped early"))
}

fn committer_ended(done: std::result::Result<Result<crate::state::State>, tokio::task::JoinError>) -> SluiceError {
    match done {
        Ok(Err(e)) => e.context("cannot commit the checkpoint"),
        Ok(Ok(_)) => SluiceError::permanent("the committer stopped early"),
        Err(e) => SluiceError::permanent(format!("the committer task panicked: {e}")),
    }
}

/// The source closed its channel: it either failed (return its error) or ended unexpectedly.
async fn source_result(task: &mut tokio::task::JoinHandle<Result<()>>) -> SluiceError {
    match task.await {
        Ok(Err(e)) => e,
        Ok(Ok(())) => SluiceError::permanent("the source stopped without an error"),
        Err(e) => SluiceError::permanent(format!("the source task panicked: {e}")),
    }
}
