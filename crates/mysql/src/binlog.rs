//! The binlog reader: one replication connection, decoded into change events and checkpoints.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use mysql_async::binlog::EventType;
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStream, BinlogStreamRequest, Conn};
use sluice_core::checkpoint::Checkpoint;
use sluice_core::event::SourceInfo;
use sluice_core::source::SourceMsg;
use sluice_core::{ChangeEvent, SluiceError, TableId};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::conn::{classify, Flavor};
use crate::events::{decode_rows, is_ddl, mariadb_gtid, mysql_gtid, Statement, Tx};
use crate::layout::{self, Collations, Layout};
use crate::position::{BinlogPos, MysqlPosition, SnapshotProgress};
use crate::rowqueue::{RowsJob, RowsQueue};
use crate::schema::{load_table, TableInfo};
use crate::source::Shared;
use crate::watermark::Window;

/// Events per message to the pipeline: amortises channel costs, bounds memory.
const BATCH: usize = 1024;
const MARIADB_GTID: u8 = 0xa2;

/// Why streaming stopped without an error.
#[derive(Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// The pipeline closed the channel.
    Closed,
    /// Reached the requested `until` position.
    Reached,
    /// `yield_every` passed: stopped between transactions so the caller can look for work
    /// (snapshot requests); the next call goes on from here.
    Yielded,
}

/// Decoding state of one replication session.
pub struct BinlogReader<'a> {
    pub shared: &'a Shared,
    /// Schema connection for information_schema (fallback names, JSON flags).
    pub meta_conn: &'a mut Conn,
    pub collations: &'a Collations,
    layouts: HashMap<u64, Option<Arc<Layout>>>,
    infos: HashMap<TableId, TableInfo>,
    /// The replication stream and its file, kept when a call stopped at `until` (between
    /// transactions): the next call goes on from there without reconnecting.
    live: Option<(BinlogStream, String)>,
    /// A watermark snapshot's open chunk: which of its rows the binlog touched.
    pub window: Option<Window>,
    /// Stop between transactions this often ([`StreamEnd::Yielded`]).
    pub yield_every: Option<Duration>,
}

/// Progress of the stream, shared with the reconnect loop.
pub struct Cursor {
    /// Last position sent as a checkpoint.
    pub committed: MysqlPosition,
    pub committed_seq: u64,
    /// Next seq to assign.
    pub seq: u64,
    /// Events with seq below this were already sent (before a reconnect): don't send again.
    pub sent_below: u64,
    /// Send `CaughtUp` once the committed position reaches this.
    pub caught_up_at: Option<BinlogPos>,
    /// While replaying the binlog inside a resumed snapshot, checkpoints must keep saying the
    /// snapshot is unfinished.
    pub carry_snapshot: Option<SnapshotProgress>,
}

impl Cursor {
    pub fn new(pos: MysqlPosition, seq: u64, caught_up_at: Option<BinlogPos>) -> Self {
        Self { committed: pos, committed_seq: seq, seq, sent_below: seq, caught_up_at, carry_snapshot: None }
    }

    /// Rewinds to the last checkpoint after a lost connection.
    pub fn rewind(&mut self) {
        self.sent_below = self.sent_below.max(self.seq);
        self.seq = self.committed_seq;
    }
}

impl<'a> BinlogReader<'a> {
    pub fn new(shared: &'a Shared, meta_conn: &'a mut Conn, collations: &'a Collations) -> Self {
        Self { shared, meta_conn, collations, layouts: HashMap::new(), infos: HashMap::new(), live: None, window: None, yield_every: None }
    }

