//! `[source] kind = "binlog-file"`: binlog files read from disk as a source — archived binlogs
//! replayed into the lake, and the MySQL-8-only paths (v2 rows events, MySQL and tagged GTIDs,
//! compressed transactions, binary JSON) proven on files that no server here can produce.
//!
//! Why sluice reads the files itself rather than through mysql_common's `BinlogFile`: that
//! iterator ends silently at an event cut short (and `Event::read` panics on one), and checksums
//! are not verified; here every event is framed and checked first, so a truncated or corrupt
//! file stops with its name and offset (`reader.rs`). Events are then parsed by mysql_common and
//! turned into changes by the same code as the replication stream (`events.rs`, `layout.rs`,
//! `decode.rs`). There is no server to ask, so column names come from the table map
//! (`binlog_row_metadata=FULL`), else they are `@0..@n`; charsets from mysql_common's table of
//! collations.
//!
//! Positions are `{file name, offset}` of the file as on disk (a relay log's own offsets, not
//! the master's), at transaction ends, so a restarted run resumes exactly. At the end of the last
//! file the source reports `CaughtUp` (`run --once` ends there) and then stays idle: files that
//! grow or appear later are read by the next run.
mod config;
mod error;
pub(crate) mod reader;

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use async_trait::async_trait;
use mysql_async::binlog::events::EventData;
use mysql_async::binlog::EventType;
use mysql_common::collations::{Collation, CollationId};
use sluice_core::checkpoint::Checkpoint;
use sluice_core::event::SourceInfo;
use sluice_core::source::{Source, SourceMsg};
use sluice_core::{ChangeEvent, SluiceError, TableId};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

pub use config::BinlogFileConfig;
pub use error::FileError;
use reader::{EventFile, Located};

use crate::binlog::Cursor;
use crate::events::{at_position, decode_rows, is_ddl, mariadb_gtid, mysql_gtid, Statement, Tx};
use crate::layout::{self, Collations, Layout};
use crate::position::{BinlogPos, MysqlPosition};

/// Events per message to the pipeline, as for the replication stream.
const BATCH: usize = 1024;
const MARIADB_GTID: u8 = 0xa2;
/// Events carrying row images: v1 (MariaDB, MySQL 5.1–5.5), v2 (MySQL 5.6+), partial JSON.
const ROWS_EVENTS: [EventType; 7] = [
    EventType::WRITE_ROWS_EVENT_V1,
    EventType::UPDATE_ROWS_EVENT_V1,
    EventType::DELETE_ROWS_EVENT_V1,
    EventType::WRITE_ROWS_EVENT,
    EventType::UPDATE_ROWS_EVENT,
    EventType::DELETE_ROWS_EVENT,
    EventType::PARTIAL_UPDATE_ROWS_EVENT,
];

/// Reads the configured binlog files in order (see the module doc).
pub struct BinlogFileSource {
    cfg: BinlogFileConfig,
}

impl BinlogFileSource {
    pub fn new(cfg: BinlogFileConfig) -> Self {
        Self { cfg }
    }
}

#[async_trait]
impl Source for BinlogFileSource {
    async fn run(
        self: Box<Self>,
        resume: Option<Checkpoint>,
        out: mpsc::Sender<SourceMsg>,
        _committed: watch::Receiver<Option<Checkpoint>>,
    ) -> Result<(), SluiceError> {
        let files = self.cfg.expand()?;
        let names: Vec<String> = files.iter().map(|p| file_name(p)).collect();
        let (start, pos, seq) = match &resume {
            Some(cp) => {
                let pos = MysqlPosition::from_json(&cp.position)?;
                let idx =
                    names.iter().position(|n| *n == pos.binlog.file).ok_or(FileError::ResumeFileGone { file: pos.binlog.file.clone() })?;
                (idx, pos, cp.next_seq)
            }
            None => {
                let first = names.first().cloned().unwrap_or_default();
                (0, MysqlPosition { binlog: BinlogPos { file: first, pos: 4 }, gtid: None, snapshot: None }, 0)
            }
        };
        info!(files = files.len(), from = %pos.binlog, "reading binlog files");
        let mut reading = Reading {
            selection: &self.cfg,
            collations: collations(),
            layouts: HashMap::new(),
            cursor: Cursor::new(pos, seq, None),
            tx: Tx::default(),
            pending: Vec::new(),
            sent_open: false,
            out: &out,
        };
        if resume.is_none() && !reading.checkpoint().await {
            return Ok(());
        }
        for path in &files[start..] {
            let from = if reading.cursor.committed.binlog.file == file_name(path) { reading.cursor.committed.binlog.pos } else { 4 };
            if !reading.file(EventFile::open(path, from)?).await? {
                return Ok(());
            }
        }
        if out.send(SourceMsg::Idle).await.is_err() || out.send(SourceMsg::CaughtUp).await.is_err() {
            return Ok(());
        }
        info!(position = %reading.cursor.committed.binlog, "read every binlog file; idle until stopped (new files are read by the next run)");
        out.closed().await;
        Ok(())
    }
}

