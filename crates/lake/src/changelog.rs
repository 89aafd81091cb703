//! Reading changelog tables back as change events: `sluice tail` over the lake. The lake is
//! durable and replayable (`--from earliest`), so the embedded default needs no broker.
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use deltalake::arrow::array::{Array, AsArray};
use deltalake::arrow::datatypes::{DataType, Int16Type, Int32Type, Int64Type, Int8Type, TimeUnit, TimestampMicrosecondType};
use deltalake::arrow::datatypes::{Date32Type, Float32Type, Float64Type};
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::arrow::util::display::{ArrayFormatter, FormatOptions};
use deltalake::datafusion::prelude::SessionContext;
use deltalake::DeltaTable;
use sluice_core::config::TablePattern;
use sluice_core::event::{ChangeEvent, Op, SourceInfo};
use sluice_core::schema::{Column, SqlType, TableSchema};
use sluice_core::{SluiceError, TableId, Value};

use crate::convert::{BEFORE_KEY, OP, SEQ, TS, TX};
use crate::query::{discover, run_sql, sql_name};
use crate::storage::Storage;
use crate::table::lake_err;

/// Rows read per query, so replaying a long changelog keeps memory bounded.
const PAGE: usize = 20_000;

/// Follows every changelog table (or those matching a pattern), one poll at a time.
pub struct ChangelogReader {
    storage: Storage,
    known: Vec<TableId>,
    filter: Option<TablePattern>,
    /// Per table: the Delta version last read and the last `_cdc_seq` returned.
    read: BTreeMap<TableId, (i64, i64)>,
    /// Tables first seen from now on start at their end (`--from latest`), not their start.
    skip_existing: bool,
    /// Tables seen with a current-state table (they have a key).
    keyed: BTreeSet<TableId>,
}

impl ChangelogReader {
    /// `known` adds tables the state file lists (S3 roots cannot be listed cheaply).
    pub fn new(storage: Storage, known: Vec<TableId>, filter: Option<TablePattern>, from_latest: bool) -> Self {
        Self { storage, known, filter, read: BTreeMap::new(), skip_existing: from_latest, keyed: BTreeSet::new() }
    }

    /// Whether `id` has a current-state table in the lake, i.e. a key (a primary key or
    /// `[source] keys`); a table without one has only its changelog. Known for the tables
    /// [`ChangelogReader::poll`] has returned events of.
    pub fn keyed(&self, id: &TableId) -> bool {
        self.keyed.contains(id)
    }

    /// Changes committed since the last call (at most about `max`), in `_cdc_seq` order.
    pub async fn poll(&mut self, max: usize) -> Result<Vec<ChangeEvent>, SluiceError> {
        let found = discover(&self.storage, &self.known);
        let unchecked: Vec<&TableId> =
            found.iter().filter(|(id, changes)| !changes && !self.keyed.contains(id)).map(|(id, _)| id).collect();
        for id in unchecked {
            if self.open(id, false).await?.is_some() {
                self.keyed.insert(id.clone());
            }
        }
        let tables: Vec<TableId> = found
            .into_iter()
            .filter(|(id, changes)| *changes && self.filter.as_ref().is_none_or(|p| p.matches(&id.db, &id.table)))
            .map(|(id, _)| id)
            .collect();
        let mut events = Vec::new();
        for id in tables {
            let Some(table) = self.open(&id, true).await? else { continue };
            let version = table.version().map_or(-1, |v| v as i64);
            let (seen_version, last_seq) = self.read.get(&id).copied().unwrap_or((-1, -1));
            if version == seen_version {
                continue;
            }
            let ctx = SessionContext::new();
            table.update_datafusion_session(&ctx.state()).map_err(|e| lake_err("register storage", e))?;
            let provider = table.table_provider().await.map_err(|e| SluiceError::permanent(format!("lake: read {id}: {e}")))?;
            ctx.register_table("c", provider).map_err(|e| SluiceError::permanent(format!("register {id}: {e}")))?;
            if self.skip_existing && seen_version < 0 {
                let top = run_sql(&ctx, &format!("SELECT max({SEQ}) AS m FROM c")).await?;
                let m = top.first().filter(|b| b.num_rows() > 0).map(|b| b.column(0).as_primitive::<Int64Type>()).filter(|a| !a.is_null(0));
                self.read.insert(id, (version, m.map_or(-1, |a| a.value(0))));
                continue;
            }
            let page = max.clamp(1, PAGE);
            let sql = format!("SELECT * FROM c WHERE {SEQ} > {last_seq} ORDER BY {SEQ} LIMIT {page}");
            let batches = run_sql(&ctx, &sql).await?;
            let before = events.len();
            for b in &batches {
                to_events(&id, b, &mut events)?;
            }
            let got = events.len() - before;
            let new_last = events.last().filter(|_| got > 0).map_or(last_seq, |e: &ChangeEvent| e.seq as i64);
            // A full page may have more behind it: leave the version unseen to read on.
            let version_seen = if got == page { seen_version } else { version };
            self.read.insert(id, (version_seen, new_last));
        }
        events.sort_by_key(|e| e.seq);
        Ok(events)
    }