    /// Opens a replication connection at `cursor.committed` and streams until the channel
    /// closes, `until` is reached, or an error.
    pub async fn stream(
        &mut self,
        cursor: &mut Cursor,
        out: &mpsc::Sender<SourceMsg>,
        until: Option<&BinlogPos>,
    ) -> Result<StreamEnd, SluiceError> {
        if let Some(end) = self.check_reached(cursor, out, until).await? {
            return Ok(end);
        }
        let (mut stream, mut file) = match self.live.take() {
            Some(live) => live,
            None => (self.open(&cursor.committed.binlog).await?, cursor.committed.binlog.file.clone()),
        };
        let mut pending: Vec<ChangeEvent> = Vec::new();
        // Rows events not yet in `pending`: decoded on two cores, numbered in order.
        let mut rows = RowsQueue::default();
        let mut tx = Tx::default();
        let started = std::time::Instant::now();
        let idle_limit = self.shared.source.heartbeat.0 * 5 + Duration::from_secs(5);
        loop {
            let ev = match tokio::time::timeout(idle_limit, stream.next()).await {
                Err(_) => return Err(SluiceError::transient("no binlog event or heartbeat from the server in time; reconnecting")),
                Ok(None) => return Err(SluiceError::transient("the server closed the binlog stream; reconnecting")),
                Ok(Some(Err(e))) => return Err(classify(e, "read binlog")),
                Ok(Some(Ok(ev))) => ev,
            };
            let hdr = ev.header();
            let end_pos = u64::from(hdr.log_pos());
            let raw_type = hdr.event_type_raw();
            if raw_type == MARIADB_GTID {
                tx = mariadb_gtid(&ev);
                tx.start = end_pos.saturating_sub(u64::from(hdr.event_size()));
                continue;
            }
            // Types mysql_common does not know (MariaDB's GTID list, binlog checkpoint and
            // annotate events) carry nothing for sluice, but where they end is still a position:
            // skipping the bookkeeping below left `--once` at a fresh binlog file waiting for a
            // heartbeat (1 s) to reach the end it targets.
            if let Ok(ty) = hdr.event_type() {
                match ty {
                    EventType::ROTATE_EVENT => {
                        if let Ok(Some(mysql_async::binlog::events::EventData::RotateEvent(r))) = ev.read_data() {
                            // The fake rotate sent at connect (log_pos 0) names the file we asked for,
                            // with stray checksum bytes on MariaDB: only real rotates move us.
                            if hdr.log_pos() != 0 {
                                file = r.name().into_owned();
                                cursor.committed.binlog = BinlogPos { file: file.clone(), pos: r.position() };
                                debug!(file = %file, "binlog rotated");
                            }
                        }
                    }
                    EventType::GTID_EVENT | EventType::GTID_TAGGED_LOG_EVENT => {
                        if let Ok(Some(mysql_async::binlog::events::EventData::GtidEvent(g))) = ev.read_data() {
                            tx = Tx::new(false, end_pos.saturating_sub(u64::from(hdr.event_size())), Some(mysql_gtid(&g)));
                        }
                    }
                    EventType::QUERY_EVENT => {
                        let Ok(Some(mysql_async::binlog::events::EventData::QueryEvent(q))) = ev.read_data() else { continue };
                        let sql = q.query();
                        match Statement::of(&sql) {
                            Statement::Savepoint => {}
                            Statement::Begin => {
                                tx.open = true;
                                if tx.gtid.is_none() {
                                    tx.start = end_pos.saturating_sub(u64::from(hdr.event_size()));
                                }
                            }
                            Statement::End { rollback } => {
                                if rollback {
                                    warn!("a transaction touching non-transactional tables was rolled back; its logged changes are kept, as the server kept them");
                                }
                                self.commit(&file, end_pos, &mut tx, (&mut pending, &mut rows), cursor, out).await?;
                            }
                            Statement::Other => {
                                // DDL commits implicitly and is its own transaction.
                                self.on_statement(&sql, &q.schema());
                                // Before the checkpoint past it: a crash cannot commit the position
                                // without the DDL having reached the sinks. Not again after a
                                // reconnect if changes after it were sent.
                                let captures = |t: &TableId| self.shared.source.captures(&t.db, &t.table);
                                let ts_ms = i64::from(hdr.timestamp()) * 1000;
                                let ddls = crate::ddl::captured(&sql, &q.schema(), captures, ts_ms, cursor.seq);
                                if !ddls.is_empty() && cursor.seq >= cursor.sent_below {
                                    if !pending.is_empty() && !send(out, SourceMsg::Events(std::mem::take(&mut pending))).await {
                                        return Ok(StreamEnd::Closed);
                                    }
                                    for d in ddls {
                                        if !send(out, SourceMsg::TableDdl(d)).await {
                                            return Ok(StreamEnd::Closed);
                                        }
                                    }
                                }
                                if !tx.open {
                                    self.commit(&file, end_pos, &mut tx, (&mut pending, &mut rows), cursor, out).await?;
                                }
                            }
                        }
                    }
                    EventType::XID_EVENT => self.commit(&file, end_pos, &mut tx, (&mut pending, &mut rows), cursor, out).await?,
                    EventType::TABLE_MAP_EVENT => {
                        if let Ok(Some(mysql_async::binlog::events::EventData::TableMapEvent(t))) = ev.read_data() {
                            if !self.layouts.contains_key(&t.table_id()) {
                                let layout = self.layout_for(&t).await?;
                                self.layouts.insert(t.table_id(), layout);
                            }
                        }
                    }
                    EventType::WRITE_ROWS_EVENT_V1
                    | EventType::UPDATE_ROWS_EVENT_V1
                    | EventType::DELETE_ROWS_EVENT_V1
                    | EventType::WRITE_ROWS_EVENT
                    | EventType::UPDATE_ROWS_EVENT
                    | EventType::DELETE_ROWS_EVENT
                    | EventType::PARTIAL_UPDATE_ROWS_EVENT => {
                        let Ok(Some(mysql_async::binlog::events::EventData::RowsEvent(re))) = ev.read_data() else {
                            return Err(SluiceError::permanent(format!("undecodable rows event at {file}:{end_pos}")));
                        };
                        let Some(Some(layout)) = self.layouts.get(&re.table_id()).cloned() else { continue };
                        let info = Arc::new(SourceInfo {
                            connector: crate::CONNECTOR,
                            file: file.clone(),
                            pos: end_pos.saturating_sub(u64::from(hdr.event_size())),
                            gtid: tx.gtid.clone(),
                            server_id: hdr.server_id(),
                            snapshot: false,
                            replayed: cursor.carry_snapshot.is_some(),
                        });
                        let txid = tx.id(&file);
                        let ts_ms = i64::from(hdr.timestamp()) * 1000;
                        if let Some(w) = self.window.as_mut().filter(|w| w.table == layout.schema.id) {
                            // The watermark window looks at this table's changes as they come.
                            rows.settle(true, cursor, &mut pending).await?;
                            let from = pending.len();
                            decode_rows(&re, &layout, cursor, &info, &txid, ts_ms, &mut pending)?;
                            w.observe(&pending[from..]);
                        } else {
                            drop(re);
                            rows.push(RowsJob { event: ev, layout, info, tx: txid, ts_ms });
                            rows.settle(false, cursor, &mut pending).await?;
                        }
                        if pending.len() >= BATCH && !send(out, SourceMsg::Events(std::mem::take(&mut pending))).await {
                            return Ok(StreamEnd::Closed);
                        }
                    }
                    EventType::HEARTBEAT_EVENT if !tx.open => {
                        // Idle: let the pipeline commit and measure, and notice we caught up.
                        let cp = checkpoint(cursor);
                        if !send(out, SourceMsg::Checkpoint(cp)).await || !send(out, SourceMsg::Idle).await {
                            return Ok(StreamEnd::Closed);
                        }
                    }
                    _ => {}
                }
            }
            // Between transactions every event end is a safe resume point; moving there lets
            // `--once` see that it reached the end even when the last events are not commits.
            let is_rotate = raw_type == EventType::ROTATE_EVENT as u8;
            let idle = pending.is_empty() && rows.is_empty();
            if !is_rotate && !tx.open && end_pos > cursor.committed.binlog.pos && cursor.committed.binlog.file == file && idle {
                cursor.committed.binlog.pos = end_pos;
            }
            if out.is_closed() {
                return Ok(StreamEnd::Closed);
            }
            let yielding = self.yield_every.is_some_and(|every| started.elapsed() >= every) && !tx.open && idle;
            let end = match self.check_reached(cursor, out, until).await? {
                None if yielding => Some(StreamEnd::Yielded),
                end => end,
            };
            if let Some(end) = end {
                if end != StreamEnd::Closed {
                    self.live = Some((stream, file));
                }
                return Ok(end);
            }
        }
    }

