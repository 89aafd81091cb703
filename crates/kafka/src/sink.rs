//! The `kafka` sink.
use std::collections::{HashMap, VecDeque};
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer, PurgeConfig};
use serde_json::{json, Value as Json};
use sluice_core::config::EventFormat;
use sluice_core::encode::{debezium_into, debezium_table_ddl, dms_into, dms_table_ddl, write_json, SchemaTracker};
use sluice_core::error::{ErrorKind, Result, SluiceError};
use sluice_core::event::{ChangeEvent, Op};
use sluice_core::schema::{TableDdl, TableDdlKind, TableId};
use sluice_core::sink::{Batch, Sink};
use tracing::{debug, info};

use crate::client::{classify, probe, producer, producer_metadata, unreachable, METADATA_TIMEOUT};
use crate::config::KafkaConfig;
use crate::encoding::{heartbeat, row_key, schema_change, schema_key};

const NAME: &str = "kafka";

/// Records kept before a flush is asked for early; librdkafka's own queue holds 100,000.
const FLUSH_RECORDS: usize = 50_000;
const FLUSH_BYTES: usize = 32 << 20;

/// The header every change, tombstone and schema change carries: the change's `seq`, so a
/// consumer can deduplicate without parsing the value (a tombstone has none).
pub const SEQ_HEADER: &str = "seq";

/// One record, kept until its delivery report says the brokers have it.
pub(crate) struct Record {
    pub(crate) topic: Arc<str>,
    pub(crate) key: Option<Vec<u8>>,
    /// `None`: a tombstone.
    pub(crate) value: Option<Vec<u8>>,
    /// The change this record belongs to (`None`: a heartbeat).
    pub(crate) seq: Option<u64>,
}

impl Record {
    fn size(&self) -> usize {
        self.key.as_ref().map_or(0, Vec::len) + self.value.as_ref().map_or(0, Vec::len) + 64
    }
}

/// Writes each event as one record of the topic `<prefix>.<db>.<table>`, keyed by primary key.
///
/// `write` encodes and queues; `flush` hands what is new to librdkafka and waits for every
/// delivery report (durable = every report for what was written succeeded). The producer is
/// idempotent and never times a record out, so librdkafka's own retries keep each partition in
/// order and without gaps; a flush that waits longer than its share of `retry_for` fails
/// (transient) and keeps everything, and the next one waits for the same reports — nothing is
/// sent twice by a broker outage. A definite failure (a fatal producer error, a refused record)
/// drops the producer: the records from the first one not acknowledged on are sent again by a
/// new producer, so per partition what arrives twice is a contiguous run in its original order.
/// After a crash the records after the last committed checkpoint are sent again, identical (the
/// encoding depends only on the event); nothing can be taken back. The mark is the time it was
/// taken: [`Sink::high_water`] reads what was produced since the last committed one, so a `seq`
/// never names two different changes on the topics.
pub struct KafkaSink {
    cfg: KafkaConfig,
    producer: Option<FutureProducer>,
    /// Not yet acknowledged, in the order written; the first `inflight.len()` are in
    /// librdkafka's hands, each with its delivery report in `inflight`.
    pub(crate) pending: VecDeque<Record>,
    inflight: VecDeque<DeliveryFuture>,
    bytes: usize,
    topics: HashMap<TableId, Arc<str>>,
    schema_topic: Arc<str>,
    tables: SchemaTracker,
    /// How long one flush waits for delivery reports before it reports a failure.
    wait: Duration,
    last_heartbeat: Option<Instant>,
    /// After a restart: when the last committed mark was taken (epoch ms). Everything sent past
    /// that commit was produced after it.
    committed_at_ms: Option<i64>,
    /// Records were acknowledged since the last failed flush (see [`Sink::take_progress`]).
    progressed: bool,
    /// Where values are encoded before they are copied out at their exact size.
    scratch: Vec<u8>,
}