    async fn open(&self, id: &TableId, changes: bool) -> Result<Option<DeltaTable>, SluiceError> {
        let url = self.storage.table_url(id, changes)?;
        match DeltaTable::try_from_url_with_storage_options(url, self.storage.options().clone()).await {
            Ok(t) if t.version().is_some() => Ok(Some(t)),
            Ok(_) => Ok(None),
            Err(e) => Err(lake_err(&format!("open {}", sql_name(id, changes)), e)),
        }
    }
}

/// Changelog rows to events: the image is the after image, or the before image of a delete
/// (the changelog keeps one image per change, so updates come without their before image).
fn to_events(id: &TableId, batch: &RecordBatch, out: &mut Vec<ChangeEvent>) -> Result<(), SluiceError> {
    let schema = batch.schema();
    let col = |name: &str| schema.index_of(name).map_err(|_| SluiceError::permanent(format!("{id}__changes has no {name} column")));
    let (op_i, ts_i, seq_i, tx_i) = (col(OP)?, col(TS)?, col(SEQ)?, col(TX)?);
    let user: Vec<usize> = (0..schema.fields().len()).filter(|i| !schema.field(*i).name().starts_with("_cdc_")).collect();
    let table = Arc::new(TableSchema {
        id: id.clone(),
        columns: user
            .iter()
            .map(|&i| Column { name: schema.field(i).name().clone(), ty: sql_type(schema.field(i).data_type()), nullable: true })
            .collect(),
        key: Vec::new(),
        configured_key: false,
    });
    let ops = render_column(batch.column(op_i))?;
    let ts = batch.column(ts_i).as_primitive::<TimestampMicrosecondType>();
    let seq = batch.column(seq_i).as_primitive::<Int64Type>();
    let tx = render_column(batch.column(tx_i))?;
    let before_key = match schema.index_of(BEFORE_KEY) {
        Ok(i) => Some((i, render_column(batch.column(i))?)),
        Err(_) => None,
    };
    let columns: Vec<Vec<Value>> = user.iter().map(|&i| values(batch.column(i))).collect::<Result<_, _>>()?;
    for r in 0..batch.num_rows() {
        let row: Vec<Value> = columns.iter().map(|c| c[r].clone()).collect();
        let op = match ops[r].as_str() {
            "c" => Op::Insert,
            "u" => Op::Update,
            "d" => Op::Delete,
            _ => Op::Read,
        };
        let moved = before_key.as_ref().filter(|(i, _)| !batch.column(*i).is_null(r)).map(|(_, k)| k[r].as_str());
        let (before, after) = match op {
            Op::Delete => (Some(row), None),
            Op::Update => (moved.map(|k| key_image(&table, k)), Some(row)),
            _ => (None, Some(row)),
        };
        out.push(ChangeEvent {
            op,
            schema: table.clone(),
            before,
            after,
            ts_ms: ts.value(r) / 1000,
            tx: (!batch.column(tx_i).is_null(r)).then(|| std::sync::Arc::from(tx[r].as_str())),
            seq: seq.value(r) as u64,
            source: std::sync::Arc::new(SourceInfo { snapshot: op == Op::Read, ..SourceInfo::default() }),
        });
    }
    Ok(())
}