/// State of one run over the files.
struct Reading<'a> {
    selection: &'a BinlogFileConfig,
    collations: Collations,
    /// By table id; `None` for tables not captured.
    layouts: HashMap<u64, Option<Arc<Layout>>>,
    cursor: Cursor,
    tx: Tx,
    pending: Vec<ChangeEvent>,
    /// Changes of the open transaction were already sent (it is large): it cannot be dropped.
    sent_open: bool,
    out: &'a mpsc::Sender<SourceMsg>,
}

impl Reading<'_> {
    /// Reads one file to its end. False when the pipeline closed the channel.
    async fn file(&mut self, mut file: EventFile) -> Result<bool, SluiceError> {
        // Table ids are only valid within one file.
        self.layouts.clear();
        let name = file.name().to_string();
        if self.cursor.committed.binlog.file != name {
            self.cursor.committed.binlog = BinlogPos { file: name.clone(), pos: 4 };
        }
        debug!(file = %name, "reading binlog file");
        loop {
            let at = file.at().0;
            let next = catch_unwind(AssertUnwindSafe(|| file.next())).map_err(|_| FileError::Panicked { file: name.clone(), pos: at })?;
            let Some(ev) = next? else { break };
            if !self.event(&name, ev).await? {
                return Ok(false);
            }
        }
        if self.sent_open {
            return Err(FileError::Corrupt {
                file: name,
                pos: file.at().1,
                what: "the file ends inside a transaction whose first changes were already delivered".into(),
            }
            .into());
        }
        if self.tx.open || !self.pending.is_empty() {
            // A transaction never spans binlog files; one cut by the file's end has no commit.
            warn!(file = %name, changes = self.pending.len(), "the file ends inside a transaction: its changes are not delivered");
            self.pending.clear();
            self.tx = Tx::default();
            self.cursor.seq = self.cursor.committed_seq;
        } else {
            self.cursor.committed.binlog.pos = file.at().1;
        }
        Ok(self.checkpoint().await)
    }

    /// Handles one event. False when the pipeline closed the channel.
    async fn event(&mut self, name: &str, ev: Located) -> Result<bool, SluiceError> {
        let Located { event, pos, end } = ev;
        let hdr = event.header();
        let raw = hdr.event_type_raw();
        let data = || catch_unwind(AssertUnwindSafe(|| event.read_data())).map_err(|_| FileError::Panicked { file: name.into(), pos });
        if raw == MARIADB_GTID {
            self.tx = mariadb_gtid(&event);
            self.tx.start = pos;
            return Ok(true);
        }
        let Ok(ty) = hdr.event_type() else { return Ok(true) };
        match ty {
            EventType::GTID_EVENT | EventType::GTID_TAGGED_LOG_EVENT | EventType::ANONYMOUS_GTID_EVENT => {
                let gtid = match data()? {
                    Ok(Some(EventData::GtidEvent(g))) => Some(mysql_gtid(&g)),
                    Ok(_) => None,
                    Err(e) => return Err(FileError::Parse { file: name.into(), pos, source: e }.into()),
                };
                self.tx = Tx::new(false, pos, gtid);
            }
            EventType::QUERY_EVENT => {
                let q = match data()? {
                    Ok(Some(EventData::QueryEvent(q))) => q,
                    Ok(_) => return Err(FileError::Corrupt { file: name.into(), pos, what: "undecodable query event".into() }.into()),
                    Err(e) => return Err(FileError::Parse { file: name.into(), pos, source: e }.into()),
                };
                match Statement::of(&q.query()) {
                    Statement::Savepoint => {}
                    Statement::Begin => {
                        self.tx.open = true;
                        if self.tx.gtid.is_none() {
                            self.tx.start = pos;
                        }
                    }
                    Statement::End { .. } => return self.commit(name, end).await,
                    Statement::Other => {
                        match dml_target(&q.query(), &q.schema()) {
                            Some(Some(t)) if !self.selection.selection().captures(&t.db, &t.table) => {}
                            Some(t) => {
                                let table = t.map(|t| format!(" to {t}")).unwrap_or_default();
                                return Err(FileError::StatementBased { file: name.into(), pos, table }.into());
                            }
                            None => {}
                        }
                        if is_ddl(&q.query()) {
                            self.layouts.clear();
                        }
                        // Before the checkpoint past it, as the replication reader does.
                        let selection = self.selection.selection();
                        let captures = |t: &TableId| selection.captures(&t.db, &t.table);
                        let ts_ms = i64::from(hdr.timestamp()) * 1000;
                        let ddls = crate::ddl::captured(&q.query(), &q.schema(), captures, ts_ms, self.cursor.seq);
                        if !ddls.is_empty() && self.cursor.seq >= self.cursor.sent_below {
                            if !self.pending.is_empty()
                                && self.out.send(SourceMsg::Events(std::mem::take(&mut self.pending))).await.is_err()
                            {
                                return Ok(false);
                            }
                            for d in ddls {
                                if self.out.send(SourceMsg::TableDdl(d)).await.is_err() {
                                    return Ok(false);
                                }
                            }
                        }
                        if !self.tx.open {
                            return self.commit(name, end).await;
                        }
                    }
                }
            }
            EventType::XID_EVENT => return self.commit(name, end).await,
            EventType::TABLE_MAP_EVENT => {
                let Ok(Some(EventData::TableMapEvent(t))) = data()? else {
                    return Err(FileError::Corrupt { file: name.into(), pos, what: "undecodable table map event".into() }.into());
                };
                if !self.layouts.contains_key(&t.table_id()) {
                    let id = TableId::new(t.database_name(), t.table_name());
                    let layout = if self.selection.selection().captures(&id.db, &id.table) {
                        let mut l = layout::build_offline(&t, &self.collations).map_err(|e| at_position(e, name, pos))?;
                        self.selection.selection().apply_keys(Arc::make_mut(&mut l.schema));
                        Some(Arc::new(l))
                    } else {
                        None
                    };
                    self.layouts.insert(t.table_id(), layout);
                }
            }
            ty if ROWS_EVENTS.contains(&ty) => {
                let Ok(Some(EventData::RowsEvent(re))) = data()? else {
                    return Err(FileError::Corrupt { file: name.into(), pos, what: "undecodable rows event".into() }.into());
                };
                let Some(Some(layout)) = self.layouts.get(&re.table_id()).cloned() else { return Ok(true) };
                let info = Arc::new(SourceInfo {
                    connector: crate::CONNECTOR,
                    file: name.to_string(),
                    pos,
                    gtid: self.tx.gtid.clone(),
                    server_id: hdr.server_id(),
                    snapshot: false,
                    replayed: false,
                });
                let txid = self.tx.id(name);
                let ts_ms = i64::from(hdr.timestamp()) * 1000;
                let (cursor, pending) = (&mut self.cursor, &mut self.pending);
                catch_unwind(AssertUnwindSafe(|| decode_rows(&re, &layout, cursor, &info, &txid, ts_ms, pending)))
                    .map_err(|_| FileError::Panicked { file: name.into(), pos })?
                    .map_err(|e| match ty {
                        EventType::PARTIAL_UPDATE_ROWS_EVENT => e.context("partial JSON update (binlog_row_value_options=PARTIAL_JSON)"),
                        _ => e,
                    })?;
                if self.pending.len() >= BATCH {
                    self.sent_open = true;
                    if self.out.send(SourceMsg::Events(std::mem::take(&mut self.pending))).await.is_err() {
                        return Ok(false);
                    }
                }
            }
            _ => {}
        }
        if let Some(what) = unsupported(raw) {
            return Err(FileError::Unsupported { file: name.into(), pos, what }.into());
        }
        // Between transactions every event end is a safe resume point.
        if !self.tx.open && self.tx.gtid.is_none() && self.pending.is_empty() {
            self.cursor.committed.binlog.pos = end;
        }
        Ok(true)
    }

    /// Ends a transaction: sends its events and a checkpoint after it.
    async fn commit(&mut self, name: &str, end: u64) -> Result<bool, SluiceError> {
        self.cursor.committed = MysqlPosition {
            binlog: BinlogPos { file: name.to_string(), pos: end },
            gtid: self.tx.gtid.take().or_else(|| self.cursor.committed.gtid.take()),
            snapshot: None,
        };
        self.cursor.committed_seq = self.cursor.seq;
        self.tx = Tx::default();
        self.sent_open = false;
        if !self.pending.is_empty() && self.out.send(SourceMsg::Events(std::mem::take(&mut self.pending))).await.is_err() {
            return Ok(false);
        }
        Ok(self.checkpoint().await)
    }

    async fn checkpoint(&self) -> bool {
        let cp = Checkpoint { position: self.cursor.committed.to_json(), next_seq: self.cursor.committed_seq };
        self.out.send(SourceMsg::Checkpoint(cp)).await.is_ok()
    }
}

