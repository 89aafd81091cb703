//! The pipeline's own logic, in process: sinks side by side, failures kept and retried, the
//! committed checkpoint never past what every sink holds. Sources and sinks here are plain
//! in-memory ones (the real ones are tested against real servers in their crates).
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value as Json};
use tokio::sync::{mpsc, watch, Semaphore};

use super::*;
use crate::error::ErrorKind;
use crate::schema::{Column, SqlType, TableId, TableSchema};
use crate::value::Value;

const TXS: u64 = 6;
const ROWS_PER_TX: u64 = 3;

/// Sends `TXS` transactions of `ROWS_PER_TX` rows, each followed by a checkpoint, then
/// `CaughtUp`, then waits for the pipeline to close the channel.
struct ScriptSource;

fn event(seq: u64) -> ChangeEvent {
    static SCHEMA: std::sync::OnceLock<Arc<TableSchema>> = std::sync::OnceLock::new();
    let schema = SCHEMA.get_or_init(|| {
        Arc::new(TableSchema {
            id: TableId::new("db", "t"),
            columns: vec![Column { name: "id".into(), ty: SqlType::Int { bits: 64, unsigned: false }, nullable: false }],
            key: vec![0],
            configured_key: false,
        })
    });
    ChangeEvent {
        op: Op::Insert,
        schema: Arc::clone(schema),
        before: None,
        after: Some(vec![Value::Int(seq as i64)]),
        ts_ms: 1_700_000_000_000,
        tx: None,
        seq,
        source: Default::default(),
    }
}

#[async_trait]
impl Source for ScriptSource {
    async fn run(
        self: Box<Self>,
        resume: Option<Checkpoint>,
        out: mpsc::Sender<SourceMsg>,
        _c: watch::Receiver<Option<Checkpoint>>,
    ) -> Result<()> {
        let mut seq = resume.map_or(0, |c| c.next_seq);
        // The fresh start's first checkpoint, before any row.
        let _ = out.send(SourceMsg::Checkpoint(Checkpoint { position: json!(seq), next_seq: seq })).await;
        while seq < TXS * ROWS_PER_TX {
            let events = (seq..seq + ROWS_PER_TX).map(event).collect();
            seq += ROWS_PER_TX;
            let _ = out.send(SourceMsg::Events(events)).await;
            let _ = out.send(SourceMsg::Checkpoint(Checkpoint { position: json!(seq), next_seq: seq })).await;
        }
        let _ = out.send(SourceMsg::Idle).await;
        let _ = out.send(SourceMsg::CaughtUp).await;
        out.closed().await;
        Ok(())
    }
}

/// What a test sink holds, shared with the test.
#[derive(Default)]
struct Held {
    /// Seqs made durable, in order.
    durable: Vec<u64>,
    /// Seqs written and not yet durable.
    pending: Vec<u64>,
    flushes: usize,
}

struct TestSink {
    name: &'static str,
    held: Arc<Mutex<Held>>,
    /// Flushes that fail (each with this kind) before they start to succeed.
    fail: Option<(usize, ErrorKind)>,
    /// When set, every flush waits for a permit the test hands out.
    gate: Option<Arc<Semaphore>>,
}

impl TestSink {
    fn new(name: &'static str) -> (Self, Arc<Mutex<Held>>) {
        let held = Arc::new(Mutex::new(Held::default()));
        (Self { name, held: Arc::clone(&held), fail: None, gate: None }, held)
    }
}

#[async_trait]
impl Sink for TestSink {
    fn name(&self) -> &str {
        self.name
    }
    async fn open(&mut self, _committed: Option<Json>) -> Result<()> {
        Ok(())
    }
    async fn write(&mut self, batch: &Batch) -> Result<()> {
        self.held.lock().unwrap().pending.extend(batch.events.iter().map(|e| e.seq));
        Ok(())
    }
    fn mark(&self) -> Json {
        let h = self.held.lock().unwrap();
        json!(h.durable.len() + h.pending.len())
    }
    async fn flush(&mut self) -> Result<()> {
        if let Some(gate) = &self.gate {
            gate.acquire().await.unwrap().forget();
        }
        let mut h = self.held.lock().unwrap();
        h.flushes += 1;
        if let Some((left, kind)) = &mut self.fail {
            if *left > 0 {
                *left -= 1;
                return Err(SluiceError::new(*kind, "the disk is full"));
            }
        }
        let p = std::mem::take(&mut h.pending);
        h.durable.extend(p);
        Ok(())
    }
}

