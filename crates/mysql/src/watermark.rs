//! Snapshot by watermarks (DBLog; Flink CDC's incremental snapshot), for servers that do not
//! report the binlog position of a consistent read (MySQL 8, Aurora) and for users with only
//! SELECT, REPLICATION SLAVE and REPLICATION CLIENT: no lock, no long transaction, no special
//! status.
//!
//! The binlog is streamed from the position where the snapshot started, and each chunk is read
//! between two points of it: after the chunk's SELECT (plain autocommit reads, keyset-paginated)
//! the binlog's end is the chunk's high watermark. The stream is read up to there, its events
//! passing to the pipeline as usual, and every row of the chunk that an event in that window
//! touched (its key in a before or after image) is dropped from the chunk: the event carries the
//! row's newer state, because row images are full. The remaining rows are emitted as reads at
//! the high watermark, then a checkpoint that holds the binlog position and the chunk's last key.
//!
//! Why this is exact: a row the SELECT saw either changed in the window (then the binlog has it,
//! and the read is dropped) or it did not (then its state at the read is its state at the high
//! watermark, where the read is placed). Row changes committed after the high watermark come
//! after the read in the stream. A transaction is in the binlog before its commit becomes
//! visible to other sessions, so nothing the SELECT saw lies after the high watermark.
//!
//! A table without a key to chunk by is read in one streamed SELECT instead (see
//! [`read_whole`]): not held in memory, exact in the end, not free of regressions on the way.
//!
//! The stream does carry changes to rows whose chunk is not read yet; their later read shows a
//! state at least as new. Sinks merge by key, so the result is the source's table; a changelog
//! reader sees such a row's change before its read.
use std::collections::HashSet;
use std::sync::Arc;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sluice_core::checkpoint::Checkpoint;
use sluice_core::event::SourceInfo;
use sluice_core::source::SourceMsg;
use sluice_core::value::identity_of;
use sluice_core::{ChangeEvent, Op, Row, SluiceError, TableId};
use tokio::sync::mpsc;
use tracing::info;

use crate::binlog::{BinlogReader, Cursor, StreamEnd};
use crate::conn::classify;
use crate::position::{BinlogPos, SnapshotProgress};
use crate::progress::{progress_bar, Progress};
use crate::schema::TableInfo;
use crate::snapshot::{decode_row, highest_key, keyset, nth_key, refuse_duplicate_keys, select_sql, stream_rows, text_of};
use crate::source::{master_position, Shared};

const BATCH: usize = 1024;

/// The rows of one open chunk that binlog events touched, by identity (the key columns, or every
/// column of a table without key; [`identity_of`]: the snapshot and the binlog decode a stored
/// datum to the same `Value`, tests/types.rs, so equal rows give equal bytes).
pub struct Window {
    pub table: TableId,
    cols: Vec<usize>,
    touched: HashSet<Box<[u8]>>,
    buf: Vec<u8>,
}

impl Window {
    fn new(table: &TableInfo) -> Self {
        let s = &table.schema;
        let cols = if s.key.is_empty() { (0..s.columns.len()).collect() } else { s.key.clone() };
        Self { table: s.id.clone(), cols, touched: HashSet::new(), buf: Vec::with_capacity(64) }
    }

    /// Notes the rows that `events` (of this window's table) change.
    pub fn observe(&mut self, events: &[ChangeEvent]) {
        for ev in events {
            for row in [&ev.before, &ev.after].into_iter().flatten() {
                identity_of(row, &self.cols, &mut self.buf);
                if !self.touched.contains(self.buf.as_slice()) {
                    self.touched.insert(self.buf.as_slice().into());
                }
            }
        }
    }

    fn touches(&mut self, row: &Row) -> bool {
        identity_of(row, &self.cols, &mut self.buf);
        self.touched.contains(self.buf.as_slice())
    }
}

