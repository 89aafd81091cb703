//! The tree-based encoders that the byte writers replaced, kept verbatim as the tests' oracle:
//! a `serde_json::Value` per event, built with `json!` and `Map`. Tests compare the writers'
//! bytes with these trees serialized.
use base64::Engine as _;
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde_json::{json, Map, Value as Json};

use crate::event::{ChangeEvent, Op};
use crate::schema::TableSchema;
use crate::value::{Row, Value};

pub fn value_json(v: &Value) -> Json {
    const SAFE: i64 = 1 << 53;
    match v {
        Value::Null => Json::Null,
        Value::Int(v) if (-SAFE..=SAFE).contains(v) => Json::from(*v),
        Value::Int(v) => Json::String(v.to_string()),
        Value::UInt(v) if *v <= SAFE as u64 => Json::from(*v),
        Value::UInt(v) => Json::String(v.to_string()),
        Value::Float(v) => float_json(f64::from(*v)),
        Value::Double(v) => float_json(*v),
        Value::Decimal(s) => Json::String(s.clone()),
        Value::Date(d) => Json::String(format_date(*d)),
        Value::DateTime(us) => Json::String(format_datetime(*us, false)),
        Value::Timestamp(us) => Json::String(format_datetime(*us, true)),
        Value::Time(us) => Json::String(format_time(*us)),
        Value::Year(y) => Json::from(*y),
        Value::ZeroDate => Json::String("0000-00-00".into()),
        Value::Text(s) => Json::String(s.clone()),
        Value::Json(s) => serde_json::from_str(s).unwrap_or_else(|_| Json::String(s.clone())),
        Value::Bytes(b) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
    }
}

fn float_json(v: f64) -> Json {
    serde_json::Number::from_f64(v).map(Json::Number).unwrap_or_else(|| Json::String(v.to_string()))
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date")
}

fn format_date(days: i32) -> String {
    (epoch() + chrono::Duration::days(i64::from(days))).format("%Y-%m-%d").to_string()
}

fn format_datetime(us: i64, utc: bool) -> String {
    let dt: NaiveDateTime = DateTime::from_timestamp_micros(us).map(|d| d.naive_utc()).unwrap_or_default();
    let base = dt.format("%Y-%m-%dT%H:%M:%S").to_string();
    let frac = us.rem_euclid(MICROS);
    let frac = if frac == 0 { String::new() } else { format!(".{frac:06}") };
    format!("{base}{frac}{}", if utc { "Z" } else { "" })
}

fn format_time(us: i64) -> String {
    let sign = if us < 0 { "-" } else { "" };
    let a = us.unsigned_abs();
    let secs = a / MICROS as u64;
    let frac = a % MICROS as u64;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let frac = if frac == 0 { String::new() } else { format!(".{frac:06}") };
    format!("{sign}{h:02}:{m:02}:{s:02}{frac}")
}

const MICROS: i64 = 1_000_000;

pub fn row_object(schema: &TableSchema, row: &Row) -> Json {
    let mut m = Map::with_capacity(row.len());
    for (col, v) in schema.columns.iter().zip(row) {
        m.insert(col.name.clone(), value_json(v));
    }
    Json::Object(m)
}

pub fn debezium(ev: &ChangeEvent, processed_ms: i64) -> Json {
    let image = |r: &Option<Row>| r.as_ref().map_or(Json::Null, |r| row_object(&ev.schema, r));
    json!({
        "before": image(&ev.before),
        "after": image(&ev.after),
        "op": ev.op.code(),
        "ts_ms": processed_ms,
        "source": debezium_source(ev),
        "transaction": ev.tx.as_deref().map(|id| json!({ "id": id })),
    })
}

/// Debezium's `source` block of `ev`: where the change came from, with sluice's `seq` (also in
/// the records that go with a change, such as a Kafka schema change).
pub fn debezium_source(ev: &ChangeEvent) -> Json {
    json!({
        "connector": ev.source.connector,
        "db": ev.schema.id.db,
        "table": ev.schema.id.table,
        "file": &*ev.source.file,
        "pos": ev.source.pos,
        "gtid": ev.source.gtid.as_deref(),
        "server_id": ev.source.server_id,
        "ts_ms": ev.ts_ms,
        "snapshot": ev.source.snapshot,
        "seq": ev.seq,
    })
}

fn operation(op: &str) -> &'static str {
    match op {
        "r" => "load",
        "c" => "insert",
        "u" => "update",
        _ => "delete",
    }
}

pub fn dms_with(ev: &ChangeEvent, keyed: bool, before_image: bool) -> Json {
    let mut j = dms_keyed(ev, keyed);
    if !before_image {
        if let Some(m) = j.as_object_mut() {
            m.remove("before-image");
        }
    }
    j
}

pub fn dms_keyed(ev: &ChangeEvent, keyed: bool) -> Json {
    let data = row_object(&ev.schema, ev.row());
    let before = match (ev.op, &ev.before) {
        (Op::Update, Some(b)) => Some(row_object(&ev.schema, b)),
        _ => None,
    };
    let table = Table { db: &ev.schema.id.db, name: &ev.schema.id.table, keyed };
    build(data, before, operation(ev.op.code()), ev.ts_ms, table, ev.tx.as_deref(), ev.seq)
}

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

fn timestamp(ts_ms: i64) -> String {
    let t = chrono::DateTime::from_timestamp_millis(ts_ms).unwrap_or_default();
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}