fn spec(sink: TestSink, retry_for: Duration) -> SinkSpec {
    SinkSpec::new(Box::new(sink), Duration::from_millis(5), retry_for)
}

fn pipeline(dir: &std::path::Path, sinks: Vec<SinkSpec>) -> Pipeline {
    Pipeline {
        source: Box::new(ScriptSource),
        transforms: Vec::new(),
        sinks,
        store: StateStore::open_locked(dir).unwrap(),
        once: true,
        stats: Stats::default(),
        capture: None,
    }
}

/// After three failed flushes and then success: every change durable once, in order, and
/// committed.
fn assert_retried_without_loss(dir: &std::path::Path, held: &Mutex<Held>) {
    let h = held.lock().unwrap();
    assert_eq!(h.durable, all_seqs(), "every change once, in order");
    assert!(h.flushes >= 4, "three failures, then success: {} flushes", h.flushes);
    let state = StateStore::open_read_only(dir).load().unwrap();
    assert_eq!(state.checkpoint.unwrap().next_seq, TXS * ROWS_PER_TX);
}

fn all_seqs() -> Vec<u64> {
    (0..TXS * ROWS_PER_TX).collect()
}

#[tokio::test]
async fn a_blocked_sink_does_not_hold_back_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let (fast, fast_held) = TestSink::new("fast");
    let (mut slow, slow_held) = TestSink::new("slow");
    let gate = Arc::new(Semaphore::new(0));
    slow.gate = Some(Arc::clone(&gate));
    let p = pipeline(dir.path(), vec![spec(fast, Duration::from_secs(5)), spec(slow, Duration::from_secs(5))]);
    let stats = p.stats.clone();
    let run = tokio::spawn(p.run(std::future::pending()));

    // The first checkpoint waits for every sink: let the slow one flush once.
    gate.add_permits(1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while fast_held.lock().unwrap().durable != all_seqs() {
        assert!(tokio::time::Instant::now() < deadline, "the fast sink did not get everything while the slow one was blocked");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The slow sink holds only what it was sent, and nothing was committed past it.
    assert!(slow_held.lock().unwrap().durable.is_empty());
    assert_eq!(stats.snapshot().committed_seq, Some(0));
    assert_eq!(stats.snapshot().sinks[0].durable_seq, Some(TXS * ROWS_PER_TX));

    gate.add_permits(1000);
    assert_eq!(run.await.unwrap().unwrap(), Stopped::CaughtUp);
    assert_eq!(slow_held.lock().unwrap().durable, all_seqs());
    let state = StateStore::open_read_only(dir.path()).load().unwrap();
    assert_eq!(state.checkpoint.unwrap().next_seq, TXS * ROWS_PER_TX);
    assert_eq!(state.lag_ms, Some(0), "caught up: no lag");
    assert_eq!(state.tables["db.t"].inserts, TXS * ROWS_PER_TX);
}

#[tokio::test]
async fn a_failed_flush_is_retried_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut sink, held) = TestSink::new("flaky");
    sink.fail = Some((3, ErrorKind::Exhausted));
    let p = pipeline(dir.path(), vec![spec(sink, Duration::from_secs(30))]);
    assert_eq!(p.run(std::future::pending()).await.unwrap(), Stopped::CaughtUp);
    assert_retried_without_loss(dir.path(), &held);
}

