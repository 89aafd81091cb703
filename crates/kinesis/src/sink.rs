//! The `kinesis` sink.
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use aws_sdk_kinesis::Client;
use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};
use sluice_core::config::EventFormat;
use sluice_core::encode::{debezium_into, dms_control, dms_into, dms_table_ddl, write_json, SchemaTracker};
use sluice_core::error::{Result, SluiceError};
use sluice_core::event::Op;
use sluice_core::schema::{TableDdl, TableDdlKind, TableId, TableSchema};
use sluice_core::sink::{Batch, Sink};
use sluice_core::value::Row;
use tracing::{debug, info};

use crate::batch::{Origin, Pending, Record, MAX_CALL_BYTES, MAX_PARTITION_KEY, MAX_RECORDS_PER_CALL, MAX_RECORD_BYTES};
use crate::client::{classify, client, probe};
use crate::config::{KinesisConfig, PartitionKey};

const NAME: &str = "kinesis";

/// Writes each event as one record of a Kinesis data stream.
///
/// `write` encodes and queues; `flush` sends PutRecords calls until every queued record is
/// acknowledged (durable = acknowledged by the service), planned by [`crate::batch`] so that a
/// retry never reorders a partition key. A failed call or entry stays queued and the pipeline's
/// retry policy calls `flush` again. Delivery is at least once: records sent after the last
/// committed checkpoint are sent again after a crash, identical (the encoding depends only on
/// the event); nothing can be taken back. The mark is the time it was taken: after a crash,
/// [`Sink::high_water`] reads what arrived since the last committed one, so a source that
/// cannot replay exactly (a resumed snapshot) numbers its changes above what consumers saw,
/// and a `seq` never names two different changes on the stream.
pub struct KinesisSink {
    cfg: KinesisConfig,
    client: Option<Client>,
    pending: Pending,
    /// DMS control records: the definition each table's consumers last saw.
    tables: SchemaTracker,
    /// After a restart: when the last committed mark was taken (epoch ms). Everything sent
    /// past that commit arrived after it.
    committed_at_ms: Option<i64>,
    /// Records were acknowledged since the last failed flush (see [`Sink::take_progress`]).
    progressed: bool,
    /// Where records are encoded before they are copied out at their exact size.
    scratch: Vec<u8>,
}

/// Clock difference allowed between this host and the service's arrival timestamps.
const CLOCK_SKEW_MS: i64 = 5_000;

impl KinesisSink {
    pub fn new(cfg: KinesisConfig) -> Self {
        Self {
            cfg,
            client: None,
            pending: Pending::default(),
            tables: SchemaTracker::default(),
            committed_at_ms: None,
            progressed: false,
            scratch: Vec::with_capacity(4096),
        }
    }

    /// The record of `origin`: the change, or the control record announcing its table's
    /// definition. Depends only on the event, so a record encoded again is identical. Written
    /// into the sink's scratch buffer, then copied once into a record of its exact size (the
    /// SDK takes each record's bytes by value).
    fn encode(&mut self, origin: &Origin) -> Result<Vec<u8>> {
        let ev = &origin.batch.events[origin.index];
        let out = &mut self.scratch;
        out.clear();
        match (origin.control, self.cfg.format) {
            (Some(change), _) => write_json(&dms_control(&ev.schema, change, ev.ts_ms, ev.seq), out)?,
            (None, EventFormat::Dms) => dms_into(ev, keyed(&self.cfg, ev), self.cfg.before_image, out)?,
            // The commit time, not the time of sending: a record sent again after a crash is
            // identical to the first.
            (None, EventFormat::Debezium) => debezium_into(ev, ev.ts_ms, out)?,
        }
        Ok(out.as_slice().to_vec())
    }

    fn push(&mut self, origin: Origin, key: String, old_key: Option<String>) -> Result<()> {
        let data = self.encode(&origin)?;
        let ev = &origin.batch.events[origin.index];
        let (seq, size) = (ev.seq, data.len() + key.len());
        if size > MAX_RECORD_BYTES {
            return Err(SluiceError::permanent(format!(
                "the change seq {seq} of table {} is {size} bytes as a Kinesis record, over the service's limit of \
                 {MAX_RECORD_BYTES} (1 MiB): leave the large columns out with [[mask]] method = \"drop\", or use another \
                 sink for this table",
                ev.schema.id,
            )));
        }
        self.pending.push(Record::new(data, key, old_key, Some(origin), seq));
        Ok(())
    }

