//! `MysqlSource`: snapshot as configured, then stream the binlog, reconnecting with backoff.

use async_trait::async_trait;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sluice_core::checkpoint::Checkpoint;
use sluice_core::config::{SnapshotConfig, SnapshotMethod, SnapshotMode};

use crate::config::MysqlConfig;
use sluice_core::requests::SnapshotRequests;
use sluice_core::retry::{Retry, RetryPolicy};
use sluice_core::source::{Source, SourceMsg};
use sluice_core::SluiceError;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::binlog::{BinlogReader, Cursor, StreamEnd};
use sluice_core::seal::Sealer;

use crate::conn::{classify, connect, flavor, Flavor};
use crate::layout::Collations;
use crate::position::{BinlogPos, MysqlPosition, SnapshotProgress};
use crate::schema::{list_tables, load_table, TableInfo};
use crate::snapshot::Snapshot;
use crate::watermark;

/// What every part of the source reads.
pub struct Shared {
    pub source: MysqlConfig,
    pub snapshot: SnapshotConfig,
    pub flavor: Flavor,
    /// Seals snapshot positions (which hold key values) when masking is configured.
    pub sealer: Option<Sealer>,
}

pub struct MysqlSource {
    source: MysqlConfig,
    snapshot: SnapshotConfig,
    sealer: Option<Sealer>,
    /// The highest `seq` a sink already holds (see `Source::sinks_hold_up_to`).
    held: Option<u64>,
    requests: Option<SnapshotRequests>,
}

impl MysqlSource {
    /// `sealer` seals snapshot positions (which hold key values): give one when masking is
    /// configured (see `Config::snapshot_sealer`).
    pub fn new(source: MysqlConfig, snapshot: SnapshotConfig, sealer: Option<Sealer>) -> Self {
        Self { source, snapshot, sealer, held: None, requests: None }
    }
}

#[async_trait]
impl Source for MysqlSource {
    fn sinks_hold_up_to(&mut self, seq: u64) {
        self.held = Some(seq);
    }

    fn snapshot_requests(&mut self, requests: SnapshotRequests) {
        self.requests = Some(requests);
    }

    async fn run(
        self: Box<Self>,
        resume: Option<Checkpoint>,
        out: mpsc::Sender<SourceMsg>,
        committed: watch::Receiver<Option<Checkpoint>>,
    ) -> Result<(), SluiceError> {
        let mut meta = connect(&self.source.url).await?;
        let shared = Shared { flavor: flavor(&mut meta).await?, source: self.source, snapshot: self.snapshot, sealer: self.sealer };
        let collations = load_collations(&mut meta).await?;
        let end = master_position(&mut meta).await?;
        let resume_pos = resume.as_ref().map(|c| MysqlPosition::from_json(&c.position)).transpose()?;
        let seq = resume.as_ref().map_or(0, |c| c.next_seq);

        let mode = shared.snapshot.mode;
        let mut cursor = match resume_pos {
            // An interrupted snapshot resumes, whatever the mode, by the method it started with.
            Some(pos) if pos.snapshot.as_ref().is_some_and(|p| p.watermark) => {
                let seq = above_held(seq, self.held);
                ensure_available(&mut meta, &pos.binlog).await?;
                let progress = pos.snapshot.clone().unwrap_or_default();
                info!(done = progress.done.len(), position = %pos.binlog, "resuming an interrupted watermark snapshot");
                let Some(c) = watermark_snapshot(&shared, &mut meta, &collations, pos, progress, seq, &out).await? else { return Ok(()) };
                c
            }
            Some(pos) if pos.snapshot.is_some() => {
                let seq = above_held(seq, self.held);
                let Some(c) = resume_snapshot(&shared, &mut meta, &collations, pos, seq, &out).await? else { return Ok(()) };
                c
            }
            Some(pos) if mode != SnapshotMode::Always => Cursor::new(pos, seq, None),
            None if mode == SnapshotMode::Never => {
                let seq = above_held(seq, self.held);
                info!(position = %end, "snapshot mode 'never': streaming from the current binlog end");
                let pos = MysqlPosition { binlog: end.clone(), gtid: None, snapshot: None };
                let cursor = Cursor::new(pos, seq, None);
                let cp = Checkpoint { position: cursor.committed.to_json(), next_seq: seq };
                if out.send(SourceMsg::Checkpoint(cp)).await.is_err() {
                    return Ok(());
                }
                cursor
            }
            _ if use_watermark(&shared, &mut meta).await? => {
                let seq = above_held(seq, self.held);
                // The binlog is streamed from here while the chunks are read; this first
                // checkpoint makes a crash resume the snapshot rather than skip it.
                let progress = SnapshotProgress { watermark: true, ..SnapshotProgress::default() };
                let pos = MysqlPosition { binlog: end.clone(), gtid: None, snapshot: Some(progress.clone()) };
                info!(position = %end, "snapshot by watermarks: reading chunks while streaming the binlog");
                if out.send(SourceMsg::Checkpoint(Checkpoint { position: pos.to_json(), next_seq: seq })).await.is_err() {
                    return Ok(());
                }
                let Some(c) = watermark_snapshot(&shared, &mut meta, &collations, pos, progress, seq, &out).await? else { return Ok(()) };
                c
            }
            _ => {
                let seq = above_held(seq, self.held);
                let mut snap = Snapshot::begin(&shared).await?;
                // A checkpoint before the first row: once committed, a crash at any later point
                // resumes this snapshot, replaying the binlog from its position, so changes made
                // meanwhile (deletes included) reach sinks that already hold rows of it.
                let start = MysqlPosition { binlog: snap.pos.clone(), gtid: None, snapshot: Some(SnapshotProgress::default()) };
                if out.send(SourceMsg::Checkpoint(Checkpoint { position: start.to_json(), next_seq: seq })).await.is_err() {
                    return Ok(());
                }
                let tables = load_tables(&shared, &mut meta).await?;
                let mut cursor = Cursor::new(MysqlPosition { binlog: snap.pos.clone(), gtid: None, snapshot: None }, seq, None);
                if !finish_snapshot(&shared, &mut snap, &tables, SnapshotProgress::default(), &mut cursor, &out).await? {
                    return Ok(());
                }
                cursor
            }
        };
        cursor.caught_up_at = Some(end);
        stream_forever(&shared, &mut meta, &collations, cursor, &out, committed, self.requests.as_ref()).await
    }
}