/// Clock difference allowed between the mark and the records' create times (one host's clock,
/// but the mark is taken before the records of its barrier are handed over).
const CLOCK_SKEW_MS: i64 = 5_000;

impl KafkaSink {
    pub fn new(cfg: KafkaConfig) -> Self {
        let wait = (cfg.retry_for.0 / 4).clamp(Duration::from_secs(1), Duration::from_secs(30));
        Self {
            schema_topic: Arc::from(cfg.topic_prefix.as_str()),
            cfg,
            producer: None,
            pending: VecDeque::new(),
            inflight: VecDeque::new(),
            bytes: 0,
            topics: HashMap::new(),
            tables: SchemaTracker::default(),
            wait,
            last_heartbeat: None,
            committed_at_ms: None,
            progressed: false,
            scratch: Vec::with_capacity(4096),
        }
    }

    fn push(&mut self, topic: Arc<str>, key: Option<Vec<u8>>, value: Option<Vec<u8>>, seq: Option<u64>) {
        let r = Record { topic, key, value, seq };
        self.bytes += r.size();
        self.pending.push_back(r);
    }

    /// What `write` puts in the sink's scratch buffer, copied out at its exact size (each
    /// record keeps its own bytes until its delivery report).
    fn encoded(&mut self, write: impl FnOnce(&mut Vec<u8>) -> Result<()>) -> Result<Vec<u8>> {
        self.scratch.clear();
        write(&mut self.scratch)?;
        Ok(self.scratch.as_slice().to_vec())
    }

    fn topic(&mut self, id: &TableId) -> Arc<str> {
        if let Some(t) = self.topics.get(id) {
            return Arc::clone(t);
        }
        let t: Arc<str> = Arc::from(self.cfg.topic(&id.db, &id.table));
        self.topics.insert(id.clone(), Arc::clone(&t));
        t
    }

    pub(crate) fn encode(&mut self, ev: &ChangeEvent) -> Result<()> {
        let dms = self.cfg.format == EventFormat::Dms;
        if let Some(change) = self.tables.observe(&ev.schema) {
            let value = self.encoded(|out| write_json(&schema_change(ev, change, dms), out))?;
            self.push(Arc::clone(&self.schema_topic), Some(schema_key(&ev.schema.id.db)), Some(value), Some(ev.seq));
        }
        let topic = self.topic(&ev.schema.id);
        let key = row_key(&ev.schema, ev.row());
        let before_image = self.cfg.before_image;
        let value = match self.cfg.format {
            // Kafka partitions by key where there is one.
            EventFormat::Dms => self.encoded(|out| dms_into(ev, !ev.schema.key.is_empty(), before_image, out))?,
            // The commit time, not the time of sending: a record sent again after a crash is
            // identical to the first.
            EventFormat::Debezium => self.encoded(|out| debezium_into(ev, ev.ts_ms, out))?,
        };
        // The key a tombstone retires: the deleted row's, or the old key of a row whose key
        // changed (its records stay in the old key's partition until compaction drops them).
        let retired = match (self.cfg.tombstones && key.is_some(), ev.op, &ev.before, &ev.after) {
            (false, ..) => None,
            (true, Op::Delete, ..) => key.clone(),
            (true, Op::Update, Some(b), Some(a)) if ev.schema.key.iter().any(|&i| b[i] != a[i]) => row_key(&ev.schema, b),
            _ => None,
        };
        self.push(Arc::clone(&topic), key, Some(value), Some(ev.seq));
        if let Some(k) = retired {
            self.push(topic, Some(k), None, Some(ev.seq));
        }
        Ok(())
    }

    fn heartbeat_if_due(&mut self) {
        let Some(every) = self.cfg.heartbeat_interval else { return };
        if self.last_heartbeat.is_some_and(|t| t.elapsed() < every.0) {
            return;
        }
        self.last_heartbeat = Some(Instant::now());
        let (key, value) = heartbeat(&self.cfg.topic_prefix, now_ms());
        self.push(Arc::from(self.cfg.heartbeat_topic()), Some(key), Some(value), None);
    }

