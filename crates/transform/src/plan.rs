//! What happens to each column of one table schema, given the rules and the current
//! detection decisions; and the schema the sinks see.
use std::sync::Arc;

use sluice_core::config::MaskMethod;
use sluice_core::schema::{SchemaRef, SqlType, TableSchema};
use sluice_core::SluiceError;

/// Index into the masker's list of [`crate::method::Masking`]s.
pub(crate) type MaskingId = usize;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ColPlan {
    Keep,
    Mask(MaskingId),
    /// `null`: the column keeps its type, every value becomes NULL.
    Null,
    Drop,
    /// Detection has not decided yet: every value that matches an entity is masked by itself.
    Sample,
    /// Decided clear, but matching spans inside the text are masked.
    Spans,
}

#[derive(Debug)]
pub(crate) struct Plan {
    pub cols: Vec<ColPlan>,
    /// The schema after masking: dropped columns removed, masked ones retyped.
    pub out: SchemaRef,
    /// Nothing to do for this table: events pass untouched.
    pub identity: bool,
    /// Some column is dropped: rows change shape.
    pub drops: bool,
}

/// What the rules and decisions say about one column, before key handling.
pub(crate) enum Choice {
    Keep,
    Method(MaskingId, MaskMethod),
    Sample,
    Spans,
}

/// Builds a plan. `choose` decides per column; key columns that would be masked by anything but
/// `hash` are hashed (`hash_id`), so current-state merges keep working.
pub(crate) fn build(
    schema: &SchemaRef,
    mut choose: impl FnMut(usize) -> Choice,
    hash_id: Option<MaskingId>,
) -> Result<(Plan, Vec<String>), SluiceError> {
    let mut cols = Vec::with_capacity(schema.columns.len());
    let mut notes = Vec::new();
    for (i, col) in schema.columns.iter().enumerate() {
        let is_key = schema.key.contains(&i);
        let plan = match choose(i) {
            Choice::Keep => ColPlan::Keep,
            Choice::Sample => ColPlan::Sample,
            Choice::Spans => ColPlan::Spans,
            Choice::Method(id, MaskMethod::Hash) => ColPlan::Mask(id),
            Choice::Method(_, method) if is_key => {
                let Some(h) = hash_id else {
                    return Err(SluiceError::permanent(format!(
                        "column {}.{} is part of the key and is masked: key columns are masked with \"hash\" so the lake can still merge by key, which needs {} (or [mask_key] file)",
                        schema.id, col.name, sluice_core::config::MASK_KEY_ENV
                    )));
                };
                notes.push(format!("{}.{} is a key column: masked with hash instead of {}", schema.id, col.name, method.name()));
                ColPlan::Mask(h)
            }
            Choice::Method(_, MaskMethod::Drop) => ColPlan::Drop,
            Choice::Method(_, MaskMethod::Null) => ColPlan::Null,
            Choice::Method(id, _) => ColPlan::Mask(id),
        };
        cols.push(plan);
    }
    let identity = cols.iter().all(|c| *c == ColPlan::Keep);
    let drops = cols.contains(&ColPlan::Drop);
    let out = if identity { schema.clone() } else { Arc::new(out_schema(schema, &cols)) };
    Ok((Plan { cols, out, identity, drops }, notes))
}

fn out_schema(schema: &TableSchema, cols: &[ColPlan]) -> TableSchema {
    let mut out = TableSchema { id: schema.id.clone(), columns: Vec::new(), key: Vec::new(), configured_key: schema.configured_key };
    for (i, (col, plan)) in schema.columns.iter().zip(cols).enumerate() {
        if *plan == ColPlan::Drop {
            continue;
        }
        let mut col = col.clone();
        match plan {
            ColPlan::Mask(_) if col.ty != SqlType::Json => {
                col.ty = SqlType::Text;
                col.nullable = true;
            }
            ColPlan::Mask(_) | ColPlan::Null => col.nullable = true,
            _ => {}
        }
        if schema.key.contains(&i) {
            out.key.push(out.columns.len());
        }
        out.columns.push(col);
    }
    out
}