/// Reads the snapshot by watermarks from `pos` (new or resumed), streaming the binlog from there;
/// `None` if the pipeline closed the channel.
async fn watermark_snapshot(
    shared: &Shared,
    meta: &mut Conn,
    collations: &Collations,
    pos: MysqlPosition,
    progress: SnapshotProgress,
    seq: u64,
    out: &mpsc::Sender<SourceMsg>,
) -> Result<Option<Cursor>, SluiceError> {
    let tables = load_tables(shared, meta).await?;
    let mut cursor = Cursor::new(pos, seq, None);
    let mut reader = BinlogReader::new(shared, meta, collations);
    Ok(watermark::read(shared, &mut reader, &tables, progress, &mut cursor, out).await?.then_some(cursor))
}

/// `[snapshot] method`: `auto` reads by watermarks where the server does not report the binlog
/// position of a consistent read (MySQL, Aurora; MariaDB and Percona Server do).
async fn use_watermark(shared: &Shared, meta: &mut Conn) -> Result<bool, SluiceError> {
    Ok(match shared.snapshot.method {
        SnapshotMethod::Consistent => false,
        SnapshotMethod::Watermark => true,
        SnapshotMethod::Auto => {
            let status: Vec<(String, String)> =
                meta.query("SHOW STATUS LIKE 'binlog_snapshot_file'").await.map_err(|e| classify(e, "SHOW STATUS"))?;
            status.is_empty()
        }
    })
}

/// Only an exact binlog resume reproduces the `seq`s a sink may already hold. A snapshot (new or
/// resumed, which reads at a new point and replays the binlog in between) or a fresh start at the
/// binlog end yields other changes, so they are numbered above whatever a sink holds, and none is
/// skipped as "already applied".
fn above_held(seq: u64, held: Option<u64>) -> u64 {
    match held {
        Some(h) if h >= seq => {
            info!(
                committed_next_seq = seq,
                numbered_from = h + 1,
                "a sink holds changes past the checkpoint: the snapshot numbers above them"
            );
            h + 1
        }
        _ => seq,
    }
}

