//! `[sink.kinesis]`: every event as one record of an Amazon Kinesis data stream.
use std::time::Duration;

use serde::Deserialize;
use sluice_core::config::{defaults, EventFormat, HumanDuration};
use sluice_core::error::Result;
use sluice_core::pipeline::SinkSpec;
use sluice_core::sink::SinkConfig;

use crate::KinesisSink;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KinesisConfig {
    /// The stream's name (it must exist and be ACTIVE: sluice does not create it).
    pub stream: String,
    pub region: String,
    /// A local server (moto, LocalStack) or a VPC endpoint, e.g. `http://127.0.0.1:4566`.
    pub endpoint: Option<String>,
    /// `dms` (AWS DMS's Kinesis JSON, with control records) or `debezium`.
    #[serde(default = "default_format")]
    pub format: EventFormat,
    #[serde(default)]
    pub partition_key: PartitionKey,
    /// DMS format: updates carry the old row as `before-image` (DMS's
    /// `BeforeImageSettings.EnableBeforeImage`).
    #[serde(default = "yes")]
    pub before_image: bool,
    /// How often buffered records are sent and acknowledged (and so how often this sink reports
    /// progress). A full PutRecords call (500 records) is sent without waiting.
    #[serde(default = "default_flush_interval")]
    pub flush_interval: HumanDuration,
    /// How long failing calls (throttling, an unreachable endpoint) are retried before the
    /// pipeline stops.
    #[serde(default = "defaults::retry_for")]
    pub retry_for: HumanDuration,
}

/// How records are spread over shards; order is kept per partition key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartitionKey {
    /// `db.table.<key values>`, like DMS's parallel apply: each row's changes in order, rows
    /// spread over every shard. Tables without a key fall back to `schema-table`.
    #[default]
    PrimaryKey,
    /// `db.table`: a table's changes in commit order on one shard. One record per table per
    /// call (see [`crate::batch`]): far slower.
    SchemaTable,
}

fn default_format() -> EventFormat {
    EventFormat::Dms
}

fn yes() -> bool {
    true
}

/// A network round trip per call: 100 ms keeps latency low and calls full under load.
fn default_flush_interval() -> HumanDuration {
    HumanDuration(Duration::from_millis(100))
}

impl KinesisConfig {
    /// Where the client connects, for messages.
    pub fn describe_endpoint(&self) -> String {
        self.endpoint.clone().unwrap_or_else(|| format!("the Kinesis endpoint of region {}", self.region))
    }
}

impl SinkConfig for KinesisConfig {
    fn name(&self) -> &'static str {
        "kinesis"
    }

    fn validate(&self) -> std::result::Result<(), String> {
        let s = &self.stream;
        let valid_name = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
        if s.is_empty() || s.len() > 128 || !s.chars().all(valid_name) {
            return Err(format!("[sink.kinesis] stream = {s:?} is not a Kinesis stream name: 1 to 128 letters, digits, '_', '.' or '-'"));
        }
        if self.region.trim().is_empty() {
            return Err("[sink.kinesis] region is empty: give the stream's region, e.g. \"us-east-1\"".into());
        }
        if let Some(ep) = &self.endpoint {
            if !(ep.starts_with("http://") || ep.starts_with("https://")) {
                return Err(format!("[sink.kinesis] endpoint = {ep:?} must be a URL starting with http:// or https://"));
            }
        }
        if self.flush_interval.0.is_zero() {
            return Err("[sink.kinesis] flush_interval must be more than 0".into());
        }
        Ok(())
    }

    fn build(&self) -> Result<SinkSpec> {
        Ok(SinkSpec::new(Box::new(KinesisSink::new(self.clone())), self.flush_interval.0, self.retry_for.0))
    }
}
