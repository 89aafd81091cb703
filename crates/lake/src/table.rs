//! One captured table in the lake: `db/t` (current state, merged by key) and `db/t__changes`
//! (changelog). Each Delta commit carries the highest `_cdc_seq` it covers as a `txn` action
//! (app id "sluice"), written in the same commit as the rows: on restart the sink reads it back
//! and skips what the table already holds, so no change is applied twice.
use deltalake::arrow::array::ArrayRef;
use deltalake::arrow::datatypes::{Field, FieldRef};
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::datafusion::common::Column;
use deltalake::datafusion::prelude::{cast, lit, Expr, SessionContext};
use deltalake::kernel::transaction::CommitProperties;
use deltalake::kernel::Transaction;
use deltalake::operations::optimize::OptimizeType;
use deltalake::parquet::basic::Compression;
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableError};
use sluice_core::value::identity_of;
use sluice_core::{ChangeEvent, Op, SluiceError, TableId, TableSchema};
use std::collections::HashMap;
use tracing::info;

use crate::convert::{merge_fields, to_batch, user_columns, with_columns, Kind, LakeRow, DATE, DELETED};
use crate::storage::Storage;

mod append;

pub const APP_ID: &str = "sluice";

/// A column of few distinct values (a state, a status) stays dictionary-encoded under this
/// bound; one of mostly unique values (an email, a phone) falls back to plain encoding after a
/// few thousand of them rather than tens of thousands. Interning those values into the
/// dictionary was a fifth of a full load's CPU (docs/benchmarks.md).
const DICTIONARY_PAGE_LIMIT: usize = 128 << 10;

/// Rows per Parquet row group. The writer holds a whole row group's encoded pages in memory
/// until it closes it; Parquet's default of 1Mi rows made a compaction of a big snapshot's files
/// hold 400 MB (docs/benchmarks.md). DuckDB writes row groups of about this size too.
const ROW_GROUP_ROWS: usize = 128 << 10;

/// User columns built once for a run of events that both tables of a pair receive whole (a
/// snapshot's reads, inserts under new keys): the changelog and the current state then share
/// them instead of each converting the same values.
pub struct SharedColumns {
    pub fields: Vec<Field>,
    pub columns: Vec<ArrayRef>,
}

impl SharedColumns {
    /// `None` when a table would get other columns (one of them must widen or add some first).
    pub fn build(tables: [&Delta; 2], schema: &TableSchema, events: &[&ChangeEvent]) -> Result<Option<Self>, SluiceError> {
        let merged = merge_fields(&tables[0].fields, schema).map_err(SluiceError::permanent)?;
        let other = merge_fields(&tables[1].fields, schema).map_err(SluiceError::permanent)?;
        if !merged.widened.is_empty() || !other.widened.is_empty() || merged.fields != other.fields {
            return Ok(None);
        }
        let rows: Vec<LakeRow<'_>> = events.iter().map(|&e| current_row(e)).collect();
        let columns = user_columns(&merged.fields, schema, &rows).map_err(SluiceError::permanent)?;
        Ok(Some(Self { fields: merged.fields, columns }))
    }
}

