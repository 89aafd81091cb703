//! JSON encodings of change events for stream consumers (DESIGN.md "Change event").
//!
//! One definition per encoding: `Serialize` implementations over borrowed parts of the event
//! ([`Value`](crate::value::Value)'s for values, [`RowObject`] for row images, the envelopes in
//! `debezium` and `dms`). The `*_into` functions write them straight into a caller's buffer
//! (no `serde_json::Value` per event); the functions that return a `serde_json::Value`
//! serialize the same definitions into a tree, for the callers that inspect one (`sluice
//! tail`, tests). Column names of a table are unique (as in any MySQL table): a row image is
//! written as one member per column.
pub mod control;
mod debezium;
mod dms;
mod table_ddl;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value as Json;

use crate::config::EventFormat;
use crate::error::{Result, SluiceError};
use crate::event::ChangeEvent;
use crate::schema::TableSchema;
use crate::value::Value;

pub use control::{SchemaChange, SchemaTracker};
pub use debezium::{debezium, debezium_into, debezium_source};
pub use dms::{debezium_to_dms, dms, dms_control, dms_into, dms_keyed};
pub use table_ddl::{debezium_table_ddl, dms_table_ddl};

/// Appends one event in `format` to `out` as a single JSON line (no trailing newline). The
/// JSON-lines sink's encoding: DMS keyed by the table's own key, with the before image.
pub fn encode_into(event: &ChangeEvent, format: EventFormat, processed_ms: i64, out: &mut Vec<u8>) -> Result<()> {
    match format {
        EventFormat::Debezium => debezium_into(event, processed_ms, out),
        EventFormat::Dms => dms_into(event, !event.schema.key.is_empty(), true, out),
    }
}

/// Appends `value` as JSON to `out`; on failure `out` is left as it was.
pub fn write_json<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<()> {
    let start = out.len();
    let written = value.serialize(&mut serde_json::Serializer::new(&mut *out));
    written.map_err(|e| {
        out.truncate(start);
        SluiceError::permanent("cannot encode an event as JSON").with_source(e)
    })
}

/// The tree of `value` (for callers that inspect it). Serializing into a tree cannot fail:
/// every map key is a string.
fn tree<T: Serialize>(value: &T) -> Json {
    serde_json::to_value(value).unwrap_or_default()
}

/// A row image as a JSON object in column order (`cols`: only those columns, in that order,
/// as a Kafka key holds its key columns).
#[derive(Clone, Copy)]
pub struct RowObject<'a> {
    pub schema: &'a TableSchema,
    pub row: &'a [Value],
    pub cols: Option<&'a [usize]>,
}

impl<'a> RowObject<'a> {
    /// Every column of `row`.
    pub fn new(schema: &'a TableSchema, row: &'a [Value]) -> Self {
        Self { schema, row, cols: None }
    }
}

impl Serialize for RowObject<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let columns = &self.schema.columns;
        match self.cols {
            None => {
                let mut m = s.serialize_map(Some(columns.len().min(self.row.len())))?;
                for (col, v) in columns.iter().zip(self.row) {
                    m.serialize_entry(&col.name, v)?;
                }
                m.end()
            }
            Some(cols) => {
                let mut m = s.serialize_map(Some(cols.len()))?;
                for &i in cols {
                    if let (Some(col), Some(v)) = (columns.get(i), self.row.get(i)) {
                        m.serialize_entry(&col.name, v)?;
                    }
                }
                m.end()
            }
        }
    }
}

#[cfg(test)]
mod oracle;
#[cfg(test)]
mod random_tests;
#[cfg(test)]
mod tests;