#[tokio::test]
async fn a_sink_that_keeps_failing_stops_the_pipeline_at_what_every_sink_holds() {
    let dir = tempfile::tempdir().unwrap();
    let (good, good_held) = TestSink::new("good");
    let (bad, bad_held) = TestSink::new("bad");
    // The first flush (the fresh start's checkpoint) works; every later one fails.
    let bad = FailAfter { inner: bad, ok: 1, fail_first: 0, progressed: None };
    let p = Pipeline {
        sinks: vec![spec(good, Duration::from_secs(5)), SinkSpec::new(Box::new(bad), Duration::from_millis(5), Duration::from_millis(300))],
        ..pipeline(dir.path(), Vec::new())
    };
    let err = p.run(std::future::pending()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Exhausted);
    assert!(err.message.starts_with("sink bad: still failing after retrying for"), "{}", err.message);
    assert!(err.message.ends_with("the disk is full"), "{}", err.message);
    // The good sink flushed what it had; the state stays at what the failing one holds.
    assert!(!good_held.lock().unwrap().durable.is_empty());
    assert!(bad_held.lock().unwrap().durable.is_empty());
    let state = StateStore::open_read_only(dir.path()).load().unwrap();
    assert_eq!(state.checkpoint.unwrap().next_seq, 0, "committed only the first checkpoint");
    assert_eq!(state.durable["bad"], 0);
}

/// A sink whose first `fail_first` flushes fail, then `ok` work, then every one fails. With
/// `progressed` set, each failure made part of its data durable first (a stream with some
/// records throttled) and says so.
struct FailAfter {
    inner: TestSink,
    ok: usize,
    fail_first: usize,
    progressed: Option<bool>,
}

#[async_trait]
impl Sink for FailAfter {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn open(&mut self, c: Option<Json>) -> Result<()> {
        self.inner.open(c).await
    }
    async fn write(&mut self, batch: &Batch) -> Result<()> {
        self.inner.write(batch).await
    }
    fn mark(&self) -> Json {
        self.inner.mark()
    }
    async fn flush(&mut self) -> Result<()> {
        if self.fail_first > 0 {
            self.fail_first -= 1;
            if let Some(p) = &mut self.progressed {
                *p = true;
            }
            return Err(SluiceError::exhausted("throttled"));
        }
        if self.ok == 0 {
            return Err(SluiceError::exhausted("the disk is full"));
        }
        self.ok -= 1;
        self.inner.flush().await
    }
    fn take_progress(&mut self) -> bool {
        self.progressed.as_mut().is_some_and(std::mem::take)
    }
}

/// Failures that each made progress renew the retry budget: ten of them, a second or more
/// of backoff in all, never exhaust a 300 ms `retry_for`.
#[tokio::test]
async fn failures_that_make_progress_do_not_use_up_the_retry_budget() {
    let dir = tempfile::tempdir().unwrap();
    let (inner, held) = TestSink::new("stream");
    let sink = FailAfter { inner, ok: usize::MAX, fail_first: 10, progressed: Some(false) };
    let p = pipeline(dir.path(), vec![SinkSpec::new(Box::new(sink), Duration::from_millis(5), Duration::from_millis(300))]);
    let started = std::time::Instant::now();
    assert_eq!(p.run(std::future::pending()).await.unwrap(), Stopped::CaughtUp);
    assert!(started.elapsed() > Duration::from_millis(300), "the failures outlasted the budget");
    assert_eq!(held.lock().unwrap().durable, all_seqs());
}

/// A sink that flushes in the background (`start_flush`): each flush seals what is pending and
/// waits for a permit of `gate` before making it durable (or failing, `fail` times).
struct BackgroundSink {
    held: Arc<Mutex<Held>>,
    bg: Arc<Mutex<Background>>,
    gate: Arc<Semaphore>,
    /// `wants_flush` once this many seqs are pending.
    limit: usize,
}

#[derive(Default)]
struct Background {
    /// Sealed by a started flush (running, or failed and kept), in order.
    sealed: Vec<u64>,
    running: bool,
    /// The most seqs pending while a flush ran.
    max_pending_while_running: usize,
    fail: usize,
}

