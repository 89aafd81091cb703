//! Kafka: the `kafka` sink (each change as one record of the topic `<prefix>.<db>.<table>`,
//! keyed by primary key, Debezium or DMS JSON, a tombstone after each delete) and [`tail`],
//! which reads the topics back.
//!
//! Delivery: at least once. A change is durable once its delivery report succeeded; the
//! producer is idempotent (acks=all), so librdkafka's retries keep every partition in order.
//! After a crash, the records after the last committed checkpoint are sent again, identical,
//! each carrying its `seq` (in the value and in the `seq` header): a consumer that drops seqs it
//! has seen rebuilds the source.

mod client;
mod config;
mod encoding;
#[cfg(test)]
mod golden_tests;
mod sink;
mod tail;
#[cfg(test)]
mod tests;

pub use config::{KafkaConfig, Properties};
pub use sink::{KafkaSink, SEQ_HEADER};
pub use sluice_core::tailing::TailOptions;
pub use tail::tail;

/// `sluice check`: whether the brokers of `cfg` answer with the cluster's metadata. `Ok` with
/// what was found, or the error naming cause and fix.
pub async fn check(cfg: &KafkaConfig) -> Result<String, sluice_core::SluiceError> {
    let p = client::producer(cfg)?;
    client::probe(client::producer_metadata(&p, client::METADATA_TIMEOUT), cfg).await
}
