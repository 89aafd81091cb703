//! `[sink.jsonl]`: every event as a JSON line, in a file or on stdout.
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use sluice_core::config::{defaults, resolve_path, EventFormat, HumanDuration};
use sluice_core::error::Result;
use sluice_core::pipeline::SinkSpec;
use sluice_core::sink::SinkConfig;

use crate::JsonlSink;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonlConfig {
    /// A file path, or "-" for standard output.
    pub path: String,
    #[serde(default)]
    pub format: EventFormat,
    /// How often the file is fsynced (and so how often this sink reports progress). Lines reach
    /// the OS, and followers, as they arrive.
    #[serde(default = "default_flush_interval")]
    pub flush_interval: HumanDuration,
    /// How long a failing write (disk full) is retried before the pipeline stops.
    #[serde(default = "defaults::retry_for")]
    pub retry_for: HumanDuration,
}

/// JSON lines are cheap to sync: every 100 ms, so the commit is never held up by them.
fn default_flush_interval() -> HumanDuration {
    HumanDuration(Duration::from_millis(100))
}

impl JsonlConfig {
    /// The events file, unless the sink writes to stdout.
    pub fn file(&self) -> Option<&Path> {
        (self.path != "-").then(|| Path::new(&self.path))
    }
}

impl SinkConfig for JsonlConfig {
    fn name(&self) -> &'static str {
        "jsonl"
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.path.trim().is_empty() {
            return Err("[sink.jsonl] path is empty: give a file path or \"-\" for stdout".into());
        }
        Ok(())
    }

    fn resolve_paths(&mut self, base: &Path) {
        resolve_path(&mut self.path, base);
    }

    fn build(&self) -> Result<SinkSpec> {
        Ok(SinkSpec::new(Box::new(JsonlSink::new(self)), self.flush_interval.0, self.retry_for.0))
    }
}
