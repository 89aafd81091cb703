//! `produce`: the Kafka baseline of `make bench` — librdkafka alone (the same vendored build and
//! producer guarantees as the Kafka sink: idempotent, acks=all) writing the lines of a file as
//! records, as fast as the brokers acknowledge them. Debian's kcat cannot be the baseline against
//! tansu: its librdkafka (2.0.2) fails tansu's ApiVersions answer.
use std::collections::VecDeque;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use serde_json::{json, Value as Json};

pub async fn run(brokers: &str, topic: &str, file: &Path) -> Result<Json> {
    let data = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("partitioner", "murmur2_random")
        .create()
        .context("cannot create the Kafka producer")?;
    let started = Instant::now();
    let mut reports = VecDeque::new();
    let mut rows = 0u64;
    for line in data.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        loop {
            match producer.send_result(FutureRecord::<(), [u8]>::to(topic).payload(line)) {
                Ok(report) => break reports.push_back(report),
                // librdkafka's queue is full: wait for the oldest report.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    let oldest = reports.pop_front().context("queue full with nothing in flight")?;
                    oldest.await?.map_err(|(e, _)| e)?;
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
        rows += 1;
    }
    for report in reports {
        report.await?.map_err(|(e, _)| e)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(json!({ "rows": rows, "seconds": seconds, "rows_per_s": rows as f64 / seconds }))
}
