//! The MySQL source's checkpoint position.
use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableCursor {
    pub table: String,
    pub last_key: Vec<Option<String>>,
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
