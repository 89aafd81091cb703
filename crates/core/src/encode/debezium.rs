use serde::Serialize;
use serde_json::Value as Json;

use super::{tree, write_json, RowObject};
use crate::error::Result;
use crate::event::ChangeEvent;
use crate::value::Row;

/// Debezium's envelope. `source.seq` is sluice's change sequence (unique, commit order).
#[derive(Serialize)]
struct Envelope<'a> {
    before: Option<RowObject<'a>>,
    after: Option<RowObject<'a>>,
    op: &'static str,
    ts_ms: i64,
    source: Source<'a>,
    transaction: Option<Transaction<'a>>,
}

/// Debezium's `source` block: where the change came from, with sluice's `seq`.
#[derive(Serialize)]
struct Source<'a> {
    connector: &'a str,
    db: &'a str,
    table: &'a str,
    file: &'a str,
    pos: u64,
    gtid: Option<&'a str>,
    server_id: u32,
    ts_ms: i64,
    snapshot: bool,
    seq: u64,
}

#[derive(Serialize)]
struct Transaction<'a> {
    id: &'a str,
}

fn source(ev: &ChangeEvent) -> Source<'_> {
    Source {
        connector: ev.source.connector,
        db: &ev.schema.id.db,
        table: &ev.schema.id.table,
        file: &ev.source.file,
        pos: ev.source.pos,
        gtid: ev.source.gtid.as_deref(),
        server_id: ev.source.server_id,
        ts_ms: ev.ts_ms,
        snapshot: ev.source.snapshot,
        seq: ev.seq,
    }
}

fn envelope<'a>(ev: &'a ChangeEvent, processed_ms: i64) -> Envelope<'a> {
    let image = |r: &'a Option<Row>| r.as_deref().map(|r| RowObject::new(&ev.schema, r));
    Envelope {
        before: image(&ev.before),
        after: image(&ev.after),
        op: ev.op.code(),
        ts_ms: processed_ms,
        source: source(ev),
        transaction: ev.tx.as_deref().map(|id| Transaction { id }),
    }
}

/// Appends `ev` in Debezium's envelope to `out`; `processed_ms` is its `ts_ms`.
pub fn debezium_into(ev: &ChangeEvent, processed_ms: i64, out: &mut Vec<u8>) -> Result<()> {
    write_json(&envelope(ev, processed_ms), out)
}

/// [`debezium_into`] as a tree.
pub fn debezium(ev: &ChangeEvent, processed_ms: i64) -> Json {
    tree(&envelope(ev, processed_ms))
}

/// Debezium's `source` block of `ev` as a tree (also in the records that go with a change,
/// such as a Kafka schema change).
pub fn debezium_source(ev: &ChangeEvent) -> Json {
    tree(&source(ev))
}
