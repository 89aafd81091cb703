//! `[source] kind = "binlog-file"`: which files, in which order, and which tables.
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use sluice_core::config::{Selection, TablePattern};

use super::FileError;

#[derive(Debug, Clone)]
pub struct BinlogFileConfig {
    /// Paths or globs (`*`, `?`, `[…]` in the file name and directories), relative to the
    /// config file; every match is read, in file-name order.
    pub files: Vec<String>,
    pub tables: Vec<TablePattern>,
    pub exclude: Vec<TablePattern>,
    /// Key columns for tables without a primary key.
    pub keys: BTreeMap<String, Vec<String>>,
}

impl BinlogFileConfig {
    pub fn selection(&self) -> Selection<'_> {
        Selection { tables: &self.tables, exclude: &self.exclude, keys: &self.keys }
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.files.is_empty() {
            return Err("[source] files is empty: list the binlog files to read, e.g. files = [\"./binlogs/mysql-bin.*\"]".into());
        }
        Ok(())
    }

    pub(crate) fn resolve_paths(&mut self, base: &Path) {
        for f in &mut self.files {
            if Path::new(f.as_str()).is_relative() {
                *f = base.join(&*f).display().to_string();
            }
        }
    }

    pub(crate) fn validate_resolved(&self) -> Result<(), String> {
        let paths = self.expand().map_err(|e| format!("[source] files: {e}"))?;
        for p in &paths {
            check_magic(p).map_err(|e| format!("[source] files: {e}"))?;
        }
        Ok(())
    }

    /// The files to read, in file-name order (so `mysql-bin.000009` comes before `.000010` from
    /// any directory). A pattern that matches nothing is an error: it is most likely a typo.
    pub fn expand(&self) -> Result<Vec<PathBuf>, FileError> {
        let mut all: Vec<PathBuf> = Vec::new();
        for pattern in &self.files {
            let paths = glob::glob(pattern).map_err(|e| FileError::BadPattern { pattern: pattern.clone(), why: e.msg })?;
            let mut matched = 0;
            for p in paths {
                let p = p.map_err(|e| FileError::Io { path: e.path().display().to_string(), source: e.into() })?;
                if p.is_file() {
                    matched += 1;
                    all.push(p);
                }
            }
            if matched == 0 {
                return Err(FileError::NoMatch { pattern: pattern.clone() });
            }
        }
        all.sort_by(|a, b| a.file_name().cmp(&b.file_name()).then_with(|| a.cmp(b)));
        all.dedup();
        if let Some(w) = all.windows(2).find(|w| w[0].file_name() == w[1].file_name()) {
            // Positions name the file only: two files of one name would be ambiguous on resume.
            return Err(FileError::SameName { a: w[0].display().to_string(), b: w[1].display().to_string() });
        }
        Ok(all)
    }
}

/// The 4-byte magic every binlog file starts with.
pub(crate) const MAGIC: [u8; 4] = [0xfe, b'b', b'i', b'n'];

/// Whether the file starts like a binlog.
pub(crate) fn check_magic(path: &Path) -> Result<(), FileError> {
    let io = |source| FileError::Io { path: path.display().to_string(), source };
    let mut head = [0u8; 4];
    let mut f = std::fs::File::open(path).map_err(io)?;
    let n = f.read(&mut head).map_err(io)?;
    if n < 4 || head != MAGIC {
        return Err(FileError::NotBinlog { path: path.display().to_string() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(files: &[&str]) -> BinlogFileConfig {
        BinlogFileConfig { files: files.iter().map(|s| s.to_string()).collect(), tables: vec![], exclude: vec![], keys: BTreeMap::new() }
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn globs_are_read_in_name_order_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b-bin.000010", "b-bin.000009", "a-bin.000001"] {
            std::fs::write(dir.path().join(name), [&MAGIC[..], b"x"].concat()).unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), b"hello").unwrap();
        let mut c = cfg(&["./*-bin.*"]);
        c.resolve_paths(dir.path());
        let names: Vec<_> = c.expand().unwrap().iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["a-bin.000001", "b-bin.000009", "b-bin.000010"]);
        c.validate_resolved().unwrap();

        let mut none = cfg(&["nothing.*"]);
        none.resolve_paths(dir.path());
        assert!(none.validate_resolved().unwrap_err().contains("matches no file"));
        let mut text = cfg(&["notes.txt"]);
        text.resolve_paths(dir.path());
        assert!(text.validate_resolved().unwrap_err().contains("is not a binlog file"));
    }
}
