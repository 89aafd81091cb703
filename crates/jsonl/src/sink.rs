//! The `jsonl` sink.
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::JsonlConfig;
use async_trait::async_trait;
use serde_json::{json, Value as Json};
use sluice_core::config::EventFormat;
use sluice_core::encode::encode_into;
use sluice_core::error::{Result, SluiceError};
use sluice_core::event::ChangeEvent;
use sluice_core::sink::{Batch, Sink};
use tracing::info;

const NAME: &str = "jsonl";

/// Writes one JSON line per event to a file (appending; parent directories created) or, for
/// path "-", to stdout.
///
/// Every `write` hands its lines to the OS, so a follower (`sluice tail -f`) sees them within
/// milliseconds; only `flush` fsyncs. The lines written since the last fsync are also kept in
/// memory: when a write or an fsync fails (a full disk), the next `flush` truncates the file back
/// to what was last synced and writes them again, so a failure never leaves a gap or a torn
/// line. The mark is `{"bytes": N}`, the file's length at the checkpoint; `open` truncates back
/// to it. Stdout marks `{"stdout": true}` and is at least once (see the crate docs).
pub struct JsonlSink {
    /// `None` for stdout.
    path: Option<PathBuf>,
    format: EventFormat,
    out: Option<Output>,
    /// Length of the file up to the last successful fsync.
    synced: u64,
    /// Encoded lines after `synced`, in order.
    unsynced: Vec<u8>,
    /// How much of `unsynced` the OS has taken.
    written: usize,
    /// A write or fsync failed: the file past `synced` is not to be trusted until `flush`
    /// rewrites it.
    broken: bool,
}

enum Output {
    /// Shared so the fsync can run on a blocking thread.
    File(Arc<File>),
    Stdout,
}

impl JsonlSink {
    pub fn new(cfg: &JsonlConfig) -> Self {
        let path = (cfg.path != "-").then(|| PathBuf::from(&cfg.path));
        Self { path, format: cfg.format, out: None, synced: 0, unsynced: Vec::with_capacity(64 * 1024), written: 0, broken: false }
    }

    fn describe(&self) -> String {
        self.path.as_ref().map_or_else(|| "standard output".to_string(), |p| format!("events file {}", p.display()))
    }

    /// Hands the lines the OS has not taken yet to it.
    fn write_out(&mut self) -> io::Result<()> {
        let rest = &self.unsynced[self.written..];
        match &self.out {
            Some(Output::File(f)) => (&**f).write_all(rest)?,
            Some(Output::Stdout) => {
                let mut out = io::stdout().lock();
                out.write_all(rest)?;
                out.flush()?;
            }
            None => return Ok(()),
        }
        self.written = self.unsynced.len();
        Ok(())
    }

    /// After a failure: the file back to its synced length, then every line since, again.
    fn rewrite(&mut self) -> io::Result<()> {
        if let Some(Output::File(f)) = &self.out {
            f.set_len(self.synced)?;
        }
        self.written = 0;
        self.write_out()?;
        self.broken = false;
        Ok(())
    }

    fn failed(&mut self, what: &str, e: io::Error) -> SluiceError {
        self.broken = true;
        let target = self.describe();
        classify(&e, format!("cannot {what} {target}")).with_source(e)
    }
}

#[async_trait]
impl Sink for JsonlSink {
    fn name(&self) -> &str {
        NAME
    }

    async fn open(&mut self, committed: Option<Json>) -> Result<()> {
        self.out = None;
        self.broken = false;
        self.unsynced.clear();
        self.written = 0;
        let Some(path) = &self.path else {
            self.out = Some(Output::Stdout);
            self.synced = 0;
            return Ok(());
        };
        let (file, len) = open_file(path, committed_bytes(committed.as_ref())?)?;
        self.out = Some(Output::File(Arc::new(file)));
        self.synced = len;
        Ok(())
    }

    async fn write(&mut self, batch: &Batch) -> Result<()> {
        if self.out.is_none() {
            return Err(SluiceError::permanent(format!("the jsonl sink wrote to {} before it was opened", self.describe())));
        }
        let now_ms = chrono::Utc::now().timestamp_millis();
        encode_lines(&mut self.unsynced, &batch.events, self.format, now_ms)?;
        if self.broken {
            // Kept in memory; the next flush rewrites everything since the last fsync.
            return Ok(());
        }
        // Hand each batch to the OS right away (no fsync: that is `flush`), so followers such as
        // `sluice tail` see events as they arrive, not only at the next commit.
        self.write_out().map_err(|e| self.failed("write to", e))
    }

