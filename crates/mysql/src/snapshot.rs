//! Consistent initial snapshot without locks: one REPEATABLE READ transaction started WITH
//! CONSISTENT SNAPSHOT, whose binlog position MariaDB reports exactly
//! (`binlog_snapshot_file/position`). Tables are read in keyset chunks, each followed by a
//! checkpoint, so memory stays bounded and a crash resumes after the last finished chunk.

use std::sync::Arc;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value as My};
use sluice_core::checkpoint::Checkpoint;
use sluice_core::event::SourceInfo;
use sluice_core::source::SourceMsg;
use sluice_core::{ChangeEvent, Op, SluiceError, SqlType};
use tokio::sync::mpsc;
use tracing::info;

use crate::binlog::Cursor;
use crate::conn::{classify, Flavor};
use crate::decode::from_text;
use crate::position::{BinlogPos, MysqlPosition, SnapshotProgress};
use crate::progress::{progress_bar, Progress};
use crate::schema::TableInfo;
use crate::source::Shared;

const BATCH: usize = 1024;

pub struct Snapshot {
    conn: Conn,
    pub pos: BinlogPos,
    ts_ms: i64,
}

impl Snapshot {
    /// Starts the snapshot transaction and reads its binlog position.
    pub async fn begin(shared: &Shared) -> Result<Self, SluiceError> {
        let mut conn = crate::conn::connect(&shared.source.url).await?;
        conn.query_drop(
            "SET SESSION time_zone = '+00:00'; SET NAMES utf8mb4; \
             SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ; START TRANSACTION WITH CONSISTENT SNAPSHOT",
        )
        .await
        .map_err(|e| classify(e, "start the snapshot transaction"))?;
        let status: Vec<(String, String)> =
            conn.query("SHOW STATUS LIKE 'binlog_snapshot_%'").await.map_err(|e| classify(e, "read the snapshot position"))?;
        let get = |k: &str| status.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.clone());
        let (Some(file), Some(pos)) = (get("Binlog_snapshot_file"), get("Binlog_snapshot_position")) else {
            let hint = if shared.flavor == Flavor::MySql {
                "MySQL has no binlog_snapshot_file/position status (MariaDB and Percona Server have); set [snapshot] method = \"watermark\" (or \"auto\", which picks it on MySQL)"
            } else {
                "is log_bin on?"
            };
            return Err(SluiceError::permanent(format!("the server does not report the binlog position of a consistent snapshot: {hint}")));
        };
        if file.is_empty() {
            return Err(SluiceError::permanent("the server reports no binlog file for the snapshot: enable log_bin"));
        }
        let pos = pos.parse().map_err(|_| {
            SluiceError::permanent(format!("the server reports a snapshot binlog position that is not a number ({pos:?}) for {file}"))
        })?;
        let pos = BinlogPos { file, pos };
        info!(position = %pos, "snapshot transaction started");
        Ok(Self { conn, pos, ts_ms: chrono::Utc::now().timestamp_millis() })
    }

    /// Reads every table not yet done in `progress`, sending reads and a checkpoint after each
    /// chunk. Returns false if the pipeline closed the channel.
    pub async fn read(
        &mut self,
        shared: &Shared,
        tables: &[TableInfo],
        mut progress: SnapshotProgress,
        cursor: &mut Cursor,
        out: &mpsc::Sender<SourceMsg>,
    ) -> Result<bool, SluiceError> {
        let todo: Vec<&TableInfo> = tables.iter().filter(|t| !progress.done.contains(&t.schema.id.to_string())).collect();
        let (mut bar, estimates) = progress_bar(&mut self.conn, &todo).await;
        let chunk = shared.snapshot.chunk_size.get() as usize;
        for (table, estimated_rows) in todo.into_iter().zip(estimates) {
            let name = table.schema.id.to_string();
            let mut last_key = progress.current.take().filter(|c| c.table == name).map(|c| c.key(shared.sealer.as_ref())).transpose()?;
            // Keyset chunks need an index on the key (a configured key may have none): otherwise
            // one streamed SELECT (resumed from the table's start) beats re-scanning the table
            // for every chunk.
            let keyset = keyset(table);
            info!(table = %name, resumed = last_key.is_some(), "snapshotting table");
            if !bar.start_table(&table.schema.id, estimated_rows, out).await {
                return Ok(false);
            }
            if table.schema.configured_key && last_key.is_none() {
                refuse_duplicate_keys(&mut self.conn, table).await?;
            }
            loop {
                let sql = select_sql(table, last_key.as_deref(), None, keyset.then_some(chunk));
                let (rows, key) = self.read_chunk(table, &sql, keyset.then_some(chunk), cursor, out, &mut bar).await?;
                let Some(rows) = rows else { return Ok(false) };
                last_key = if keyset && rows == chunk { Some(key.unwrap_or_default()) } else { None };
                progress.advance(&name, last_key.as_deref(), shared.sealer.as_ref());
                let cp = MysqlPosition { binlog: self.pos.clone(), gtid: None, snapshot: Some(progress.clone()) };
                cursor.committed_seq = cursor.seq;
                if out.send(SourceMsg::Checkpoint(Checkpoint { position: cp.to_json(), next_seq: cursor.seq })).await.is_err() {
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
        Ok(true)
    }

    /// One SELECT at the snapshot's position, streamed to the pipeline.
    async fn read_chunk(
        &mut self,
        table: &TableInfo,
        sql: &str,
        limit: Option<usize>,
        cursor: &mut Cursor,
        out: &mpsc::Sender<SourceMsg>,
        bar: &mut Progress,
    ) -> Result<(Option<usize>, Option<Vec<Option<String>>>), SluiceError> {
        let info = Arc::new(SourceInfo {
            connector: crate::CONNECTOR,
            file: self.pos.file.clone(),
            pos: self.pos.pos,
            gtid: None,
            server_id: 0,
            snapshot: true,
            replayed: false,
        });
        stream_rows(&mut self.conn, table, sql, &info, self.ts_ms, limit, cursor, out, bar).await
    }
}

/// Sends the rows of one SELECT to the pipeline as reads, in batches, as they arrive. Returns
/// the row count (`None` if the channel closed) and, when the SELECT returned `limit` rows, the
/// key of the last one (where the next chunk starts; only that row's key is kept).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn stream_rows(
    conn: &mut Conn,
    table: &TableInfo,
    sql: &str,
    info: &Arc<SourceInfo>,
    ts_ms: i64,
    limit: Option<usize>,
    cursor: &mut Cursor,
    out: &mpsc::Sender<SourceMsg>,
    bar: &mut Progress,
) -> Result<(Option<usize>, Option<Vec<Option<String>>>), SluiceError> {
    let id = &table.schema.id;
    let mut result = conn.query_iter(sql).await.map_err(|e| classify(e, &format!("snapshot read of {id}")))?;
    let mut batch = Vec::with_capacity(BATCH);
    let mut count = 0;
    let mut last_key = None;
    while let Some(mut row) = result.next().await.map_err(|e| classify(e, &format!("snapshot read of {id}")))? {
        if batch.len() == BATCH {
            bar.inc(BATCH as u64);
            if out.send(SourceMsg::Events(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))).await.is_err() {
                return Ok((None, None));
            }
        }
        count += 1;
        if Some(count) == limit {
            last_key = Some(table.schema.key.iter().map(|&k| text_of(row.as_ref(k))).collect());
        }
        let values = decode_row(table, &mut row)?;
        batch.push(ChangeEvent {
            op: Op::Read,
            schema: table.schema.clone(),
            before: None,
            after: Some(values),
            ts_ms,
            tx: None,
            seq: cursor.seq,
            source: Arc::clone(info),
        });
        cursor.seq += 1;
    }
    bar.inc(batch.len() as u64);
    if !batch.is_empty() && out.send(SourceMsg::Events(batch)).await.is_err() {
        return Ok((None, None));
    }
    Ok((Some(count), last_key))
}

