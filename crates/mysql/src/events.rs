//! Binlog events to change events: the part shared by the replication reader (`binlog.rs`) and
//! the binlog-file reader (`file/`), so both decode the same event the same way.
use mysql_async::binlog::events::{Event, GtidEvent, RowsEventData, TableMapEvent};
use mysql_async::binlog::row::BinlogRow;
use sluice_core::event::SourceInfo;
use sluice_core::{ChangeEvent, Op, Row, SluiceError};

use crate::binlog::Cursor;
use crate::decode::from_binlog;
use crate::layout::Layout;

/// Per-transaction state.
#[derive(Default)]
pub(crate) struct Tx {
    pub open: bool,
    pub start: u64,
    pub gtid: Option<String>,
}

/// What a QUERY event means for transaction boundaries.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Statement {
    Begin,
    /// COMMIT, ROLLBACK (of a transaction touching non-transactional tables, whose logged
    /// changes stay) or XA: the transaction ends.
    End {
        rollback: bool,
    },
    /// SAVEPOINT / ROLLBACK TO: inside a transaction, nothing to do.
    Savepoint,
    /// Anything else: DDL and other statements, which commit implicitly.
    Other,
}

impl Statement {
    pub fn of(sql: &str) -> Self {
        let mut words = sql.split_whitespace();
        let word = words.next().unwrap_or_default();
        let is = |w: &str, k: &str| w.eq_ignore_ascii_case(k);
        if is(word, "SAVEPOINT") {
            Statement::Savepoint
        } else if is(word, "ROLLBACK") {
            match words.next() {
                Some(w) if is(w, "TO") => Statement::Savepoint,
                _ => Statement::End { rollback: true },
            }
        } else if is(word, "BEGIN") {
            Statement::Begin
        } else if is(word, "COMMIT") || is(word, "XA") {
            Statement::End { rollback: false }
        } else {
            Statement::Other
        }
    }
}

/// Whether a statement changes table definitions, so cached layouts are stale.
pub(crate) fn is_ddl(sql: &str) -> bool {
    let upper = sql.trim_start().get(..16).unwrap_or(sql).to_ascii_uppercase();
    ["ALTER", "CREATE", "DROP", "RENAME", "TRUNCATE"].iter().any(|k| upper.starts_with(k))
}

/// A MySQL GTID as MySQL prints it: `uuid:n`, or `uuid:tag:n` for the tagged GTIDs of 8.3+.
pub(crate) fn mysql_gtid(g: &GtidEvent) -> String {
    let hex: String = g.sid().iter().map(|b| format!("{b:02x}")).collect();
    let uuid = format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..]);
    match g.tag() {
        Some(tag) => format!("{uuid}:{}:{}", tag.as_str(), g.gno()),
        None => format!("{uuid}:{}", g.gno()),
    }
}

/// MariaDB's GTID event (0xa2), which mysql_common does not parse: seq u64, domain u32, flags u8.
pub(crate) fn mariadb_gtid(ev: &Event) -> Tx {
    let d = ev.data();
    if d.len() < 13 {
        return Tx::default();
    }
    let seq = u64::from_le_bytes(d[0..8].try_into().unwrap_or_default());
    let domain = u32::from_le_bytes(d[8..12].try_into().unwrap_or_default());
    let flags = d[12];
    // Flag 1 (standalone): no BEGIN/COMMIT follows, the next statement is the transaction.
    Tx { open: flags & 1 == 0, start: 0, gtid: Some(format!("{domain}-{}-{seq}", ev.header().server_id())) }
}

/// Decodes the rows of one rows event into `out`, numbering them from `cursor.seq` and
/// skipping those already sent before a reconnect.
#[allow(clippy::too_many_arguments)]
pub(crate) fn decode_rows(
    tme: &TableMapEvent<'_>,
    re: &RowsEventData<'_>,
    layout: &Layout,
    cursor: &mut Cursor,
    info: &SourceInfo,
    txid: &str,
    ts_ms: i64,
    out: &mut Vec<ChangeEvent>,
) -> Result<(), SluiceError> {
    let id = &layout.schema.id;
    let op = match re {
        RowsEventData::WriteRowsEventV1(_) | RowsEventData::WriteRowsEvent(_) => Op::Insert,
        RowsEventData::DeleteRowsEventV1(_) | RowsEventData::DeleteRowsEvent(_) => Op::Delete,
        _ => Op::Update,
    };
    for row in re.rows(tme) {
        let (before, after) =
            row.map_err(|e| SluiceError::permanent(format!("cannot decode a row of {id} at {}:{}: {e}", info.file, info.pos)))?;
        let seq = cursor.seq;
        cursor.seq += 1;
        if seq < cursor.sent_below {
            continue;
        }
        let at = |e| at_position(e, &info.file, info.pos);
        let before = before.map(|r| to_row(r, layout)).transpose().map_err(at)?;
        let after = after.map(|r| to_row(r, layout)).transpose().map_err(at)?;
        out.push(ChangeEvent {
            op,
            schema: layout.schema.clone(),
            before,
            after,
            ts_ms,
            tx: Some(txid.to_string()),
            seq,
            source: info.clone(),
        });
    }
    Ok(())
}

/// The error with the binlog position it happened at, after its message.
pub(crate) fn at_position(e: SluiceError, file: &str, pos: u64) -> SluiceError {
    SluiceError { message: format!("{} (at {file}:{pos})", e.message), ..e }
}

fn to_row(mut r: BinlogRow, layout: &Layout) -> Result<Row, SluiceError> {
    let id = &layout.schema.id;
    if r.len() != layout.types.len() {
        // Columns are named as in the table map, else `@i` (mysql_common's naming).
        let present: Vec<String> = r.columns_ref().iter().map(|c| c.name_str().into_owned()).collect();
        let missing: Vec<&str> = (layout.schema.columns.iter().enumerate())
            .filter(|(i, c)| !present.contains(&c.name) && !present.contains(&format!("@{i}")))
            .map(|(_, c)| c.name.as_str())
            .collect();
        return Err(SluiceError::permanent(format!(
            "row image of {id} has {} of {} columns (missing: {}): the server must log full row images (SET GLOBAL binlog_row_image = 'FULL')",
            r.len(),
            layout.types.len(),
            missing.join(", ")
        )));
    }
    (0..r.len())
        .map(|i| {
            let v = r.take(i).ok_or_else(|| {
                SluiceError::permanent(format!("column {} of {id} missing from the row image", layout.schema.columns[i].name))
            })?;
            from_binlog(&layout.types[i], &layout.codecs[i], v)
                .map_err(|e| SluiceError::permanent(format!("cannot decode column {}.{}: {}", id, layout.schema.columns[i].name, e.0)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements() {
        assert_eq!(Statement::of("BEGIN"), Statement::Begin);
        assert_eq!(Statement::of("commit"), Statement::End { rollback: false });
        assert_eq!(Statement::of("ROLLBACK"), Statement::End { rollback: true });
        assert_eq!(Statement::of("ROLLBACK TO `s1`"), Statement::Savepoint);
        assert_eq!(Statement::of("SAVEPOINT `s1`"), Statement::Savepoint);
        assert_eq!(Statement::of("XA COMMIT X'31'"), Statement::End { rollback: false });
        assert_eq!(Statement::of("create table t (a int)"), Statement::Other);
        assert!(is_ddl("  create table t (a int)") && !is_ddl("INSERT INTO t VALUES (1)"));
    }
}
