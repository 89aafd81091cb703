//! Column layout of a binlog table map: names, types and codecs valid at that binlog position.
//! With `binlog_row_metadata=FULL` the table map carries everything; otherwise information_schema
//! (refreshed at DDL) fills in, matched by position.
use std::collections::HashMap;
use std::sync::Arc;

use mysql_async::binlog::events::{OptionalMetaExtractor, OptionalMetadataField, TableMapEvent};
use mysql_async::consts::ColumnType;
use sluice_core::{Column, SluiceError, SqlType, TableId, TableSchema};

use crate::charset::Charset;
use crate::rowimage::Plan;
use crate::schema::{ColumnCodec, TableInfo};

pub struct Layout {
    pub schema: Arc<TableSchema>,
    pub types: Vec<SqlType>,
    pub codecs: Vec<ColumnCodec>,
    /// How the row images of this table map are read (made once, used for every row).
    pub plan: Plan,
}

/// Collation id → character set name, read from the server once.
pub type Collations = HashMap<u16, String>;

pub fn build(tme: &TableMapEvent<'_>, info: Option<&TableInfo>, collations: &Collations) -> Result<Layout, SluiceError> {
    build_with(tme, info, collations, false)
}

/// A layout from the table map alone, for binlog files (no server to ask): columns the binlog
/// does not name (binlog_row_metadata=MINIMAL) are called `@0..@n`, by position.
pub fn build_offline(tme: &TableMapEvent<'_>, collations: &Collations) -> Result<Layout, SluiceError> {
    build_with(tme, None, collations, true)
}

fn build_with(tme: &TableMapEvent<'_>, info: Option<&TableInfo>, collations: &Collations, positional: bool) -> Result<Layout, SluiceError> {
    let id = TableId::new(tme.database_name(), tme.table_name());
    let n = tme.columns_count() as usize;
    let bad = |what: &str| SluiceError::permanent(format!("cannot read the binlog table map of {id}: {what}"));
    let meta = OptionalMetaExtractor::new(tme.iter_optional_meta()).map_err(|_| bad("bad optional metadata"))?;
    let plan = Plan::new(tme).map_err(bad)?;
    let mut names: Vec<String> = meta.iter_column_name().filter_map(Result::ok).map(|c| c.name().into_owned()).collect();

    if names.len() != n && positional {
        names = (0..n).map(|i| format!("@{i}")).collect();
    } else if names.len() != n {
        // No column names in the binlog (binlog_row_metadata=MINIMAL/NO_LOG): use information_schema.
        let info = info.ok_or_else(|| bad("no column names in the binlog and no schema from information_schema"))?;
        if info.schema.columns.len() != n {
            return Err(SluiceError::permanent(format!(
                "table {id} has {n} columns in the binlog but {} in information_schema (the schema changed since this \
                 position and the binlog has no column names); set binlog_row_metadata=FULL on the server",
                info.schema.columns.len()
            )));
        }
        let types = info.schema.columns.iter().map(|c| c.ty.clone()).collect();
        return Ok(Layout { schema: info.schema.clone(), types, codecs: info.codecs.clone(), plan });
    }

    let mut enums = Vec::new();
    let mut sets = Vec::new();
    for field in tme.iter_optional_meta().flatten() {
        match field {
            OptionalMetadataField::EnumStrValue(v) => {
                enums = v.iter_values().filter_map(Result::ok).map(|x| labels(x.values().iter().map(|s| s.value()))).collect()
            }
            OptionalMetadataField::SetStrValue(v) => {
                sets = v.iter_values().filter_map(Result::ok).map(|x| labels(x.values().iter().map(|s| s.value()))).collect()
            }
            _ => {}
        }
    }
    let (mut enums, mut sets) = (enums.into_iter(), sets.into_iter());
    let mut signed = meta.iter_signedness();
    let mut charsets = meta.iter_charset();
    let mut enum_charsets = meta.iter_enum_and_set_charset();
    let nulls = tme.null_bitmask();

    let mut columns = Vec::with_capacity(n);
    let mut types = Vec::with_capacity(n);
    let mut codecs = Vec::with_capacity(n);
    for (i, name) in names.into_iter().enumerate() {
        let ct = tme.get_column_type(i).ok().flatten().ok_or_else(|| bad("unknown column type"))?;
        let m = tme.get_column_metadata(i).unwrap_or(&[]);
        let unsigned = if ct.is_numeric_type() { signed.next().unwrap_or(false) } else { false };
        let charset_id = if ct.is_character_type() {
            charsets.next().and_then(Result::ok)
        } else if ct.is_enum_or_set_type() {
            enum_charsets.next().and_then(Result::ok)
        } else {
            None
        };
        let charset_name = charset_id.and_then(|c| collations.get(&c)).map(String::as_str);
        let is_binary = charset_name == Some("binary");
        let known = info.and_then(|t| t.schema.columns.iter().find(|c| c.name == name));
        let ty = tme_type(ct, m, unsigned, is_binary, &mut enums, &mut sets, known.map(|c| &c.ty)).ok_or_else(|| {
            SluiceError::permanent(format!("column {id}.{name} has binlog type {ct:?}, which sluice does not support yet"))
        })?;
        let charset = match charset_name {
            Some(cs) => Charset::from_name(cs)
                .ok_or_else(|| SluiceError::permanent(format!("column {id}.{name} uses character set {cs}, which sluice cannot decode")))?,
            None => Charset::Utf8,
        };
        let pad_to = (ct == ColumnType::MYSQL_TYPE_STRING && is_binary).then(|| string_len(m));
        columns.push(Column { name, ty: ty.clone(), nullable: nulls.get(i).is_some_and(|b| *b) });
        types.push(ty);
        codecs.push(ColumnCodec { charset, pad_to });
    }
    let mut key: Vec<usize> = meta.iter_primary_key().filter_map(Result::ok).map(|k| k as usize).collect();
    if key.is_empty() {
        if let Some(info) = info {
            key = info.schema.key_names().iter().filter_map(|k| columns.iter().position(|c| &c.name == k)).collect();
        }
    }
    Ok(Layout { schema: Arc::new(TableSchema { id, columns, key, configured_key: false }), types, codecs, plan })
}

