//! Which tables a source captures, and the key columns configured for keyless ones: the part
//! of `[source]` every kind of source has.
use std::collections::BTreeMap;

use super::TablePattern;
use crate::schema::TableSchema;

/// A view of a source's `tables`, `exclude` and `keys` settings.
#[derive(Debug, Clone, Copy)]
pub struct Selection<'a> {
    /// `db.table` patterns (`*` and `?` globs) of the tables to capture.
    pub tables: &'a [TablePattern],
    pub exclude: &'a [TablePattern],
    /// `db.table` → key columns, for tables without a primary key.
    pub keys: &'a BTreeMap<String, Vec<String>>,
}

impl Selection<'_> {
    /// Whether `db.table` is captured.
    pub fn captures(&self, db: &str, table: &str) -> bool {
        self.tables.iter().any(|p| p.matches(db, table)) && !self.exclude.iter().any(|p| p.matches(db, table))
    }

    /// Applies configured key columns to a keyless table schema.
    pub fn apply_keys(&self, schema: &mut TableSchema) {
        if !schema.key.is_empty() {
            return;
        }
        if let Some(cols) = self.keys.get(&schema.id.to_string()) {
            let idx: Vec<usize> = cols.iter().filter_map(|c| schema.columns.iter().position(|x| x.name.eq_ignore_ascii_case(c))).collect();
            if idx.len() == cols.len() {
                schema.key = idx;
                schema.configured_key = true;
            }
        }
    }
}
