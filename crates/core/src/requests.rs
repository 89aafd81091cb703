//! Snapshot requests: `sluice snapshot --table db.t` (or a table that newly matches the
//! selection) leaves a file in the state dir; the running source picks it up between
//! transactions and re-reads that table while streaming goes on. Files, not a socket, so a
//! request made while no pipeline runs is taken at the next start, and one made during a run
//! needs no open port.
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::{SluiceError, TableId};

const DIR: &str = "snapshot-requests";

/// The request folder of one state dir.
#[derive(Debug, Clone)]
pub struct SnapshotRequests {
    dir: PathBuf,
}

impl SnapshotRequests {
    pub fn new(state_dir: &Path) -> Self {
        Self { dir: state_dir.join(DIR) }
    }

    /// Asks for `table` to be snapshotted again; asking twice is one request.
    pub fn request(&self, table: &TableId) -> Result<()> {
        let io = |e: std::io::Error| SluiceError::permanent(format!("cannot write a snapshot request in {}: {e}", self.dir.display()));
        fs::create_dir_all(&self.dir).map_err(io)?;
        let path = self.path(table);
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, format!("{}\n", chrono::Utc::now().to_rfc3339())).map_err(io)?;
        fs::rename(&tmp, &path).map_err(io)
    }

    /// Tables waiting, oldest request first.
    pub fn pending(&self) -> Vec<TableId> {
        let Ok(entries) = fs::read_dir(&self.dir) else { return Vec::new() };
        let mut found: Vec<(std::time::SystemTime, TableId)> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let (db, table) = name.strip_suffix(".request")?.split_once('.')?;
                let at = e.metadata().and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH);
                Some((at, TableId::new(db, table)))
            })
            .collect();
        found.sort();
        found.into_iter().map(|(_, t)| t).collect()
    }

    /// The request for `table` is taken care of.
    pub fn clear(&self, table: &TableId) {
        let _ = fs::remove_file(self.path(table));
    }

    fn path(&self, table: &TableId) -> PathBuf {
        self.dir.join(format!("{}.{}.request", table.db, table.table))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_files_taken_once() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let r = SnapshotRequests::new(dir.path());
        assert!(r.pending().is_empty());
        let t = TableId::new("shop", "users");
        r.request(&t).unwrap_or_else(|e| panic!("{e}"));
        r.request(&t).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.pending(), vec![t.clone()]);
        r.clear(&t);
        assert!(r.pending().is_empty());
    }
}
