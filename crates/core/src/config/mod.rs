//! Typed configuration (DESIGN.md "Config"): TOML with `${ENV}` interpolation, unknown keys and
//! bad values rejected with the file, line and key.
//!
//! Core knows the sections every pipeline has (`[snapshot]`, `[[mask]]`, `[detect]`,
//! `[mask_key]`, `[state]`) and is generic over the rest: the source's `[source]` section (a
//! type of the source's crate, implementing [`SourceSettings`]) and the set of `[sink.*]`
//! sections (assembled by the binary from the sink crates' [`crate::sink::SinkConfig`]s,
//! implementing [`SinkSettings`]). Both stay typed, so every error keeps its line.
mod duration;
mod interpolate;
mod mask;
mod pattern;
mod secret;
mod selection;
mod size;

use std::fmt::Debug;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;

pub use duration::HumanDuration;
pub use mask::{ColumnPattern, DetectConfig, Entity, MaskKeyConfig, MaskMethod, MaskRule, MASK_KEY_ENV, MIN_KEY_BYTES};
pub use pattern::TablePattern;
pub use secret::Secret;
pub use selection::Selection;
pub use size::ByteSize;

/// The `[source]` section of one kind of source.
pub trait SourceSettings: DeserializeOwned + Clone + Debug + Send + Sync + 'static {
    /// Which tables it captures, and the key columns configured for keyless ones.
    fn selection(&self) -> Selection<'_>;
    /// Checks beyond what the types enforce; the message names the key.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
    /// Makes relative paths in the section relative to `base` (the config file's directory).
    fn resolve_paths(&mut self, _base: &Path) {}
    /// Checks that need the resolved paths (files that must exist), after `resolve_paths`.
    fn validate_resolved(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The `[sink.*]` sections.
pub trait SinkSettings: DeserializeOwned + Clone + Debug + Default + Send + Sync + 'static {
    fn validate(&self) -> Result<(), String>;
    fn resolve_paths(&mut self, base: &Path);
    /// Fills in the default sink when none is configured.
    fn default_sinks(&mut self);
}

/// Sink sections read but not interpreted: for tools that build no sink (benchmarks, `check` of
/// a source alone).
impl SinkSettings for toml::Table {
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
    fn resolve_paths(&mut self, _base: &Path) {}
    fn default_sinks(&mut self) {}
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, bound = "")]
pub struct Config<S: SourceSettings, K: SinkSettings> {
    pub source: S,
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
    pub sink: K,
    #[serde(default)]
    pub state: StateConfig,
    /// `[http]`: the status and metrics server inside `sluice run`.
    pub http: Option<HttpConfig>,
}

/// `[http]`: `/metrics` (Prometheus text), `/status` (JSON), `/healthz`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on; loopback unless another address is given explicitly.
    #[serde(default = "defaults::http_listen")]
    pub listen: String,
    /// `/healthz` answers 503 once the source lag passes this.
    #[serde(default = "defaults::lag_alert")]
    pub lag_alert: HumanDuration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotMode {
    /// Snapshot once (resuming an interrupted snapshot), then stream.
    #[default]
    Initial,
    /// No snapshot: stream from the log end seen at first start.
    Never,
    /// Snapshot at every start, then stream.
    Always,
}

/// How the initial snapshot reads rows while the source keeps changing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotMethod {
    /// `consistent` where the server reports the binlog position of a consistent read
    /// (MariaDB, Percona Server), `watermark` elsewhere (MySQL 8, Aurora).
    #[default]
    Auto,
    /// One repeatable-read transaction at a known log position; the log is streamed from there.
    Consistent,
    /// Chunks read between a low and a high watermark of the log, with the log's changes in
    /// that window taking precedence (DBLog): no lock and no special server status needed.
    Watermark,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotConfig {
    #[serde(default)]
    pub mode: SnapshotMode,
    #[serde(default)]
    pub method: SnapshotMethod,
    /// Chunks read at once, each on its own connection (the watermark method).
    #[serde(default = "defaults::parallel")]
    pub parallel: NonZeroU32,
    /// Rows per snapshot chunk (one keyset-paginated SELECT each).
    #[serde(default = "defaults::chunk_size")]
    pub chunk_size: NonZeroU32,
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        Self {
            mode: SnapshotMode::default(),
            method: SnapshotMethod::default(),
            parallel: defaults::parallel(),
            chunk_size: defaults::chunk_size(),
        }
    }
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
pub struct StateConfig {
    #[serde(default = "defaults::state_dir")]
    pub dir: PathBuf,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self { dir: defaults::state_dir() }
    }
}