/// The name positions use for a file.
pub(crate) fn file_name(path: &std::path::Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Events that carry row changes sluice cannot read: refused rather than skipped.
fn unsupported(raw: u8) -> Option<&'static str> {
    match raw {
        20..=22 => Some("rows event of a MySQL 5.1 pre-GA version (event types 20-22)"),
        // A replica stops here too: the server could not log some change (e.g. a failed write
        // to a non-transactional table), so what follows may not match the source.
        26 => Some("INCIDENT event: the server recorded that changes may be missing from the binlog here"),
        0xa5..=0xab => Some("MariaDB compressed event (log_bin_compress=ON); replay binlogs written with log_bin_compress=OFF"),
        _ => None,
    }
}

/// The table a statement-logged INSERT, REPLACE, UPDATE, DELETE or LOAD DATA writes (`None`
/// inside when it cannot be told), or `None` for any other statement.
fn dml_target(sql: &str, default_db: &str) -> Option<Option<TableId>> {
    const SKIP: [&str; 9] = ["INTO", "FROM", "TABLE", "LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY", "IGNORE", "QUICK", "CONCURRENT"];
    let mut words = sql.split_whitespace();
    let first = words.next()?;
    let is = |w: &str, k: &str| w.eq_ignore_ascii_case(k);
    if !["INSERT", "REPLACE", "UPDATE", "DELETE", "LOAD"].iter().any(|k| is(first, k)) {
        return None;
    }
    let mut words = words.peekable();
    if is(first, "LOAD") {
        // LOAD DATA [LOCAL] INFILE 'file' [REPLACE | IGNORE] INTO TABLE t
        while words.next_if(|w| !is(w, "INTO")).is_some() {}
    }
    let name = words.find(|w| !SKIP.iter().any(|k| is(w, k)))?;
    let name = name.split(['(', ',']).next().unwrap_or_default().replace('`', "");
    Some(match name.split_once('.') {
        Some((db, t)) if !db.is_empty() && !t.is_empty() => Some(TableId::new(db, t)),
        None if !name.is_empty() && !default_db.is_empty() => Some(TableId::new(default_db, name)),
        _ => None,
    })
}

/// Collation id → character set name, from mysql_common's table (what a server would answer).
pub(crate) fn collations() -> Collations {
    (1..=u16::MAX)
        .filter_map(|id| {
            let cid = CollationId::from(id);
            (cid != CollationId::UNKNOWN_COLLATION_ID).then(|| (id, Collation::resolve(cid).charset().to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_targets() {
        let t = |sql: &str| dml_target(sql, "d");
        assert_eq!(t("INSERT INTO t1 VALUES (1)"), Some(Some(TableId::new("d", "t1"))));
        assert_eq!(t("insert ignore into `x`.`y`(a) values (1)"), Some(Some(TableId::new("x", "y"))));
        assert_eq!(t("UPDATE LOW_PRIORITY t SET a = 1"), Some(Some(TableId::new("d", "t"))));
        assert_eq!(t("DELETE FROM s.t WHERE 1"), Some(Some(TableId::new("s", "t"))));
        assert_eq!(t("LOAD DATA INFILE '/x' REPLACE INTO TABLE t2"), Some(Some(TableId::new("d", "t2"))));
        assert_eq!(t("CREATE TABLE t (a INT)"), None);
        assert_eq!(dml_target("INSERT INTO t VALUES (1)", ""), Some(None));
    }
}