/// A batch of `kind`, with `shared`'s user columns when they are this table's.
fn batch_of(
    fields: &[Field],
    schema: &TableSchema,
    kind: Kind,
    rows: &[LakeRow<'_>],
    shared: Option<&SharedColumns>,
) -> Result<RecordBatch, String> {
    match shared.filter(|s| s.fields == fields && s.columns.first().is_none_or(|c| c.len() == rows.len())) {
        Some(s) => with_columns(fields, s.columns.clone(), kind, rows),
        None => to_batch(fields, schema, kind, rows),
    }
}

/// One Delta table and what sluice knows of it.
pub struct Delta {
    pub table: DeltaTable,
    /// Highest `_cdc_seq` committed, -1 if none.
    pub seq: i64,
    /// User columns (lake names), empty until created.
    pub fields: Vec<Field>,
    pub commits_since_upkeep: u32,
    /// Created in this process by snapshot reads, with only reads appended since: the keys of
    /// further reads of the same snapshot cannot be in it yet.
    pub fresh_snapshot: bool,
}

impl Delta {
    pub async fn open(storage: &Storage, id: &TableId, changes: bool) -> Result<Self, SluiceError> {
        let url = storage.table_url(id, changes)?;
        if let Ok(dir) = url.to_file_path() {
            // delta-rs wants an existing directory for a local table it is about to create.
            std::fs::create_dir_all(&dir).map_err(|e| SluiceError::permanent(format!("cannot create {}: {e}", dir.display())))?;
        }
        let table = DeltaTable::try_from_url_with_storage_options(url.clone(), storage.options().clone())
            .await
            .map_err(|e| lake_err(&format!("open {url}"), e))?;
        let mut d = Self { table, seq: -1, fields: Vec::new(), commits_since_upkeep: 0, fresh_snapshot: false };
        if d.table.version().is_some() {
            let snap = d.table.snapshot().map_err(|e| lake_err(&format!("read the state of {url}"), e))?;
            d.seq = snap
                .transaction_version(d.table.log_store().as_ref(), APP_ID)
                .await
                .map_err(|e| lake_err(&format!("read the last seq of {url}"), e))?
                .unwrap_or(-1);
            let schema = snap.snapshot().arrow_schema();
            d.fields = schema.fields().iter().filter(|f| !f.name().starts_with("_cdc_")).map(|f: &FieldRef| f.as_ref().clone()).collect();
        }
        Ok(d)
    }

    /// Parquet settings of the files sluice writes: delta-rs's own (Snappy) but with dictionary
    /// pages of at most [`DICTIONARY_PAGE_LIMIT`] instead of Parquet's 1 MiB.
    fn writer_properties() -> WriterProperties {
        WriterProperties::builder()
            .set_created_by(format!("sluice {}", env!("CARGO_PKG_VERSION")))
            .set_compression(Compression::SNAPPY)
            .set_dictionary_page_size_limit(DICTIONARY_PAGE_LIMIT)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build()
    }

    fn commit_properties(seq: u64) -> CommitProperties {
        CommitProperties::default().with_application_transaction(Transaction::new(APP_ID, seq as i64))
    }

    /// Appends changelog rows.
    /// `shared`: user columns already built for these events, used when this table has the same
    /// columns.
    pub async fn append_changes(
        &mut self,
        schema: &TableSchema,
        events: &[&ChangeEvent],
        shared: Option<&SharedColumns>,
    ) -> Result<(), SluiceError> {
        let Some(last) = events.last() else { return Ok(()) };
        let fields = self.fields_for(schema, true).await?;
        let before_keys: Vec<Option<String>> = events.iter().map(|e| changed_key(schema, e)).collect();
        let rows: Vec<LakeRow<'_>> = events
            .iter()
            .zip(&before_keys)
            .map(|(e, k)| LakeRow {
                values: e.row(),
                op: e.op.code(),
                ts_ms: e.ts_ms,
                seq: e.seq,
                tx: e.tx.as_deref(),
                before_key: k.as_deref(),
                deleted: false,
            })
            .collect();
        let batch = batch_of(&fields, schema, Kind::Changes, &rows, shared).map_err(SluiceError::permanent)?;
        let what = format!("append to {}__changes", schema.id);
        let grow = fields.len() > self.fields.len() && !self.fields.is_empty();
        let left = if grow { Some(batch) } else { self.append_as_is(batch, last.seq, &what).await? };
        if let Some(batch) = left {
            let mut write = self
                .table
                .clone()
                .write(vec![batch])
                .with_session_state(single_stream_session()?)
                .with_save_mode(SaveMode::Append)
                .with_partition_columns(vec![DATE.to_string()])
                .with_writer_properties(Self::writer_properties())
                .with_commit_properties(Self::commit_properties(last.seq));
            if grow {
                write = write.with_schema_mode(deltalake::operations::write::SchemaMode::Merge);
            }
            self.table = write.await.map_err(|e| lake_err(&what, e))?;
        }
        self.after_commit(fields, last.seq);
        Ok(())
    }

    /// Applies changes to the current state: one row per key, the last change wins. With
    /// `new_keys_only` (the caller knows no key of `events` can be in the table yet) the rows are
    /// appended instead of merged: a MERGE reads and rewrites the files it touches, which makes
    /// loading a big table quadratic.
    pub async fn merge_current(
        &mut self,
        schema: &TableSchema,
        events: &[&ChangeEvent],
        new_keys_only: bool,
        shared: Option<&SharedColumns>,
    ) -> Result<(), SluiceError> {
        let Some(last) = events.last() else { return Ok(()) };
        let fields = self.fields_for(schema, false).await?;
        let creating = self.table.version().is_none();
        // New keys only (reads and inserts, each key once): nothing to collapse.
        let rows = if new_keys_only { events.iter().map(|&e| current_row(e)).collect() } else { collapse(schema, events) };
        if creating || new_keys_only {
            let live: Vec<LakeRow<'_>> = rows.into_iter().filter(|r| !r.deleted).collect();
            let batch = batch_of(&fields, schema, Kind::Current, &live, shared).map_err(SluiceError::permanent)?;
            let what = format!("append to {}", schema.id);
            let grow = fields.len() > self.fields.len();
            let left = if creating || grow { Some(batch) } else { self.append_as_is(batch, last.seq, &what).await? };
            if let Some(batch) = left {
                let mut write = self
                    .table
                    .clone()
                    .write(vec![batch])
                    .with_save_mode(SaveMode::Append)
                    .with_writer_properties(Self::writer_properties())
                    .with_commit_properties(Self::commit_properties(last.seq));
                if !creating && grow {
                    write = write.with_schema_mode(deltalake::operations::write::SchemaMode::Merge);
                }
                self.table = write.await.map_err(|e| lake_err(&what, e))?;
            }
        } else {
            let batch = to_batch(&fields, schema, Kind::MergeSource, &rows).map_err(SluiceError::permanent)?;
            let ctx = SessionContext::new();
            let source = ctx.read_batch(batch).map_err(|e| SluiceError::permanent(format!("merge source for {}: {e}", schema.id)))?;
            let keys: Vec<String> = schema.key.iter().map(|&k| schema.columns[k].name.to_lowercase()).collect();
            let on = keys
                .iter()
                .map(|k| qualified("t", k).eq(qualified("s", k)))
                .reduce(Expr::and)
                .ok_or_else(|| SluiceError::permanent(format!("{} has no key to merge on", schema.id)))?;
            let names: Vec<String> = fields.iter().map(|f| f.name().clone()).chain(system_columns()).collect();
            let grow = fields.len() > self.fields.len();
            let (t, _metrics) = self
                .table
                .clone()
                .merge(source, on)
                .with_source_alias("s")
                .with_target_alias("t")
                .with_merge_schema(grow)
                .with_writer_properties(Self::writer_properties())
                .with_commit_properties(Self::commit_properties(last.seq))
                .when_matched_delete(|d| d.predicate(qualified("s", DELETED).eq(lit(true))))
                .and_then(|m| {
                    m.when_matched_update(|mut u| {
                        for n in &names {
                            u = u.update(Column::new_unqualified(n.clone()), qualified("s", n));
                        }
                        u
                    })
                })
                .and_then(|m| {
                    m.when_not_matched_insert(|mut i| {
                        i = i.predicate(qualified("s", DELETED).eq(lit(false)));
                        for n in &names {
                            i = i.set(Column::new_unqualified(n.clone()), qualified("s", n));
                        }
                        i
                    })
                })
                .map_err(|e| lake_err("build merge", e))?
                .await
                .map_err(|e| lake_err(&format!("merge into {}", schema.id), e))?;
            self.table = t;
        }
        self.after_commit(fields, last.seq);
        Ok(())
    }

    /// The lake columns for `schema`; a safe widening first rewrites the table with the wider
    /// types (protocol 1/2 has no in-place type change that Athena and Trino can read).
    async fn fields_for(&mut self, schema: &TableSchema, changes: bool) -> Result<Vec<Field>, SluiceError> {
        let merged = merge_fields(&self.fields, schema).map_err(SluiceError::permanent)?;
        if !merged.widened.is_empty() && self.table.version().is_some() {
            info!(table = %schema.id, changelog = changes, columns = ?merged.widened, "widening lake columns: rewriting the table with the wider types");
            self.widen(&merged.fields, changes)
                .await
                .map_err(|e| SluiceError::permanent(format!("widen columns of {}: {e}", schema.id)))?;
            // The rewritten table has the old columns with the new types (new columns come with
            // the next write, as usual).
            self.fields = self.fields.iter().map(|f| merged.fields.iter().find(|m| m.name() == f.name()).unwrap_or(f).clone()).collect();
        }
        Ok(merged.fields)
    }

    /// Rewrites the table with every column cast to its type in `fields`, streamed through
    /// DataFusion, in one commit that keeps the table's `txn` version.
    async fn widen(&mut self, fields: &[Field], changes: bool) -> Result<(), String> {
        // delta-rs's own session: its planner turns the write's plan into an execution plan.
        let ctx = deltalake::delta_datafusion::create_session().into_inner();
        self.table.update_datafusion_session(&ctx.state()).map_err(|e| e.to_string())?;
        let provider = self.table.table_provider().await.map_err(|e| e.to_string())?;
        ctx.register_table("t", provider).map_err(|e| e.to_string())?;
        let df = ctx.table("t").await.map_err(|e| e.to_string())?;
        let exprs: Vec<Expr> = df
            .schema()
            .fields()
            .iter()
            .map(|f| {
                let c = Expr::Column(Column::new_unqualified(f.name().clone()));
                match fields.iter().find(|n| n.name() == f.name()) {
                    Some(n) if n.data_type() != f.data_type() => cast(c, n.data_type().clone()).alias(f.name()),
                    _ => c,
                }
            })
            .collect();
        let plan = df.select(exprs).map_err(|e| e.to_string())?.into_unoptimized_plan();
        let mut write = self
            .table
            .clone()
            .write(Vec::new())
            .with_input_plan(plan)
            .with_session_state(std::sync::Arc::new(ctx.state()))
            .with_save_mode(SaveMode::Overwrite)
            .with_writer_properties(Self::writer_properties())
            .with_schema_mode(deltalake::operations::write::SchemaMode::Overwrite);
        if let Ok(seq) = u64::try_from(self.seq) {
            write = write.with_commit_properties(Self::commit_properties(seq));
        }
        if changes {
            write = write.with_partition_columns(vec![DATE.to_string()]);
        }
        self.table = write.await.map_err(|e| e.to_string())?;
        Ok(())
    }

    fn after_commit(&mut self, fields: Vec<Field>, seq: u64) {
        self.fields = fields;
        self.seq = seq as i64;
        self.commits_since_upkeep += 1;
    }

    /// Compaction of small files and vacuum of replaced ones, every `every` commits — counted
    /// in this process, or as live files, so short `--once` runs compact too.
    pub async fn upkeep(&mut self, every: u32, retention: std::time::Duration) -> Result<(), SluiceError> {
        if every == 0 || self.table.version().is_none() {
            return Ok(());
        }
        let files = self.table.snapshot().map(|s| s.log_data().num_files()).unwrap_or(0);
        if self.commits_since_upkeep < every && files <= every as usize {
            return Ok(());
        }
        self.commits_since_upkeep = 0;
        let uri = self.table.table_url().clone();
        // Snappy like every other write (delta-rs would use zstd level 4 here, several times
        // slower to compress): the stream waits for this commit.
        let (t, metrics) = self
            .table
            .clone()
            .optimize()
            .with_type(OptimizeType::Compact)
            .with_writer_properties(Self::writer_properties())
            // One output file at a time: each holds a row group in memory (the default is
            // one per core).
            .with_max_concurrent_tasks(1)
            .await
            .map_err(|e| lake_err(&format!("compact {uri}"), e))?;
        let compacted = (metrics.num_files_added, metrics.num_files_removed);
        let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::hours(1));
        let (t, v) = t
            .vacuum()
            .with_retention_period(retention)
            .with_enforce_retention_duration(false)
            .await
            .map_err(|e| lake_err(&format!("vacuum {uri}"), e))?;
        info!(table = %uri, files_added = compacted.0, files_removed = compacted.1, files_deleted = v.files_deleted.len(), "compacted and vacuumed");
        self.table = t;
        Ok(())
    }
}