/// Defaults shared by the sections of several crates.
pub mod defaults {
    use super::*;
    pub fn parallel() -> NonZeroU32 {
        NonZeroU32::MIN
    }
    pub fn chunk_size() -> NonZeroU32 {
        NonZeroU32::new(10_000).expect("nonzero")
    }
    pub fn retry_for() -> HumanDuration {
        HumanDuration(crate::retry::RetryPolicy::DEFAULT_RETRY_FOR)
    }
    pub fn http_listen() -> String {
        "127.0.0.1:9464".into()
    }
    pub fn lag_alert() -> HumanDuration {
        HumanDuration(Duration::from_secs(300))
    }
    pub fn state_dir() -> PathBuf {
        PathBuf::from("./.sluice")
    }
    pub fn duration(d: Duration) -> HumanDuration {
        HumanDuration(d)
    }
}

/// A configuration error: the message names the file, line and key, and never shows secrets.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl<S: SourceSettings, K: SinkSettings> Config<S, K> {
    /// Reads, interpolates and validates a config file. Relative paths in it are resolved
    /// against the file's directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let raw = std::fs::read_to_string(path).map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
        let mut cfg = Self::parse(&raw, &path.display().to_string())?;
        let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        cfg.resolve_paths(base);
        cfg.source.validate_resolved().map_err(|m| ConfigError(format!("{}: {m}", path.display())))?;
        Ok(cfg)
    }

    /// Parses config text; `origin` names it in messages.
    pub fn parse(raw: &str, origin: &str) -> Result<Self, ConfigError> {
        let text = interpolate::interpolate(raw, |name| std::env::var(name).ok())
            .map_err(|e| ConfigError(format!("{origin}:{}: {}", e.line, e.message)))?;
        let mut cfg: Self = toml::from_str(&text).map_err(|e| ConfigError(describe_toml_error(raw, &text, origin, &e)))?;
        cfg.sink.default_sinks();
        cfg.validate().map_err(|m| ConfigError(format!("{origin}: {m}")))?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), String> {
        if self.source.selection().tables.is_empty() {
            return Err("[source] tables is empty: list the tables to capture, e.g. tables = [\"shop.users\"]".into());
        }
        self.source.validate()?;
        self.sink.validate()?;
        if self.snapshot.method == SnapshotMethod::Consistent && self.snapshot.parallel.get() > 1 {
            return Err(format!(
                "[snapshot] parallel = {} needs method = \"watermark\" (or \"auto\" on a server without consistent-snapshot positions): a consistent snapshot is one transaction on one connection",
                self.snapshot.parallel
            ));
        }
        if let Some(h) = &self.http {
            h.listen
                .parse::<std::net::SocketAddr>()
                .map_err(|_| format!("[http] listen = {:?} is not an address:port such as \"127.0.0.1:9464\"", h.listen))?;
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
        self.source.resolve_paths(base);
        self.sink.resolve_paths(base);
    }

    /// Whether any masking or detection is configured.
    pub fn masks_anything(&self) -> bool {
        !self.mask.is_empty() || self.detect.is_some()
    }

    /// Whether `db.table` is captured.
    pub fn captures(&self, db: &str, table: &str) -> bool {
        self.source.selection().captures(db, table)
    }

    /// Applies configured key columns to a keyless table schema.
    pub fn apply_keys(&self, schema: &mut crate::schema::TableSchema) {
        self.source.selection().apply_keys(schema)
    }
}

/// A local path given relative to the config file, made relative to `base`; URLs (`s3://…`)
/// and "-" (stdout) are left alone.
pub fn resolve_path(path: &mut String, base: &Path) {
    if path != "-" && !path.contains("://") && Path::new(path.as_str()).is_relative() {
        *path = base.join(&*path).display().to_string();
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