/// A key from `[source] keys` is enforced by nothing: rows sharing one would be merged into
/// one in current-state sinks. Counted in the snapshot's own view of the table; the message
/// gives the count, never a value.
///
/// `COUNT(DISTINCT key)` (the server's in-memory set) is about 4x faster than a `GROUP BY` on an
/// unindexed key (1M rows: 0.5 s against 1.9 s, most of a full load's start), but skips rows with
/// a NULL in the key: with more than one such row the `GROUP BY` (which groups NULLs) decides.
pub(crate) async fn refuse_duplicate_keys(conn: &mut Conn, table: &TableInfo) -> Result<(), SluiceError> {
    let id = &table.schema.id;
    let what = format!("check the configured key of {id}");
    let keys: Vec<String> = table.schema.key.iter().map(|&k| quote_ident(&table.schema.columns[k].name)).collect();
    let cols = keys.join(", ");
    let from = format!("{}.{}", quote_ident(&id.db), quote_ident(&id.table));
    let any_null = keys.iter().map(|k| format!("{k} IS NULL")).collect::<Vec<_>>().join(" OR ");
    let sql = format!("SELECT COUNT(*), COUNT(DISTINCT {cols}), COALESCE(SUM({any_null}), 0) FROM {from}");
    let counts: Option<(u64, u64, u64)> = conn.query_first(sql).await.map_err(|e| classify(e, &what))?;
    let (rows, distinct, with_null) = counts.unwrap_or_default();
    let repeated = if with_null <= 1 {
        rows.saturating_sub(with_null).saturating_sub(distinct)
    } else {
        let sql = format!("SELECT COALESCE(SUM(n - 1), 0) FROM (SELECT COUNT(*) n FROM {from} GROUP BY {cols} HAVING COUNT(*) > 1) d");
        let n: Option<u64> = conn.query_first(sql).await.map_err(|e| classify(e, &what))?;
        n.unwrap_or(0)
    };
    match repeated {
        0 => Ok(()),
        n => Err(SluiceError::permanent(format!(
            "[source] keys for {id} ({}) is not unique: {n} row(s) repeat the key of another row, and a lake would merge \
             those rows into one; choose key columns that identify each row (or add a primary key to the table)",
            table.schema.key_names().join(", ")
        ))),
    }
}

