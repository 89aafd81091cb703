//! The binlog reader: one replication connection, decoded into change events and checkpoints.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use mysql_async::binlog::events::{Event, RowsEventData};
use mysql_async::binlog::row::BinlogRow;
use mysql_async::binlog::EventType;
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStream, BinlogStreamRequest, Conn};
use sluice_core::checkpoint::Checkpoint;
use sluice_core::event::SourceInfo;
use sluice_core::source::SourceMsg;
use sluice_core::{ChangeEvent, Op, Row, SluiceError, TableId};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::conn::{classify, Flavor};
use crate::decode::from_binlog;
use crate::layout::{self, Collations, Layout};
use crate::position::{BinlogPos, MysqlPosition, SnapshotProgress};
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

/// Per-transaction state.
#[derive(Default)]
struct Tx {
    open: bool,
    start: u64,
    gtid: Option<String>,
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
            let Ok(ty) = hdr.event_type() else { continue };
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
                EventType::GTID_EVENT => {
                    if let Ok(Some(mysql_async::binlog::events::EventData::GtidEvent(g))) = ev.read_data() {
                        let sid = g.sid();
                        let uuid = sid.iter().map(|b| format!("{b:02x}")).collect::<String>();
                        let u = format!("{}-{}-{}-{}-{}", &uuid[0..8], &uuid[8..12], &uuid[12..16], &uuid[16..20], &uuid[20..]);
                        tx = Tx { gtid: Some(format!("{u}:{}", g.gno())), ..Tx::default() };
                        tx.start = end_pos.saturating_sub(u64::from(hdr.event_size()));
                    }
                }
                EventType::QUERY_EVENT => {
                    let Ok(Some(mysql_async::binlog::events::EventData::QueryEvent(q))) = ev.read_data() else { continue };
                    let sql = q.query();
                    let mut words = sql.split_whitespace().map(str::to_ascii_uppercase);
                    let word = words.next().unwrap_or_default();
                    let rollback_to_savepoint = word == "ROLLBACK" && words.next().as_deref() == Some("TO");
                    match word.as_str() {
                        "SAVEPOINT" => {}
                        "ROLLBACK" if rollback_to_savepoint => {}
                        "BEGIN" => {
                            tx.open = true;
                            if tx.gtid.is_none() {
                                tx.start = end_pos.saturating_sub(u64::from(hdr.event_size()));
                            }
                        }
                        "COMMIT" | "ROLLBACK" | "XA" => {
                            if word == "ROLLBACK" {
                                warn!("a transaction touching non-transactional tables was rolled back; its logged changes are kept, as the server kept them");
                            }
                            self.commit(&file, end_pos, &mut tx, &mut pending, cursor, out).await?;
                        }
                        _ => {
                            // DDL commits implicitly and is its own transaction.
                            self.on_statement(&sql, &q.schema());
                            if !tx.open {
                                self.commit(&file, end_pos, &mut tx, &mut pending, cursor, out).await?;
                            }
                        }
                    }
                }
                EventType::XID_EVENT => self.commit(&file, end_pos, &mut tx, &mut pending, cursor, out).await?,
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
                    let info = SourceInfo {
                        connector: crate::CONNECTOR,
                        file: file.clone(),
                        pos: end_pos.saturating_sub(u64::from(hdr.event_size())),
                        gtid: tx.gtid.clone(),
                        server_id: hdr.server_id(),
                        snapshot: false,
                    };
                    let txid = tx.gtid.clone().unwrap_or_else(|| format!("{file}:{}", tx.start));
                    let ts_ms = i64::from(hdr.timestamp()) * 1000;
                    let from = pending.len();
                    decode_rows(&stream, &re, &layout, cursor, &info, &txid, ts_ms, &mut pending)?;
                    if let Some(w) = self.window.as_mut().filter(|w| w.table == layout.schema.id) {
                        w.observe(&pending[from..]);
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
            // Between transactions every event end is a safe resume point; moving there lets
            // `--once` see that it reached the end even when the last events are not commits.
            let is_rotate = raw_type == EventType::ROTATE_EVENT as u8;
            if !is_rotate && !tx.open && end_pos > cursor.committed.binlog.pos && cursor.committed.binlog.file == file && pending.is_empty()
            {
                cursor.committed.binlog.pos = end_pos;
            }
            if out.is_closed() {
                return Ok(StreamEnd::Closed);
            }
            let yielding = self.yield_every.is_some_and(|every| started.elapsed() >= every) && !tx.open && pending.is_empty();
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
        pending: &mut Vec<ChangeEvent>,
        cursor: &mut Cursor,
        out: &mpsc::Sender<SourceMsg>,
    ) -> Result<(), SluiceError> {
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
        let upper = sql.trim_start().get(..16).unwrap_or(sql).to_ascii_uppercase();
        if ["ALTER", "CREATE", "DROP", "RENAME", "TRUNCATE"].iter().any(|k| upper.starts_with(k)) {
            debug!(db = %db, "schema change in the binlog: refreshing table layouts");
            self.layouts.clear();
            self.infos.clear();
            if upper.starts_with("TRUNCATE") {
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

fn mariadb_gtid(ev: &Event) -> Tx {
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

#[allow(clippy::too_many_arguments)]
fn decode_rows(
    stream: &BinlogStream,
    re: &RowsEventData<'_>,
    layout: &Layout,
    cursor: &mut Cursor,
    info: &SourceInfo,
    txid: &str,
    ts_ms: i64,
    out: &mut Vec<ChangeEvent>,
) -> Result<(), SluiceError> {
    let id = &layout.schema.id;
    let tme = stream
        .get_tme(re.table_id())
        .ok_or_else(|| SluiceError::permanent(format!("rows event for {id} without its table map at {}:{}", info.file, info.pos)))?;
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
        let before = before.map(|r| to_row(r, layout)).transpose()?;
        let after = after.map(|r| to_row(r, layout)).transpose()?;
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

fn to_row(mut r: BinlogRow, layout: &Layout) -> Result<Row, SluiceError> {
    let id = &layout.schema.id;
    if r.len() != layout.types.len() {
        return Err(SluiceError::permanent(format!(
            "row image of {id} has {} of {} columns: the server must log full row images (SET GLOBAL binlog_row_image = 'FULL')",
            r.len(),
            layout.types.len()
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
