use chrono::Timelike as _;
use serde::Serialize;
use serde_json::{json, Value as Json};

use super::control::SchemaChange;
use super::{tree, write_json, RowObject};
use crate::error::Result;
use crate::event::{ChangeEvent, Op};
use crate::schema::{SqlType, TableSchema};
use crate::value::ShortText;

fn operation(op: &str) -> &'static str {
    match op {
        "r" => "load",
        "c" => "insert",
        "u" => "update",
        _ => "delete",
    }
}

/// A DMS data record: `data` is a row image (a [`RowObject`], or a tree read back).
#[derive(Serialize)]
struct Record<'a, D> {
    data: D,
    metadata: Metadata<'a>,
    #[serde(rename = "before-image", skip_serializing_if = "Option::is_none")]
    before_image: Option<D>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Metadata<'a> {
    timestamp: Timestamp,
    record_type: &'static str,
    operation: &'static str,
    /// How DMS partitions: by primary key, or by schema and table when there is none.
    partition_key_type: &'static str,
    schema_name: &'a str,
    table_name: &'a str,
    transaction_id: Option<&'a str>,
    seq: u64,
}

fn partition_key_type(keyed: bool) -> &'static str {
    if keyed {
        "primary-key"
    } else {
        "schema-table"
    }
}

/// The record of `ev`: `data` is the row (the before image of a delete); updates carry
/// `before-image` when `before_image` (DMS's `BeforeImageSettings.EnableBeforeImage`).
/// `partition-key-type` is `primary-key` when `keyed`, else `schema-table`.
fn record(ev: &ChangeEvent, keyed: bool, before_image: bool) -> Record<'_, RowObject<'_>> {
    let before = match (ev.op, &ev.before) {
        (Op::Update, Some(b)) if before_image => Some(RowObject::new(&ev.schema, b)),
        _ => None,
    };
    Record {
        data: RowObject::new(&ev.schema, ev.row()),
        metadata: Metadata {
            timestamp: Timestamp(ev.ts_ms),
            record_type: "data",
            operation: operation(ev.op.code()),
            partition_key_type: partition_key_type(keyed),
            schema_name: &ev.schema.id.db,
            table_name: &ev.schema.id.table,
            transaction_id: ev.tx.as_deref(),
            seq: ev.seq,
        },
        before_image: before,
    }
}

/// Appends `ev` as AWS DMS's Kinesis/Kafka JSON to `out`, so existing DMS consumers keep
/// working. Updates also carry `before-image` when `before_image`, as DMS does with
/// `IncludeBeforeImage`. `partition-key-type` is `primary-key` when `keyed` (a table with a
/// key, primary or `[source] keys`, on a stream partitioned by key), else `schema-table`.
pub fn dms_into(ev: &ChangeEvent, keyed: bool, before_image: bool, out: &mut Vec<u8>) -> Result<()> {
    write_json(&record(ev, keyed, before_image), out)
}

/// [`dms_into`] as a tree, keyed by the table's own key, with the before image.
pub fn dms(ev: &ChangeEvent) -> Json {
    dms_keyed(ev, !ev.schema.key.is_empty())
}

/// [`dms`] for events whose schema does not carry the key (read back from the lake's
/// changelog): `keyed` says whether the table has one.
pub fn dms_keyed(ev: &ChangeEvent, keyed: bool) -> Json {
    tree(&record(ev, keyed, true))
}

/// Re-encodes a Debezium line as DMS (used by `tail --format dms` over a Debezium log).
/// Debezium lines do not say whether the table has a key: `keyed` does.
pub fn debezium_to_dms(d: &Json, keyed: bool) -> Option<Json> {
    let op = d.get("op")?.as_str()?;
    let src = d.get("source")?;
    let data = if op == "d" { d.get("before")? } else { d.get("after")? };
    let before = (op == "u").then(|| d.get("before")).flatten().filter(|b| !b.is_null());
    let record = Record {
        data,
        metadata: Metadata {
            timestamp: Timestamp(src.get("ts_ms")?.as_i64()?),
            record_type: "data",
            operation: operation(op),
            partition_key_type: partition_key_type(keyed),
            schema_name: src.get("db")?.as_str()?,
            table_name: src.get("table")?.as_str()?,
            transaction_id: d.get("transaction").and_then(|t| t.get("id")).and_then(Json::as_str),
            seq: src.get("seq")?.as_u64()?,
        },
        before_image: before,
    };
    Some(tree(&record))
}

/// DMS's timestamp of a commit time (epoch ms): UTC, always six fractional digits
/// (`2024-11-25T16:00:00.000000Z`), so a stream never mixes two formats. A time past the
/// calendar's range shows the epoch.
pub(super) struct Timestamp(pub(super) i64);

impl Timestamp {
    fn text(&self) -> ShortText {
        let t = chrono::DateTime::from_timestamp_millis(self.0).unwrap_or_default().naive_utc();
        let mut out = ShortText::default();
        out.datetime(&t);
        out.push(b'.');
        out.digits(u64::from(t.nanosecond() / 1_000), 6);
        out.push(b'Z');
        out
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.text().as_str())
    }
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
            "timestamp": Timestamp(ts_ms).text().as_str(),
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