/// A delta-rs session that plans one stream: with more, delta-rs hash-repartitions a changelog
/// batch by `_cdc_date` (a copy of every column) before it splits it by date again (another),
/// and the batch of a commit nearly always holds one date (one that does not is still split by
/// date in delta-rs's writer). 5% of a full load's CPU (docs/benchmarks.md). Appends that
/// RecordBatchWriter takes ([`append`]) need no session; this one is for the write operation. A new session per
/// write, as delta-rs makes by default: each write registers its own per-operation object store
/// in the session, which a session kept for the process would collect without end.
fn single_stream_session() -> Result<std::sync::Arc<dyn deltalake::datafusion::catalog::Session>, SluiceError> {
    let overrides = HashMap::from([("datafusion.execution.target_partitions".to_string(), "1".to_string())]);
    let ctx = deltalake::delta_datafusion::DeltaSessionContext::new_with_session_overrides(&overrides)
        .map_err(|e| lake_err("set up the changelog write", e))?;
    Ok(std::sync::Arc::new(ctx.into_inner().state()))
}

fn system_columns() -> impl Iterator<Item = String> {
    [crate::convert::OP, crate::convert::TS, crate::convert::SEQ].into_iter().map(String::from)
}

fn qualified(rel: &str, name: &str) -> Expr {
    Expr::Column(Column::new(Some(rel), name))
}

