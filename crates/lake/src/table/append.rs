//! Appends that bypass delta-rs's write operation: a batch that already has the table's own
//! schema goes through RecordBatchWriter, and its adds are committed with the `txn` action,
//! for the tables whose rules RecordBatchWriter keeps ([`appends_as_is`]).
use deltalake::arrow::array::{Array, Date32Array};
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::kernel::scalars::ScalarExt;
use deltalake::writer::{DeltaWriter as _, RecordBatchWriter, WriteMode};
use indexmap::IndexMap;
use sluice_core::SluiceError;
use tracing::debug;

use super::{lake_err, Delta};
use crate::convert::DATE;

impl Delta {
    /// Appends `batch` to the existing table in one commit that carries `seq`, with delta-rs's
    /// RecordBatchWriter: the batch goes straight to the Parquet writer (into its one date's
    /// directory when it holds one date), with no DataFusion plan and no copy of its columns.
    /// The write operation's plan, cast and split by date per commit were 8% of a full load's CPU
    /// (docs/benchmarks.md). Returns the batch untouched when the table needs the
    /// write operation instead: its columns are not the batch's, or it has a feature whose rules
    /// only the write operation enforces ([`appends_as_is`]).
    pub(super) async fn append_as_is(&mut self, batch: RecordBatch, seq: u64, what: &str) -> Result<Option<RecordBatch>, SluiceError> {
        let Ok(state) = self.table.snapshot() else { return Ok(Some(batch)) };
        if !appends_as_is(state) {
            return Ok(Some(batch));
        }
        let mut writer = RecordBatchWriter::for_table(&self.table)
            .map_err(|e| lake_err(what, e))?
            .with_writer_properties(Self::writer_properties())
            .with_commit_properties(Self::commit_properties(seq));
        // The table's own schema (names, types, nullability) or the write operation.
        let table_schema = writer.arrow_schema();
        let same_names = table_schema.fields().len() == batch.num_columns()
            && table_schema.fields().iter().zip(batch.schema().fields()).all(|(t, b)| t.name() == b.name());
        let Some(batch) = same_names.then(|| RecordBatch::try_new(table_schema, batch.columns().to_vec()).ok()).flatten() else {
            debug!(table = %self.table.table_url(), "append by the write operation: the batch's columns are not the table's");
            return Ok(Some(batch));
        };
        let partition = one_date(&batch).and_then(|d| ScalarExt::from_array(d, 0)).map(|d| IndexMap::from([(DATE.to_string(), d)]));
        // Encoded on a task of its own: the changelog's and the current state's appends of one
        // commit then run on both cores (the write operation had that from DataFusion's tasks).
        let mut table = self.table.clone();
        let append = tokio::spawn(async move {
            match partition {
                Some(partition) => writer.write_partition(batch, &partition, WriteMode::Default).await.map(drop)?,
                None => writer.write(batch).await?,
            }
            writer.flush_and_commit(&mut table).await.map(|_| table)
        });
        let appended = append.await.map_err(|e| SluiceError::permanent(format!("lake: {what}: {e}")))?;
        self.table = appended.map_err(|e| lake_err(what, e))?;
        Ok(None)
    }
}

/// Whether RecordBatchWriter may append to the table: delta-rs's write operation, not it,
/// enforces CHECK constraints, generated and identity columns, invariants, column mapping and
/// row tracking. Tables sluice creates have none of them; one that a user gave one keeps
/// getting the write operation.
pub(super) fn appends_as_is(state: &deltalake::table::state::DeltaTableState) -> bool {
    let props = state.table_config();
    // Even "none": a table whose mapping mode was ever set was not made by sluice.
    let mapped = props.column_mapping_mode.is_some();
    let tracked = props.enable_row_tracking.unwrap_or(false);
    let constrained = state.metadata().configuration().keys().any(|k| k.starts_with("delta.constraints."));
    let special_columns = state.schema().fields().any(|f| f.metadata().keys().any(|k| k.starts_with("delta.")));
    !(mapped || tracked || constrained || special_columns)
}

/// Whether every row of a changelog batch has one `_cdc_date` (nearly every batch), so that
/// RecordBatchWriter need not split it by date.
fn one_date(batch: &RecordBatch) -> Option<&Date32Array> {
    let dates = batch.column_by_name(DATE)?.as_any().downcast_ref::<Date32Array>()?;
    let first = dates.values().first()?;
    (dates.null_count() == 0 && dates.values().iter().all(|d| d == first)).then_some(dates)
}

