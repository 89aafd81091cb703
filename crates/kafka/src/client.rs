//! The librdkafka clients as sluice configures them, and what their errors mean for the
//! pipeline.
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::metadata::Metadata;
use rdkafka::producer::{FutureProducer, Producer};
use sluice_core::error::{ErrorKind, SluiceError};

use crate::config::KafkaConfig;

/// How long `check`, `open` and `tail` wait for the brokers' metadata.
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

/// The settings every client of `cfg` shares: the brokers and `[sink.kafka.properties]`.
pub fn base_config(cfg: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", cfg.brokers.trim()).set("client.id", "sluice");
    for (k, v) in &cfg.properties.0 {
        c.set(k, v);
    }
    c
}

/// The producer: idempotent (acks=all, librdkafka's own retries kept in order per partition)
/// and without a message timeout, so a record is never dropped while an earlier one of its
/// partition waits: the sink decides how long to wait (see [`crate::sink`]).
pub fn producer(cfg: &KafkaConfig) -> Result<FutureProducer, SluiceError> {
    let mut c = base_config(cfg);
    c.set("enable.idempotence", "true").set("acks", "all").set("message.timeout.ms", "0");
    if !cfg.properties.0.contains_key("partitioner") {
        // Java's: a key lands in the partition Kafka Connect (Debezium) would pick.
        c.set("partitioner", "murmur2_random");
    }
    c.create().map_err(|e| config_error(e, cfg))
}

/// A bad `[sink.kafka.properties]` entry, found when the client is made.
pub fn config_error(e: KafkaError, cfg: &KafkaConfig) -> SluiceError {
    let keys: Vec<&str> = cfg.properties.0.keys().map(String::as_str).collect();
    SluiceError::permanent(format!(
        "librdkafka refused the Kafka client settings: fix [sink.kafka.properties] (keys: {})",
        if keys.is_empty() { "none".to_string() } else { keys.join(", ") }
    ))
    .with_source(e)
}

/// The brokers' metadata: `Ok` with a line for `sluice check` (brokers and topics found), or
/// the error naming the cause and the fix. `fetch` blocks inside librdkafka: it runs off the
/// runtime.
pub async fn probe(fetch: impl FnOnce() -> KafkaResult<Metadata> + Send + 'static, cfg: &KafkaConfig) -> Result<String, SluiceError> {
    let meta = tokio::task::spawn_blocking(fetch)
        .await
        .map_err(|e| SluiceError::permanent("the Kafka metadata request did not finish").with_source(e))?;
    match meta {
        Ok(m) => {
            let prefix = format!("{}.", cfg.topic_prefix);
            let topics = m.topics().iter().filter(|t| t.name().starts_with(&prefix)).count();
            Ok(format!("{} broker(s) answered at {}; {topics} topic(s) named {prefix}*", m.brokers().len(), cfg.brokers))
        }
        Err(e) => Err(classify(e, cfg, "read the cluster's metadata")),
    }
}

/// The message for brokers that do not answer: the cause, the key and the fix.
pub fn unreachable(cfg: &KafkaConfig, what: &str) -> String {
    format!(
        "cannot reach the Kafka brokers to {what}: check [sink.kafka] brokers = {:?} (host:port of running brokers), \
         and that the listeners the brokers advertise are reachable from here",
        cfg.brokers
    )
}

/// What a librdkafka error means: the kind decides retrying ([`sluice_core::retry`]), the message
/// names the cause and the fix. librdkafka errors never hold record contents.
pub fn classify(err: KafkaError, cfg: &KafkaConfig, what: &str) -> SluiceError {
    let brokers = &cfg.brokers;
    let down = || (ErrorKind::Transient, unreachable(cfg, what));
    let (kind, message) = match err.rdkafka_error_code() {
        Some(
            RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::Resolve
            | RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::MessageTimedOut
            | RDKafkaErrorCode::RequestTimedOut
            | RDKafkaErrorCode::NetworkException,
        ) => down(),
        Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed) => (
            ErrorKind::Permanent,
            format!("the Kafka brokers at {brokers} rejected the credentials: fix sasl.* / ssl.* in [sink.kafka.properties]"),
        ),
        Some(code @ (RDKafkaErrorCode::SSL | RDKafkaErrorCode::UnsupportedSASLMechanism | RDKafkaErrorCode::IllegalSASLState)) => (
            ErrorKind::Permanent,
            format!("cannot open a secure session with the Kafka brokers at {brokers} ({code:?}): fix security.protocol, ssl.* / sasl.* in [sink.kafka.properties]"),
        ),
        Some(code @ (RDKafkaErrorCode::TopicAuthorizationFailed | RDKafkaErrorCode::ClusterAuthorizationFailed | RDKafkaErrorCode::TransactionalIdAuthorizationFailed)) => (
            ErrorKind::Permanent,
            format!(
                "the Kafka brokers refused to let sluice {what} ({code:?}): grant WRITE and DESCRIBE on the topics {}.* (and IDEMPOTENT_WRITE on the cluster)",
                cfg.topic_prefix
            ),
        ),
        Some(RDKafkaErrorCode::UnknownTopic | RDKafkaErrorCode::UnknownTopicOrPartition) => (
            ErrorKind::Permanent,
            format!(
                "a topic {}.* does not exist and the brokers do not create topics on first use: create it (kafka-topics --create), \
                 or set auto.create.topics.enable=true on the brokers",
                cfg.topic_prefix
            ),
        ),
        Some(code @ (RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::InvalidMessageSize | RDKafkaErrorCode::MessageBatchTooLarge)) => (
            ErrorKind::Permanent,
            format!("the Kafka brokers refused a record as too large ({code:?}): raise max.message.bytes on the topics, and message.max.bytes in [sink.kafka.properties]"),
        ),
        Some(RDKafkaErrorCode::QueueFull) => (ErrorKind::Exhausted, format!("librdkafka's send queue is full while trying to {what}: retrying")),
        Some(code) => (ErrorKind::Transient, format!("Kafka failed to {what} ({code:?}): retrying")),
        None => match &err {
            KafkaError::ClientCreation(_) | KafkaError::ClientConfig(..) => {
                (ErrorKind::Permanent, "librdkafka refused the Kafka client settings: fix [sink.kafka.properties]".to_string())
            }
            _ => (ErrorKind::Transient, format!("Kafka failed to {what}: retrying")),
        },
    };
    SluiceError::new(kind, message).with_source(err)
}

/// Metadata of every topic through `producer`, waiting up to `timeout`, for [`probe`].
pub fn producer_metadata(producer: &FutureProducer, timeout: Duration) -> impl FnOnce() -> KafkaResult<Metadata> + Send + 'static {
    let p = producer.clone();
    move || p.client().fetch_metadata(None, timeout)
}
