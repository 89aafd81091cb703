//! The Kinesis client as sluice configures it, and what its errors mean for the pipeline.
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_kinesis::config::http::HttpResponse;
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::types::StreamStatus;
use aws_sdk_kinesis::Client;
use sluice_core::error::{ErrorKind, SluiceError};

use crate::config::KinesisConfig;

/// A client for `cfg`'s region and endpoint, with credentials from the standard AWS chain
/// (environment, profile, web identity, container and instance metadata). The SDK's own
/// retries are off: failures go to the pipeline's one retry policy, which knows the sink's
/// `retry_for` and keeps per-key order.
pub async fn client(cfg: &KinesisConfig) -> Client {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(Region::new(cfg.region.clone()));
    if let Some(ep) = &cfg.endpoint {
        loader = loader.endpoint_url(ep);
    }
    let shared = loader.load().await;
    let conf = aws_sdk_kinesis::config::Builder::from(&shared)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                // A 5 MiB call on a slow link takes a while; a hung server is cut off here.
                .operation_attempt_timeout(Duration::from_secs(30))
                .build(),
        )
        .build();
    Client::from_conf(conf)
}

/// Checks that the stream exists and takes records: `Ok` with a line for `sluice check`
/// (status and shard count), or the error (permanent, with the fix) to stop with.
pub async fn probe(client: &Client, cfg: &KinesisConfig) -> Result<String, SluiceError> {
    let out = client
        .describe_stream_summary()
        .stream_name(&cfg.stream)
        .send()
        .await
        .map_err(|e| classify(e, cfg, &format!("describe Kinesis stream {}", cfg.stream)))?;
    let Some(s) = out.stream_description_summary() else {
        return Err(SluiceError::permanent(format!(
            "Kinesis stream {} has no description in the answer of {}",
            cfg.stream,
            cfg.describe_endpoint()
        )));
    };
    match s.stream_status() {
        // UPDATING (a reshard, a retention change) still takes records.
        StreamStatus::Active | StreamStatus::Updating => {
            Ok(format!("stream {} is {} with {} open shard(s)", cfg.stream, s.stream_status().as_str(), s.open_shard_count()))
        }
        other => Err(SluiceError::permanent(format!(
            "Kinesis stream {} is {}, not ACTIVE: wait until it is ACTIVE (aws kinesis describe-stream-summary --stream-name {}), or recreate it",
            cfg.stream,
            other.as_str(),
            cfg.stream
        ))),
    }
}

/// What an SDK error means: the kind decides retrying ([`sluice_core::retry`]); the message
/// names the cause and the fix. The SDK error is kept as the source (it never holds row
/// values: data is not echoed in Kinesis's error messages).
pub fn classify<E>(err: SdkError<E, HttpResponse>, cfg: &KinesisConfig, what: &str) -> SluiceError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let stream = &cfg.stream;
    let endpoint = cfg.describe_endpoint();
    let (kind, message) = match &err {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            match se.err().code().unwrap_or_default() {
                "ResourceNotFoundException" => (
                    ErrorKind::Permanent,
                    format!("Kinesis stream {stream} does not exist in region {} at {endpoint}: create it (aws kinesis create-stream --stream-name {stream} --shard-count 2), or fix [sink.kinesis] stream / region / endpoint", cfg.region),
                ),
                "ProvisionedThroughputExceededException" | "LimitExceededException" | "ThrottlingException" | "KMSThrottlingException" => (
                    ErrorKind::Exhausted,
                    format!("Kinesis throttled the writes to stream {stream}: retrying; if it persists, add shards (aws kinesis update-shard-count)"),
                ),
                code @ ("UnrecognizedClientException" | "InvalidSignatureException" | "IncompleteSignature" | "MissingAuthenticationToken"
                | "InvalidClientTokenId" | "ExpiredTokenException" | "ExpiredToken") => (
                    ErrorKind::Permanent,
                    format!("{endpoint} rejected the AWS credentials ({code}): set valid ones (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or the instance's role)"),
                ),
                code @ ("AccessDeniedException" | "KMSAccessDeniedException" | "KMSDisabledException" | "KMSNotFoundException" | "KMSInvalidStateException") => (
                    ErrorKind::Permanent,
                    format!("the AWS credentials may not {what} ({code}): grant kinesis:PutRecords, kinesis:DescribeStreamSummary (and the stream's KMS key) to them"),
                ),
                "ResourceInUseException" => (ErrorKind::Transient, format!("Kinesis stream {stream} is busy (being updated): retrying")),
                code if status >= 500 || code == "InternalFailure" || code == "ServiceUnavailable" => {
                    (ErrorKind::Transient, format!("Kinesis failed to {what} (HTTP {status}): retrying"))
                }
                code => (ErrorKind::Permanent, format!("Kinesis refused to {what} ({code}, HTTP {status})")),
            }
        }
        SdkError::TimeoutError(_) => (ErrorKind::Transient, format!("no answer from {endpoint} in time to {what}: retrying")),
        SdkError::DispatchFailure(_) if credentials_missing(&err) => (
            ErrorKind::Permanent,
            "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run with an instance or task role"
                .to_string(),
        ),
        SdkError::DispatchFailure(_) => {
            (ErrorKind::Transient, format!("cannot reach {endpoint} to {what}: check [sink.kinesis] endpoint / region and the network"))
        }
        SdkError::ResponseError(_) => (ErrorKind::Transient, format!("unreadable answer from {endpoint} to {what}: retrying")),
        _ => (ErrorKind::Permanent, format!("cannot {what}: the request could not be built")),
    };
    SluiceError::new(kind, message).with_source(err)
}

/// The credential chain found nothing (the SDK reports it as a dispatch failure).
fn credentials_missing(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        let text = e.to_string();
        // The chain's own words, e.g. "no credentials found in chain. Attempted: Environment: the
        // credential provider was not enabled: …".
        let lower = text.to_lowercase();
        if lower.contains("credential")
            && ["no credentials", "not enabled", "no providers", "failed to load"].iter().any(|w| lower.contains(w))
        {
            return true;
        }
        cur = e.source();
    }
    false
}