    async fn open(&mut self, from: &BinlogPos) -> Result<BinlogStream, SluiceError> {
        let shared = self.shared;
        let mut conn = crate::conn::connect(&shared.source.url).await?;
        let period_ns = shared.source.heartbeat.0.as_nanos().max(1_000_000);
        let mut setup = format!("SET @master_heartbeat_period = {period_ns}");
        if shared.flavor == Flavor::MariaDb {
            // Real GTID events instead of BEGIN queries, and no padding dummy events.
            setup.push_str("; SET @mariadb_slave_capability = 4");
        }
        conn.query_drop(setup).await.map_err(|e| classify(e, "prepare the binlog connection"))?;
        let req = BinlogStreamRequest::new(shared.source.server_id.get()).with_filename(from.file.as_bytes()).with_pos(from.pos);
        info!(position = %from, "streaming binlog");
        conn.get_binlog_stream(req).await.map_err(|e| classify(e, &format!("start binlog stream at {from}")))
    }

    /// Ends a transaction: sends its events and a checkpoint after it.
    async fn commit(
        &mut self,
        file: &str,
        end_pos: u64,
        tx: &mut Tx,
        (pending, rows): (&mut Vec<ChangeEvent>, &mut RowsQueue),
        cursor: &mut Cursor,
        out: &mpsc::Sender<SourceMsg>,
    ) -> Result<(), SluiceError> {
        rows.settle(true, cursor, pending).await?;
        cursor.committed = MysqlPosition {
            binlog: BinlogPos { file: file.to_string(), pos: end_pos },
            gtid: tx.gtid.clone().or_else(|| cursor.committed.gtid.clone()),
            snapshot: cursor.carry_snapshot.clone(),
        };
        cursor.committed_seq = cursor.seq;
        *tx = Tx::default();
        if !pending.is_empty() {
            send(out, SourceMsg::Events(std::mem::take(pending))).await;
        }
        send(out, SourceMsg::Checkpoint(checkpoint(cursor))).await;
        Ok(())
    }