    fn producer(&mut self) -> Result<FutureProducer> {
        if let Some(p) = &self.producer {
            return Ok(p.clone());
        }
        let p = producer(&self.cfg)?;
        self.producer = Some(p.clone());
        Ok(p)
    }

    /// Waits for the oldest delivery report until `deadline`; `Ok` once its record is
    /// acknowledged (and dropped from the queue).
    async fn settle_oldest(&mut self, deadline: tokio::time::Instant) -> Result<()> {
        let Some(report) = self.inflight.front_mut() else { return Ok(()) };
        match tokio::time::timeout_at(deadline, report).await {
            Ok(Ok(Ok(_delivered))) => {
                self.inflight.pop_front();
                if let Some(r) = self.pending.pop_front() {
                    self.bytes -= r.size();
                }
                self.progressed = true;
                Ok(())
            }
            Ok(Ok(Err((e, _message)))) => Err(self.restart(e, 0)),
            // The producer went away with the report (it was dropped after a failure).
            Ok(Err(_canceled)) => Err(self.restart(KafkaError::Canceled, 0)),
            Err(_elapsed) => Err(self.undelivered().await),
        }
    }

    /// A definite failure of the record `at` in the queue (every one before it is acknowledged
    /// or still in flight): the producer is dropped (it may leave gaps behind it), and every
    /// record not acknowledged is sent again by a new one.
    fn restart(&mut self, e: KafkaError, at: usize) -> SluiceError {
        self.inflight.clear();
        if let Some(p) = self.producer.take() {
            // Nothing queued behind the failed record may still reach a partition after it.
            p.purge(PurgeConfig::default().queue().inflight());
            // Dropping waits for librdkafka's threads: not on the runtime's.
            tokio::task::spawn_blocking(move || drop(p));
        }
        let Some(r) = self.pending.get(at) else { return classify(e, &self.cfg, "deliver records") };
        let what = format!("deliver records to topic {}", r.topic);
        match e.rdkafka_error_code() {
            Some(RDKafkaErrorCode::MessageSizeTooLarge) => SluiceError::permanent(format!(
                "the record of seq {} for topic {} is {} bytes, over the size librdkafka or the brokers take: raise message.max.bytes in \
                 [sink.kafka.properties] and max.message.bytes on the topic, or leave the large columns out with [[mask]] method = \"drop\"",
                r.seq.map_or_else(|| "-".to_string(), |s| s.to_string()),
                r.topic,
                r.size() - 64
            ))
            .with_source(e),
            _ => classify(e, &self.cfg, &what),
        }
    }