/// Appends to real Delta tables in a temporary directory, read back with DataFusion.
#[cfg(test)]
mod tests {
    use super::super::*;
    use super::*;
    use crate::config::LakeConfig;
    use crate::query::Lake;
    use deltalake::arrow::array::Int64Array;
    use sluice_core::event::SourceInfo;
    use sluice_core::{Column, SqlType, Value};
    use std::sync::Arc;

    const ID_TYPE: SqlType = SqlType::Int { bits: 64, unsigned: false };

    fn schema() -> Arc<TableSchema> {
        let column = Column { name: "id".into(), ty: ID_TYPE, nullable: false };
        Arc::new(TableSchema { id: TableId::new("shop", "t"), columns: vec![column], key: vec![0], configured_key: false })
    }

    fn insert(schema: &Arc<TableSchema>, id: i64, ts_ms: i64) -> ChangeEvent {
        ChangeEvent {
            op: Op::Insert,
            schema: Arc::clone(schema),
            before: None,
            after: Some(vec![Value::Int(id)]),
            ts_ms,
            tx: None,
            seq: id as u64,
            source: Arc::new(SourceInfo::default()),
        }
    }

    /// A lake in a temporary directory (removed when the first value drops).
    fn temp_lake() -> (tempfile::TempDir, Storage) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LakeConfig { path: dir.path().to_str().unwrap().to_string(), ..LakeConfig::default() };
        let storage = Storage::create(&cfg).unwrap();
        (dir, storage)
    }

    async fn ints(lake: &Lake, sql: &str) -> Vec<i64> {
        let batches = lake.sql(sql).await.unwrap();
        batches.iter().flat_map(|b| b.column(0).as_any().downcast_ref::<Int64Array>().unwrap().values().to_vec()).collect()
    }

    /// A commit whose changes straddle midnight (UTC) files each row under its own date, and
    /// the commits before and after it (one date each) under theirs; the last seq is kept.
    #[tokio::test]
    async fn a_changelog_commit_over_midnight_puts_each_row_under_its_date() {
        let (dir, storage) = temp_lake();
        let schema = schema();
        let mut changes = Delta::open(&storage, &schema.id, true).await.unwrap();
        let midnight = 1_796_256_000_000; // 2026-12-03T00:00:00Z
        let commits = [
            vec![insert(&schema, 1, midnight - 60_000), insert(&schema, 2, midnight - 30_000)],
            vec![insert(&schema, 3, midnight - 1), insert(&schema, 4, midnight), insert(&schema, 5, midnight - 2)],
            vec![insert(&schema, 6, midnight + 1)],
        ];
        for events in &commits {
            changes.append_changes(&schema, &events.iter().collect::<Vec<_>>(), None).await.unwrap();
        }
        assert_eq!(changes.seq, 6);
        assert_eq!(changes.table.version(), Some(2), "one commit per append");
        for (date, ids) in [("2026-12-02", "1|2|3|5"), ("2026-12-03", "4|6")] {
            let files: Vec<String> = std::fs::read_dir(dir.path().join("shop/t__changes").join(format!("_cdc_date={date}")))
                .unwrap()
                .map(|f| f.unwrap().file_name().into_string().unwrap())
                .collect();
            assert!(!files.is_empty(), "no file under {date}");
            let lake = Lake::open(&storage, &[]).await.unwrap();
            let sql = format!("SELECT id FROM shop.t__changes WHERE _cdc_date = DATE '{date}' ORDER BY id");
            let got: Vec<String> = ints(&lake, &sql).await.iter().map(i64::to_string).collect();
            assert_eq!(got.join("|"), ids, "rows under {date}");
        }
        let reopened = Delta::open(&storage, &schema.id, true).await.unwrap();
        assert_eq!(reopened.seq, 6, "the txn version survives a reopen");
        // The appends after the first (which creates the table) took RecordBatchWriter, not the
        // write operation: only the latter records operationMetrics in its commitInfo.
        for version in 1..=2 {
            let log = std::fs::read_to_string(dir.path().join(format!("shop/t__changes/_delta_log/{version:020}.json"))).unwrap();
            assert!(!log.contains("operationMetrics") && log.contains(r#""appId":"sluice""#), "commit {version}: {log}");
        }
    }

    /// Every lake type keeps the table's own Arrow type in the batch, so appends of any table
    /// take RecordBatchWriter (a mismatch would silently fall back to the write operation).
    #[tokio::test]
    async fn tables_of_every_lake_type_take_plain_appends() {
        let (dir, storage) = temp_lake();
        let types = [
            SqlType::Int { bits: 8, unsigned: true },
            SqlType::Int { bits: 24, unsigned: false },
            SqlType::Int { bits: 64, unsigned: true },
            SqlType::Decimal { precision: 10, scale: 2 },
            SqlType::Decimal { precision: 50, scale: 4 },
            SqlType::Float,
            SqlType::Double,
            SqlType::Date,
            SqlType::DateTime { fsp: 6 },
            SqlType::Timestamp { fsp: 3 },
            SqlType::Time { fsp: 0 },
            SqlType::Year,
            SqlType::Text,
            SqlType::Enum { labels: vec!["a".into()] },
            SqlType::Set { labels: vec!["a".into()] },
            SqlType::Json,
            SqlType::Binary,
            SqlType::Bit { bits: 3 },
            SqlType::Geometry,
        ];
        let mut columns = vec![Column { name: "id".into(), ty: ID_TYPE, nullable: false }];
        columns.extend(types.iter().enumerate().map(|(i, ty)| Column { name: format!("c{i}"), ty: ty.clone(), nullable: true }));
        let schema = Arc::new(TableSchema { id: TableId::new("shop", "all"), columns, key: vec![0], configured_key: false });
        let event = |id: i64| {
            let mut row = vec![Value::Int(id)];
            row.extend(types.iter().map(|_| Value::Null));
            ChangeEvent { after: Some(row), ..insert(&schema, id, 0) }
        };
        let mut current = Delta::open(&storage, &schema.id, false).await.unwrap();
        let mut changes = Delta::open(&storage, &schema.id, true).await.unwrap();
        for id in 1..=2 {
            let e = event(id);
            current.merge_current(&schema, &[&e], true, None).await.unwrap();
            changes.append_changes(&schema, &[&e], None).await.unwrap();
        }
        for table in ["all", "all__changes"] {
            let log = std::fs::read_to_string(dir.path().join(format!("shop/{table}/_delta_log/{:020}.json", 1))).unwrap();
            assert!(!log.contains("operationMetrics"), "{table}: the second append took the write operation: {log}");
        }
    }

    /// RecordBatchWriter does not enforce CHECK constraints; a table a user gave one keeps the
    /// write operation, which refuses the row that breaks it and commits nothing.
    #[tokio::test]
    async fn a_table_with_a_check_constraint_keeps_the_write_operation() {
        let (dir, storage) = temp_lake();
        let schema = schema();
        let mut current = Delta::open(&storage, &schema.id, false).await.unwrap();
        current.merge_current(&schema, &[&insert(&schema, 10, 0)], true, None).await.unwrap();
        current.merge_current(&schema, &[&insert(&schema, 11, 0)], true, None).await.unwrap();
        assert!(appends_as_is(current.table.snapshot().unwrap()), "a table sluice made takes plain appends");
        let log = std::fs::read_to_string(dir.path().join(format!("shop/t/_delta_log/{:020}.json", 1))).unwrap();
        assert!(!log.contains("operationMetrics"), "the second append took RecordBatchWriter: {log}");
        current.table = current.table.clone().add_constraint().with_constraint("id_big", "id > 5").await.unwrap();
        assert!(!appends_as_is(current.table.snapshot().unwrap()));
        let version = current.table.version();
        let err = current.merge_current(&schema, &[&insert(&schema, 3, 0)], true, None).await.unwrap_err();
        assert!(err.message.contains("failed validation check"), "{}", err.message);
        assert_eq!(current.table.version(), version, "nothing committed");
        current.merge_current(&schema, &[&insert(&schema, 12, 0)], true, None).await.unwrap();
        let lake = Lake::open(&storage, &[]).await.unwrap();
        assert_eq!(ints(&lake, "SELECT id FROM shop.t ORDER BY id").await, vec![10, 11, 12]);
    }
}
