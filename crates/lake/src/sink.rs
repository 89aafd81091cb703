//! `LakeSink`: buffers changes and commits them to Delta tables every flush (or every
//! `flush_rows` changes), current state and changelog per captured table.
//!
//! Commits run in the background (`Sink::start_flush`): while one buffer is written, the next
//! fills, up to `flush_rows` / `flush_bytes`; then the pipeline stops feeding the lake until the
//! commit is done. Commits run one at a time, in order.
//!
//! A failed commit keeps the buffer: each Delta table records the last `seq` it holds in its
//! own commits, so the retry skips, table by table and for current state and changelog apart,
//! what already landed, and writes the rest. Nothing is dropped and nothing is applied twice.
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::config::LakeConfig;
use async_trait::async_trait;
use serde_json::{json, Value as Json};
use sluice_core::sink::{Batch, Flushing, Sink};
use sluice_core::{ChangeEvent, Op, SluiceError, TableId};
use tokio::sync::Mutex;
use tracing::{debug, info, warn};

use crate::query::discover;
use crate::storage::Storage;
use crate::table::{Delta, SharedColumns};

/// Both Delta tables of one captured table.
struct Pair {
    /// `None` for a table without primary key: changelog only.
    current: Option<Delta>,
    changes: Delta,
}

pub struct LakeSink {
    cfg: LakeConfig,
    storage: Storage,
    /// The Delta tables, behind a lock held by the one commit that runs.
    writer: Arc<Mutex<Writer>>,
    /// Batches taken and not yet sealed for a commit (shared with the other sinks, not copied).
    pending: Vec<Batch>,
    pending_rows: usize,
    pending_bytes: usize,
    /// Every table this lake has held or is about to (kept in the mark): S3 roots are not listed.
    known: BTreeSet<TableId>,
    /// `mark()`'s value for the current `known`.
    mark: Json,
}

/// What a commit works on: the open Delta tables, and the batches of a commit that failed.
struct Writer {
    cfg: LakeConfig,
    storage: Storage,
    tables: HashMap<TableId, Pair>,
    /// Sealed batches whose commit failed: the next commit writes them first.
    failed: Vec<Batch>,
}

impl LakeSink {
    pub fn new(cfg: &LakeConfig) -> Result<Self, SluiceError> {
        let storage = Storage::create(cfg)?;
        let writer = Writer { cfg: cfg.clone(), storage: storage.clone(), tables: HashMap::new(), failed: Vec::new() };
        let mut sink = Self {
            storage,
            cfg: cfg.clone(),
            writer: Arc::new(Mutex::new(writer)),
            pending: Vec::new(),
            pending_rows: 0,
            pending_bytes: 0,
            known: BTreeSet::new(),
            mark: Json::Null,
        };
        sink.mark = sink.mark_json();
        Ok(sink)
    }

    fn mark_json(&self) -> Json {
        let tables: Vec<String> = self.known.iter().map(ToString::to_string).collect();
        json!({ "root": self.storage.root().as_str(), "tables": tables })
    }
}

impl Writer {
    async fn pair(&mut self, id: &TableId, keyed: bool) -> Result<&mut Pair, SluiceError> {
        if !self.tables.contains_key(id) {
            let changes = Delta::open(&self.storage, id, true).await?;
            let current = if keyed {
                Some(Delta::open(&self.storage, id, false).await?)
            } else {
                warn!(table = %id, "no primary key: the lake keeps only its changelog ({id}__changes)");
                None
            };
            info!(table = %id, changes_seq = changes.seq, current_seq = current.as_ref().map(|c| c.seq), "lake tables opened");
            self.tables.insert(id.clone(), Pair { current, changes });
        }
        Ok(self.tables.get_mut(id).expect("inserted above"))
    }

    /// Commits what failed before and then `sealed`, table by table. On failure all of it is
    /// kept and the failed table is reopened on the next attempt (its position re-read from its
    /// log), so the retry neither loses nor repeats a change.
    async fn commit(&mut self, sealed: Vec<Batch>) -> Result<(), SluiceError> {
        let mut all = std::mem::take(&mut self.failed);
        all.extend(sealed);
        if all.is_empty() {
            return Ok(());
        }
        match self.commit_batches(&all).await {
            Ok(()) => {
                debug!(rows = all.iter().map(|b| b.events.len()).sum::<usize>(), "lake commit done");
                // Freeing a full buffer's events was 7% of a full load's CPU: done beside
                // the next commit, not before the pipeline hears that this one is done.
                tokio::task::spawn_blocking(move || drop(all));
                Ok(())
            }
            Err(e) => {
                self.failed = all;
                Err(e)
            }
        }
    }

