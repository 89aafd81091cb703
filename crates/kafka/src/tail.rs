//! Reading the topics back (`sluice tail --source kafka`): every partition of every table topic
//! (and the schema-change topic), from the oldest record kept or from now on, as JSON lines. A
//! plain consumer with the partitions assigned: no consumer group, nothing committed. A
//! following tail also reads the topics of tables created after it started.
use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::{Message, Offset, TopicPartitionList};
use sluice_core::config::TablePattern;
use sluice_core::tailing::{print_round, seq_order, LineFilter, TailOptions};
use sluice_core::SluiceError;

use crate::client::{base_config, classify, config_error, probe, METADATA_TIMEOUT};
use crate::config::KafkaConfig;

/// A round of records printed together, sorted by `seq`: up to this many, or what arrives
/// until the partitions have nothing more for `QUIET`, and never longer than `ROUND_AT_MOST`
/// after its first record (a steady stream never goes quiet: a follower must still print it
/// promptly).
const ROUND: usize = 1000;
const QUIET: Duration = Duration::from_millis(100);
const ROUND_AT_MOST: Duration = Duration::from_millis(100);

/// Prints the topics' records matching `opts` to `out` and returns how many were printed.
/// Tombstones (no value) are not change events and are skipped. Records of one key are in
/// order in their partition; across partitions each round is printed in `seq` order.
pub async fn tail(cfg: &KafkaConfig, opts: &TailOptions, out: &mut impl Write) -> Result<usize> {
    let filter = LineFilter::new(cfg.format, opts.format.unwrap_or(cfg.format), opts.table.as_deref(), BTreeSet::new())?;
    let with_schema_topic = opts.format.is_none_or(|f| f == cfg.format);
    let pattern = opts.table.as_deref().map(TablePattern::parse).transpose().map_err(anyhow::Error::msg)?;
    if opts.limit == Some(0) {
        return Ok(0);
    }
    let mut conf = base_config(cfg);
    // librdkafka's assign needs a group id; without subscribe it joins no group, and nothing is
    // committed.
    conf.set("group.id", "sluice-tail").set("enable.auto.commit", "false").set("enable.auto.offset.store", "false");
    // A follower prints what arrives: the broker answers a fetch within 100 ms, not librdkafka's
    // default 500 ms wait for more bytes (unless the user's [sink.kafka.properties] say otherwise).
    if !cfg.properties.0.contains_key("fetch.wait.max.ms") {
        conf.set("fetch.wait.max.ms", "100");
    }
    let consumer: Arc<BaseConsumer> = Arc::new(conf.create().map_err(|e| config_error(e, cfg))?);
    let c = Arc::clone(&consumer);
    probe(move || c.client().fetch_metadata(None, METADATA_TIMEOUT), cfg).await?;

    // Every partition of the chosen topics, with where it ends now.
    let prefix = cfg.topic_prefix.clone();
    let wanted: Wanted = Arc::new(move |topic: &str| {
        if topic == prefix {
            return with_schema_topic;
        }
        let Some(rest) = topic.strip_prefix(&prefix).and_then(|r| r.strip_prefix('.')) else { return false };
        let (db, table) = rest.split_once('.').unwrap_or((rest, ""));
        pattern.as_ref().is_none_or(|p| p.matches(db, table))
    });
    let partitions = list_partitions(&consumer, &wanted, &HashSet::new(), cfg).await?;
    let mut known: HashSet<(String, i32)> = partitions.iter().map(|(t, p, _)| (t.clone(), *p)).collect();

    let mut assignment = TopicPartitionList::new();
    // Where each partition ended at start: without `follow`, reading stops there.
    let mut ends: HashMap<(String, i32), i64> = HashMap::new();
    for (topic, partition, high) in &partitions {
        let start = if opts.latest { Offset::Offset(*high) } else { Offset::Beginning };
        assignment.add_partition_offset(topic, *partition, start).context("assign a partition")?;
        if !opts.latest && *high > 0 {
            ends.insert((topic.clone(), *partition), *high);
        }
    }
    consumer.assign(&assignment).map_err(|e| classify(e, cfg, "read the topics"))?;
    let topics: BTreeSet<&str> = partitions.iter().map(|(t, ..)| t.as_str()).collect();
    // Said once every partition is assigned at its start: from here on `latest` sees every
    // new record.
    tracing::info!(
        topics = topics.len(),
        partitions = partitions.len(),
        from = if opts.latest { "latest" } else { "earliest" },
        "reading the topics"
    );

    let mut printed = 0;
    let mut idle_rounds = 0;
    let mut rescanned = Instant::now();
    loop {
        if opts.follow && rescanned.elapsed() >= RESCAN {
            // Tables created (or partitions added) since: read from their first record.
            rescanned = Instant::now();
            let new = list_partitions(&consumer, &wanted, &known, cfg).await?;
            if !new.is_empty() {
                let mut more = TopicPartitionList::new();
                for (topic, partition, _) in &new {
                    more.add_partition_offset(topic, *partition, Offset::Beginning).context("assign a partition")?;
                    known.insert((topic.clone(), *partition));
                }
                consumer.incremental_assign(&more).map_err(|e| classify(e, cfg, "read the new topics"))?;
                tracing::info!(partitions = new.len(), "reading new partitions");
            }
        }
        let (round, idle) = poll_round(&consumer, &mut ends, &filter, cfg).await?;
        idle_rounds = if idle { idle_rounds + 1 } else { 0 };
        if print_round(round, out, &mut printed, opts.limit)? {
            return Ok(printed);
        }
        // Without `follow`: done once every partition reached its end and a round found
        // nothing more (some brokers, tansu among them, report ends behind the last batch), or
        // after 2 s without a record (compacted or deleted offsets before the end).
        if !opts.follow && idle && (ends.is_empty() || idle_rounds >= 8) {
            return Ok(printed);
        }
    }
}

