//! Table identity and column types, independent of the source database.
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// `database.table`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TableId {
    pub db: String,
    pub table: String,
}

impl TableId {
    pub fn new(db: impl Into<String>, table: impl Into<String>) -> Self {
        Self { db: db.into(), table: table.into() }
    }
}

/// A statement that changed a whole table, which no row event shows (DDL). Stream sinks pass
/// it on to consumers as a control record, in order with the changes around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDdl {
    /// The source that read it (Debezium's `source.connector`).
    pub connector: &'static str,
    pub table: TableId,
    pub kind: TableDdlKind,
    /// When the source committed it, ms since the epoch.
    pub ts_ms: i64,
    /// The `seq` the next change will carry: where it falls among the changes.
    pub next_seq: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableDdlKind {
    Drop,
    Truncate,
    Rename { to: TableId },
}

impl TableDdlKind {
    /// DMS's `metadata.operation` of the control record.
    pub fn dms_operation(&self) -> &'static str {
        match self {
            TableDdlKind::Drop => "drop-table",
            TableDdlKind::Truncate => "truncate-table",
            TableDdlKind::Rename { .. } => "rename-table",
        }
    }
}

impl fmt::Display for TableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.db, self.table)
    }
}

/// Logical column type (DESIGN.md "Types"): what the lake and JSON encoders need to know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SqlType {
    /// Integer of `bits` (8, 16, 24, 32, 64), signed or not.
    Int {
        bits: u8,
        unsigned: bool,
    },
    Decimal {
        precision: u8,
        scale: u8,
    },
    Float,
    Double,
    Date,
    /// DATETIME(n): wall clock without zone.
    DateTime {
        fsp: u8,
    },
    /// TIMESTAMP(n): an instant, carried in UTC.
    Timestamp {
        fsp: u8,
    },
    Time {
        fsp: u8,
    },
    Year,
    /// CHAR/VARCHAR/TEXT, decoded from the column's charset.
    Text,
    Enum {
        labels: Vec<String>,
    },
    Set {
        labels: Vec<String>,
    },
    Json,
    /// BINARY/VARBINARY/BLOB.
    Binary,
    Bit {
        bits: u16,
    },
    Geometry,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    pub ty: SqlType,
    pub nullable: bool,
}

/// A table's columns as valid at some source position, plus its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSchema {
    pub id: TableId,
    pub columns: Vec<Column>,
    /// Indexes into `columns` of the primary key (empty for a keyless table).
    pub key: Vec<usize>,
    /// The key comes from `[source] keys`, not from the database: nothing enforces it (it may
    /// repeat) and nothing indexes it.
    #[serde(default)]
    pub configured_key: bool,
}

impl TableSchema {
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
    pub fn key_names(&self) -> Vec<&str> {
        self.key.iter().map(|&i| self.columns[i].name.as_str()).collect()
    }
}

pub type SchemaRef = Arc<TableSchema>;
