//! The `jsonl` sink.
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Value as Json};
use sluice_core::config::{EventFormat, JsonlSinkConfig};
use sluice_core::encode::encode;
use sluice_core::error::{Result, SluiceError};
use sluice_core::event::ChangeEvent;
use sluice_core::sink::Sink;
use tracing::info;

const NAME: &str = "jsonl";
const BUF_CAPACITY: usize = 256 * 1024;

/// Writes one JSON line per event to a file (appending; parent directories created) or, for
/// path "-", to stdout.
///
/// Every `write` ends with the lines handed to the OS, so a follower (`sluice tail -f`) sees
/// them within milliseconds; only `flush` fsyncs. The mark is `{"bytes": N}`, the file's length
/// at the checkpoint; `open` truncates back to it. Stdout marks `{"stdout": true}` and is at
/// least once (see the crate docs).
pub struct JsonlSink {
    /// `None` for stdout.
    path: Option<PathBuf>,
    format: EventFormat,
    out: Option<Output>,
    /// Logical length of the file: everything written so far, flushed to the OS or not.
    len: u64,
    /// Set when a write failed part-way: `len` no longer matches the file, so nothing more may
    /// be written until `open` re-establishes it.
    broken: bool,
    /// Reused encoding buffer for one line.
    line: Vec<u8>,
}

struct Output {
    writer: BufWriter<Box<dyn Write + Send>>,
    /// A second handle on the file, so the fsync can run on a blocking thread.
    sync: Option<Arc<File>>,
}

impl JsonlSink {
    pub fn new(cfg: &JsonlSinkConfig) -> Self {
        let path = (cfg.path != "-").then(|| PathBuf::from(&cfg.path));
        Self { path, format: cfg.format, out: None, len: 0, broken: false, line: Vec::with_capacity(1024) }
    }
}

/// How messages name the output.
fn describe(path: &Option<PathBuf>) -> String {
    path.as_ref().map_or_else(|| "standard output".to_string(), |p| format!("events file {}", p.display()))
}

#[async_trait]
impl Sink for JsonlSink {
    fn name(&self) -> &str {
        NAME
    }

    async fn open(&mut self, committed: Option<Json>) -> Result<()> {
        // Reopening: dropping the old writer flushes its buffer; the truncation below removes it.
        self.out = None;
        self.broken = false;
        let Some(path) = &self.path else {
            let writer = BufWriter::with_capacity(BUF_CAPACITY, Box::new(io::stdout()) as Box<dyn Write + Send>);
            self.out = Some(Output { writer, sync: None });
            self.len = 0;
            return Ok(());
        };
        let (file, len) = open_file(path, committed_bytes(committed.as_ref())?)?;
        let sync = Arc::new(file.try_clone().map_err(|e| io_err(path, "open", e))?);
        self.out = Some(Output { writer: BufWriter::with_capacity(BUF_CAPACITY, Box::new(file)), sync: Some(sync) });
        self.len = len;
        Ok(())
    }

    async fn write(&mut self, events: &[ChangeEvent]) -> Result<()> {
        let Some(out) = self.out.as_mut() else {
            let what = describe(&self.path);
            return Err(SluiceError::permanent(format!("the jsonl sink wrote to {what} before it was opened")));
        };
        if self.broken {
            let what = describe(&self.path);
            return Err(SluiceError::transient(format!("an earlier write to {what} failed; restart to resume from the last checkpoint")));
        }
        let now_ms = chrono::Utc::now().timestamp_millis();
        // Hand each batch to the OS right away (no fsync: that is `flush`), so followers such as
        // `sluice tail` see events as they arrive, not only at the next commit.
        let written =
            write_lines(&mut out.writer, &mut self.line, events, self.format, now_ms).and_then(|n| out.writer.flush().map(|()| n));
        match written {
            Ok(n) => {
                self.len += n;
                Ok(())
            }
            Err(e) => {
                self.broken = true;
                let what = describe(&self.path);
                Err(classify(e.kind(), format!("cannot write to {what}: {e}")).with_source(e))
            }
        }
    }

    fn mark(&self) -> Json {
        match self.path {
            Some(_) => json!({ "bytes": self.len }),
            None => json!({ "stdout": true }),
        }
    }

    async fn flush(&mut self) -> Result<()> {
        let what = describe(&self.path);
        let Some(out) = self.out.as_mut() else {
            return Ok(());
        };
        // After a failed write the buffer may hold part of a line: leave it there. Everything
        // up to the marks taken before the failure already reached the OS and is synced below.
        if !self.broken {
            out.writer.flush().map_err(|e| classify(e.kind(), format!("cannot write to {what}: {e}")).with_source(e))?;
        }
        let Some(file) = out.sync.clone() else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || file.sync_data())
            .await
            .map_err(|e| SluiceError::transient(format!("fsync of {what} did not complete: {e}")))?
            .map_err(|e| classify(e.kind(), format!("cannot fsync {what}: {e}")).with_source(e))
    }
}

/// Encodes and buffers `events`, then hands them to the OS. Returns the bytes written.
fn write_lines(w: &mut impl Write, line: &mut Vec<u8>, events: &[ChangeEvent], format: EventFormat, now_ms: i64) -> io::Result<u64> {
    let mut n = 0;
    for ev in events {
        line.clear();
        serde_json::to_writer(&mut *line, &encode(ev, format, now_ms))?;
        line.push(b'\n');
        w.write_all(line)?;
        n += line.len() as u64;
    }
    w.flush()?;
    Ok(n)
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
    classify(e.kind(), format!("cannot {what} {}: {e}", path.display())).with_source(e)
}

/// Errors that retrying cannot fix are permanent; the rest (disk full, I/O errors) transient.
fn classify(kind: io::ErrorKind, message: String) -> SluiceError {
    use io::ErrorKind as K;
    match kind {
        K::PermissionDenied | K::ReadOnlyFilesystem | K::IsADirectory | K::NotADirectory | K::InvalidInput => {
            SluiceError::permanent(message)
        }
        _ => SluiceError::transient(message),
    }
}
