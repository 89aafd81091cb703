//! `[sink.kafka]`: every event as one record of a Kafka topic per table.
use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use sluice_core::config::{defaults, EventFormat, HumanDuration};
use sluice_core::error::Result;
use sluice_core::pipeline::SinkSpec;
use sluice_core::sink::SinkConfig;

use crate::KafkaSink;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap brokers, `host:port[,host:port...]` (librdkafka's `bootstrap.servers`).
    pub brokers: String,
    /// Topics are `<prefix>.<db>.<table>`; schema changes go to `<prefix>` (Debezium's naming).
    #[serde(default = "default_prefix")]
    pub topic_prefix: String,
    /// `debezium` (the envelope Debezium's MySQL connector writes) or `dms`.
    #[serde(default)]
    pub format: EventFormat,
    /// After each delete (and each update that changes the key), a record with the old key and
    /// no value, so log compaction can drop the key (Debezium's `tombstones.on.delete`).
    #[serde(default = "yes")]
    pub tombstones: bool,
    /// DMS format: updates carry the old row as `before-image`.
    #[serde(default = "yes")]
    pub before_image: bool,
    /// How often what was written is waited for until every delivery report is in (and so how
    /// often this sink reports progress). librdkafka sends continuously in between.
    #[serde(default = "default_flush_interval")]
    pub flush_interval: HumanDuration,
    /// How long failing deliveries (unreachable brokers) are retried before the pipeline stops.
    #[serde(default = "defaults::retry_for")]
    pub retry_for: HumanDuration,
    /// When set, a record on `__debezium-heartbeat.<prefix>` at most this often, at a flush,
    /// so consumers can tell an idle source from a stalled pipeline.
    pub heartbeat_interval: Option<HumanDuration>,
    /// librdkafka settings passed verbatim (SASL, TLS, compression, batching), e.g.
    /// `"security.protocol" = "SASL_SSL"`.
    #[serde(default)]
    pub properties: Properties,
}

/// `[sink.kafka.properties]`: librdkafka settings. Values may be secrets (`sasl.password`,
/// `ssl.key.password`): `Debug` shows the names only.
#[derive(Clone, Default)]
pub struct Properties(pub BTreeMap<String, String>);

impl std::fmt::Debug for Properties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl<'de> Deserialize<'de> for Properties {
    /// Strings, numbers and booleans, all given to librdkafka as text.
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Scalar {
            Text(String),
            Int(i64),
            Float(f64),
            Bool(bool),
        }
        let raw = BTreeMap::<String, Scalar>::deserialize(d)?;
        Ok(Properties(
            raw.into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        Scalar::Text(s) => s,
                        Scalar::Int(i) => i.to_string(),
                        Scalar::Float(x) => x.to_string(),
                        Scalar::Bool(b) => b.to_string(),
                    };
                    (k, v)
                })
                .collect(),
        ))
    }
}

/// Settings sluice's guarantees rest on (or that have a key of their own): not overridable.
const OWN_PROPERTIES: [(&str, &str); 9] = [
    ("bootstrap.servers", "use [sink.kafka] brokers"),
    ("metadata.broker.list", "use [sink.kafka] brokers"),
    ("enable.idempotence", "the idempotent producer keeps each partition in order through retries"),
    ("acks", "a record counts as delivered only once every in-sync replica has it (acks=all)"),
    ("request.required.acks", "a record counts as delivered only once every in-sync replica has it (acks=all)"),
    ("message.timeout.ms", "a record never times out while an earlier one of its partition waits; retry_for bounds the wait"),
    ("delivery.timeout.ms", "a record never times out while an earlier one of its partition waits; retry_for bounds the wait"),
    ("transactional.id", "delivery is at least once, deduplicated by seq"),
    ("max.in.flight.requests.per.connection", "the idempotent producer keeps order with at most 5 in flight, its default"),
];

fn default_prefix() -> String {
    "sluice".into()
}

fn yes() -> bool {
    true
}

/// Delivery reports arrive within a round trip or two; 200 ms keeps latency low and lets
/// librdkafka fill its batches.
fn default_flush_interval() -> HumanDuration {
    HumanDuration(Duration::from_millis(200))
}

impl KafkaConfig {
    /// The topic of a table's changes.
    pub fn topic(&self, db: &str, table: &str) -> String {
        format!("{}.{db}.{table}", self.topic_prefix)
    }

    /// Debezium's heartbeat topic.
    pub fn heartbeat_topic(&self) -> String {
        format!("__debezium-heartbeat.{}", self.topic_prefix)
    }
}

impl SinkConfig for KafkaConfig {
    fn name(&self) -> &'static str {
        "kafka"
    }

    fn validate(&self) -> std::result::Result<(), String> {
        let b = self.brokers.trim();
        if b.is_empty()
            || b.split(',').any(|h| !h.trim().rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok()))
        {
            return Err(format!("[sink.kafka] brokers = {:?} is not a list of host:port, e.g. \"kafka1:9092,kafka2:9092\"", self.brokers));
        }
        // Kafka topic names: 1 to 249 of [a-zA-Z0-9._-]; the table part is added at run time.
        let p = &self.topic_prefix;
        if p.is_empty() || p.len() > 200 || !p.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
            return Err(format!("[sink.kafka] topic_prefix = {p:?} is not a Kafka topic name: 1 to 200 letters, digits, '.', '_' or '-'"));
        }
        if self.flush_interval.0.is_zero() {
            return Err("[sink.kafka] flush_interval must be more than 0".into());
        }
        if self.heartbeat_interval.is_some_and(|h| h.0.is_zero()) {
            return Err("[sink.kafka] heartbeat_interval must be more than 0 (leave it out for no heartbeats)".into());
        }
        for (key, why) in OWN_PROPERTIES {
            if self.properties.0.contains_key(key) {
                return Err(format!("[sink.kafka.properties] {key:?} is set by sluice and cannot be changed: {why}"));
            }
        }
        Ok(())
    }

    fn build(&self) -> Result<SinkSpec> {
        Ok(SinkSpec::new(Box::new(KafkaSink::new(self.clone())), self.flush_interval.0, self.retry_for.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &str) -> KafkaConfig {
        toml::from_str(&format!("brokers = \"127.0.0.1:9092\"\n{extra}")).expect("parses")
    }

    #[test]
    fn defaults_are_debeziums() {
        let c = parse("");
        assert_eq!(c.topic_prefix, "sluice");
        assert_eq!(c.format, EventFormat::Debezium);
        assert!(c.tombstones);
        assert_eq!(c.topic("shop", "users"), "sluice.shop.users");
        assert!(c.validate().is_ok());
    }

    #[test]
    fn properties_take_any_scalar_and_never_print_their_values() {
        let c = parse("[properties]\n\"compression.type\" = \"zstd\"\n\"linger.ms\" = 20\n\"sasl.password\" = \"hunter2\"\n");
        assert_eq!(c.properties.0["linger.ms"], "20");
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn validation_names_the_key() {
        let mut c = parse("");
        c.brokers = "kafka".into();
        let e = c.validate().unwrap_err();
        assert!(e.starts_with("[sink.kafka] brokers"), "{e}");
        let e = parse("topic_prefix = \"a b\"").validate().unwrap_err();
        assert!(e.contains("topic_prefix"), "{e}");
        let e = parse("[properties]\n\"enable.idempotence\" = false").validate().unwrap_err();
        assert!(e.contains("enable.idempotence") && e.contains("cannot be changed"), "{e}");
    }
}
