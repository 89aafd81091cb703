//! sluice rows → Arrow record batches, per the type contract in DESIGN.md. Column names are
//! lower-cased in the lake (MySQL names are case-insensitive; Glue/Athena lower-case them).
use std::borrow::Cow;
use std::sync::Arc;

use deltalake::arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder, Float64Builder, Int16Builder, Int32Builder,
    Int64Builder, Int8Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use deltalake::arrow::record_batch::RecordBatch;
use sluice_core::value::format_time;
use sluice_core::{SqlType, TableSchema, Value};

pub const OP: &str = "_cdc_op";
pub const TS: &str = "_cdc_ts";
pub const SEQ: &str = "_cdc_seq";
pub const TX: &str = "_cdc_tx";
/// Changelog: the previous key (JSON object) of an update that changed the row's key.
pub const BEFORE_KEY: &str = "_cdc_before_key";
pub const DATE: &str = "_cdc_date";
/// Marks MERGE source rows that delete their key (not stored in the table).
pub const DELETED: &str = "_cdc_deleted";

/// The Arrow type of a column.
pub fn arrow_type(ty: &SqlType) -> DataType {
    match ty {
        SqlType::Int { bits: 8, unsigned: false } => DataType::Int8,
        SqlType::Int { bits: 8, unsigned: true } | SqlType::Int { bits: 16, unsigned: false } => DataType::Int16,
        SqlType::Int { bits: 16 | 24, .. } | SqlType::Int { bits: 32, unsigned: false } => DataType::Int32,
        SqlType::Int { bits: 32, unsigned: true } | SqlType::Int { unsigned: false, .. } => DataType::Int64,
        // Delta has no unsigned types: BIGINT UNSIGNED needs 20 digits.
        SqlType::Int { .. } => DataType::Decimal128(20, 0),
        SqlType::Decimal { precision, scale } if *precision <= 38 => DataType::Decimal128(*precision, *scale as i8),
        SqlType::Decimal { .. } => DataType::Utf8,
        SqlType::Float => DataType::Float32,
        SqlType::Double => DataType::Float64,
        SqlType::Date => DataType::Date32,
        // DATETIME is a wall-clock time; it is stored as a UTC timestamp of the same digits so the
        // tables stay on Delta protocol 1/2 (timestamp_ntz needs a table feature Athena lacks).
        SqlType::DateTime { .. } | SqlType::Timestamp { .. } => ts_type(),
        SqlType::Time { .. } => DataType::Utf8,
        SqlType::Year => DataType::Int16,
        SqlType::Text | SqlType::Enum { .. } | SqlType::Set { .. } | SqlType::Json => DataType::Utf8,
        SqlType::Binary | SqlType::Bit { .. } | SqlType::Geometry => DataType::Binary,
    }
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Which system columns a table carries.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `db/t`: current state.
    Current,
    /// `db/t__changes`: changelog, partitioned by `_cdc_date`.
    Changes,
    /// MERGE source: current-state columns plus `_cdc_deleted`.
    MergeSource,
}

/// One row for the lake: the image, and the system columns.
pub struct LakeRow<'a> {
    pub values: &'a [Value],
    pub op: &'static str,
    pub ts_ms: i64,
    pub seq: u64,
    pub tx: Option<&'a str>,
    /// Changelog only: the old key of a key-changing update.
    pub before_key: Option<&'a str>,
    pub deleted: bool,
}

/// User columns of a lake table: the fields it has had, in order. Columns dropped at the
/// source stay (as nulls), new ones are appended, and safe widenings (a wider integer, FLOAT to
/// DOUBLE, a decimal with more digits) change the column's type: the caller rewrites the table
/// when `widened` is not empty.
pub fn merge_fields(existing: &[Field], t: &TableSchema) -> Result<Merged, String> {
    let mut out = existing.to_vec();
    let mut widened = Vec::new();
    for c in &t.columns {
        let name = c.name.to_lowercase();
        let ty = arrow_type(&c.ty);
        let Some(pos) = out.iter().position(|f| f.name() == &name) else {
            out.push(Field::new(name, ty, true));
            continue;
        };
        match fit(out[pos].data_type(), &ty) {
            Fit::Same => {}
            Fit::Widen => {
                out[pos] = out[pos].clone().with_data_type(ty);
                widened.push(name);
            }
            Fit::Incompatible => {
                return Err(format!(
                    "column {}.{} changed from {} to {} in the source, which the lake table cannot hold; \
                     recreate the lake table (delete {} and its changelog, then run with [snapshot] mode = \"always\")",
                    t.id,
                    c.name,
                    out[pos].data_type(),
                    ty,
                    t.id
                ))
            }
        }
    }
    Ok(Merged { fields: out, widened })
}

/// The lake columns for a source schema, and which existing ones became wider.
pub struct Merged {
    pub fields: Vec<Field>,
    pub widened: Vec<String>,
}