    async fn commit_batches(&mut self, pending: &[Batch]) -> Result<(), SluiceError> {
        let mut order: Vec<TableId> = Vec::new();
        let mut by_table: HashMap<TableId, Vec<&ChangeEvent>> = HashMap::new();
        for e in pending.iter().flat_map(|b| b.events.iter()) {
            let list = by_table.entry(e.schema.id.clone()).or_insert_with(|| {
                order.push(e.schema.id.clone());
                Vec::new()
            });
            list.push(e);
        }
        for id in order {
            if let Err(e) = self.commit_table(&id, &by_table[&id]).await {
                // Whatever this table's commit did or did not write, reading its log again
                // tells the retry where it stands.
                self.tables.remove(&id);
                return Err(e);
            }
        }
        Ok(())
    }

    async fn commit_table(&mut self, id: &TableId, events: &[&ChangeEvent]) -> Result<(), SluiceError> {
        let keyed = events.first().is_some_and(|e| !e.schema.key.is_empty());
        let (every, retention) = (self.cfg.compact_every, self.cfg.retention.0);
        let Pair { current, changes } = self.pair(id, keyed).await?;
        let fresh_changes: Vec<&ChangeEvent> = events.iter().copied().filter(|e| e.seq as i64 > changes.seq).collect();
        let fresh_state: Vec<&ChangeEvent> = match current.as_ref() {
            Some(c) => events.iter().copied().filter(|e| e.seq as i64 > c.seq).collect(),
            None => Vec::new(),
        };
        let change_runs = runs(&fresh_changes);
        // Both tables get the very same rows (a snapshot, new inserts): convert them once.
        let shared = match (current.as_ref(), change_runs.as_slice()) {
            (Some(c), [run]) if fresh_changes.len() == fresh_state.len() && new_keys(c, run) => {
                SharedColumns::build([changes, c], &run[0].schema, run)?
            }
            _ => None,
        };
        // The changelog and the current state are separate Delta tables: written at once, their
        // encoding and I/O overlap.
        let changelog = async {
            for run in change_runs {
                changes.append_changes(&run[0].schema, run, shared.as_ref()).await?;
            }
            changes.upkeep(every, retention).await
        };
        let state = async {
            let Some(current) = current.as_mut() else { return Ok(()) };
            for run in runs(&fresh_state) {
                // Both judged before the write, which creates the table.
                let (new_keys, fresh) = (new_keys(current, run), fresh_snapshot(current, run));
                current.merge_current(&run[0].schema, run, new_keys, shared.as_ref()).await?;
                current.fresh_snapshot = fresh;
            }
            current.upkeep(every, retention).await
        };
        let (changelog, state) = tokio::join!(changelog, state);
        changelog.and(state)
    }
}

/// Whether `run` of a current-state table's changes can only add keys it does not hold yet:
/// reads of the snapshot that created it in this process, or inserts under a key the database
/// enforces (the table mirrors the source as of the previous commit, and nothing in the run
/// deletes). Not inserts replayed by a resumed snapshot: the table may hold them already.
fn new_keys(current: &Delta, run: &[&ChangeEvent]) -> bool {
    fresh_snapshot(current, run) || (run.iter().all(|e| e.op == Op::Insert && !e.source.replayed) && !run[0].schema.configured_key)
}

/// Whether `current` still holds nothing but the snapshot's reads after `run`.
fn fresh_snapshot(current: &Delta, run: &[&ChangeEvent]) -> bool {
    run.iter().all(|e| e.op == Op::Read) && (current.table.version().is_none() || current.fresh_snapshot)
}

/// The tables listed in the lake's committed mark. A mark that does not parse is an error, not
/// an empty lake: on S3 the list is how sluice finds its tables.
fn committed_tables(committed: Option<&Json>) -> Result<Vec<TableId>, SluiceError> {
    let Some(mark) = committed else { return Ok(Vec::new()) };
    let bad = || {
        SluiceError::permanent(
            "the committed state of sink lake is not a valid lake mark (expected {\"tables\": [\"db.table\", ...]}); \
             restore the state dir, or remove it to start over",
        )
    };
    let listed = mark.get("tables").ok_or_else(bad)?;
    let names: Vec<String> = serde_json::from_value(listed.clone()).map_err(|_| bad())?;
    names.iter().map(|t| t.split_once('.').map(|(db, table)| TableId::new(db, table)).ok_or_else(bad)).collect()
}

/// Consecutive events with the same schema (a DDL mid-batch starts a new run).
fn runs<'a, 'b>(events: &'b [&'a ChangeEvent]) -> Vec<&'b [&'a ChangeEvent]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=events.len() {
        if i == events.len() || !same_schema(&events[i].schema, &events[start].schema) {
            if i > start {
                out.push(&events[start..i]);
            }
            start = i;
        }
    }
    out
}

fn same_schema(a: &Arc<sluice_core::TableSchema>, b: &Arc<sluice_core::TableSchema>) -> bool {
    Arc::ptr_eq(a, b) || a.columns == b.columns
}

#[async_trait]
impl Sink for LakeSink {
    fn name(&self) -> &str {
        "lake"
    }