    fn mark(&self) -> Json {
        match self.path {
            Some(_) => json!({ "bytes": self.synced + self.unsynced.len() as u64 }),
            None => json!({ "stdout": true }),
        }
    }

    async fn flush(&mut self) -> Result<()> {
        if self.broken {
            self.rewrite().map_err(|e| self.failed("write to", e))?;
        } else {
            self.write_out().map_err(|e| self.failed("write to", e))?;
        }
        let Some(Output::File(file)) = &self.out else {
            self.unsynced.clear();
            self.written = 0;
            return Ok(());
        };
        let file = Arc::clone(file);
        let synced = tokio::task::spawn_blocking(move || file.sync_data())
            .await
            .map_err(|e| SluiceError::transient(format!("fsync of {} did not complete: {e}", self.describe())))?;
        // After a failed fsync the kernel may have dropped the dirty pages: rewrite them.
        synced.map_err(|e| self.failed("fsync", e))?;
        self.synced += self.unsynced.len() as u64;
        self.unsynced.clear();
        self.written = 0;
        Ok(())
    }
}

/// Encodes `events` as JSON lines at the end of `buf`, written straight into it (one buffer
/// for every batch until the next fsync). On failure `buf` is left as it was.
fn encode_lines(buf: &mut Vec<u8>, events: &[ChangeEvent], format: EventFormat, now_ms: i64) -> Result<()> {
    let start = buf.len();
    for ev in events {
        if let Err(e) = encode_into(ev, format, now_ms, buf) {
            buf.truncate(start);
            return Err(e);
        }
        buf.push(b'\n');
    }
    Ok(())
}

/// The file length recorded at the last commit, if the committed state has one. A state written
/// while the sink was on stdout has none and counts as a fresh start for the file.
fn committed_bytes(committed: Option<&Json>) -> Result<Option<u64>> {
    match committed.map(|c| c.get("bytes")) {
        None | Some(None) => Ok(None),
        Some(Some(b)) => b.as_u64().map(Some).ok_or_else(|| {
            SluiceError::permanent(
                "the committed state of sink jsonl has no valid `bytes`; \
                 restore the state dir or remove it to start over",
            )
        }),
    }
}

/// Opens `path` for appending, truncated back to `committed` bytes. Returns the file and its length.
fn open_file(path: &Path, committed: Option<u64>) -> Result<(File, u64)> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        fs::create_dir_all(dir).map_err(|e| io_err(dir, "create the directory", e))?;
    }
    let existed = path.exists();
    let file = OpenOptions::new().append(true).create(true).open(path).map_err(|e| io_err(path, "open", e))?;
    if !existed {
        // Make the new directory entry durable, or a power loss could lose the whole file while
        // the state says it holds N bytes.
        File::open(dir.unwrap_or(Path::new("."))).and_then(|d| d.sync_all()).map_err(|e| io_err(path, "fsync the directory of", e))?;
    }
    let len = file.metadata().map_err(|e| io_err(path, "stat", e))?.len();
    let p = path.display();
    match committed {
        None if len > 0 => Err(SluiceError::permanent(format!(
            "events file {p} already has data ({len} bytes) but the state dir has no checkpoint for sink jsonl; \
             move the file away or restore the state dir"
        ))),
        None => Ok((file, 0)),
        Some(n) if len < n => Err(SluiceError::permanent(format!(
            "events file {p} has {len} bytes but the last checkpoint covered {n}: something other than sluice \
             truncated or replaced it; restore the file, or move it away and remove the state dir to start over"
        ))),
        Some(n) => {
            if len > n {
                // Lines after the last commit: the pipeline sends those events again.
                file.set_len(n).map_err(|e| io_err(path, "truncate", e))?;
                info!(path = %p, dropped_bytes = len - n, "truncated events written after the last checkpoint");
            }
            Ok((file, n))
        }
    }
}

fn io_err(path: &Path, what: &str, e: io::Error) -> SluiceError {
    classify(&e, format!("cannot {what} {}", path.display())).with_source(e)
}

/// Errors that retrying cannot fix are permanent; a full disk is exhausted (retried: it may be
/// grown); other I/O errors transient.
fn classify(e: &io::Error, message: String) -> SluiceError {
    use io::ErrorKind as K;
    match e.kind() {
        K::PermissionDenied | K::ReadOnlyFilesystem | K::IsADirectory | K::NotADirectory | K::InvalidInput => {
            SluiceError::permanent(message)
        }
        K::StorageFull | K::QuotaExceeded => {
            SluiceError::exhausted(format!("{message} (the disk is full: free space or grow its filesystem)"))
        }
        _ => SluiceError::transient(message),
    }
}
