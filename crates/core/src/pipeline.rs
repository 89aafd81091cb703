//! The pipeline runner: source → sinks, committing checkpoints once every sink is durable.
use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::checkpoint::Checkpoint;
use crate::error::{Result, SluiceError};
use crate::sink::Sink;
use crate::source::{Source, SourceMsg};
use crate::state::{State, StateStore, TableStats};
use crate::transform::Transform;

/// Messages buffered between source and sinks: bounds memory and gives backpressure.
const CHANNEL_CAPACITY: usize = 32;

/// Why `run` returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// `--once`: caught up with the log end seen at start.
    CaughtUp,
    /// A shutdown signal.
    Shutdown,
}

pub struct Pipeline {
    pub source: Box<dyn Source>,
    /// Applied in order to every batch before any sink sees it.
    pub transforms: Vec<Box<dyn Transform>>,
    pub sinks: Vec<Box<dyn Sink>>,
    pub store: StateStore,
    pub commit_interval: Duration,
    pub once: bool,
}

/// A checkpoint together with what every sink and counter looked like at it.
struct Pending {
    checkpoint: Checkpoint,
    marks: BTreeMap<String, Json>,
    transform_marks: BTreeMap<String, Json>,
    tables: BTreeMap<String, TableStats>,
    source_ts_ms: Option<i64>,
}

impl Pipeline {
    /// Runs until `shutdown` resolves, the source fails, or (with `once`) the source caught up.
    /// On every exit path the last complete checkpoint is committed first.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<Stopped> {
        let mut state = self.store.load()?;
        for t in &mut self.transforms {
            t.open(state.transforms.get(t.name()).cloned())?;
        }
        for sink in &mut self.sinks {
            let committed = state.sinks.get(sink.name()).cloned();
            sink.open(committed).await?;
        }
        let resume = state.checkpoint.clone();
        let mut held: Option<u64> = None;
        for sink in &mut self.sinks {
            held = held.max(sink.high_water().await?);
        }
        if let Some(h) = held {
            if resume.as_ref().is_none_or(|cp| h >= cp.next_seq) {
                debug!(held = h, "a sink holds changes past the committed checkpoint");
                self.source.sinks_hold_up_to(h);
            }
        }
        match &resume {
            Some(cp) => info!(next_seq = cp.next_seq, position = %cp.position, "resuming from committed checkpoint"),
            None => info!("no committed checkpoint: starting fresh"),
        }
        let (tx, mut rx) = mpsc::channel(CHANNEL_CAPACITY);
        let source = self.source;
        let mut source_task = tokio::spawn(async move { source.run(resume, tx).await });

        let mut tables = state.tables.clone();
        let mut source_ts_ms = state.source_ts_ms;
        let mut pending: Option<Pending> = None;
        let mut last_commit = Instant::now();
        let mut ticker = tokio::time::interval(self.commit_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);

        let outcome: Result<Stopped> = loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break Ok(Stopped::Shutdown),
                msg = rx.recv() => match msg {
                    Some(SourceMsg::Events(events)) => {
                        let events = match apply_all(&mut self.transforms, events) {
                            Ok(events) => events,
                            Err(e) => break Err(e),
                        };
                        for ev in &events {
                            tables.entry(ev.schema.id.to_string()).or_default().count(ev.op, ev.ts_ms);
                            if ev.op != crate::event::Op::Read {
                                source_ts_ms = Some(source_ts_ms.map_or(ev.ts_ms, |t| t.max(ev.ts_ms)));
                            }
                        }
                        if let Err(e) = write_all(&mut self.sinks, &events).await {
                            break Err(e);
                        }
                    }
                    Some(SourceMsg::Checkpoint(checkpoint)) => {
                        let marks = self.sinks.iter().map(|s| (s.name().to_string(), s.mark())).collect();
                        let transform_marks = self.transforms.iter().map(|t| (t.name().to_string(), t.mark())).collect();
                        pending = Some(Pending { checkpoint, marks, transform_marks, tables: tables.clone(), source_ts_ms });
                        // The very first checkpoint is committed at once: until then a crash
                        // would leave sinks holding changes with no position to resume from.
                        if last_commit.elapsed() >= self.commit_interval || state.checkpoint.is_none() {
                            if let Err(e) = commit(&mut self.sinks, &self.store, &mut state, &mut pending).await {
                                break Err(e);
                            }
                            last_commit = Instant::now();
                        }
                    }
                    Some(SourceMsg::CaughtUp) if self.once => break Ok(Stopped::CaughtUp),
                    Some(SourceMsg::CaughtUp) => debug!("caught up with the binlog end seen at start"),
                    None => break Err(source_result(&mut source_task).await),
                },
                _ = ticker.tick() => {
                    // Only when the interval has passed since the last commit *ended*: a commit
                    // slower than the interval must not turn into back-to-back tiny commits.
                    if pending.is_some() && last_commit.elapsed() >= self.commit_interval {
                        if let Err(e) = commit(&mut self.sinks, &self.store, &mut state, &mut pending).await {
                            break Err(e);
                        }
                        last_commit = Instant::now();
                    }
                }
            }
        };
        rx.close();
        source_task.abort();
        // Commit what is complete even when stopping on an error: the next run resumes there.
        let committed = commit(&mut self.sinks, &self.store, &mut state, &mut pending).await;
        match (outcome, committed) {
            (Err(e), Err(c)) => {
                warn!(error = %c, "could not commit the last checkpoint while stopping");
                Err(e)
            }
            (Err(e), Ok(())) => Err(e),
            (Ok(_), Err(c)) => Err(c),
            (Ok(s), Ok(())) => {
                info!(next_seq = state.checkpoint.as_ref().map(|c| c.next_seq), "stopped cleanly");
                Ok(s)
            }
        }
    }
}

fn apply_all(transforms: &mut [Box<dyn Transform>], mut events: Vec<crate::event::ChangeEvent>) -> Result<Vec<crate::event::ChangeEvent>> {
    for t in transforms.iter_mut() {
        events = t.apply(events)?;
    }
    Ok(events)
}

async fn write_all(sinks: &mut [Box<dyn Sink>], events: &[crate::event::ChangeEvent]) -> Result<()> {
    for sink in sinks.iter_mut() {
        sink.write(events).await?;
    }
    Ok(())
}

/// Flushes every sink, then writes the pending checkpoint with the sinks' marks taken at it.
async fn commit(sinks: &mut [Box<dyn Sink>], store: &StateStore, state: &mut State, pending: &mut Option<Pending>) -> Result<()> {
    let Some(p) = pending.take() else { return Ok(()) };
    for sink in sinks.iter_mut() {
        sink.flush().await?;
    }
    state.checkpoint = Some(p.checkpoint);
    state.sinks = p.marks;
    state.transforms = p.transform_marks;
    state.tables = p.tables;
    state.source_ts_ms = p.source_ts_ms;
    state.committed_at_ms = chrono::Utc::now().timestamp_millis();
    store.save(state)?;
    debug!(next_seq = state.checkpoint.as_ref().map(|c| c.next_seq), "committed");
    Ok(())
}

/// The source closed its channel: it either failed (return its error) or ended unexpectedly.
async fn source_result(task: &mut tokio::task::JoinHandle<Result<()>>) -> SluiceError {
    match task.await {
        Ok(Err(e)) => e,
        Ok(Ok(())) => SluiceError::permanent("the source stopped without an error"),
        Err(e) => SluiceError::permanent(format!("the source task panicked: {e}")),
    }
}