/// Reads the snapshot to the end and sends the checkpoint that hands over to the binlog.
async fn finish_snapshot(
    shared: &Shared,
    snap: &mut Snapshot,
    tables: &[TableInfo],
    progress: SnapshotProgress,
    cursor: &mut Cursor,
    out: &mpsc::Sender<SourceMsg>,
) -> Result<bool, SluiceError> {
    if !snap.read(shared, tables, progress, cursor, out).await? {
        return Ok(false);
    }
    cursor.committed = MysqlPosition { binlog: snap.pos.clone(), gtid: None, snapshot: None };
    cursor.committed_seq = cursor.seq;
    cursor.sent_below = cursor.seq;
    let cp = Checkpoint { position: cursor.committed.to_json(), next_seq: cursor.seq };
    info!(rows = cursor.seq, position = %snap.pos, "snapshot complete; streaming the binlog from its position");
    Ok(out.send(SourceMsg::Checkpoint(cp)).await.is_ok())
}

/// Resumes a snapshot interrupted at P1: opens a new snapshot at P2, replays the binlog P1→P2
/// (bringing the rows already read up to P2), then reads the remaining chunks at P2. Changes
/// replayed for rows not read yet are real changes; the later reads show their P2 state.
async fn resume_snapshot(
    shared: &Shared,
    meta: &mut Conn,
    collations: &Collations,
    pos: MysqlPosition,
    seq: u64,
    out: &mpsc::Sender<SourceMsg>,
) -> Result<Option<Cursor>, SluiceError> {
    let progress = pos.snapshot.clone().unwrap_or_default();
    info!(done = progress.done.len(), position = %pos.binlog, "resuming an interrupted snapshot");
    let mut snap = Snapshot::begin(shared).await?;
    let mut cursor = Cursor::new(pos.clone(), seq, None);
    if snap.pos > pos.binlog {
        ensure_available(meta, &pos.binlog).await?;
        cursor.carry_snapshot = Some(progress.clone());
        let mut reader = BinlogReader::new(shared, meta, collations);
        if reader.stream(&mut cursor, out, Some(&snap.pos)).await? == StreamEnd::Closed {
            return Ok(None);
        }
        cursor.carry_snapshot = None;
    }
    let tables = load_tables(shared, meta).await?;
    if !finish_snapshot(shared, &mut snap, &tables, progress, &mut cursor, out).await? {
        return Ok(None);
    }
    Ok(Some(cursor))
}

/// Streams until the channel closes; reconnects on transient errors under the pipeline's retry
/// policy (for up to `reconnect_timeout` without progress), resuming at the last checkpoint
/// without re-sending events.
async fn stream_forever(
    shared: &Shared,
    meta: &mut Conn,
    collations: &Collations,
    mut cursor: Cursor,
    out: &mpsc::Sender<SourceMsg>,
    committed: watch::Receiver<Option<Checkpoint>>,
    requests: Option<&SnapshotRequests>,
) -> Result<(), SluiceError> {
    let mut retry = Retry::new(RetryPolicy::new(shared.source.reconnect_timeout.0));
    ensure_available(meta, &cursor.committed.binlog).await?;
    loop {
        let mut reader = BinlogReader::new(shared, meta, collations);
        reader.yield_every = requests.map(|_| REQUESTS_EVERY);
        let before = cursor.committed.clone();
        // Requests are looked at before streaming (a `--once` run takes them too) and then at
        // every yield.
        let err = loop {
            match snapshot_requested(shared, &mut reader, requests, &mut cursor, out).await {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err(e) => break e,
            }
            match reader.stream(&mut cursor, out, None).await {
                Ok(StreamEnd::Yielded) => {}
                Ok(_) => return Ok(()),
                Err(e) => break e,
            }
        };
        if cursor.committed != before {
            retry.succeeded();
        }
        let text = err.chain();
        let note = SluiceError::new(err.kind, format!("binlog connection lost: {text}"));
        let delay = retry.next(err).map_err(|e| e.context("binlog connection"))?;
        let _ = out.send(SourceMsg::Retrying(note)).await;
        let sinks_hold = committed.borrow().as_ref().map(|c| c.next_seq);
        warn!(error = %text, retry_in_ms = delay.as_millis() as u64, committed_next_seq = sinks_hold, "binlog connection lost; reconnecting");
        cursor.rewind();
        tokio::time::sleep(delay).await;
        match reconnect_meta(shared).await {
            Ok(c) => *meta = c,
            Err(e) if e.is_transient() => continue,
            Err(e) => return Err(e),
        }
        if let Err(e) = ensure_available(meta, &cursor.committed.binlog).await {
            if !e.is_transient() {
                return Err(e);
            }
        }
    }
}