#[async_trait]
impl Sink for BackgroundSink {
    fn name(&self) -> &str {
        "background"
    }
    async fn open(&mut self, _committed: Option<Json>) -> Result<()> {
        Ok(())
    }
    async fn write(&mut self, batch: &Batch) -> Result<()> {
        let mut h = self.held.lock().unwrap();
        h.pending.extend(batch.events.iter().map(|e| e.seq));
        let mut bg = self.bg.lock().unwrap();
        assert!(!bg.running || h.pending.len() <= self.limit + ROWS_PER_TX as usize, "took a batch past its limit during a flush");
        if bg.running {
            bg.max_pending_while_running = bg.max_pending_while_running.max(h.pending.len());
        }
        Ok(())
    }
    fn mark(&self) -> Json {
        let h = self.held.lock().unwrap();
        json!(h.durable.len() + h.pending.len())
    }
    fn start_flush(&mut self) -> Option<crate::sink::Flushing> {
        let pending = std::mem::take(&mut self.held.lock().unwrap().pending);
        let mut bg = self.bg.lock().unwrap();
        assert!(!bg.running, "two flushes at once");
        bg.running = true;
        bg.sealed.extend(pending);
        drop(bg);
        let (held, bg, gate) = (Arc::clone(&self.held), Arc::clone(&self.bg), Arc::clone(&self.gate));
        Some(Box::pin(async move {
            gate.acquire().await.unwrap().forget();
            let mut bg = bg.lock().unwrap();
            bg.running = false;
            let mut h = held.lock().unwrap();
            h.flushes += 1;
            if bg.fail > 0 {
                bg.fail -= 1;
                return Err(SluiceError::exhausted("the disk is full"));
            }
            let sealed = std::mem::take(&mut bg.sealed);
            h.durable.extend(sealed);
            Ok(())
        }))
    }
    async fn flush(&mut self) -> Result<()> {
        self.start_flush().unwrap().await
    }
    fn wants_flush(&self) -> bool {
        self.held.lock().unwrap().pending.len() >= self.limit
    }
}

/// A [`BackgroundSink`], and the handles the test watches it through.
fn background(limit: usize, fail: usize) -> (BackgroundSink, BackgroundSink) {
    let held = Arc::new(Mutex::new(Held::default()));
    let bg = Arc::new(Mutex::new(Background { fail, ..Background::default() }));
    let gate = Arc::new(Semaphore::new(0));
    let sink = BackgroundSink { held: Arc::clone(&held), bg: Arc::clone(&bg), gate: Arc::clone(&gate), limit };
    (sink, BackgroundSink { held, bg, gate, limit })
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// While a started flush runs, the sink takes batches until its next buffer is full, and
/// nothing is committed past what the finished flushes covered.
#[tokio::test]
async fn a_background_flush_overlaps_writes_and_bounds_the_next_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let limit = 2 * ROWS_PER_TX as usize;
    let (sink, BackgroundSink { held, bg, gate, .. }) = background(limit, 0);
    let p = pipeline(dir.path(), vec![SinkSpec::new(Box::new(sink), Duration::from_millis(5), Duration::from_secs(5))]);
    let stats = p.stats.clone();
    let run = tokio::spawn(p.run(std::future::pending()));

    // The fresh start's checkpoint (urgent) flushes first; then a flush starts and blocks.
    gate.add_permits(1);
    wait_for("a second flush to start", || bg.lock().unwrap().running).await;
    wait_for("writes during the flush", || held.lock().unwrap().pending.len() >= limit).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    {
        let h = held.lock().unwrap();
        assert!(h.pending.len() < all_seqs().len(), "took everything during one flush: {:?}", h.pending);
        assert_eq!(h.flushes, 1);
    }
    assert_eq!(stats.snapshot().committed_seq, Some(0), "committed past what is durable");

    gate.add_permits(1000);
    assert_eq!(run.await.unwrap().unwrap(), Stopped::CaughtUp);
    assert_eq!(held.lock().unwrap().durable, all_seqs(), "every change once, in order");
    let bg = bg.lock().unwrap();
    assert!(bg.max_pending_while_running >= limit, "no write overlapped a flush");
    let state = StateStore::open_read_only(dir.path()).load().unwrap();
    assert_eq!(state.checkpoint.unwrap().next_seq, TXS * ROWS_PER_TX);
}

/// A started flush that fails keeps what it sealed; the retry writes it and what came after,
/// in order, and the committed checkpoint then covers both.
#[tokio::test]
async fn a_failed_background_flush_is_retried_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (sink, BackgroundSink { held, gate, .. }) = background(ROWS_PER_TX as usize, 3);
    gate.add_permits(1000);
    let p = pipeline(dir.path(), vec![SinkSpec::new(Box::new(sink), Duration::from_millis(5), Duration::from_secs(30))]);
    assert_eq!(p.run(std::future::pending()).await.unwrap(), Stopped::CaughtUp);
    assert_retried_without_loss(dir.path(), &held);
}