    /// The lake keeps its own position (the `txn` of each table): nothing to restore here but
    /// the list of tables it holds.
    async fn open(&mut self, committed: Option<Json>) -> Result<(), SluiceError> {
        // Reopening after a failure: what was not committed is sent again.
        self.pending.clear();
        self.pending_rows = 0;
        self.pending_bytes = 0;
        let mut writer = self.writer.lock().await;
        writer.tables.clear();
        writer.failed.clear();
        drop(writer);
        for t in committed_tables(committed.as_ref())? {
            self.known.insert(t);
        }
        self.mark = self.mark_json();
        Ok(())
    }

    /// The highest `_cdc_seq` any changelog holds (every change lands in its changelog).
    async fn high_water(&mut self) -> Result<Option<u64>, SluiceError> {
        let known: Vec<TableId> = self.known.iter().cloned().collect();
        let mut high: Option<u64> = None;
        for (id, changes) in discover(&self.storage, &known) {
            if changes {
                let seq = Delta::open(&self.storage, &id, true).await?.seq;
                high = high.max(u64::try_from(seq).ok());
            }
        }
        Ok(high)
    }

    async fn write(&mut self, batch: &Batch) -> Result<(), SluiceError> {
        // The mark lists a table from its first buffered change on: listing one that a crash
        // keeps from being written costs nothing, missing one would hide it on S3.
        // Checked once per run of events sharing a schema object, not per event.
        let mut grew = false;
        let mut last: Option<&Arc<sluice_core::TableSchema>> = None;
        for e in &batch.events {
            if last.is_some_and(|s| Arc::ptr_eq(s, &e.schema)) {
                continue;
            }
            last = Some(&e.schema);
            if !self.known.contains(&e.schema.id) {
                grew |= self.known.insert(e.schema.id.clone());
            }
        }
        if grew {
            self.mark = self.mark_json();
        }
        self.pending_rows += batch.events.len();
        self.pending_bytes += batch.bytes;
        self.pending.push(Arc::clone(batch));
        Ok(())
    }

    fn wants_flush(&self) -> bool {
        self.pending_rows >= self.cfg.flush_rows.get() as usize || self.pending_bytes as u64 >= self.cfg.flush_bytes.0
    }

    fn start_flush(&mut self) -> Option<Flushing> {
        let sealed = std::mem::take(&mut self.pending);
        self.pending_rows = 0;
        self.pending_bytes = 0;
        let writer = Arc::clone(&self.writer);
        // Its own task: encoding Parquet is CPU work, which then runs beside the source's.
        let commit = tokio::spawn(async move { writer.lock().await.commit(sealed).await });
        Some(Box::pin(
            async move { commit.await.unwrap_or_else(|e| Err(SluiceError::permanent(format!("lake: the commit task failed: {e}")))) },
        ))
    }

    fn mark(&self) -> Json {
        // Called once per transaction: built when the set of tables changes, not here.
        self.mark.clone()
    }

    async fn flush(&mut self) -> Result<(), SluiceError> {
        match self.start_flush() {
            Some(commit) => commit.await,
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::event::SourceInfo;
    use sluice_core::{Column, SqlType, TableSchema, Value};

    fn event(schema: &Arc<TableSchema>, op: Op, id: i64, replayed: bool) -> ChangeEvent {
        ChangeEvent {
            op,
            schema: Arc::clone(schema),
            before: None,
            after: Some(vec![Value::Int(id)]),
            ts_ms: 0,
            tx: None,
            seq: id as u64,
            source: Arc::new(SourceInfo { replayed, ..SourceInfo::default() }),
        }
    }

    /// Which runs the current state appends without a MERGE: never replayed inserts, which a
    /// resumed snapshot renumbers and the table may already hold.
    #[tokio::test]
    async fn only_changes_that_cannot_be_in_the_table_are_appended() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LakeConfig { path: dir.path().to_str().unwrap().to_string(), ..LakeConfig::default() };
        let storage = Storage::create(&cfg).unwrap();
        let id = TableId::new("shop", "t");
        let current = Delta::open(&storage, &id, false).await.unwrap();
        let column = Column { name: "id".into(), ty: SqlType::Int { bits: 64, unsigned: false }, nullable: false };
        let schema = |configured_key| Arc::new(TableSchema { id: id.clone(), columns: vec![column.clone()], key: vec![0], configured_key });
        let (pk, configured) = (schema(false), schema(true));
        let run = |events: &[ChangeEvent]| -> bool { new_keys(&current, &events.iter().collect::<Vec<_>>()) };

        assert!(run(&[event(&pk, Op::Read, 1, false), event(&pk, Op::Read, 2, false)]), "a new table's snapshot reads");
        assert!(run(&[event(&pk, Op::Insert, 1, false)]), "inserts under a primary key");
        assert!(!run(&[event(&pk, Op::Insert, 1, false), event(&pk, Op::Insert, 2, true)]), "inserts replayed by a resumed snapshot");
        assert!(!run(&[event(&configured, Op::Insert, 1, false)]), "inserts under a configured key nothing enforces");
        assert!(!run(&[event(&pk, Op::Insert, 1, false), event(&pk, Op::Update, 1, false)]), "a run that updates");
    }
}
