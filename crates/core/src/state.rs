//! The committed state: checkpoint, per-sink marks and table statistics, written atomically.
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::checkpoint::Checkpoint;
use crate::error::{Result, SluiceError};
use crate::event::Op;

const STATE_FILE: &str = "state.json";
const LOCK_FILE: &str = "lock";
const FORMAT_VERSION: u32 = 1;

/// Per-table counters, like DMS table statistics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableStats {
    pub full_load_rows: u64,
    pub inserts: u64,
    pub updates: u64,
    pub deletes: u64,
    /// Commit time of the last change, ms since the epoch.
    pub last_change_ms: Option<i64>,
}

impl TableStats {
    pub fn count(&mut self, op: Op, ts_ms: i64) {
        match op {
            Op::Read => self.full_load_rows += 1,
            Op::Insert => self.inserts += 1,
            Op::Update => self.updates += 1,
            Op::Delete => self.deletes += 1,
        }
        if op != Op::Read {
            self.last_change_ms = Some(self.last_change_ms.map_or(ts_ms, |t| t.max(ts_ms)));
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    pub checkpoint: Option<Checkpoint>,
    /// Sink name → the sink's mark at the newest point it reported durable (at `checkpoint` or
    /// after it: a fast sink runs ahead of a slow one).
    pub sinks: BTreeMap<String, Json>,
    /// Sink name → every change below this `seq` is durable in that sink (absent: exactly
    /// `checkpoint`). On restart such changes are not sent to it again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub durable: BTreeMap<String, u64>,
    /// Transform name → the transform's mark at `checkpoint` (e.g. PII detection decisions).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub transforms: BTreeMap<String, Json>,
    /// `db.table` → counters up to `checkpoint`.
    pub tables: BTreeMap<String, TableStats>,
    /// Wall-clock time of this commit, ms since the epoch.
    pub committed_at_ms: i64,
    /// Commit time of the newest change covered, ms since the epoch (for lag).
    pub source_ts_ms: Option<i64>,
    /// How far the committed checkpoint was behind the source's log end when it was committed,
    /// in commit time: 0 when it covered everything the server had.
    #[serde(default)]
    pub lag_ms: Option<i64>,
    /// What the pipeline captured with (opaque here: the binary records the source's table
    /// selection), so a later run can tell which tables newly match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture: Option<Json>,
}

/// The state directory. Holding a `StateStore` holds an exclusive lock on it, so two pipelines
/// can never write the same state.
pub struct StateStore {
    dir: PathBuf,
    _lock: Option<File>,
}

impl StateStore {
    /// Opens the directory for a pipeline run, taking its lock.
    pub fn open_locked(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).map_err(|e| io_err(dir, "create the state directory", e))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock =
            OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(|e| io_err(&lock_path, "open", e))?;
        if lock.try_lock().is_err() {
            return Err(SluiceError::permanent(format!(
                "another sluice process is running with state dir {}; stop it first or use another [state] dir",
                dir.display()
            )));
        }
        Ok(Self { dir: dir.to_path_buf(), _lock: Some(lock) })
    }

    /// Opens the directory read-only (for `status`, `tail`): no lock.
    pub fn open_read_only(dir: &Path) -> Self {
        Self { dir: dir.to_path_buf(), _lock: None }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn load(&self) -> Result<State> {
        let path = self.dir.join(STATE_FILE);
        match fs::read(&path) {
            Ok(bytes) => {
                let state: State = serde_json::from_slice(&bytes).map_err(|e| {
                    SluiceError::permanent(format!(
                        "state file {} is unreadable ({e}); restore it or remove the state dir to start over",
                        path.display()
                    ))
                })?;
                if state.version != FORMAT_VERSION {
                    return Err(SluiceError::permanent(format!(
                        "state file {} has format {}, this sluice reads {FORMAT_VERSION}",
                        path.display(),
                        state.version
                    )));
                }
                Ok(state)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State { version: FORMAT_VERSION, ..State::default() }),
            Err(e) => Err(io_err(&path, "read", e)),
        }
    }

    /// Writes the state atomically: temp file, fsync, rename, fsync of the directory. A crash
    /// leaves either the old or the new state, never a mix.
    pub fn save(&self, state: &State) -> Result<()> {
        let path = self.dir.join(STATE_FILE);
        let tmp = self.dir.join(format!("{STATE_FILE}.tmp"));
        let mut state = state.clone();
        state.version = FORMAT_VERSION;
        let bytes = serde_json::to_vec_pretty(&state).map_err(|e| SluiceError::permanent(format!("encode state: {e}")))?;
        let mut f = File::create(&tmp).map_err(|e| io_err(&tmp, "create", e))?;
        f.write_all(&bytes).map_err(|e| io_err(&tmp, "write", e))?;
        f.sync_all().map_err(|e| io_err(&tmp, "fsync", e))?;
        fs::rename(&tmp, &path).map_err(|e| io_err(&path, "rename into", e))?;
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(|e| io_err(&self.dir, "fsync", e))?;
        Ok(())
    }
}

fn io_err(path: &Path, what: &str, e: std::io::Error) -> SluiceError {
    SluiceError::transient(format!("cannot {what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_then_load_roundtrips_and_lock_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open_locked(dir.path()).unwrap();
        assert!(store.load().unwrap().checkpoint.is_none());
        let mut st =
            State { checkpoint: Some(Checkpoint { position: serde_json::json!({"file": "b.000001"}), next_seq: 7 }), ..State::default() };
        st.tables.entry("db.t".into()).or_default().count(Op::Insert, 5);
        store.save(&st).unwrap();
        let back = store.load().unwrap();
        assert_eq!(back.checkpoint, st.checkpoint);
        assert_eq!(back.tables["db.t"].inserts, 1);
        let err = StateStore::open_locked(dir.path()).err().unwrap();
        assert!(err.message.contains("another sluice process"));
    }
}
