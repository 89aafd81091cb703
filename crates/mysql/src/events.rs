//! Binlog events to change events: the part shared by the replication reader (`binlog.rs`) and
//! the binlog-file reader (`file/`), so both decode the same event the same way.
use std::fmt::Write as _;
use std::sync::Arc;

use mysql_async::binlog::events::{Event, GtidEvent};
use sluice_core::SluiceError;

pub(crate) use crate::rowimage::decode_rows;

/// Per-transaction state.
#[derive(Default)]
pub(crate) struct Tx {
    pub open: bool,
    pub start: u64,
    pub gtid: Option<String>,
    /// The transaction id every change of it shares, made at its first rows event.
    id: Option<Arc<str>>,
}

impl Tx {
    pub fn new(open: bool, start: u64, gtid: Option<String>) -> Self {
        Self { open, start, gtid, id: None }
    }

    /// The transaction id: its GTID, else `file:start`.
    pub fn id(&mut self, file: &str) -> Arc<str> {
        let (gtid, start) = (&self.gtid, self.start);
        Arc::clone(self.id.get_or_insert_with(|| match gtid {
            Some(g) => Arc::from(g.as_str()),
            None => Arc::from(format!("{file}:{start}")),
        }))
    }
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
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(64);
    for (i, b) in g.sid().iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 15)]));
    }
    if let Some(tag) = g.tag() {
        s.push(':');
        s.push_str(tag.as_str());
    }
    let _ = write!(s, ":{}", g.gno());
    s
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
    Tx::new(flags & 1 == 0, 0, Some(format!("{domain}-{}-{seq}", ev.header().server_id())))
}

/// The error with the binlog position it happened at, after its message.
pub(crate) fn at_position(e: SluiceError, file: &str, pos: u64) -> SluiceError {
    SluiceError { message: format!("{} (at {file}:{pos})", e.message), ..e }
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
