//! `[sink.lake]`: Delta tables per captured table (current state + changelog), on a local path
//! or S3.
use std::num::NonZeroU32;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use sluice_core::config::{defaults, resolve_path, ByteSize, HumanDuration, Secret};
use sluice_core::error::Result;
use sluice_core::pipeline::SinkSpec;
use sluice_core::sink::SinkConfig;

use crate::LakeSink;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LakeConfig {
    /// A local directory or `s3://bucket/prefix`.
    #[serde(default = "default_path")]
    pub path: String,
    /// Commit to the lake at least this often…
    #[serde(default = "default_flush_interval")]
    pub flush_interval: HumanDuration,
    /// …or as soon as this many changes are buffered…
    #[serde(default = "default_flush_rows")]
    pub flush_rows: NonZeroU32,
    /// …or as soon as the buffered changes hold this much memory. A commit is written while
    /// the next buffer fills; once that one is full too, the source waits. So the lake holds
    /// at most about twice this (plus the Arrow and Parquet copies of the commit being written).
    #[serde(default = "default_flush_bytes")]
    pub flush_bytes: ByteSize,
    /// How long a failing commit (storage unreachable, disk full) is retried before the
    /// pipeline stops.
    #[serde(default = "defaults::retry_for")]
    pub retry_for: HumanDuration,
    /// Compact small files (and vacuum replaced ones) every N commits of a table; 0 disables.
    #[serde(default = "default_compact_every")]
    pub compact_every: u32,
    /// How long replaced files are kept for readers of older versions before vacuum deletes them.
    #[serde(default = "default_retention")]
    pub retention: HumanDuration,
    /// S3 settings; unset ones fall back to the standard AWS_* environment variables.
    #[serde(default)]
    pub s3: S3Config,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    pub region: Option<String>,
    /// Custom endpoint (MinIO, moto, LocalStack): implies path-style requests.
    pub endpoint: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    pub session_token: Option<Secret>,
    /// Allow plain http endpoints.
    #[serde(default)]
    pub allow_http: bool,
}

fn default_path() -> String {
    "./lake".into()
}
fn default_flush_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(1))
}
fn default_flush_rows() -> NonZeroU32 {
    NonZeroU32::new(100_000).expect("nonzero")
}
fn default_flush_bytes() -> ByteSize {
    ByteSize(16 << 20)
}
fn default_compact_every() -> u32 {
    50
}
fn default_retention() -> HumanDuration {
    HumanDuration(Duration::from_secs(3600))
}

impl Default for LakeConfig {
    fn default() -> Self {
        Self {
            path: default_path(),
            flush_interval: default_flush_interval(),
            flush_rows: default_flush_rows(),
            flush_bytes: default_flush_bytes(),
            retry_for: defaults::retry_for(),
            compact_every: default_compact_every(),
            retention: default_retention(),
            s3: S3Config::default(),
        }
    }
}

impl SinkConfig for LakeConfig {
    fn name(&self) -> &'static str {
        "lake"
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.path.trim().is_empty() {
            return Err("[sink.lake] path is empty: give a directory or s3://bucket/prefix".into());
        }
        if self.flush_bytes.0 < 1 << 20 {
            return Err("[sink.lake] flush_bytes must be at least \"1MiB\"".into());
        }
        Ok(())
    }

    fn resolve_paths(&mut self, base: &Path) {
        resolve_path(&mut self.path, base);
    }

    fn build(&self) -> Result<SinkSpec> {
        Ok(SinkSpec::new(Box::new(LakeSink::new(self)?), self.flush_interval.0, self.retry_for.0))
    }
}