enum Fit {
    /// The lake type holds the new values as they are (each value is still checked: a narrower
    /// source type stays in the wider lake column).
    Same,
    /// The lake column must become the new, wider type.
    Widen,
    Incompatible,
}

fn fit(old: &DataType, new: &DataType) -> Fit {
    use DataType::*;
    let rank = |t: &DataType| match t {
        Int8 => Some(1),
        Int16 => Some(2),
        Int32 => Some(3),
        Int64 => Some(4),
        _ => None,
    };
    match (old, new) {
        _ if old == new => Fit::Same,
        (Utf8, _) | (Float64, Float32) => Fit::Same,
        (Float32, Float64) => Fit::Widen,
        _ => match (rank(old), rank(new)) {
            (Some(o), Some(n)) if n > o => Fit::Widen,
            (Some(_), Some(_)) => Fit::Same,
            _ => match (old, new) {
                // More integer digits and no fewer fraction digits holds every old value.
                (Decimal128(p, s), Decimal128(np, ns)) if ns >= s && i16::from(*np) - i16::from(*ns) >= i16::from(*p) - i16::from(*s) => {
                    Fit::Widen
                }
                (Decimal128(..), Decimal128(..)) => Fit::Same,
                _ => Fit::Incompatible,
            },
        },
    }
}

pub fn schema_of(user: &[Field], kind: Kind) -> SchemaRef {
    let mut fields = user.to_vec();
    fields.push(Field::new(OP, DataType::Utf8, false));
    fields.push(Field::new(TS, ts_type(), false));
    fields.push(Field::new(SEQ, DataType::Int64, false));
    match kind {
        Kind::Current => {}
        Kind::Changes => {
            fields.push(Field::new(TX, DataType::Utf8, true));
            fields.push(Field::new(BEFORE_KEY, DataType::Utf8, true));
            fields.push(Field::new(DATE, DataType::Date32, false));
        }
        Kind::MergeSource => fields.push(Field::new(DELETED, DataType::Boolean, false)),
    }
    Arc::new(Schema::new(fields))
}