/// Reads every table not yet done in `progress` by watermarks, streaming the binlog from
/// `cursor` meanwhile. Returns false if the pipeline closed the channel. On return `cursor` is
/// past the last chunk's high watermark, with the snapshot finished.
pub async fn read(
    shared: &Shared,
    reader: &mut BinlogReader<'_>,
    tables: &[TableInfo],
    mut progress: SnapshotProgress,
    cursor: &mut Cursor,
    out: &mpsc::Sender<SourceMsg>,
) -> Result<bool, SluiceError> {
    progress.watermark = true;
    let parallel = shared.snapshot.parallel.get() as usize;
    let mut readers = Vec::with_capacity(parallel);
    for _ in 0..parallel {
        let mut c = crate::conn::connect(&shared.source.url).await?;
        c.query_drop("SET SESSION time_zone = '+00:00'; SET NAMES utf8mb4")
            .await
            .map_err(|e| classify(e, "prepare the snapshot connection"))?;
        readers.push(c);
    }
    let wanted = |name: &String| progress.only.as_ref().is_none_or(|only| only.contains(name)) && !progress.done.contains(name);
    let todo: Vec<&TableInfo> = tables.iter().filter(|t| wanted(&t.schema.id.to_string())).collect();
    let (mut bar, estimates) = progress_bar(&mut readers[0], &todo).await;
    let chunk = shared.snapshot.chunk_size.get() as usize;
    cursor.carry_snapshot = Some(progress.clone());
    // `run --once` stops at CaughtUp: not before the tables asked for are read.
    let caught_up_at = cursor.caught_up_at.take();
    for (table, estimated_rows) in todo.into_iter().zip(estimates) {
        let name = table.schema.id.to_string();
        let mut last_key = progress.current.take().filter(|c| c.table == name).map(|c| c.key(shared.sealer.as_ref())).transpose()?;
        let keyset = keyset(table);
        info!(table = %name, resumed = last_key.is_some(), method = "watermark", "snapshotting table");
        if !bar.start_table(&table.schema.id, estimated_rows, out).await {
            return Ok(false);
        }
        if table.schema.configured_key && last_key.is_none() {
            refuse_duplicate_keys(&mut readers[0], table).await?;
        }
        if !keyset {
            if !read_whole(table, &mut readers[0], reader, cursor, out, &mut bar).await? {
                return Ok(false);
            }
            progress.advance(&name, None, shared.sealer.as_ref());
            if !checkpoint(cursor, Some(&progress), out).await || !bar.finish_table(&table.schema.id, estimated_rows, out).await {
                return Ok(false);
            }
            continue;
        }
        // Chunks stop at the highest key of now: rows inserted above it later come from the
        // binlog, so a table growing at its end faster than chunks are read still finishes.
        let upto = highest_key(&mut readers[0], table).await?;
        loop {
            let round = plan(&mut readers[0], table, last_key.as_ref(), upto.as_ref(), chunk, parallel).await?;
            let reads = round.iter().zip(readers.iter_mut()).map(|(r, c)| select(c, table, &r.sql, r.limited.then_some(chunk)));
            let mut results = futures_util::future::try_join_all(reads).await?;
            let high = master_position(&mut readers[0]).await?;
            // Only the last range of a round is limited: a full one means rows are left after it.
            let (last_rows, key) = results.pop().unwrap_or_default();
            let more = round.last().is_some_and(|r| r.limited) && last_rows.len() == chunk;
            let mut rows: Vec<Row> = results.into_iter().flat_map(|(rows, _)| rows).collect();
            rows.extend(last_rows);
            reader.window = Some(Window::new(table));
            if !stream_to(reader, cursor, out, &high).await? {
                return Ok(false);
            }
            let mut window = reader.window.take().unwrap_or_else(|| Window::new(table));
            let read = rows.len();
            if !emit(table, rows, &mut window, cursor, out).await {
                return Ok(false);
            }
            bar.inc(read as u64);
            last_key = if more { Some(key.unwrap_or_default()) } else { None };
            progress.advance(&name, last_key.as_deref(), shared.sealer.as_ref());
            if !checkpoint(cursor, Some(&progress), out).await {
                return Ok(false);
            }
            if progress.current.is_none() {
                if !bar.finish_table(&table.schema.id, estimated_rows, out).await {
                    return Ok(false);
                }
                break;
            }
        }
    }
    bar.finish_and_clear();
    cursor.caught_up_at = caught_up_at;
    info!(rows = cursor.seq, position = %cursor.committed.binlog, "snapshot complete; streaming the binlog on");
    Ok(checkpoint(cursor, None, out).await)
}

/// One SELECT of a round.
struct Range {
    sql: String,
    /// `LIMIT chunk`: the last range of a round, whose last key starts the next round.
    limited: bool,
}

/// The ranges one round reads at once, one per connection: `parallel - 1` ranges of `chunk`
/// rows each, bounded by keys the server finds walking its index, then one `LIMIT chunk` range.
/// Fewer when the table ends first.
async fn plan(
    conn: &mut Conn,
    table: &TableInfo,
    after: Option<&Vec<Option<String>>>,
    upto: Option<&Vec<Option<String>>>,
    chunk: usize,
    parallel: usize,
) -> Result<Vec<Range>, SluiceError> {
    let mut ranges = Vec::with_capacity(parallel);
    let mut lo = after.cloned();
    for _ in 1..parallel {
        match nth_key(conn, table, lo.as_deref(), upto.map(Vec::as_slice), chunk).await? {
            Some(hi) => {
                ranges.push(Range { sql: select_sql(table, lo.as_deref(), Some(&hi), Some(usize::MAX)), limited: false });
                lo = Some(hi);
            }
            None => {
                ranges.push(Range { sql: select_sql(table, lo.as_deref(), upto.map(Vec::as_slice), Some(usize::MAX)), limited: false });
                return Ok(ranges);
            }
        }
    }
    ranges.push(Range { sql: select_sql(table, lo.as_deref(), upto.map(Vec::as_slice), Some(chunk)), limited: true });
    Ok(ranges)
}

