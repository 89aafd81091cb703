//! Amazon Kinesis Data Streams: the `kinesis` sink (each change as one record, DMS or Debezium
//! JSON, partitioned by primary key) and [`tail`], which reads a stream back.
//!
//! Delivery: at least once. A change is durable once the service acknowledged its record;
//! records are sent so that no record is written before an earlier record of its partition key
//! was acknowledged ([`batch`]), so retries (throttling, partial failures) never reorder a key.
//! After a crash, the records after the last committed checkpoint are sent again, identical,
//! each carrying its `seq`: a consumer that drops seqs it has seen rebuilds the source.

pub mod batch;
mod client;
mod config;
mod sink;
mod tail;

pub use client::probe;
pub use config::{KinesisConfig, PartitionKey};
pub use sink::KinesisSink;
pub use sluice_core::tailing::TailOptions;
pub use tail::tail;

/// `sluice check`: whether the stream of `cfg` exists and takes records. `Ok` with what was
/// found, or the error naming cause and fix.
pub async fn check(cfg: &KinesisConfig) -> Result<String, sluice_core::SluiceError> {
    let c = client::client(cfg).await;
    probe(&c, cfg).await
}