/// The old key of an update that changed the row's key, as a JSON object, so the changelog
/// (and `tail` over it) still says which row moved.
fn changed_key(schema: &TableSchema, e: &ChangeEvent) -> Option<String> {
    let (Op::Update, Some(b), Some(a)) = (e.op, e.before.as_deref(), e.after.as_deref()) else { return None };
    if schema.key.is_empty() || schema.key.iter().all(|&k| b[k] == a[k]) {
        return None;
    }
    let obj: serde_json::Map<String, serde_json::Value> =
        schema.key.iter().map(|&k| (schema.columns[k].name.clone(), b[k].to_json())).collect();
    Some(serde_json::Value::Object(obj).to_string())
}

/// A read or insert as a current-state row.
fn current_row<'a>(e: &'a ChangeEvent) -> LakeRow<'a> {
    LakeRow { values: e.row(), op: e.op.code(), ts_ms: e.ts_ms, seq: e.seq, tx: None, before_key: None, deleted: false }
}

/// The last change per key, in the order keys first appear (a snapshot's key order, which
/// keeps file statistics useful). A key-changing update deletes the old key and writes the new
/// one. Keys are compared by their values' identity bytes: no text rendered per row.
fn collapse<'a>(schema: &TableSchema, events: &[&'a ChangeEvent]) -> Vec<LakeRow<'a>> {
    let mut out: Vec<LakeRow<'a>> = Vec::with_capacity(events.len());
    let mut at: HashMap<Box<[u8]>, usize> = HashMap::with_capacity(events.len());
    let mut key = Vec::with_capacity(64);
    let mut put = |values: &'a [sluice_core::Value], e: &ChangeEvent, deleted: bool, key: &mut Vec<u8>| {
        identity_of(values, &schema.key, key);
        let row = LakeRow { values, op: e.op.code(), ts_ms: e.ts_ms, seq: e.seq, tx: None, before_key: None, deleted };
        match at.get(key.as_slice()) {
            Some(&i) => out[i] = row,
            None => {
                at.insert(key.as_slice().into(), out.len());
                out.push(row);
            }
        }
    };
    for e in events {
        match (e.op, e.before.as_deref(), e.after.as_deref()) {
            (Op::Delete, Some(b), _) => put(b, e, true, &mut key),
            (Op::Update, Some(b), Some(a)) if schema.key.iter().any(|&k| b[k] != a[k]) => {
                put(b, e, true, &mut key);
                put(a, e, false, &mut key);
            }
            (_, _, Some(a)) => put(a, e, false, &mut key),
            _ => {}
        }
    }
    out
}