/// Key values are kept as hex of the server's bytes: exact for binary keys too.
pub(crate) fn text_of(v: Option<&My>) -> Option<String> {
    match v {
        Some(My::Bytes(b)) => Some(b.iter().map(|b| format!("{b:02X}")).collect()),
        _ => None,
    }
}

fn unhex(hex: &str) -> String {
    let bytes: Vec<u8> = (0..hex.len() / 2).filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Whether `table` can be read in keyset chunks: a key of types whose server ordering a keyset
/// predicate follows exactly, backed by an index (a configured key may have none).
pub(crate) fn keyset(table: &TableInfo) -> bool {
    !table.schema.key.is_empty()
        && !table.schema.configured_key
        && table.schema.key.iter().all(|&k| keyset_type(&table.schema.columns[k].ty))
}

/// Types whose server ordering a keyset predicate can follow exactly.
fn keyset_type(ty: &SqlType) -> bool {
    !matches!(ty, SqlType::Enum { .. } | SqlType::Set { .. } | SqlType::Float | SqlType::Double | SqlType::Json | SqlType::Geometry)
}

pub fn quote_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// A column as the snapshot selects it. The text protocol prints FLOAT with only 6 significant
/// digits (1.2345678 as "1.23457"), unlike the binlog's exact 4 bytes: widen it to DOUBLE (exact)
/// so the text round-trips to the same f32.
fn select_expr(c: &sluice_core::Column) -> String {
    match c.ty {
        SqlType::Float => format!("CAST({0} AS DOUBLE) AS {0}", quote_ident(&c.name)),
        _ => quote_ident(&c.name),
    }
}

/// `SELECT cols FROM t [WHERE key > after [AND NOT key > upto]] ORDER BY key [LIMIT n]`.
pub(crate) fn select_sql(t: &TableInfo, after: Option<&[Option<String>]>, upto: Option<&[Option<String>]>, limit: Option<usize>) -> String {
    let s = &t.schema;
    let cols = s.columns.iter().map(select_expr).collect::<Vec<_>>().join(", ");
    let mut sql = format!("SELECT {cols} FROM {}.{}", quote_ident(&s.id.db), quote_ident(&s.id.table));
    let Some(limit) = limit else { return sql };
    let keys: Vec<String> = s.key.iter().map(|&k| quote_ident(&s.columns[k].name)).collect();
    sql.push_str(&key_range(t, &keys, after, upto));
    sql.push_str(&format!(" ORDER BY {} LIMIT {limit}", keys.join(", ")));
    sql
}

/// ` WHERE key > after AND NOT key > upto` (either part optional).
fn key_range(t: &TableInfo, keys: &[String], after: Option<&[Option<String>]>, upto: Option<&[Option<String>]>) -> String {
    let mut conds = Vec::new();
    if let Some(after) = after {
        conds.push(key_above(t, keys, after));
    }
    if let Some(upto) = upto {
        conds.push(format!("NOT {}", key_above(t, keys, upto)));
    }
    if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    }
}

/// The key of the `n`-th row above `after` (up to `upto`), found by the server walking its
/// index: where parallel readers split a table into chunks. `None`: fewer rows are left.
pub(crate) async fn nth_key(
    conn: &mut Conn,
    t: &TableInfo,
    after: Option<&[Option<String>]>,
    upto: Option<&[Option<String>]>,
    n: usize,
) -> Result<Option<Vec<Option<String>>>, SluiceError> {
    let keys = key_columns(t);
    let range = key_range(t, &keys, after, upto);
    one_key(conn, t, &range, &keys.join(", "), n.saturating_sub(1), &format!("split {} into chunks", t.schema.id)).await
}

fn key_columns(t: &TableInfo) -> Vec<String> {
    t.schema.key.iter().map(|&k| quote_ident(&t.schema.columns[k].name)).collect()
}

