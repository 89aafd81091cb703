//! Table schemas from information_schema: the snapshot's view, and the binlog's fallback when
//! the server does not log column metadata.
use std::sync::Arc;

use crate::config::MysqlConfig;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};
use sluice_core::{Column, SluiceError, SqlType, TableId, TableSchema};

use crate::charset::Charset;
use crate::conn::classify;

/// What decoding a column needs beyond its logical type.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnCodec {
    pub charset: Charset,
    /// BINARY(n): the server pads to n bytes with 0x00, the binlog strips the padding.
    pub pad_to: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct TableInfo {
    pub schema: Arc<TableSchema>,
    pub codecs: Vec<ColumnCodec>,
    /// Collation per column (for building keyset predicates on text keys).
    pub collations: Vec<Option<String>>,
    pub charset_names: Vec<Option<String>>,
}

/// Captured base tables, in a stable order.
pub async fn list_tables(conn: &mut Conn, cfg: &MysqlConfig) -> Result<Vec<TableId>, SluiceError> {
    Ok(all_tables(conn).await?.into_iter().filter(|id| cfg.captures(&id.db, &id.table)).collect())
}

/// Every user base table on the server, in a stable order.
pub async fn all_tables(conn: &mut Conn) -> Result<Vec<TableId>, SluiceError> {
    let rows: Vec<(String, String)> = conn
        .query(
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' \
             AND TABLE_SCHEMA NOT IN ('mysql','information_schema','performance_schema','sys') ORDER BY 1, 2",
        )
        .await
        .map_err(|e| classify(e, "list tables"))?;
    Ok(rows.into_iter().map(|(d, t)| TableId::new(d, t)).collect())
}

/// Whether the table holds at least one row.
pub async fn has_rows(conn: &mut Conn, id: &TableId) -> Result<bool, SluiceError> {
    let q = |s: &str| format!("`{}`", s.replace('`', "``"));
    let sql = format!("SELECT 1 FROM {}.{} LIMIT 1", q(&id.db), q(&id.table));
    let row: Option<u8> = conn.query_first(sql).await.map_err(|e| classify(e, &format!("read {id}")))?;
    Ok(row.is_some())
}

pub async fn load_table(conn: &mut Conn, id: &TableId) -> Result<TableInfo, SluiceError> {
    let what = format!("read the schema of {id}");
    let rows: Vec<Row> = conn
        .exec(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, NUMERIC_PRECISION, NUMERIC_SCALE, \
             DATETIME_PRECISION, CHARACTER_SET_NAME, COLLATION_NAME, CHARACTER_OCTET_LENGTH \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (&id.db, &id.table),
        )
        .await
        .map_err(|e| classify(e, &what))?;
    if rows.is_empty() {
        return Err(SluiceError::permanent(format!("table {id} does not exist or sluice's user cannot see it (GRANT SELECT)")));
    }
    let key_names: Vec<String> = conn
        .exec(
            "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
             AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX",
            (&id.db, &id.table),
        )
        .await
        .map_err(|e| classify(e, &what))?;
    // MariaDB's JSON is LONGTEXT with a json_valid() check; the check is what marks it JSON.
    let checks: Vec<String> = conn
        .exec(
            "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?",
            (&id.db, &id.table),
        )
        .await
        .unwrap_or_default();

    let mut columns = Vec::with_capacity(rows.len());
    let mut codecs = Vec::with_capacity(rows.len());
    let mut collations = Vec::with_capacity(rows.len());
    let mut charset_names = Vec::with_capacity(rows.len());
    for row in rows {
        let s = |i: usize| row.get::<Option<String>, _>(i).flatten();
        let n = |i: usize| row.get::<Option<u64>, _>(i).flatten();
        let name = s(0).unwrap_or_default();
        let data_type = s(1).unwrap_or_default().to_lowercase();
        let column_type = s(2).unwrap_or_default();
        let charset_name = s(7);
        let is_json = data_type == "json" || checks.iter().any(|c| c.contains(&format!("json_valid(`{name}`)")));
        let ty = parse_type(&data_type, &column_type, n(4), n(5), n(6), charset_name.as_deref(), is_json).ok_or_else(|| {
            SluiceError::permanent(format!("column {id}.{name} has type {column_type}, which sluice does not support yet"))
        })?;
        let charset = match charset_name.as_deref() {
            None => Charset::Binary,
            Some(cs) => Charset::from_name(cs)
                .ok_or_else(|| SluiceError::permanent(format!("column {id}.{name} uses character set {cs}, which sluice cannot decode")))?,
        };
        let pad_to = (data_type == "binary").then(|| n(9).unwrap_or(0) as usize);
        columns.push(Column { name, ty, nullable: s(3).as_deref() == Some("YES") });
        codecs.push(ColumnCodec { charset, pad_to });
        collations.push(s(8));
        charset_names.push(charset_name);
    }
    let key: Vec<usize> = key_names.iter().filter_map(|k| columns.iter().position(|c| &c.name == k)).collect();
    Ok(TableInfo {
        schema: Arc::new(TableSchema { id: id.clone(), columns, key, configured_key: false }),
        codecs,
        collations,
        charset_names,
    })
}