/// Which topics a tail reads.
type Wanted = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// How often a following tail looks for new topics (tables created after it started).
const RESCAN: Duration = Duration::from_secs(5);

/// The partitions of the `wanted` topics not in `known`, each with where it ends now.
async fn list_partitions(
    consumer: &Arc<BaseConsumer>,
    wanted: &Wanted,
    known: &HashSet<(String, i32)>,
    cfg: &KafkaConfig,
) -> Result<Vec<(String, i32, i64)>> {
    let (c, wanted, known) = (Arc::clone(consumer), Arc::clone(wanted), known.clone());
    let parts = tokio::task::spawn_blocking(move || -> rdkafka::error::KafkaResult<Vec<(String, i32, i64)>> {
        let meta = c.client().fetch_metadata(None, METADATA_TIMEOUT)?;
        let mut parts = Vec::new();
        for t in meta.topics().iter().filter(|t| wanted(t.name())) {
            for p in t.partitions().iter().filter(|p| !known.contains(&(t.name().to_string(), p.id()))) {
                let (_low, high) = c.client().fetch_watermarks(t.name(), p.id(), METADATA_TIMEOUT)?;
                parts.push((t.name().to_string(), p.id(), high));
            }
        }
        Ok(parts)
    })
    .await?;
    parts.map_err(|e| classify(e, cfg, "list the topics' partitions").into())
}

/// One round of records, rendered, with their `seq`; `idle` when nothing arrived at all.
/// Reaching a partition's end-at-start removes it from `ends`.
async fn poll_round(
    consumer: &Arc<BaseConsumer>,
    ends: &mut HashMap<(String, i32), i64>,
    filter: &LineFilter,
    cfg: &KafkaConfig,
) -> Result<(Vec<(u64, Vec<u8>)>, bool)> {
    let c = Arc::clone(consumer);
    // librdkafka's poll blocks: a batch of messages off the runtime.
    let got = tokio::task::spawn_blocking(move || {
        let mut got = Vec::new();
        let mut wait = Duration::from_millis(250);
        let mut first: Option<std::time::Instant> = None;
        while got.len() < ROUND {
            match c.poll(wait) {
                None => break,
                Some(Err(e)) => return Err(e),
                Some(Ok(m)) => got.push((m.topic().to_string(), m.partition(), m.offset(), m.payload().map(<[u8]>::to_vec))),
            }
            let started = *first.get_or_insert_with(std::time::Instant::now);
            let Some(left) = ROUND_AT_MOST.checked_sub(started.elapsed()).filter(|l| !l.is_zero()) else { break };
            wait = QUIET.min(left);
        }
        Ok(got)
    })
    .await?
    .map_err(|e| classify(e, cfg, "read the topics"))?;
    let idle = got.is_empty();
    let mut round = Vec::with_capacity(got.len());
    for (topic, partition, offset, payload) in got {
        let key = (topic, partition);
        if ends.get(&key).is_some_and(|end| offset + 1 >= *end) {
            ends.remove(&key);
        }
        // A tombstone: no change event to print.
        let Some(payload) = payload else { continue };
        if let Some(rendered) = filter.render(&payload).with_context(|| format!("a record of topic {} is not a change event", key.0))? {
            round.push((seq_order(&payload), rendered.into_owned()));
        }
    }
    Ok((round, idle))
}