/// Builds a batch with the lake table's columns `user` from rows of source schema `t`.
pub fn to_batch(user: &[Field], t: &TableSchema, kind: Kind, rows: &[LakeRow<'_>]) -> Result<RecordBatch, String> {
    with_columns(user, user_columns(user, t, rows)?, kind, rows)
}

/// The user columns of a batch (the part [`to_batch`] spends most of its time on), which the
/// changelog and the current state share when they get the same rows.
pub fn user_columns(user: &[Field], t: &TableSchema, rows: &[LakeRow<'_>]) -> Result<Vec<ArrayRef>, String> {
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(user.len());
    for f in user {
        let idx = t.columns.iter().position(|c| c.name.to_lowercase() == *f.name());
        let col = match idx {
            Some(i) => column(f.data_type(), rows.len(), rows.iter().map(|r| &r.values[i])),
            None => column(f.data_type(), rows.len(), rows.iter().map(|_| &Value::Null)),
        };
        columns.push(col.map_err(|e| format!("column {}.{}: {e}", t.id, f.name()))?);
    }
    Ok(columns)
}

/// A batch of `kind` from user columns built by [`user_columns`] for `user` and `rows`.
pub fn with_columns(user: &[Field], mut columns: Vec<ArrayRef>, kind: Kind, rows: &[LakeRow<'_>]) -> Result<RecordBatch, String> {
    let schema = schema_of(user, kind);
    columns.reserve(schema.fields().len() - columns.len());
    let n = rows.len();
    let mut op = StringBuilder::with_capacity(n, n);
    let mut ts = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut seq = Int64Builder::with_capacity(n);
    for r in rows {
        op.append_value(r.op);
        ts.append_value(r.ts_ms * 1000);
        seq.append_value(r.seq as i64);
    }
    columns.push(Arc::new(op.finish()));
    columns.push(Arc::new(ts.finish()));
    columns.push(Arc::new(seq.finish()));
    match kind {
        Kind::Current => {}
        Kind::Changes => {
            let mut tx = StringBuilder::with_capacity(n, n * 16);
            let mut before_key = StringBuilder::new();
            let mut date = Date32Builder::with_capacity(n);
            for r in rows {
                tx.append_option(r.tx);
                before_key.append_option(r.before_key);
                date.append_value(r.ts_ms.div_euclid(86_400_000) as i32);
            }
            columns.push(Arc::new(tx.finish()));
            columns.push(Arc::new(before_key.finish()));
            columns.push(Arc::new(date.finish()));
        }
        Kind::MergeSource => {
            let mut d = BooleanBuilder::with_capacity(n);
            for r in rows {
                d.append_value(r.deleted);
            }
            columns.push(Arc::new(d.finish()));
        }
    }
    RecordBatch::try_new(schema, columns).map_err(|e| e.to_string())
}

/// One Arrow column of type `ty` from `n` values. Zero dates have no Arrow value: NULL. A value
/// that does not fit the column (after a narrowing schema change) is an error, never a silent
/// NULL. Builders are sized up front and text is copied once, straight from the row.
fn column<'a>(ty: &DataType, n: usize, values: impl Iterator<Item = &'a Value> + Clone) -> Result<ArrayRef, String> {
    macro_rules! build {
        ($builder:expr, $conv:expr) => {{
            let mut b = $builder;
            for v in values {
                match v {
                    Value::Null | Value::ZeroDate => b.append_null(),
                    v => b.append_value($conv(v).ok_or_else(|| format!("a value does not fit the lake column type {ty}"))?),
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    let int = |v: &Value| match v {
        Value::Int(i) => Some(*i as i128),
        Value::UInt(u) => Some(*u as i128),
        Value::Year(y) => Some(*y as i128),
        _ => None,
    };
    Ok(match ty {
        DataType::Int8 => build!(Int8Builder::with_capacity(n), |v| int(v).and_then(|i| i8::try_from(i).ok())),
        DataType::Int16 => build!(Int16Builder::with_capacity(n), |v| int(v).and_then(|i| i16::try_from(i).ok())),
        DataType::Int32 => build!(Int32Builder::with_capacity(n), |v| int(v).and_then(|i| i32::try_from(i).ok())),
        DataType::Int64 => build!(Int64Builder::with_capacity(n), |v| int(v).and_then(|i| i64::try_from(i).ok())),
        DataType::Decimal128(p, s) => {
            let (p, s) = (*p, *s);
            let dec = |v: &Value| match v {
                Value::Decimal(d) => parse_decimal(d, s as u32),
                other => int(other).map(|i| i * 10i128.pow(s as u32)),
            };
            build!(Decimal128Builder::with_capacity(n).with_precision_and_scale(p, s).map_err(|e| e.to_string())?, dec)
        }
        DataType::Float32 => build!(Float32Builder::with_capacity(n), |v: &Value| match v {
            Value::Float(f) => Some(*f),
            Value::Double(f) => Some(*f as f32),
            _ => None,
        }),
        DataType::Float64 => build!(Float64Builder::with_capacity(n), |v: &Value| match v {
            Value::Double(f) => Some(*f),
            Value::Float(f) => Some(f64::from(*f)),
            _ => None,
        }),
        DataType::Date32 => build!(Date32Builder::with_capacity(n), |v: &Value| match v {
            Value::Date(d) => Some(*d),
            _ => None,
        }),
        DataType::Timestamp(..) => build!(TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC"), |v: &Value| match v {
            Value::DateTime(us) | Value::Timestamp(us) => Some(*us),
            _ => None,
        }),
        DataType::Binary => build!(BinaryBuilder::with_capacity(n, payload_bytes(values.clone())), |v: &'a Value| match v {
            Value::Bytes(b) => Some(b.as_slice()),
            _ => None,
        }),
        // Sized from the values' own lengths: growing the buffer by doubling copied it again.
        _ => build!(StringBuilder::with_capacity(n, payload_bytes(values.clone())), |v: &'a Value| match v {
            Value::Text(s) | Value::Json(s) | Value::Decimal(s) => Some(Cow::Borrowed(s.as_str())),
            Value::Time(us) => Some(Cow::Owned(format_time(*us))),
            other => Some(Cow::Owned(other.render())),
        }),
    })
}

/// The bytes of the text and binary values in `values` (others count 16, about what they render to).
fn payload_bytes<'a>(values: impl Iterator<Item = &'a Value>) -> usize {
    values
        .map(|v| match v {
            Value::Text(s) | Value::Json(s) | Value::Decimal(s) => s.len(),
            Value::Bytes(b) => b.len(),
            Value::Null | Value::ZeroDate => 0,
            _ => 16,
        })
        .sum()
}

/// "-12.30" at scale 2 → -1230.
fn parse_decimal(s: &str, scale: u32) -> Option<i128> {
    let (neg, digits) = s.strip_prefix('-').map_or((false, s), |d| (true, d));
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let mut frac = frac.to_string();
    if frac.len() > scale as usize {
        return None;
    }
    while frac.len() < scale as usize {
        frac.push('0');
    }
    let v: i128 = format!("{int}{frac}").parse().ok()?;
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_and_types() {
        assert_eq!(parse_decimal("-12.3", 2), Some(-1230));
        assert_eq!(parse_decimal("18446744073709551615", 0), Some(18_446_744_073_709_551_615));
        assert_eq!(arrow_type(&SqlType::Int { bits: 64, unsigned: true }), DataType::Decimal128(20, 0));
        assert_eq!(arrow_type(&SqlType::Int { bits: 24, unsigned: true }), DataType::Int32);
        assert_eq!(arrow_type(&SqlType::Decimal { precision: 65, scale: 30 }), DataType::Utf8);
    }
}
