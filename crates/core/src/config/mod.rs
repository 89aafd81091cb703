//! Typed configuration (DESIGN.md "Config"): TOML with `${ENV}` interpolation, unknown keys and
//! bad values rejected with the file, line and key.
mod duration;
mod interpolate;
mod mask;
mod pattern;
mod secret;

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use duration::HumanDuration;
pub use mask::{ColumnPattern, DetectConfig, Entity, MaskKeyConfig, MaskMethod, MaskRule, MASK_KEY_ENV, MIN_KEY_BYTES};
pub use pattern::TablePattern;
pub use secret::{Secret, SecretUrl};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub source: SourceConfig,
    #[serde(default)]
    pub snapshot: SnapshotConfig,
    /// `[[mask]]` rules, applied before every sink.
    #[serde(default)]
    pub mask: Vec<MaskRule>,
    /// `[detect]`: content-based PII detection.
    pub detect: Option<DetectConfig>,
    #[serde(default)]
    pub mask_key: MaskKeyConfig,
    #[serde(default)]
    pub sink: SinksConfig,
    #[serde(default)]
    pub state: StateConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Only "mysql" today (MySQL and MariaDB).
    pub kind: SourceKind,
    pub url: SecretUrl,
    /// Replica id of sluice's binlog connection; must differ from every server and replica.
    pub server_id: NonZeroU32,
    /// `db.table` patterns (`*` and `?` globs) of the tables to capture.
    pub tables: Vec<TablePattern>,
    #[serde(default)]
    pub exclude: Vec<TablePattern>,
    /// Key columns for tables without a primary key, e.g. `{ "demo.users" = ["userid"] }`,
    /// so the lake can keep their current state.
    #[serde(default)]
    pub keys: std::collections::BTreeMap<String, Vec<String>>,
    /// How long to keep reconnecting after the server goes away before giving up.
    #[serde(default = "defaults::reconnect_timeout")]
    pub reconnect_timeout: HumanDuration,
    /// Heartbeat period asked of the server while the binlog is idle.
    #[serde(default = "defaults::heartbeat")]
    pub heartbeat: HumanDuration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Mysql,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotMode {
    /// Snapshot once (resuming an interrupted snapshot), then stream.
    #[default]
    Initial,
    /// No snapshot: stream from the binlog end seen at first start.
    Never,
    /// Snapshot at every start, then stream.
    Always,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotConfig {
    #[serde(default)]
    pub mode: SnapshotMode,
    /// Rows per snapshot chunk (one keyset-paginated SELECT each).
    #[serde(default = "defaults::chunk_size")]
    pub chunk_size: NonZeroU32,
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        Self { mode: SnapshotMode::default(), chunk_size: defaults::chunk_size() }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinksConfig {
    pub lake: Option<LakeSinkConfig>,
    pub jsonl: Option<JsonlSinkConfig>,
}

/// `[sink.lake]`: Delta tables per captured table (current state + changelog).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LakeSinkConfig {
    /// A local directory or `s3://bucket/prefix`.
    #[serde(default = "defaults::lake_path")]
    pub path: String,
    /// Commit to the lake at least this often…
    #[serde(default = "defaults::flush_interval")]
    pub flush_interval: HumanDuration,
    /// …or as soon as this many changes are buffered.
    #[serde(default = "defaults::flush_rows")]
    pub flush_rows: NonZeroU32,
    /// How long a failing commit (storage unreachable, disk full) is retried before the
    /// pipeline stops.
    #[serde(default = "defaults::retry_for")]
    pub retry_for: HumanDuration,
    /// Compact small files (and vacuum replaced ones) every N commits of a table; 0 disables.
    #[serde(default = "defaults::compact_every")]
    pub compact_every: u32,
    /// How long replaced files are kept for readers of older versions before vacuum deletes them.
    #[serde(default = "defaults::retention")]
    pub retention: HumanDuration,
    /// S3 settings; unset ones fall back to the standard AWS_* environment variables.
    #[serde(default)]
    pub s3: S3Config,
}

impl Default for LakeSinkConfig {
    fn default() -> Self {
        Self {
            path: defaults::lake_path(),
            flush_interval: defaults::flush_interval(),
            flush_rows: defaults::flush_rows(),
            retry_for: defaults::retry_for(),
            compact_every: defaults::compact_every(),
            retention: defaults::retention(),
            s3: S3Config::default(),
        }
    }
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventFormat {
    #[default]
    Debezium,
    Dms,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonlSinkConfig {
    /// A file path, or "-" for standard output.
    pub path: String,
    #[serde(default)]
    pub format: EventFormat,
    #[serde(default = "defaults::jsonl_flush_interval")]
    pub flush_interval: HumanDuration,
    /// How long a failing write (disk full) is retried before the pipeline stops.
    #[serde(default = "defaults::retry_for")]
    pub retry_for: HumanDuration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    #[serde(default = "defaults::state_dir")]
    pub dir: PathBuf,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self { dir: defaults::state_dir() }
    }
}

mod defaults {
    use super::*;
    pub fn reconnect_timeout() -> HumanDuration {
        HumanDuration(Duration::from_secs(300))
    }
    pub fn heartbeat() -> HumanDuration {
        HumanDuration(Duration::from_secs(1))
    }
    pub fn chunk_size() -> NonZeroU32 {
        NonZeroU32::new(10_000).expect("nonzero")
    }
    pub fn flush_interval() -> HumanDuration {
        HumanDuration(Duration::from_secs(1))
    }
    /// JSON lines are cheap to sync: every 100 ms, so followers and the commit see them soon.
    pub fn jsonl_flush_interval() -> HumanDuration {
        HumanDuration(Duration::from_millis(100))
    }
    pub fn retry_for() -> HumanDuration {
        HumanDuration(crate::retry::RetryPolicy::DEFAULT_RETRY_FOR)
    }
    pub fn lake_path() -> String {
        "./lake".into()
    }
    pub fn flush_rows() -> NonZeroU32 {
        NonZeroU32::new(100_000).expect("nonzero")
    }
    pub fn compact_every() -> u32 {
        50
    }
    pub fn retention() -> HumanDuration {
        HumanDuration(Duration::from_secs(3600))
    }
    pub fn state_dir() -> PathBuf {
        PathBuf::from("./.sluice")
    }
}

/// A configuration error: the message names the file, line and key, and never shows secrets.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Reads, interpolates and validates a config file. Relative paths in it are resolved
    /// against the file's directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let raw = std::fs::read_to_string(path).map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
        let mut cfg = Self::parse(&raw, &path.display().to_string())?;
        let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        cfg.resolve_paths(base);
        Ok(cfg)
    }

    /// Parses config text; `origin` names it in messages.
    pub fn parse(raw: &str, origin: &str) -> Result<Self, ConfigError> {
        let text = interpolate::interpolate(raw, |name| std::env::var(name).ok())
            .map_err(|e| ConfigError(format!("{origin}:{}: {}", e.line, e.message)))?;
        let mut cfg: Config = toml::from_str(&text).map_err(|e| ConfigError(describe_toml_error(raw, &text, origin, &e)))?;
        cfg.default_sinks();
        cfg.validate().map_err(|m| ConfigError(format!("{origin}: {m}")))?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), String> {
        if self.source.tables.is_empty() {
            return Err("[source] tables is empty: list the tables to capture, e.g. tables = [\"shop.users\"]".into());
        }
        if let Some(l) = &self.sink.lake {
            if l.path.trim().is_empty() {
                return Err("[sink.lake] path is empty: give a directory or s3://bucket/prefix".into());
            }
        }
        if let Some(j) = &self.sink.jsonl {
            if j.path.trim().is_empty() {
                return Err("[sink.jsonl] path is empty: give a file path or \"-\" for stdout".into());
            }
        }
        mask::validate(&self.mask, self.detect.as_ref())
    }

    fn resolve_paths(&mut self, base: &Path) {
        if self.state.dir.is_relative() {
            self.state.dir = base.join(&self.state.dir);
        }
        if let Some(f) = &mut self.mask_key.file {
            if f.is_relative() {
                *f = base.join(&*f);
            }
        }
        if let Some(j) = &mut self.sink.jsonl {
            if j.path != "-" && Path::new(&j.path).is_relative() {
                j.path = base.join(&j.path).display().to_string();
            }
        }
        if let Some(l) = &mut self.sink.lake {
            if !l.path.contains("://") && Path::new(&l.path).is_relative() {
                l.path = base.join(&l.path).display().to_string();
            }
        }
    }

    /// Whether any masking or detection is configured.
    pub fn masks_anything(&self) -> bool {
        !self.mask.is_empty() || self.detect.is_some()
    }

    /// Whether `db.table` is captured.
    pub fn captures(&self, db: &str, table: &str) -> bool {
        self.source.tables.iter().any(|p| p.matches(db, table)) && !self.source.exclude.iter().any(|p| p.matches(db, table))
    }

    /// The lake sink's settings. The lake is the default sink: with no sink configured at all,
    /// a lake at `./lake` (next to the config) is used.
    pub fn lake(&self) -> Option<&LakeSinkConfig> {
        self.sink.lake.as_ref()
    }

    /// Fills in the default sink when none is configured.
    fn default_sinks(&mut self) {
        if self.sink.lake.is_none() && self.sink.jsonl.is_none() {
            self.sink.lake = Some(LakeSinkConfig::default());
        }
    }

    /// Applies configured key columns to a keyless table schema.
    pub fn apply_keys(&self, schema: &mut crate::schema::TableSchema) {
        if !schema.key.is_empty() {
            return;
        }
        if let Some(cols) = self.source.keys.get(&schema.id.to_string()) {
            let idx: Vec<usize> = cols.iter().filter_map(|c| schema.columns.iter().position(|x| x.name.eq_ignore_ascii_case(c))).collect();
            if idx.len() == cols.len() {
                schema.key = idx;
                schema.configured_key = true;
            }
        }
    }
}

/// toml's own message quotes the offending line of the *interpolated* text, which may hold a
/// secret: rebuild it from the span, quoting the raw (uninterpolated) line instead.
fn describe_toml_error(raw: &str, text: &str, origin: &str, e: &toml::de::Error) -> String {
    let Some(span) = e.span() else {
        return format!("{origin}: {}", e.message());
    };
    let line_no = text[..span.start.min(text.len())].matches('\n').count() + 1;
    let raw_line = raw.lines().nth(line_no - 1).unwrap_or("").trim();
    let message = e.message().trim().replace('\n', "; ");
    format!("{origin}:{line_no}: {message} (in `{raw_line}`)")
}

#[cfg(test)]
mod tests;
