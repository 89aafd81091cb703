//! Schema changes as stream consumers see them: which control record (DMS's `record-type:
//! control`, Debezium's schema-change topic) goes before an event. Sources carry the schema in
//! every event ([`crate::event::ChangeEvent::schema`], a new `Arc` after each DDL), so a stream
//! sink asks a [`SchemaTracker`] per event; the comparison is a pointer check unless the schema
//! object changed.
use std::collections::HashMap;
use std::sync::Arc;

use crate::schema::{SchemaRef, TableId, TableSchema};

/// What changed in a table's definition since the last event of it this sink sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaChange {
    /// The first event of the table since the sink started: consumers learn its definition.
    CreateTable,
    AddColumn,
    DropColumn,
    ColumnTypeChange,
    /// Several kinds at once (e.g. a column renamed: one dropped, one added).
    ChangeColumns,
}

impl SchemaChange {
    /// DMS's `metadata.operation` of the control record.
    pub fn dms_operation(self) -> &'static str {
        match self {
            SchemaChange::CreateTable => "create-table",
            SchemaChange::AddColumn => "add-column",
            SchemaChange::DropColumn => "drop-column",
            SchemaChange::ColumnTypeChange => "column-type-change",
            SchemaChange::ChangeColumns => "change-columns",
        }
    }
}

/// The last definition sent per table.
#[derive(Debug, Default)]
pub struct SchemaTracker {
    seen: HashMap<TableId, SchemaRef>,
}

impl SchemaTracker {
    /// Records `schema` as the current definition of its table and says which control record,
    /// if any, must precede the event that carries it. Only the key, columns and their types
    /// count: a new `Arc` of an equal definition is no change.
    pub fn observe(&mut self, schema: &SchemaRef) -> Option<SchemaChange> {
        let Some(old) = self.seen.get_mut(&schema.id) else {
            self.seen.insert(schema.id.clone(), Arc::clone(schema));
            return Some(SchemaChange::CreateTable);
        };
        if Arc::ptr_eq(old, schema) {
            return None;
        }
        let change = diff(old, schema);
        *old = Arc::clone(schema);
        change
    }

    /// Forgets `id` (dropped or renamed): a table created again under its name is announced
    /// as a new one.
    pub fn forget(&mut self, id: &TableId) {
        self.seen.remove(id);
    }

    /// Forgets every table: after a restart the sink cannot know what consumers were told, so
    /// each table's definition is sent again before its next event.
    pub fn reset(&mut self) {
        self.seen.clear();
    }
}

fn diff(old: &TableSchema, new: &TableSchema) -> Option<SchemaChange> {
    fn find<'a>(s: &'a TableSchema, name: &str) -> Option<&'a crate::schema::SqlType> {
        s.columns.iter().find(|c| c.name == name).map(|c| &c.ty)
    }
    let added = new.columns.iter().any(|c| find(old, &c.name).is_none());
    let dropped = old.columns.iter().any(|c| find(new, &c.name).is_none());
    let retyped = new.columns.iter().any(|c| find(old, &c.name).is_some_and(|t| *t != c.ty));
    let key_changed = old.key_names() != new.key_names();
    match (added, dropped, retyped) {
        (false, false, false) if !key_changed && old.columns == new.columns => None,
        (true, false, false) if !key_changed => Some(SchemaChange::AddColumn),
        (false, true, false) if !key_changed => Some(SchemaChange::DropColumn),
        (false, false, true) if !key_changed => Some(SchemaChange::ColumnTypeChange),
        _ => Some(SchemaChange::ChangeColumns),
    }
}
