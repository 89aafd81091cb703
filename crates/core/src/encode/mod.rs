//! JSON encodings of change events for stream consumers (DESIGN.md "Change event").
pub mod control;
mod debezium;
mod dms;
mod table_ddl;

use serde_json::{Map, Value as Json};

use crate::config::EventFormat;
use crate::event::ChangeEvent;
use crate::schema::TableSchema;
use crate::value::Row;

pub use control::{SchemaChange, SchemaTracker};
pub use debezium::{debezium, debezium_source};
pub use dms::{debezium_to_dms, dms, dms_control, dms_keyed, dms_with};
pub use table_ddl::{debezium_table_ddl, dms_table_ddl};

/// Encodes one event in `format` as a single JSON line (no trailing newline).
pub fn encode(event: &ChangeEvent, format: EventFormat, processed_ms: i64) -> Json {
    match format {
        EventFormat::Debezium => debezium(event, processed_ms),
        EventFormat::Dms => dms(event),
    }
}

/// A row image as a JSON object in column order.
pub fn row_object(schema: &TableSchema, row: &Row) -> Json {
    let mut m = Map::with_capacity(row.len());
    for (col, v) in schema.columns.iter().zip(row) {
        m.insert(col.name.clone(), v.to_json());
    }
    Json::Object(m)
}

#[cfg(test)]
mod tests;