pub fn lake_err(what: &str, e: DeltaTableError) -> SluiceError {
    use deltalake::ObjectStoreError as Os;
    // Network, throttling and commit conflicts may pass; credentials, permissions, bad paths,
    // schema and data errors will not, and retrying them would only hide the cause. The object
    // store's error may sit deep in the chain (a parquet write wraps it), so the chain decides.
    let store = chain(&e).find_map(|c| c.downcast_ref::<Os>());
    let (transient, hint) = match (&e, store) {
        (_, Some(Os::PermissionDenied { .. } | Os::Unauthenticated { .. })) => {
            (false, "; check the credentials and permissions ([sink.lake.s3] or the AWS_* environment)")
        }
        (_, Some(Os::InvalidPath { .. } | Os::NotSupported { .. } | Os::NotImplemented { .. } | Os::UnknownConfigurationKey { .. })) => {
            (false, "")
        }
        (_, Some(_)) | (DeltaTableError::Io { .. } | DeltaTableError::VersionAlreadyExists(_), _) => (true, ""),
        _ => (unreachable_endpoint(&e), ""),
    };
    let msg = format!("lake: {what}: {e}{hint}");
    if disk_full(&e) {
        // Whatever layer reported it (parquet, the object store, the log writer).
        SluiceError::exhausted(format!("{msg} (the disk is full: free space or grow the filesystem of [sink.lake] path)"))
    } else if transient {
        SluiceError::transient(msg)
    } else {
        SluiceError::permanent(msg)
    }
}

