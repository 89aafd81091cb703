//! Kinesis on moto for the stream tests: creating a stream, reading it back with the example
//! DMS consumer (examples/kinesis_consumer.py, boto3: an independent reader), and replaying DMS
//! records into rows.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::process::Command;

use serde_json::Value as Json;

use super::moto::{python_bin, Moto};
use super::workload::{cols, first_by_seq, first_copies, key_of, Table};

/// The `[sink.kinesis]` section for `stream` at `endpoint`, sent every 100 ms.
pub fn section(endpoint: &str, stream: &str) -> String {
    format!("\n[sink.kinesis]\nstream = \"{stream}\"\nregion = \"us-east-1\"\nendpoint = \"{endpoint}\"\nflush_interval = \"100ms\"\n")
}

/// Dummy credentials (moto takes any) and no instance metadata lookups, for sluice and boto3.
pub const AWS_ENV: [(&str, &str); 4] = [
    ("AWS_ACCESS_KEY_ID", "k"),
    ("AWS_SECRET_ACCESS_KEY", "s"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
];

impl Moto {
    /// Creates a stream with `shards` shards and waits until it is ACTIVE.
    pub fn create_stream(&self, stream: &str, shards: u32) {
        let py = format!("{}/python", python_bin());
        let code = format!(
            "import boto3; k = boto3.client('kinesis', endpoint_url='{}', region_name='us-east-1', aws_access_key_id='k', aws_secret_access_key='s'); \
             k.create_stream(StreamName='{stream}', ShardCount={shards}); k.get_waiter('stream_exists').wait(StreamName='{stream}', WaiterConfig={{'Delay': 0.1}})",
            self.endpoint()
        );
        assert!(Command::new(&py).args(["-c", &code]).status().expect("python").success(), "creating stream {stream} failed");
    }
}

/// One record as the consumer saw it.
#[derive(Debug, Clone)]
pub struct StreamRecord {
    pub shard: String,
    pub partition_key: String,
    pub record: Json,
    /// The record as sent (re-serialized; compared between resends).
    pub text: String,
}

impl StreamRecord {
    pub fn is_control(&self) -> bool {
        self.record["metadata"]["record-type"] == "control"
    }
    pub fn seq(&self) -> u64 {
        self.record["metadata"]["seq"].as_u64().unwrap_or_else(|| panic!("no metadata.seq in a record of shard {}", self.shard))
    }
}

/// Every record of `stream` at `endpoint`, shard by shard in shard order, read by the example
/// consumer. moto's Kinesis is not thread-safe: a read while sluice writes can get an HTTP 500
/// (never a silently short answer), so a failed read is read again.
pub fn read_stream(endpoint: &str, stream: &str) -> Vec<StreamRecord> {
    let py = format!("{}/python", python_bin());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/kinesis_consumer.py");
    let run = || {
        Command::new(&py)
            .args([script, "--stream", stream, "--endpoint", endpoint, "--with-keys"])
            .envs(AWS_ENV)
            .output()
            .expect("run the example consumer")
    };
    let mut out = run();
    for _ in 0..4 {
        if out.status.success() {
            break;
        }
        out = run();
    }
    assert!(out.status.success(), "examples/kinesis_consumer.py failed: {}", String::from_utf8_lossy(&out.stderr));
    super::parse_lines(&String::from_utf8_lossy(&out.stdout))
        .into_iter()
        .map(|j| StreamRecord {
            shard: j["shard"].as_str().unwrap_or_default().to_string(),
            partition_key: j["partition_key"].as_str().unwrap_or_default().to_string(),
            text: j["record"].to_string(),
            record: j["record"].clone(),
        })
        .collect()
}

/// The data records deduplicated by `seq` (a resend must be identical to the first copy), in
/// `seq` order; panics unless their seqs are exactly 0..n.
pub fn dedup_by_seq(records: &[StreamRecord]) -> Vec<&StreamRecord> {
    first_by_seq(records.iter().filter(|r| !r.is_control()), StreamRecord::seq, |r| &r.text)
}

/// The data records deduplicated by `seq`, in `seq` order; panics if one `seq` was sent with
/// two different contents.
pub fn unique_by_seq(records: &[StreamRecord]) -> Vec<&StreamRecord> {
    first_copies(records.iter().filter(|r| !r.is_control()), StreamRecord::seq, |r| &r.text)
}

/// DMS data records applied in `seq` order give the table (`shop.acct`).
pub fn replay_dms(records: &[&StreamRecord]) -> Table {
    let mut t = Table::new();
    for r in records {
        let rec = &r.record;
        match rec["metadata"]["operation"].as_str().unwrap_or_default() {
            "load" | "insert" => {
                t.insert(key_of(&rec["data"]), cols(&rec["data"]));
            }
            "update" => {
                t.remove(&key_of(&rec["before-image"]));
                t.insert(key_of(&rec["data"]), cols(&rec["data"]));
            }
            "delete" => {
                t.remove(&key_of(&rec["data"]));
            }
            other => panic!("unexpected operation {other} at seq {}", r.seq()),
        }
    }
    t
}

/// Per partition key, in the order the shard holds them: once the seqs seen before are
/// dropped (resends after a crash), the seqs only go up. Also: a key lives in one shard.
pub fn assert_key_order(records: &[StreamRecord]) {
    let mut shard_of: HashMap<&str, &str> = HashMap::new();
    let mut last: HashMap<&str, u64> = HashMap::new();
    let mut seen: HashSet<u64> = HashSet::new();
    for r in records.iter().filter(|r| !r.is_control()) {
        let shard = *shard_of.entry(&r.partition_key).or_insert(&r.shard);
        assert_eq!(shard, r.shard, "partition key {} found in two shards", r.partition_key);
        if !seen.insert(r.seq()) {
            continue;
        }
        if let Some(prev) = last.insert(&r.partition_key, r.seq()) {
            assert!(prev < r.seq(), "partition key {}: seq {} after seq {} in shard {}", r.partition_key, r.seq(), prev, r.shard);
        }
    }
}