    /// Queues the records of event `index` of `batch`: its table's definition first when it
    /// is new or changed (DMS), then the change.
    fn queue(&mut self, batch: &Batch, index: usize) -> Result<()> {
        let ev = &batch.events[index];
        let origin = |control| Origin { batch: Arc::clone(batch), index, control };
        if self.cfg.format == EventFormat::Dms {
            if let Some(change) = self.tables.observe(&ev.schema) {
                self.push(origin(Some(change)), table_key(&ev.schema.id), None)?;
            }
        }
        let (key, old_key) = if keyed(&self.cfg, ev) {
            let key = row_key(&ev.schema, ev.row());
            let old = match (ev.op, &ev.before) {
                (Op::Update, Some(b)) => Some(row_key(&ev.schema, b)).filter(|k| *k != key),
                _ => None,
            };
            (key, old)
        } else {
            (table_key(&ev.schema.id), None)
        };
        self.push(origin(None), key, old_key)
    }

    /// Gives records of a failed call their data back.
    fn restore(&mut self, call: &[usize], acked: &[bool]) -> Result<()> {
        for (j, &i) in call.iter().enumerate() {
            if acked.get(j).copied().unwrap_or(false) {
                continue;
            }
            let Some(origin) = self.pending.get(i).origin.clone() else { continue };
            let data = self.encode(&origin)?;
            self.pending.get_mut(i).data = data;
        }
        Ok(())
    }

    /// One PutRecords call. `Ok(())` when all its records were acknowledged.
    async fn send_one(&mut self, client: &Client) -> Result<()> {
        let call = self.pending.next_call();
        let mut entries = Vec::with_capacity(call.len());
        for &i in &call {
            let r = self.pending.get_mut(i);
            // The SDK takes the bytes by value: lend them (no copy), encode again on failure;
            // a record with nothing to encode it from again is copied.
            let data = if r.origin.is_some() { std::mem::take(&mut r.data) } else { r.data.clone() };
            let entry = PutRecordsRequestEntry::builder().data(Blob::new(data)).partition_key(&r.key).build();
            entries.push(entry.map_err(|e| SluiceError::permanent("cannot build a Kinesis record").with_source(e))?);
        }
        let sent = client
            .put_records()
            .stream_name(&self.cfg.stream)
            .set_records(Some(entries))
            .send()
            .await
            .map_err(|e| classify(e, &self.cfg, &format!("write records to Kinesis stream {}", self.cfg.stream)));
        let out = match sent {
            Ok(out) => out,
            Err(e) => {
                self.restore(&call, &[])?;
                return Err(e);
            }
        };
        let results = out.records();
        if results.len() != call.len() {
            // Without a one-to-one answer nothing can be taken as acknowledged.
            self.restore(&call, &[])?;
            return Err(SluiceError::transient(format!(
                "Kinesis answered {} results for {} records sent to stream {}: sending them again",
                results.len(),
                call.len(),
                self.cfg.stream
            )));
        }
        let acked: Vec<bool> = results.iter().map(|r| r.error_code().is_none()).collect();
        self.restore(&call, &acked)?;
        self.pending.settle(&call, &acked);
        self.progressed |= acked.iter().any(|a| *a);
        let failed: Vec<&str> = results.iter().filter_map(|r| r.error_code()).collect();
        if failed.is_empty() {
            return Ok(());
        }
        let throttled = failed.iter().filter(|c| **c == "ProvisionedThroughputExceededException").count();
        let stream = &self.cfg.stream;
        let n = call.len();
        Err(if throttled > 0 {
            SluiceError::exhausted(format!(
                "Kinesis throttled {throttled} of {n} records to stream {stream} (ProvisionedThroughputExceededException): \
                 retrying them in order; if it persists, add shards (aws kinesis update-shard-count)"
            ))
        } else {
            SluiceError::transient(format!(
                "Kinesis failed {} of {n} records to stream {stream} ({}): retrying them in order",
                failed.len(),
                failed[0]
            ))
        })
    }
}

#[async_trait]
impl Sink for KinesisSink {
    fn name(&self) -> &str {
        NAME
    }

    async fn open(&mut self, committed: Option<Json>) -> Result<()> {
        self.committed_at_ms = committed.as_ref().and_then(|c| c.get("at_ms")).and_then(Json::as_i64);
        let c = client(&self.cfg).await;
        let ok = probe(&c, &self.cfg).await.map_err(|e| match e.kind {
            // At start an unreachable endpoint is a configuration problem far more often than
            // an outage: stop with the fix instead of retrying for retry_for.
            sluice_core::ErrorKind::Transient => SluiceError::permanent(e.message.clone()).with_source(e),
            _ => e,
        })?;
        info!(sink = NAME, "{ok}");
        self.client = Some(c);
        // Consumers get every table's definition again before its next record.
        self.tables.reset();
        Ok(())
    }