/// Logical type from information_schema's description of a column.
pub fn parse_type(
    data_type: &str,
    column_type: &str,
    precision: Option<u64>,
    scale: Option<u64>,
    fsp: Option<u64>,
    charset: Option<&str>,
    is_json: bool,
) -> Option<SqlType> {
    let unsigned = column_type.to_lowercase().contains("unsigned");
    let fsp = fsp.unwrap_or(0) as u8;
    Some(match data_type {
        "tinyint" => SqlType::Int { bits: 8, unsigned },
        "smallint" => SqlType::Int { bits: 16, unsigned },
        "mediumint" => SqlType::Int { bits: 24, unsigned },
        "int" | "integer" => SqlType::Int { bits: 32, unsigned },
        "bigint" => SqlType::Int { bits: 64, unsigned },
        "decimal" | "numeric" => SqlType::Decimal { precision: precision.unwrap_or(10) as u8, scale: scale.unwrap_or(0) as u8 },
        "float" => SqlType::Float,
        "double" | "real" => SqlType::Double,
        "date" => SqlType::Date,
        "datetime" => SqlType::DateTime { fsp },
        "timestamp" => SqlType::Timestamp { fsp },
        "time" => SqlType::Time { fsp },
        "year" => SqlType::Year,
        "enum" => SqlType::Enum { labels: parse_labels(column_type) },
        "set" => SqlType::Set { labels: parse_labels(column_type) },
        "json" => SqlType::Json,
        "bit" => SqlType::Bit { bits: precision.unwrap_or(1) as u16 },
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => SqlType::Binary,
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" if charset == Some("binary") => SqlType::Binary,
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" if is_json => SqlType::Json,
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" => SqlType::Text,
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring" | "multipolygon" | "geometrycollection"
        | "geomcollection" => SqlType::Geometry,
        // MariaDB's INET4/INET6/UUID: the snapshot prints text but the binlog carries raw bytes;
        // refuse them clearly rather than emit two different values for one datum.
        _ => return None,
    })
}

/// `enum('a','b''c')` → ["a", "b'c"].
pub fn parse_labels(column_type: &str) -> Vec<String> {
    let Some(open) = column_type.find('(') else { return Vec::new() };
    let body = &column_type[open + 1..column_type.rfind(')').unwrap_or(column_type.len())];
    let mut labels = Vec::new();
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\'' {
            continue;
        }
        let mut label = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\'' if chars.peek() == Some(&'\'') => {
                    chars.next();
                    label.push('\'');
                }
                '\'' => break,
                '\\' => {
                    if let Some(n) = chars.next() {
                        label.push(n);
                    }
                }
                c => label.push(c),
            }
        }
        labels.push(label);
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_types() {
        assert_eq!(parse_labels("enum('a','b''c','')"), vec!["a", "b'c", ""]);
        assert_eq!(parse_labels("set('x,y'"), vec!["x,y"]);
        assert_eq!(
            parse_type("int", "int(10) unsigned", Some(10), Some(0), None, None, false),
            Some(SqlType::Int { bits: 32, unsigned: true })
        );
        assert_eq!(parse_type("longtext", "longtext", None, None, None, Some("utf8mb4"), true), Some(SqlType::Json));
        assert_eq!(parse_type("datetime", "datetime(6)", None, None, Some(6), None, false), Some(SqlType::DateTime { fsp: 6 }));
        assert_eq!(parse_type("weird", "weird", None, None, None, None, false), None);
    }
}