/// One chunk's rows, decoded, and the key of row number `limit` (where the next round starts).
async fn select(
    conn: &mut Conn,
    table: &TableInfo,
    sql: &str,
    limit: Option<usize>,
) -> Result<(Vec<Row>, Option<Vec<Option<String>>>), SluiceError> {
    let id = &table.schema.id;
    let what = || format!("snapshot read of {id}");
    let mut result = conn.query_iter(sql).await.map_err(|e| classify(e, &what()))?;
    let mut rows = Vec::with_capacity(limit.unwrap_or(0).min(1 << 16));
    let mut last_key = None;
    while let Some(mut row) = result.next().await.map_err(|e| classify(e, &what()))? {
        if Some(rows.len() + 1) == limit {
            last_key = Some(table.schema.key.iter().map(|&k| text_of(row.as_ref(k))).collect());
        }
        rows.push(decode_row(table, &mut row)?);
    }
    Ok((rows, last_key))
}

/// A table without a key to read in chunks by is read in one SELECT whose rows go out as reads
/// as they arrive (it may be of any size: it is not held), then the binlog is read up to the
/// high watermark. A change in that window comes after the read of its row, and row images are
/// full, so the last change of each row decides its state: sinks end with the source's table
/// (a changelog reader may see a read followed by changes older than it).
async fn read_whole(
    table: &TableInfo,
    conn: &mut Conn,
    reader: &mut BinlogReader<'_>,
    cursor: &mut Cursor,
    out: &mpsc::Sender<SourceMsg>,
    bar: &mut Progress,
) -> Result<bool, SluiceError> {
    let info = Arc::new(read_info(cursor));
    let sql = select_sql(table, None, None, None);
    let (rows, _) = stream_rows(conn, table, &sql, &info, chrono::Utc::now().timestamp_millis(), None, cursor, out, bar).await?;
    if rows.is_none() {
        return Ok(false);
    }
    let high = master_position(conn).await?;
    stream_to(reader, cursor, out, &high).await
}

/// Streams the binlog up to `high`, a window's end, without yielding for snapshot requests on
/// the way. False if the pipeline closed the channel.
async fn stream_to(
    reader: &mut BinlogReader<'_>,
    cursor: &mut Cursor,
    out: &mpsc::Sender<SourceMsg>,
    high: &BinlogPos,
) -> Result<bool, SluiceError> {
    let yield_every = reader.yield_every.take();
    let end = reader.stream(cursor, out, Some(high)).await;
    reader.yield_every = yield_every;
    Ok(end? != StreamEnd::Closed)
}

/// Where reads emitted now say they come from: the cursor's binlog position.
fn read_info(cursor: &Cursor) -> SourceInfo {
    SourceInfo {
        connector: crate::CONNECTOR,
        file: cursor.committed.binlog.file.clone(),
        pos: cursor.committed.binlog.pos,
        gtid: cursor.committed.gtid.clone(),
        server_id: 0,
        snapshot: true,
        replayed: false,
    }
}

/// Sends the rows the window did not touch as reads at the cursor's position.
async fn emit(table: &TableInfo, rows: Vec<Row>, window: &mut Window, cursor: &mut Cursor, out: &mpsc::Sender<SourceMsg>) -> bool {
    let info = Arc::new(read_info(cursor));
    let ts_ms = chrono::Utc::now().timestamp_millis();
    let mut batch = Vec::with_capacity(BATCH.min(rows.len()));
    for row in rows {
        if window.touches(&row) {
            continue;
        }
        batch.push(ChangeEvent {
            op: Op::Read,
            schema: table.schema.clone(),
            before: None,
            after: Some(row),
            ts_ms,
            tx: None,
            seq: cursor.seq,
            source: Arc::clone(&info),
        });
        cursor.seq += 1;
        if batch.len() == BATCH && out.send(SourceMsg::Events(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))).await.is_err() {
            return false;
        }
    }
    batch.is_empty() || out.send(SourceMsg::Events(batch)).await.is_ok()
}

/// A checkpoint after the reads: the binlog resumes exactly here, the snapshot after `progress`
/// (`None`: the snapshot is finished).
async fn checkpoint(cursor: &mut Cursor, progress: Option<&SnapshotProgress>, out: &mpsc::Sender<SourceMsg>) -> bool {
    cursor.carry_snapshot = progress.cloned();
    cursor.committed.snapshot = progress.cloned();
    cursor.committed_seq = cursor.seq;
    cursor.sent_below = cursor.sent_below.max(cursor.seq);
    let cp = Checkpoint { position: cursor.committed.to_json(), next_seq: cursor.seq };
    out.send(SourceMsg::Checkpoint(cp)).await.is_ok()
}