    async fn write(&mut self, batch: &Batch) -> Result<()> {
        for index in 0..batch.events.len() {
            self.queue(batch, index)?;
        }
        Ok(())
    }

    /// DMS format: a `drop-table` / `truncate-table` / `rename-table` control record, keyed by
    /// the table like its definitions. The next event of a table of that name announces its
    /// definition again.
    async fn table_ddl(&mut self, ddl: &TableDdl) -> Result<()> {
        if !matches!(ddl.kind, TableDdlKind::Truncate) {
            self.tables.forget(&ddl.table);
        }
        if self.cfg.format != EventFormat::Dms {
            return Ok(());
        }
        let mut data = Vec::new();
        write_json(&dms_table_ddl(ddl), &mut data)?;
        self.pending.push(Record::table_ddl(data, table_key(&ddl.table), ddl.next_seq));
        Ok(())
    }

    fn mark(&self) -> Json {
        json!({ "at_ms": chrono::Utc::now().timestamp_millis() })
    }

    async fn high_water(&mut self) -> Result<Option<u64>> {
        let (Some(at), Some(client)) = (self.committed_at_ms, &self.client) else { return Ok(None) };
        let since = at - CLOCK_SKEW_MS;
        let max = crate::tail::max_seq_since(client, &self.cfg, since)
            .await
            .map_err(|e| e.context("reading back what was sent before the last stop"))?;
        debug!(sink = NAME, ?max, "read back the records sent since the last commit");
        Ok(max)
    }

    fn take_progress(&mut self) -> bool {
        std::mem::take(&mut self.progressed)
    }

    fn wants_flush(&self) -> bool {
        self.pending.len() >= MAX_RECORDS_PER_CALL || self.pending.bytes() >= MAX_CALL_BYTES
    }

    async fn flush(&mut self) -> Result<()> {
        let Some(client) = self.client.clone() else {
            return Err(SluiceError::permanent("the kinesis sink was flushed before it was opened"));
        };
        self.progressed = false;
        let mut calls = 0;
        while !self.pending.is_empty() {
            self.send_one(&client).await?;
            calls += 1;
        }
        if calls > 0 {
            debug!(sink = NAME, calls, "records acknowledged");
        }
        Ok(())
    }
}

/// Whether `ev`'s record is partitioned by its row's key under `cfg` (else by its table).
fn keyed(cfg: &KinesisConfig, ev: &sluice_core::ChangeEvent) -> bool {
    cfg.partition_key == PartitionKey::PrimaryKey && !ev.schema.key.is_empty()
}

/// `db.table`: the partition key of a table's control records, and of every record with
/// `partition_key = "schema-table"` or without a key.
fn table_key(id: &TableId) -> String {
    bounded(format!("{}.{}", id.db, id.table))
}

/// `db.table.<key values joined by '|'>`.
fn row_key(schema: &TableSchema, row: &Row) -> String {
    let mut k = format!("{}.{}.", schema.id.db, schema.id.table);
    for (n, &i) in schema.key.iter().enumerate() {
        if n > 0 {
            k.push('|');
        }
        k.push_str(&row[i].render());
    }
    bounded(k)
}

/// A key longer than the service takes becomes its SHA-256: same key, same shard, still.
fn bounded(key: String) -> String {
    if key.chars().count() <= MAX_PARTITION_KEY {
        return key;
    }
    let digest = Sha256::digest(key.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use sluice_core::schema::{Column, SqlType, TableId, TableSchema};
    use sluice_core::value::Value;

    use super::*;

    fn schema(key: Vec<usize>) -> TableSchema {
        let col = |name: &str, ty| Column { name: name.into(), ty, nullable: true };
        TableSchema {
            id: TableId::new("shop", "orders"),
            columns: vec![col("region", SqlType::Text), col("id", SqlType::Int { bits: 64, unsigned: false }), col("note", SqlType::Text)],
            key,
            configured_key: false,
        }
    }

    #[test]
    fn partition_keys_name_the_table_and_the_key_values() {
        let s = schema(vec![0, 1]);
        let row = vec![Value::Text("eu".into()), Value::Int(42), Value::Text("not in the key".into())];
        assert_eq!(row_key(&s, &row), "shop.orders.eu|42");
        assert_eq!(table_key(&s.id), "shop.orders");
        let long = vec![Value::Text("x".repeat(300)), Value::Int(1), Value::Null];
        let k = row_key(&s, &long);
        assert_eq!(k.len(), 64, "over 256 characters: its SHA-256 in hex");
        assert_eq!(k, row_key(&s, &long), "the same key every time");
    }
}
