use serde_json::{json, Value as Json};

use super::row_object;
use crate::event::{ChangeEvent, Op};
use crate::value::format_datetime;

fn operation(op: &str) -> &'static str {
    match op {
        "r" => "load",
        "c" => "insert",
        "u" => "update",
        _ => "delete",
    }
}

/// AWS DMS's Kinesis/Kafka JSON, so existing DMS consumers keep working. Updates also carry
/// `before-image`, as DMS does with `IncludeBeforeImage`.
pub fn dms(ev: &ChangeEvent) -> Json {
    let data = row_object(&ev.schema, ev.row());
    let before = match (ev.op, &ev.before) {
        (Op::Update, Some(b)) => Some(row_object(&ev.schema, b)),
        _ => None,
    };
    build(data, before, operation(ev.op.code()), ev.ts_ms, &ev.schema.id.db, &ev.schema.id.table, ev.tx.as_deref(), ev.seq)
}

/// Re-encodes a Debezium line as DMS (used by `tail --format dms` over a Debezium log).
pub fn debezium_to_dms(d: &Json) -> Option<Json> {
    let op = d.get("op")?.as_str()?;
    let src = d.get("source")?;
    let data = if op == "d" { d.get("before")? } else { d.get("after")? }.clone();
    let before = (op == "u").then(|| d.get("before").cloned()).flatten().filter(|b| !b.is_null());
    Some(build(
        data,
        before,
        operation(op),
        src.get("ts_ms")?.as_i64()?,
        src.get("db")?.as_str()?,
        src.get("table")?.as_str()?,
        d.get("transaction").and_then(|t| t.get("id")).and_then(Json::as_str),
        src.get("seq")?.as_u64()?,
    ))
}

#[allow(clippy::too_many_arguments)]
fn build(data: Json, before: Option<Json>, operation: &str, ts_ms: i64, db: &str, table: &str, tx: Option<&str>, seq: u64) -> Json {
    let mut out = json!({
        "data": data,
        "metadata": {
            "timestamp": format_datetime(ts_ms * 1000, true),
            "record-type": "data",
            "operation": operation,
            "partition-key-type": "primary-key",
            "schema-name": db,
            "table-name": table,
            "transaction-id": tx,
            "seq": seq,
        }
    });
    if let Some(b) = before {
        out["before-image"] = b;
    }
    out
}