fn labels<'a>(it: impl Iterator<Item = std::borrow::Cow<'a, str>>) -> Vec<String> {
    it.map(|s| s.into_owned()).collect()
}

/// Length of a fixed CHAR/BINARY column from its table-map metadata (as mysql_common reads it).
fn string_len(m: &[u8]) -> usize {
    match m {
        [b0, b1, ..] if (b0 & 0x30) != 0x30 => usize::from(*b1) | ((usize::from(*b0 & 0x30) ^ 0x30) << 4),
        [_, b1, ..] => usize::from(*b1),
        _ => 0,
    }
}

fn tme_type(
    ct: ColumnType,
    m: &[u8],
    unsigned: bool,
    is_binary: bool,
    enums: &mut impl Iterator<Item = Vec<String>>,
    sets: &mut impl Iterator<Item = Vec<String>>,
    known: Option<&SqlType>,
) -> Option<SqlType> {
    use ColumnType::*;
    let fsp = m.first().copied().unwrap_or(0);
    Some(match ct {
        MYSQL_TYPE_TINY => SqlType::Int { bits: 8, unsigned },
        MYSQL_TYPE_SHORT => SqlType::Int { bits: 16, unsigned },
        MYSQL_TYPE_INT24 => SqlType::Int { bits: 24, unsigned },
        MYSQL_TYPE_LONG => SqlType::Int { bits: 32, unsigned },
        MYSQL_TYPE_LONGLONG => SqlType::Int { bits: 64, unsigned },
        MYSQL_TYPE_NEWDECIMAL | MYSQL_TYPE_DECIMAL => SqlType::Decimal { precision: *m.first()?, scale: *m.get(1)? },
        MYSQL_TYPE_FLOAT => SqlType::Float,
        MYSQL_TYPE_DOUBLE => SqlType::Double,
        MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE => SqlType::Date,
        MYSQL_TYPE_DATETIME => SqlType::DateTime { fsp: 0 },
        MYSQL_TYPE_DATETIME2 => SqlType::DateTime { fsp },
        MYSQL_TYPE_TIMESTAMP => SqlType::Timestamp { fsp: 0 },
        MYSQL_TYPE_TIMESTAMP2 => SqlType::Timestamp { fsp },
        MYSQL_TYPE_TIME => SqlType::Time { fsp: 0 },
        MYSQL_TYPE_TIME2 => SqlType::Time { fsp },
        MYSQL_TYPE_YEAR => SqlType::Year,
        MYSQL_TYPE_ENUM => SqlType::Enum { labels: enums.next().unwrap_or_default() },
        MYSQL_TYPE_SET => SqlType::Set { labels: sets.next().unwrap_or_default() },
        MYSQL_TYPE_JSON => SqlType::Json,
        MYSQL_TYPE_BIT => SqlType::Bit { bits: u16::from(*m.get(1)?) * 8 + u16::from(*m.first()?) },
        MYSQL_TYPE_GEOMETRY => SqlType::Geometry,
        MYSQL_TYPE_STRING
        | MYSQL_TYPE_VARCHAR
        | MYSQL_TYPE_VAR_STRING
        | MYSQL_TYPE_BLOB
        | MYSQL_TYPE_TINY_BLOB
        | MYSQL_TYPE_MEDIUM_BLOB
        | MYSQL_TYPE_LONG_BLOB => {
            if is_binary {
                SqlType::Binary
            } else if known == Some(&SqlType::Json) {
                SqlType::Json
            } else {
                SqlType::Text
            }
        }
        _ => return None,
    })
}
