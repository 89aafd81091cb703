use serde_json::{json, Value as Json};

use super::control::SchemaChange;
use super::row_object;
use crate::event::{ChangeEvent, Op};
use crate::schema::{SqlType, TableSchema};

fn operation(op: &str) -> &'static str {
    match op {
        "r" => "load",
        "c" => "insert",
        "u" => "update",
        _ => "delete",
    }
}

/// AWS DMS's Kinesis/Kafka JSON, so existing DMS consumers keep working. Updates also carry
/// `before-image`, as DMS does with `IncludeBeforeImage`. `partition-key-type` is
/// `primary-key` for a table with a key (primary or `[source] keys`), `schema-table` without.
pub fn dms(ev: &ChangeEvent) -> Json {
    dms_keyed(ev, !ev.schema.key.is_empty())
}

/// [`dms_keyed`], with `before-image` on updates only when `before_image` (DMS's
/// `BeforeImageSettings.EnableBeforeImage`). A stream partitioned by table passes `keyed =
/// false`: `partition-key-type` says how the stream is partitioned.
pub fn dms_with(ev: &ChangeEvent, keyed: bool, before_image: bool) -> Json {
    let mut j = dms_keyed(ev, keyed);
    if !before_image {
        if let Some(m) = j.as_object_mut() {
            m.remove("before-image");
        }
    }
    j
}

/// [`dms`] for events whose schema does not carry the key (read back from the lake's
/// changelog): `keyed` says whether the table has one.
pub fn dms_keyed(ev: &ChangeEvent, keyed: bool) -> Json {
    let data = row_object(&ev.schema, ev.row());
    let before = match (ev.op, &ev.before) {
        (Op::Update, Some(b)) => Some(row_object(&ev.schema, b)),
        _ => None,
    };
    let table = Table { db: &ev.schema.id.db, name: &ev.schema.id.table, keyed };
    build(data, before, operation(ev.op.code()), ev.ts_ms, table, ev.tx.as_deref(), ev.seq)
}

/// Re-encodes a Debezium line as DMS (used by `tail --format dms` over a Debezium log).
/// Debezium lines do not say whether the table has a key: `keyed` does.
pub fn debezium_to_dms(d: &Json, keyed: bool) -> Option<Json> {
    let op = d.get("op")?.as_str()?;
    let src = d.get("source")?;
    let data = if op == "d" { d.get("before")? } else { d.get("after")? }.clone();
    let before = (op == "u").then(|| d.get("before").cloned()).flatten().filter(|b| !b.is_null());
    Some(build(
        data,
        before,
        operation(op),
        src.get("ts_ms")?.as_i64()?,
        Table { db: src.get("db")?.as_str()?, name: src.get("table")?.as_str()?, keyed },
        d.get("transaction").and_then(|t| t.get("id")).and_then(Json::as_str),
        src.get("seq")?.as_u64()?,
    ))
}

/// The table a record belongs to.
struct Table<'a> {
    db: &'a str,
    name: &'a str,
    keyed: bool,
}

fn build(data: Json, before: Option<Json>, operation: &str, ts_ms: i64, table: Table<'_>, tx: Option<&str>, seq: u64) -> Json {
    let mut out = json!({
        "data": data,
        "metadata": {
            "timestamp": timestamp(ts_ms),
            "record-type": "data",
            "operation": operation,
            // How DMS partitions: by primary key, or by schema and table when there is none.
            "partition-key-type": if table.keyed { "primary-key" } else { "schema-table" },
            "schema-name": table.db,
            "table-name": table.name,
            "transaction-id": tx,
            "seq": seq,
        }
    });
    if let Some(b) = before {
        out["before-image"] = b;
    }
    out
}

/// DMS's timestamp: UTC, always six fractional digits (`2024-11-25T16:00:00.000000Z`), so a
/// stream never mixes two formats.
pub(super) fn timestamp(ts_ms: i64) -> String {
    let t = chrono::DateTime::from_timestamp_millis(ts_ms).unwrap_or_default();
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// A DMS control record (`record-type: control`, as DMS sends with `IncludeControlDetails` and
/// `IncludeTableAlterOperations`): `change` of `schema`'s table, with the table's definition
/// after it in `control.table-def` (columns with DMS types, primary key). It carries the `seq`
/// and commit time of the first change made under that definition: it is not a change itself,
/// so consumers that deduplicate by `seq` do so among `record-type: data` records.
pub fn dms_control(schema: &TableSchema, change: SchemaChange, ts_ms: i64, seq: u64) -> Json {
    let mut columns = serde_json::Map::with_capacity(schema.columns.len());
    for c in &schema.columns {
        let mut def = dms_type(&c.ty);
        def["nullable"] = Json::Bool(c.nullable);
        columns.insert(c.name.clone(), def);
    }
    json!({
        "control": {
            "table-def": {
                "columns": columns,
                "primary-key": schema.key_names(),
            }
        },
        "metadata": {
            "timestamp": timestamp(ts_ms),
            "record-type": "control",
            "operation": change.dms_operation(),
            "partition-key-type": "schema-table",
            "schema-name": schema.id.db,
            "table-name": schema.id.table,
            "seq": seq,
        }
    })
}

/// A column's type in DMS's own type names (the AWS DMS user guide, "Data types for AWS
/// Database Migration Service"), with the attributes DMS gives it.
fn dms_type(ty: &SqlType) -> Json {
    let name = match ty {
        SqlType::Int { bits, unsigned } => {
            let n = match bits {
                8 => 1,
                16 => 2,
                24 | 32 => 4,
                _ => 8,
            };
            return json!({ "type": format!("{}INT{n}", if *unsigned { "U" } else { "" }) });
        }
        SqlType::Decimal { precision, scale } => return json!({ "type": "NUMERIC", "precision": precision, "scale": scale }),
        SqlType::DateTime { fsp } | SqlType::Timestamp { fsp } => return json!({ "type": "DATETIME", "precision": fsp }),
        SqlType::Float => "REAL4",
        SqlType::Double => "REAL8",
        SqlType::Date => "DATE",
        SqlType::Time { .. } => "TIME",
        SqlType::Year => "INT2",
        SqlType::Text | SqlType::Enum { .. } | SqlType::Set { .. } => "WSTRING",
        SqlType::Json => "NCLOB",
        SqlType::Binary | SqlType::Bit { .. } => "BYTES",
        SqlType::Geometry => "BLOB",
    };
    json!({ "type": name })
}
