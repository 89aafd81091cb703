//! The MySQL source's checkpoint position.
use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use sluice_core::seal::Sealer;
use sluice_core::SluiceError;

/// A binlog coordinate: the position of the next event to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinlogPos {
    pub file: String,
    pub pos: u64,
}

impl BinlogPos {
    fn key(&self) -> (u64, &str, u64) {
        let num = self.file.rsplit('.').next().and_then(|n| n.parse().ok()).unwrap_or(0);
        (num, &self.file, self.pos)
    }
}

impl PartialOrd for BinlogPos {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for BinlogPos {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl std::fmt::Display for BinlogPos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)
    }
}

/// Progress of an initial snapshot taken at `MysqlPosition::binlog`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotProgress {
    /// Tables (`db.t`) read completely.
    pub done: Vec<String>,
    /// The table being read and the key of its last row emitted (server text form).
    pub current: Option<TableCursor>,
    /// Read by watermarks: the position is where the binlog resumes, exactly, and reading
    /// goes on after `current` (a consistent snapshot instead starts a new read there).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub watermark: bool,
    /// Only these tables (`db.t`): a snapshot asked for while streaming (`sluice snapshot`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only: Option<Vec<String>>,
}

impl SnapshotProgress {
    /// After a chunk of `table`: reading goes on after `last_key`, or (`None`) the table is done.
    pub fn advance(&mut self, table: &str, last_key: Option<&[Option<String>]>, sealer: Option<&Sealer>) {
        match last_key {
            Some(key) => self.current = Some(TableCursor::new(table.to_string(), key.to_vec(), sealer)),
            None => {
                self.current = None;
                self.done.push(table.to_string());
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableCursor {
    pub table: String,
    /// The key in clear (empty when sealed).
    pub last_key: Vec<Option<String>>,
    /// The key sealed with the masking key, when masking is configured: key columns may be PII.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<String>,
}

impl TableCursor {
    pub fn new(table: String, key: Vec<Option<String>>, sealer: Option<&Sealer>) -> Self {
        match sealer {
            Some(s) => {
                let plain = serde_json::to_vec(&key).unwrap_or_default();
                Self { table, last_key: Vec::new(), sealed: Some(s.seal(&plain)) }
            }
            None => Self { table, last_key: key, sealed: None },
        }
    }

    /// The last key, unsealed if needed.
    pub fn key(self, sealer: Option<&Sealer>) -> Result<Vec<Option<String>>, SluiceError> {
        let Some(sealed) = self.sealed else { return Ok(self.last_key) };
        let s = sealer.ok_or_else(|| {
            SluiceError::permanent(format!(
                "the state's snapshot position is sealed with the masking key, which is not set: set {} (or [mask_key] file) as when it was written",
                sluice_core::config::MASK_KEY_ENV
            ))
        })?;
        let plain = s.open(&sealed)?;
        serde_json::from_slice(&plain).map_err(|e| SluiceError::permanent(format!("sealed snapshot position is malformed: {e}")))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MysqlPosition {
    pub binlog: BinlogPos,
    /// GTID of the last transaction covered, where the server has GTIDs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid: Option<String>,
    /// Set while an initial snapshot is in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotProgress>,
}

impl MysqlPosition {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    pub fn from_json(v: &serde_json::Value) -> Result<Self, SluiceError> {
        serde_json::from_value(v.clone()).map_err(|e| {
            SluiceError::permanent(format!(
                "the state's source position is not a MySQL position ({e}); was the state dir written by another source?"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_file_number_then_pos() {
        let p = |f: &str, pos| BinlogPos { file: f.into(), pos };
        assert!(p("b.000002", 4) > p("b.000001", 9000));
        assert!(p("b.000010", 4) > p("b.000009", 4));
        assert!(p("b.000001", 5) > p("b.000001", 4));
    }
}