/// A before image holding only the old key (other columns NULL): all the changelog keeps.
fn key_image(table: &TableSchema, key_json: &str) -> Vec<Value> {
    let key: serde_json::Map<String, serde_json::Value> = serde_json::from_str(key_json).unwrap_or_default();
    table
        .columns
        .iter()
        .map(|c| match key.get(&c.name) {
            Some(serde_json::Value::Number(n)) if n.is_i64() => Value::Int(n.as_i64().unwrap_or_default()),
            Some(serde_json::Value::Number(n)) => Value::Double(n.as_f64().unwrap_or_default()),
            Some(serde_json::Value::String(s)) => Value::Text(s.clone()),
            Some(serde_json::Value::Null) | None => Value::Null,
            Some(other) => Value::Text(other.to_string()),
        })
        .collect()
}

fn sql_type(t: &DataType) -> SqlType {
    match t {
        DataType::Int8 => SqlType::Int { bits: 8, unsigned: false },
        DataType::Int16 => SqlType::Int { bits: 16, unsigned: false },
        DataType::Int32 => SqlType::Int { bits: 32, unsigned: false },
        DataType::Int64 => SqlType::Int { bits: 64, unsigned: false },
        DataType::Float32 => SqlType::Float,
        DataType::Float64 => SqlType::Double,
        DataType::Decimal128(p, s) => SqlType::Decimal { precision: *p, scale: (*s).max(0) as u8 },
        DataType::Date32 => SqlType::Date,
        DataType::Timestamp(..) => SqlType::Timestamp { fsp: 6 },
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => SqlType::Binary,
        _ => SqlType::Text,
    }
}

fn render_column(a: &dyn Array) -> Result<Vec<String>, SluiceError> {
    let opts = FormatOptions::default();
    let f = ArrayFormatter::try_new(a, &opts).map_err(|e| SluiceError::permanent(format!("render changelog: {e}")))?;
    Ok((0..a.len()).map(|r| f.value(r).to_string()).collect())
}

/// One Arrow column back to values, the inverse of the sink's conversion.
fn values(a: &dyn Array) -> Result<Vec<Value>, SluiceError> {
    let n = a.len();
    let nulls =
        |v: Vec<Value>| -> Vec<Value> { v.into_iter().enumerate().map(|(i, x)| if a.is_null(i) { Value::Null } else { x }).collect() };
    let v: Vec<Value> = match a.data_type() {
        DataType::Int8 => a.as_primitive::<Int8Type>().values().iter().map(|x| Value::Int(i64::from(*x))).collect(),
        DataType::Int16 => a.as_primitive::<Int16Type>().values().iter().map(|x| Value::Int(i64::from(*x))).collect(),
        DataType::Int32 => a.as_primitive::<Int32Type>().values().iter().map(|x| Value::Int(i64::from(*x))).collect(),
        DataType::Int64 => a.as_primitive::<Int64Type>().values().iter().map(|x| Value::Int(*x)).collect(),
        DataType::Float32 => a.as_primitive::<Float32Type>().values().iter().map(|x| Value::Float(*x)).collect(),
        DataType::Float64 => a.as_primitive::<Float64Type>().values().iter().map(|x| Value::Double(*x)).collect(),
        DataType::Date32 => a.as_primitive::<Date32Type>().values().iter().map(|x| Value::Date(*x)).collect(),
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            a.as_primitive::<TimestampMicrosecondType>().values().iter().map(|x| Value::Timestamp(*x)).collect()
        }
        DataType::Binary => (0..n).map(|i| Value::Bytes(a.as_binary::<i32>().value(i).to_vec())).collect(),
        DataType::BinaryView => (0..n).map(|i| Value::Bytes(a.as_binary_view().value(i).to_vec())).collect(),
        DataType::Decimal128(..) => render_column(a)?.into_iter().map(Value::Decimal).collect(),
        _ => render_column(a)?.into_iter().map(Value::Text).collect(),
    };
    Ok(nulls(v))
}