/// The key of the row at `offset` of `range` (a WHERE clause or empty) in `order`, in server
/// text form; `what` names the step in errors.
async fn one_key(
    conn: &mut Conn,
    t: &TableInfo,
    range: &str,
    order: &str,
    offset: usize,
    what: &str,
) -> Result<Option<Vec<Option<String>>>, SluiceError> {
    let s = &t.schema;
    let sql = format!(
        "SELECT {} FROM {}.{}{range} ORDER BY {order} LIMIT 1 OFFSET {offset}",
        key_columns(t).join(", "),
        quote_ident(&s.id.db),
        quote_ident(&s.id.table),
    );
    let row: Option<mysql_async::Row> = conn.query_first(sql).await.map_err(|e| classify(e, what))?;
    Ok(row.map(|r| (0..s.key.len()).map(|i| text_of(r.as_ref(i))).collect()))
}

/// `(a > x) OR (a = x AND b > y) ...`: the key above `key`, in a form every optimizer turns into
/// an index range.
fn key_above(t: &TableInfo, keys: &[String], key: &[Option<String>]) -> String {
    let lits: Vec<String> = t.schema.key.iter().zip(key).map(|(&k, v)| literal(t, k, v.as_deref())).collect();
    let ors: Vec<String> = (0..keys.len())
        .map(|i| {
            let mut parts: Vec<String> = (0..i).map(|j| format!("{} = {}", keys[j], lits[j])).collect();
            parts.push(format!("{} > {}", keys[i], lits[i]));
            format!("({})", parts.join(" AND "))
        })
        .collect();
    format!("({})", ors.join(" OR "))
}

/// The table's highest key now (server text form), `None` when it is empty.
pub(crate) async fn highest_key(conn: &mut Conn, t: &TableInfo) -> Result<Option<Vec<Option<String>>>, SluiceError> {
    let desc: Vec<String> = key_columns(t).iter().map(|k| format!("{k} DESC")).collect();
    one_key(conn, t, "", &desc.join(", "), 0, &format!("read the highest key of {}", t.schema.id)).await
}

/// A literal for a key value (hex of the server's text), compared in the column's own collation.
fn literal(t: &TableInfo, col: usize, hex: Option<&str>) -> String {
    let Some(hex) = hex else { return "NULL".into() };
    let text = unhex(hex);
    match &t.schema.columns[col].ty {
        SqlType::Int { .. } | SqlType::Decimal { .. } if text.bytes().all(|b| b.is_ascii_digit() || b == b'-' || b == b'.') => text,
        SqlType::Binary | SqlType::Bit { .. } => format!("X'{hex}'"),
        SqlType::Text => {
            let cs = t.charset_names[col].as_deref().unwrap_or("utf8mb4");
            match t.collations[col].as_deref() {
                Some(coll) => format!("CONVERT(_utf8mb4 X'{hex}' USING {cs}) COLLATE {coll}"),
                None => format!("CONVERT(_utf8mb4 X'{hex}' USING {cs})"),
            }
        }
        _ => format!("_utf8mb4 X'{hex}'"),
    }
}

/// A snapshot row (text protocol) as typed values.
pub(crate) fn decode_row(table: &TableInfo, row: &mut mysql_async::Row) -> Result<Vec<sluice_core::Value>, SluiceError> {
    let id = &table.schema.id;
    let mut values = Vec::with_capacity(table.schema.columns.len());
    for (i, col) in table.schema.columns.iter().enumerate() {
        let v = row.take(i).unwrap_or(My::NULL);
        values.push(from_text(&col.ty, v).map_err(|e| SluiceError::permanent(format!("cannot decode column {id}.{}: {}", col.name, e.0)))?);
    }
    Ok(values)
}

/// Reads every row of `table` now, decoded exactly as the snapshot decodes them, handing
/// batches of up to 1024 rows to `f` (used by `sluice validate`).
pub async fn scan_table(
    url: &crate::config::DbUrl,
    table: &TableInfo,
    mut f: impl FnMut(Vec<Vec<sluice_core::Value>>) -> Result<(), SluiceError>,
) -> Result<(), SluiceError> {
    let mut conn = crate::conn::connect(url).await?;
    conn.query_drop("SET SESSION time_zone = '+00:00'; SET NAMES utf8mb4").await.map_err(|e| classify(e, "prepare the scan"))?;
    let what = format!("scan {}", table.schema.id);
    let mut result = conn.query_iter(select_sql(table, None, None, None)).await.map_err(|e| classify(e, &what))?;
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(mut row) = result.next().await.map_err(|e| classify(e, &what))? {
        batch.push(decode_row(table, &mut row)?);
        if batch.len() == BATCH {
            f(std::mem::take(&mut batch))?;
        }
    }
    if !batch.is_empty() {
        f(batch)?;
    }
    Ok(())
}