/// `e` and its causes.
fn chain<'a>(e: &'a (dyn std::error::Error + 'static)) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(e), |c| c.source())
}

/// A request that never reached the storage (refused, reset, timed out), however deeply wrapped
/// and whether or not the wrapper kept the cause as a `source`.
fn unreachable_endpoint(e: &(dyn std::error::Error + 'static)) -> bool {
    const SIGNS: [&str; 6] =
        ["error sending request", "connection refused", "connection reset", "timed out", "broken pipe", "connection closed"];
    chain(e).any(|c| {
        let text = c.to_string().to_ascii_lowercase();
        SIGNS.iter().any(|s| text.contains(s))
    })
}

/// Whether a full disk caused `e`, at any depth of its cause chain.
fn disk_full(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::StorageFull || io.raw_os_error() == Some(28))
            || err.to_string().contains("No space left on device")
        {
            return true;
        }
        cur = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use deltalake::ObjectStoreError as Os;

    fn os(source: Os) -> DeltaTableError {
        DeltaTableError::ObjectStore { source }
    }

    #[test]
    fn storage_errors_are_retried_but_credentials_and_paths_are_not() {
        let denied = lake_err("append", os(Os::PermissionDenied { path: "b/t".into(), source: "403 AccessDenied".into() }));
        assert!(!denied.is_transient());
        assert!(denied.message.contains("check the credentials"), "{}", denied.message);
        assert!(!lake_err("open", os(Os::Unauthenticated { path: "b".into(), source: "401".into() })).is_transient());
        assert!(lake_err("append", os(Os::Generic { store: "S3", source: "connection reset".into() })).is_transient());
        assert!(lake_err("commit", DeltaTableError::VersionAlreadyExists(3)).is_transient());
        assert!(!lake_err("merge", DeltaTableError::Generic("schema mismatch".into())).is_transient());
        let full = lake_err("append", DeltaTableError::Generic("write parquet: No space left on device (os error 28)".into()));
        assert_eq!(full.kind, sluice_core::ErrorKind::Exhausted);
        assert!(full.message.contains("grow the filesystem"), "{}", full.message);
        let wrapped =
            lake_err("append", DeltaTableError::Generic("Failed to parse parquet: External: error sending request for url".into()));
        assert!(wrapped.is_transient(), "an unreachable endpoint inside a parquet error is retried");
    }
}
