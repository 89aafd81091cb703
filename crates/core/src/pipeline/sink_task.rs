//! One sink's task: takes batches and barriers from its queue in order, flushes on its own
//! `flush_interval` (or when the sink asks), and reports "durable through barrier N" to the
//! committer. Failures are retried here, under the one retry policy; the sink keeps what it has
//! not made durable, so a retry loses nothing.
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::committer::{CommitMsg, Durable};
use super::queue::{Barrier, Item, QueueRx};
use crate::error::{Result, SluiceError};
use crate::retry::{Retry, RetryPolicy};
use crate::sink::{Batch, EventBatch, Flushing, Sink};
use crate::stats::Stats;

pub(super) struct SinkTask {
    pub index: usize,
    pub sink: Box<dyn Sink>,
    pub flush_interval: Duration,
    pub retry: RetryPolicy,
    /// Events below this `seq` are already durable in this sink (it was ahead of the committed
    /// checkpoint when the last run stopped): they are not sent to it again.
    pub held_below: u64,
    pub reports: mpsc::UnboundedSender<CommitMsg>,
    pub stats: Stats,
    /// Durations of the flushes of this run, ms (the newest [`KEPT_DURATIONS`]).
    pub durations: Vec<f32>,
}

/// A flush started by [`Sink::start_flush`] and the barrier it makes durable.
struct Running {
    flush: Flushing,
    started: Instant,
    covers: Option<(Barrier, Json)>,
}

/// Flush durations kept for the summary logged at the end of a run.
const KEPT_DURATIONS: usize = 100_000;

impl SinkTask {
    /// Runs until the queue closes (then flushes what it has) or the sink fails for good.
    pub async fn run(mut self, mut rx: QueueRx) -> Result<()> {
        let mut retry = Retry::new(self.retry);
        // The newest barrier taken and not yet covered by a flush, with the sink's mark at it.
        let mut unflushed: Option<(Barrier, Json)> = None;
        // A flush running while the sink takes more batches (`Sink::start_flush`).
        let mut running: Option<Running> = None;
        let mut ticker = tokio::time::interval(self.flush_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            // While a flush runs, a sink whose next buffer is full takes nothing more: the
            // queue fills and holds back the source, so memory stays bounded.
            let intake = running.is_none() || !self.sink.wants_flush();
            tokio::select! {
                done = async { (&mut running.as_mut().expect("guarded").flush).await }, if running.is_some() => {
                    let Running { started, covers, .. } = running.take().expect("guarded");
                    self.finished(done, started, covers, &mut unflushed, &mut retry).await?;
                    if self.sink.wants_flush() {
                        self.start(&mut running, &mut unflushed, &mut retry).await?;
                    }
                }
                item = rx.recv(), if intake => match item {
                    None => {
                        self.settle(&mut running, &mut unflushed, &mut retry).await?;
                        let done = self.flush_and_report(&mut retry, &mut unflushed).await;
                        self.log_durations();
                        return done;
                    }
                    Some(Item::Events(batch, permit)) => {
                        if let Some(batch) = self.unheld(batch) {
                            self.write(&batch, &mut running, &mut unflushed, &mut retry).await?;
                        }
                        drop(permit);
                        if running.is_none() && self.sink.wants_flush() {
                            self.start(&mut running, &mut unflushed, &mut retry).await?;
                        }
                    }
                    Some(Item::TableDdl(ddl)) => {
                        if let Err(e) = self.sink.table_ddl(&ddl).await {
                            // Kept like a failed write: the retried flush sends it.
                            self.settle(&mut running, &mut unflushed, &mut retry).await?;
                            self.retry_flush(e, &mut retry).await?;
                        }
                    }
                    Some(Item::Barrier(b)) => {
                        unflushed = Some((b, self.sink.mark()));
                        if b.urgent {
                            self.settle(&mut running, &mut unflushed, &mut retry).await?;
                            self.flush_and_report(&mut retry, &mut unflushed).await?;
                        }
                    }
                },
                _ = ticker.tick() => {
                    if running.is_none() && unflushed.is_some() {
                        self.start(&mut running, &mut unflushed, &mut retry).await?;
                    }
                }
            }
        }
    }

    /// Starts a flush of everything written so far: in the background where the sink can,
    /// else here (and reported before returning).
    async fn start(&mut self, running: &mut Option<Running>, unflushed: &mut Option<(Barrier, Json)>, retry: &mut Retry) -> Result<()> {
        debug_assert!(running.is_none());
        match self.sink.start_flush() {
            Some(flush) => {
                *running = Some(Running { flush, started: Instant::now(), covers: unflushed.take() });
                Ok(())
            }
            None => self.flush_and_report(retry, unflushed).await,
        }
    }