    /// Reports are missing after this flush's wait: say whether the brokers are reachable at
    /// all. Everything stays queued in librdkafka, which keeps trying.
    async fn undelivered(&mut self) -> SluiceError {
        let n = self.inflight.len();
        let Some(p) = self.producer.clone() else { return SluiceError::transient("the Kafka producer is gone") };
        let waited = self.wait.as_secs_f32();
        match probe(producer_metadata(&p, Duration::from_secs(1)), &self.cfg).await {
            Err(e) if e.kind == ErrorKind::Transient => {
                let what = format!("deliver {n} record(s) (none acknowledged within {waited:.1} s)");
                // The librdkafka error behind it, once.
                SluiceError { source: e.source, ..SluiceError::transient(unreachable(&self.cfg, &what)) }
            }
            Err(e) => e,
            Ok(_) => SluiceError::new(
                ErrorKind::Transient,
                format!(
                    "the Kafka brokers of [sink.kafka] brokers = {:?} have not acknowledged {n} record(s) within {waited:.1} s \
                     (slow brokers, or partitions without a leader): still waiting",
                    self.cfg.brokers
                ),
            ),
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[async_trait]
impl Sink for KafkaSink {
    fn name(&self) -> &str {
        NAME
    }

    async fn open(&mut self, committed: Option<Json>) -> Result<()> {
        self.committed_at_ms = committed.as_ref().and_then(|c| c.get("at_ms")).and_then(Json::as_i64);
        let p = self.producer()?;
        let ok = probe(producer_metadata(&p, METADATA_TIMEOUT), &self.cfg).await.map_err(|e| match e.kind {
            // At start unreachable brokers are a configuration problem far more often than an
            // outage: stop with the fix instead of retrying for retry_for.
            ErrorKind::Transient => SluiceError::permanent(e.message.clone()).with_source(e),
            _ => e,
        })?;
        info!(sink = NAME, "{ok}");
        // Consumers get every table's definition again before its next record.
        self.tables.reset();
        Ok(())
    }

    async fn write(&mut self, batch: &Batch) -> Result<()> {
        for ev in &batch.events {
            self.encode(ev)?;
        }
        Ok(())
    }

    /// A record on the schema-change topic `<prefix>` (DMS control record or Debezium
    /// schema change) with the `seq` of the change it precedes, as a table definition has. The next event of a table
    /// of that name announces its definition again.
    async fn table_ddl(&mut self, ddl: &TableDdl) -> Result<()> {
        if !matches!(ddl.kind, TableDdlKind::Truncate) {
            self.tables.forget(&ddl.table);
        }
        let record = if self.cfg.format == EventFormat::Dms { dms_table_ddl(ddl) } else { debezium_table_ddl(ddl) };
        let mut value = Vec::new();
        write_json(&record, &mut value)?;
        self.push(Arc::clone(&self.schema_topic), Some(schema_key(&ddl.table.db)), Some(value), Some(ddl.next_seq));
        Ok(())
    }

    fn mark(&self) -> Json {
        json!({ "at_ms": now_ms() })
    }

    /// A source that cannot replay exactly (a resumed snapshot) numbers its changes above what
    /// consumers may have seen: the records produced since the last committed mark, read back.
    async fn high_water(&mut self) -> Result<Option<u64>> {
        let Some(at) = self.committed_at_ms else { return Ok(None) };
        let max = crate::tail::max_seq_since(&self.cfg, at - CLOCK_SKEW_MS).await?;
        debug!(sink = NAME, ?max, "read back the records sent since the last commit");
        Ok(max)
    }

    fn take_progress(&mut self) -> bool {
        std::mem::take(&mut self.progressed)
    }

    fn wants_flush(&self) -> bool {
        self.pending.len() >= FLUSH_RECORDS || self.bytes >= FLUSH_BYTES
    }

    async fn flush(&mut self) -> Result<()> {
        // Progress is what this flush acknowledges.
        self.progressed = false;
        self.heartbeat_if_due();
        if self.pending.is_empty() {
            return Ok(());
        }
        let producer = self.producer()?;
        let deadline = tokio::time::Instant::now() + self.wait;
        let total = self.pending.len();
        let mut seq_text = Vec::with_capacity(20);
        while self.inflight.len() < self.pending.len() {
            let r = &self.pending[self.inflight.len()];
            let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&r.topic);
            if let Some(k) = &r.key {
                record = record.key(k.as_slice());
            }
            if let Some(v) = &r.value {
                record = record.payload(v.as_slice());
            }
            if let Some(seq) = r.seq {
                seq_text.clear();
                let _ = write!(seq_text, "{seq}");
                record = record.headers(OwnedHeaders::new_with_capacity(1).insert(Header { key: SEQ_HEADER, value: Some(&seq_text) }));
            }
            match producer.send_result(record) {
                Ok(report) => self.inflight.push_back(report),
                // librdkafka's queue is full: make room by waiting for the oldest report.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => self.settle_oldest(deadline).await?,
                // Refused before sending (too large, an invalid topic): send nothing more.
                Err((e, _)) => return Err(self.restart(e, self.inflight.len())),
            }
        }
        while !self.inflight.is_empty() {
            self.settle_oldest(deadline).await?;
        }
        debug!(sink = NAME, records = total, "records acknowledged");
        Ok(())
    }
}