/// How often streaming looks for `sluice snapshot` requests.
const REQUESTS_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Snapshots the requested tables by watermarks while streaming goes on. False if the pipeline
/// closed the channel.
async fn snapshot_requested(
    shared: &Shared,
    reader: &mut BinlogReader<'_>,
    requests: Option<&SnapshotRequests>,
    cursor: &mut Cursor,
    out: &mpsc::Sender<SourceMsg>,
) -> Result<bool, SluiceError> {
    let Some(requests) = requests else { return Ok(true) };
    for id in requests.pending() {
        if !shared.source.captures(&id.db, &id.table) {
            warn!(table = %id, "snapshot requested for a table [source] tables does not capture: ignored");
            requests.clear(&id);
            continue;
        }
        let mut table = match load_table(reader.meta_conn, &id).await {
            Ok(t) => t,
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => {
                warn!(table = %id, error = %e.chain(), "snapshot requested for a table that cannot be read: ignored");
                requests.clear(&id);
                continue;
            }
        };
        shared.source.apply_keys(std::sync::Arc::make_mut(&mut table.schema));
        info!(table = %id, "snapshot requested: reading the table by watermarks while streaming goes on");
        let progress = SnapshotProgress { watermark: true, only: Some(vec![id.to_string()]), ..SnapshotProgress::default() };
        if !watermark::read(shared, reader, std::slice::from_ref(&table), progress, cursor, out).await? {
            return Ok(false);
        }
        requests.clear(&id);
    }
    Ok(true)
}

async fn reconnect_meta(shared: &Shared) -> Result<Conn, SluiceError> {
    connect(&shared.source.url).await
}

async fn load_tables(shared: &Shared, meta: &mut Conn) -> Result<Vec<TableInfo>, SluiceError> {
    let ids = list_tables(meta, &shared.source).await?;
    if ids.is_empty() {
        warn!("no table matches [source] tables yet; new ones are captured from the binlog when they appear");
    }
    let mut tables = Vec::with_capacity(ids.len());
    for id in &ids {
        let mut t = load_table(meta, id).await?;
        shared.source.apply_keys(std::sync::Arc::make_mut(&mut t.schema));
        if t.schema.key.is_empty() {
            warn!(table = %id, "table has no primary key: its changes carry full row images; current-state sinks need key columns");
        }
        tables.push(t);
    }
    Ok(tables)
}

pub async fn load_collations(conn: &mut Conn) -> Result<Collations, SluiceError> {
    let rows: Vec<(u64, String)> = conn
        .query("SELECT ID, CHARACTER_SET_NAME FROM information_schema.COLLATIONS WHERE ID IS NOT NULL")
        .await
        .map_err(|e| classify(e, "read the server's collations"))?;
    Ok(rows.into_iter().map(|(id, cs)| (id as u16, cs)).collect())
}

/// The binlog end now (`SHOW MASTER STATUS`).
pub async fn master_position(conn: &mut Conn) -> Result<BinlogPos, SluiceError> {
    let row: Option<mysql_async::Row> = conn.query_first("SHOW MASTER STATUS").await.map_err(|e| classify(e, "SHOW MASTER STATUS"))?;
    let row = row.ok_or_else(|| {
        SluiceError::permanent("the server has no binary log (log_bin is OFF): start it with log_bin and binlog_format=ROW")
    })?;
    let (Some(file), Some(pos)) = (row.get_opt::<String, _>(0).and_then(Result::ok), row.get_opt::<u64, _>(1).and_then(Result::ok)) else {
        return Err(SluiceError::permanent("SHOW MASTER STATUS returned no readable binlog file and position"));
    };
    Ok(BinlogPos { file, pos })
}

/// A resume position whose binlog file the server no longer has is a permanent error.
pub async fn ensure_available(conn: &mut Conn, pos: &BinlogPos) -> Result<(), SluiceError> {
    let rows: Vec<mysql_async::Row> = conn.query("SHOW BINARY LOGS").await.map_err(|e| classify(e, "SHOW BINARY LOGS"))?;
    let files: Vec<String> = rows.iter().filter_map(|r| r.get::<String, _>(0)).collect();
    if files.iter().any(|f| f == &pos.file) {
        return Ok(());
    }
    Err(SluiceError::permanent(format!(
        "binlog file {} needed to resume at {pos} is no longer on the server (purged; oldest is {}). \
         Changes since then are lost to sluice: take a new snapshot by running once with [snapshot] mode = \"always\" \
         (or remove the state dir), and raise the server's binlog retention (expire_logs_days / binlog_expire_logs_seconds)",
        pos.file,
        files.first().map(String::as_str).unwrap_or("none")
    )))
}