    /// A started flush ended: report what it covered, or retry (here, holding intake: the
    /// sink keeps what failed) until everything written so far is durable.
    async fn finished(
        &mut self,
        done: Result<()>,
        started: Instant,
        mut covers: Option<(Barrier, Json)>,
        unflushed: &mut Option<(Barrier, Json)>,
        retry: &mut Retry,
    ) -> Result<()> {
        match done {
            Ok(()) => {
                retry.succeeded();
                self.flushed(started);
                self.report(&mut covers);
            }
            Err(e) => {
                self.retry_flush(e, retry).await?;
                // The retry made everything written so far durable: also what came after.
                self.report(&mut covers);
                self.report(unflushed);
            }
        }
        Ok(())
    }

    /// Waits for a started flush, if one runs (before a flush here, which must not overlap it).
    async fn settle(&mut self, running: &mut Option<Running>, unflushed: &mut Option<(Barrier, Json)>, retry: &mut Retry) -> Result<()> {
        let Some(Running { flush, started, covers }) = running.take() else { return Ok(()) };
        let done = flush.await;
        self.finished(done, started, covers, unflushed, retry).await
    }

    /// Drops the events this sink already holds (only right after a restart).
    fn unheld(&mut self, batch: Batch) -> Option<Batch> {
        if batch.events.first().is_none_or(|e| e.seq >= self.held_below) {
            return Some(batch);
        }
        if batch.last_seq().is_some_and(|s| s < self.held_below) {
            return None;
        }
        let rest: Vec<_> = batch.events.iter().filter(|e| e.seq >= self.held_below).cloned().collect();
        Some(EventBatch::new(rest))
    }

    async fn write(
        &mut self,
        batch: &Batch,
        running: &mut Option<Running>,
        unflushed: &mut Option<(Barrier, Json)>,
        retry: &mut Retry,
    ) -> Result<()> {
        match self.sink.write(batch).await {
            Ok(()) => Ok(()),
            // The sink kept the batch: flushing retries it with everything else not durable.
            Err(e) => {
                self.settle(running, unflushed, retry).await?;
                self.retry_flush(e, retry).await
            }
        }
    }

    async fn flush(&mut self, retry: &mut Retry) -> Result<()> {
        let started = Instant::now();
        match self.sink.flush().await {
            Ok(()) => {
                retry.succeeded();
                self.flushed(started);
                Ok(())
            }
            Err(e) => self.retry_flush(e, retry).await,
        }
    }

    /// After a failure: back off and flush again until it works or the policy says stop.
    async fn retry_flush(&mut self, mut err: SluiceError, retry: &mut Retry) -> Result<()> {
        loop {
            self.stats.lock().sinks[self.index].errors += 1;
            self.stats.error(&format!("sink {}", self.sink.name()), &err);
            let text = err.chain();
            if self.sink.take_progress() {
                // Part of it is durable now: a new budget for the rest.
                retry.succeeded();
            }
            let delay = retry.next(err).map_err(|e| e.context(format!("sink {}", self.sink.name())))?;
            warn!(sink = self.sink.name(), attempt = retry.attempts(), retry_in_ms = delay.as_millis() as u64, error = %text, "sink failed; retrying");
            tokio::time::sleep(delay).await;
            let started = Instant::now();
            match self.sink.flush().await {
                Ok(()) => {
                    retry.succeeded();
                    self.flushed(started);
                    debug!(sink = self.sink.name(), "sink recovered");
                    return Ok(());
                }
                Err(e) => err = e,
            }
        }
    }

    fn flushed(&mut self, started: Instant) {
        let ms = started.elapsed().as_secs_f64() * 1e3;
        if self.durations.len() == KEPT_DURATIONS {
            self.durations.remove(0);
        }
        self.durations.push(ms as f32);
        let mut st = self.stats.lock();
        let s = &mut st.sinks[self.index];
        s.flushes += 1;
        s.last_flush_ms = ms;
        s.flush_seconds.observe(ms / 1e3);
    }

    /// One line per sink at the end of a run: how long its flushes (commits, fsyncs) took.
    fn log_durations(&mut self) {
        let d = &mut self.durations;
        if d.is_empty() {
            return;
        }
        d.sort_by(f32::total_cmp);
        let at = |q: f64| d[((d.len() - 1) as f64 * q).round() as usize];
        info!(sink = self.sink.name(), flushes = d.len(), p50_ms = at(0.5), p99_ms = at(0.99), max_ms = at(1.0), "sink flush durations");
    }

    async fn flush_and_report(&mut self, retry: &mut Retry, unflushed: &mut Option<(Barrier, Json)>) -> Result<()> {
        self.flush(retry).await?;
        self.report(unflushed);
        Ok(())
    }

    /// Everything up to the last barrier taken is durable now: tell the committer.
    fn report(&self, unflushed: &mut Option<(Barrier, Json)>) {
        let Some((barrier, mark)) = unflushed.take() else { return };
        // A sink that was ahead holds everything below `held_below` whatever the barrier says.
        let next_seq = barrier.next_seq.max(self.held_below);
        let durable = Durable { sink: self.index, barrier, next_seq, mark };
        // The committer stops only after every sink task ended: a failed send cannot happen
        // while this task runs, and would only mean the pipeline is gone.
        let _ = self.reports.send(CommitMsg::Durable(Box::new(durable)));
    }
}