/// The highest change `seq` among the records that arrived at or after `since_ms` (epoch ms,
/// the records' create time) on the topics of `cfg`: what a sink restarting after a crash may
/// have sent past its last commit. Read from the `seq` header of every record since then.
pub(crate) async fn max_seq_since(cfg: &KafkaConfig, since_ms: i64) -> Result<Option<u64>, SluiceError> {
    let mut conf = base_config(cfg);
    conf.set("group.id", "sluice-read-back").set("enable.auto.commit", "false").set("enable.auto.offset.store", "false");
    let consumer: BaseConsumer = conf.create().map_err(|e| config_error(e, cfg))?;
    let prefix = cfg.topic_prefix.clone();
    let what = "read back what was sent before the last stop";
    let read = tokio::task::spawn_blocking(move || -> rdkafka::error::KafkaResult<Option<u64>> {
        let meta = consumer.fetch_metadata(None, METADATA_TIMEOUT)?;
        let mut at = TopicPartitionList::new();
        for t in meta.topics().iter().filter(|t| t.name() == prefix || t.name().starts_with(&format!("{prefix}."))) {
            for p in t.partitions() {
                at.add_partition_offset(t.name(), p.id(), Offset::Offset(since_ms))?;
            }
        }
        if at.count() == 0 {
            return Ok(None);
        }
        // The first offset at or after the time, per partition (`End`: nothing since).
        let from = consumer.offsets_for_times(at, METADATA_TIMEOUT)?;
        let mut assign = TopicPartitionList::new();
        let mut left: HashSet<(String, i32)> = HashSet::new();
        for e in from.elements() {
            if let Offset::Offset(o) = e.offset() {
                assign.add_partition_offset(e.topic(), e.partition(), Offset::Offset(o))?;
                left.insert((e.topic().to_string(), e.partition()));
            }
        }
        let mut ends = HashMap::new();
        for (t, p) in std::mem::take(&mut left) {
            let end = consumer.fetch_watermarks(&t, p, METADATA_TIMEOUT)?.1;
            let start = from.find_partition(&t, p).and_then(|e| e.offset().to_raw()).unwrap_or(0);
            // A partition with nothing since need not be waited for (it is read all the same).
            if start < end {
                left.insert((t.clone(), p));
            }
            ends.insert((t, p), end);
        }
        consumer.assign(&assign)?;
        let mut max = None;
        let deadline = Instant::now() + Duration::from_secs(120);
        // Until every partition reached its end, then a quiet moment (some brokers report ends
        // behind their last batch).
        let mut quiet_since = Instant::now();
        while Instant::now() < deadline && (!left.is_empty() || quiet_since.elapsed() < QUIET * 3) {
            let Some(m) = consumer.poll(QUIET) else { continue };
            let m = m?;
            quiet_since = Instant::now();
            let key = (m.topic().to_string(), m.partition());
            if ends.get(&key).is_some_and(|end| m.offset() + 1 >= *end) {
                left.remove(&key);
            }
            let seq = m.headers().and_then(|h| h.iter().find(|h| h.key == crate::SEQ_HEADER).and_then(|h| h.value));
            if let Some(seq) = seq.and_then(|v| std::str::from_utf8(v).ok()).and_then(|s| s.parse::<u64>().ok()) {
                max = max.max(Some(seq));
            }
        }
        if !left.is_empty() {
            return Err(rdkafka::error::KafkaError::MessageConsumption(rdkafka::types::RDKafkaErrorCode::OperationTimedOut));
        }
        Ok(max)
    });
    let read = read.await.map_err(|e| SluiceError::permanent("reading back the Kafka topics did not finish").with_source(e))?;
    read.map_err(|e| classify(e, cfg, what))
}