    /// `Some` when the stream should end here; sends `CaughtUp` once when the target is reached.
    async fn check_reached(
        &mut self,
        cursor: &mut Cursor,
        out: &mpsc::Sender<SourceMsg>,
        until: Option<&BinlogPos>,
    ) -> Result<Option<StreamEnd>, SluiceError> {
        if let Some(target) = &cursor.caught_up_at {
            if cursor.committed.binlog >= *target {
                cursor.caught_up_at = None;
                if !send(out, SourceMsg::CaughtUp).await {
                    return Ok(Some(StreamEnd::Closed));
                }
            }
        }
        Ok(until.filter(|u| cursor.committed.binlog >= **u).map(|_| StreamEnd::Reached))
    }

    /// A statement other than BEGIN/COMMIT: schema changes invalidate what we know.
    fn on_statement(&mut self, sql: &str, db: &str) {
        if is_ddl(sql) {
            debug!(db = %db, "schema change in the binlog: refreshing table layouts");
            self.layouts.clear();
            self.infos.clear();
            if sql.trim_start().get(..8).is_some_and(|w| w.eq_ignore_ascii_case("TRUNCATE")) {
                warn!(db = %db, "TRUNCATE TABLE seen in the binlog: it is not propagated as row deletes");
            }
        }
    }

    async fn layout_for(&mut self, t: &mysql_async::binlog::events::TableMapEvent<'_>) -> Result<Option<Arc<Layout>>, SluiceError> {
        let id = TableId::new(t.database_name(), t.table_name());
        if !self.shared.source.captures(&id.db, &id.table) {
            return Ok(None);
        }
        if !self.infos.contains_key(&id) {
            // The table may be gone by now (dropped later in the binlog): then rely on the
            // binlog's own metadata.
            if let Ok(info) = load_table(self.meta_conn, &id).await {
                self.infos.insert(id.clone(), info);
            }
        }
        let mut layout = layout::build(t, self.infos.get(&id), self.collations)?;
        self.shared.source.apply_keys(Arc::make_mut(&mut layout.schema));
        Ok(Some(Arc::new(layout)))
    }
}

fn checkpoint(cursor: &Cursor) -> Checkpoint {
    Checkpoint { position: cursor.committed.to_json(), next_seq: cursor.committed_seq }
}

async fn send(out: &mpsc::Sender<SourceMsg>, msg: SourceMsg) -> bool {
    out.send(msg).await.is_ok()
}
