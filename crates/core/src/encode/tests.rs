use std::sync::Arc;

use super::*;
use crate::event::{Op, SourceInfo};
use crate::schema::{Column, SqlType, TableId, TableSchema};
use crate::value::Value;

/// `dms_into`'s record as a tree.
fn dms_with(ev: &ChangeEvent, keyed: bool, before_image: bool) -> serde_json::Value {
    let mut out = Vec::new();
    dms_into(ev, keyed, before_image, &mut out).unwrap();
    serde_json::from_slice(&out).unwrap()
}

fn event(op: Op) -> ChangeEvent {
    event_at(op, 1_700_000_000_123, vec![0])
}

/// An event of `shop.users` committed at `ts_ms`, with primary key `key` (column indexes).
fn event_at(op: Op, ts_ms: i64, key: Vec<usize>) -> ChangeEvent {
    let schema = Arc::new(TableSchema {
        id: TableId::new("shop", "users"),
        columns: vec![
            Column { name: "id".into(), ty: SqlType::Int { bits: 32, unsigned: false }, nullable: false },
            Column { name: "email".into(), ty: SqlType::Text, nullable: true },
        ],
        key,
        configured_key: false,
    });
    let before = Some(vec![Value::Int(1), Value::Text("a@x.io".into())]);
    let after = Some(vec![Value::Int(2), Value::Null]);
    let (before, after) = match op {
        Op::Insert | Op::Read => (None, after),
        Op::Update => (before, after),
        Op::Delete => (before, None),
    };
    ChangeEvent {
        op,
        schema,
        before,
        after,
        ts_ms,
        tx: Some("0-1-9".into()),
        seq: 42,
        source: Arc::new(SourceInfo {
            connector: "mysql",
            file: "mysql-bin.000001".into(),
            pos: 400,
            gtid: Some("0-1-9".into()),
            server_id: 1,
            snapshot: false,
            replayed: false,
        }),
    }
}

#[test]
fn debezium_envelope() {
    let j = debezium(&event(Op::Update), 5);
    assert_eq!(j["op"], "u");
    assert_eq!(j["before"]["email"], "a@x.io");
    assert_eq!(j["after"]["id"], 2);
    assert!(j["after"]["email"].is_null());
    assert_eq!(j["source"]["table"], "users");
    assert_eq!(j["source"]["seq"], 42);
    assert_eq!(j["transaction"]["id"], "0-1-9");
}

#[test]
fn dms_envelope_and_reencoding_agree() {
    for op in [Op::Read, Op::Insert, Op::Update, Op::Delete] {
        let ev = event(op);
        let direct = dms(&ev);
        let via = debezium_to_dms(&debezium(&ev, 5), true).unwrap();
        assert_eq!(direct, via, "{op:?}");
        let keyless = event_at(op, 1_700_000_000_123, Vec::new());
        assert_eq!(dms(&keyless), debezium_to_dms(&debezium(&keyless, 5), false).unwrap(), "{op:?} without key");
    }
    let d = dms(&event(Op::Delete));
    assert_eq!(d["metadata"]["operation"], "delete");
    assert_eq!(d["data"]["id"], 1, "delete carries the before image");
    assert_eq!(d["metadata"]["timestamp"], "2023-11-14T22:13:20.123000Z");
    assert_eq!(dms(&event(Op::Read))["metadata"]["operation"], "load");
}

/// The whole record, as a DMS consumer sees it: a golden output.
#[test]
fn dms_golden_record() {
    let got = dms(&event(Op::Update));
    let want = serde_json::json!({
        "data": {"id": 2, "email": null},
        "before-image": {"id": 1, "email": "a@x.io"},
        "metadata": {
            "timestamp": "2023-11-14T22:13:20.123000Z",
            "record-type": "data",
            "operation": "update",
            "partition-key-type": "primary-key",
            "schema-name": "shop",
            "table-name": "users",
            "transaction-id": "0-1-9",
            "seq": 42,
        }
    });
    assert_eq!(got, want);
}

#[test]
fn dms_timestamp_always_has_six_fractional_digits() {
    for (ts_ms, want) in [
        (1_732_550_400_000, "2024-11-25T16:00:00.000000Z"),
        (1_732_551_768_000, "2024-11-25T16:22:48.000000Z"),
        (1_732_551_753_935, "2024-11-25T16:22:33.935000Z"),
        (0, "1970-01-01T00:00:00.000000Z"),
    ] {
        assert_eq!(dms(&event_at(Op::Insert, ts_ms, vec![0]))["metadata"]["timestamp"], want);
        let via = debezium_to_dms(&debezium(&event_at(Op::Insert, ts_ms, vec![0]), 5), true).unwrap();
        assert_eq!(via["metadata"]["timestamp"], want, "re-encoded from Debezium");
    }
}

#[test]
fn dms_partition_key_type_follows_the_key() {
    assert_eq!(dms(&event(Op::Insert))["metadata"]["partition-key-type"], "primary-key");
    let keyless = event_at(Op::Insert, 1_700_000_000_123, Vec::new());
    assert_eq!(dms(&keyless)["metadata"]["partition-key-type"], "schema-table");
    // Read back from the lake the schema carries no key: the caller says.
    assert_eq!(dms_keyed(&keyless, true)["metadata"]["partition-key-type"], "primary-key");
    assert_eq!(dms_keyed(&event(Op::Insert), false)["metadata"]["partition-key-type"], "schema-table");
}

/// One golden record per data operation, as a DMS consumer sees it.
#[test]
fn dms_golden_data_records() {
    let meta = |operation: &str| {
        serde_json::json!({
            "timestamp": "2023-11-14T22:13:20.123000Z",
            "record-type": "data",
            "operation": operation,
            "partition-key-type": "primary-key",
            "schema-name": "shop",
            "table-name": "users",
            "transaction-id": "0-1-9",
            "seq": 42,
        })
    };
    let cases = [
        (Op::Read, serde_json::json!({"data": {"id": 2, "email": null}, "metadata": meta("load")})),
        (Op::Insert, serde_json::json!({"data": {"id": 2, "email": null}, "metadata": meta("insert")})),
        (Op::Delete, serde_json::json!({"data": {"id": 1, "email": "a@x.io"}, "metadata": meta("delete")})),
        (Op::Update, serde_json::json!({"data": {"id": 2, "email": null}, "metadata": meta("update")})),
    ];
    for (op, want) in cases {
        assert_eq!(dms_with(&event(op), true, false), want, "{op:?}");
    }
    assert!(dms_with(&event(Op::Update), true, true).get("before-image").is_some());
    assert_eq!(dms_with(&event(Op::Insert), false, true)["metadata"]["partition-key-type"], "schema-table");
}

fn schema_of(columns: Vec<Column>, key: Vec<usize>) -> crate::schema::SchemaRef {
    Arc::new(TableSchema { id: TableId::new("shop", "users"), columns, key, configured_key: false })
}

fn col(name: &str, ty: SqlType, nullable: bool) -> Column {
    Column { name: name.into(), ty, nullable }
}

/// `create-table` before a table's first record: the whole definition in DMS types.
#[test]
fn dms_golden_create_table() {
    let schema = schema_of(
        vec![
            col("id", SqlType::Int { bits: 64, unsigned: true }, false),
            col("price", SqlType::Decimal { precision: 10, scale: 2 }, true),
            col("name", SqlType::Text, true),
            col("at", SqlType::Timestamp { fsp: 3 }, true),
            col("doc", SqlType::Json, true),
            col("raw", SqlType::Binary, true),
        ],
        vec![0],
    );
    let got = dms_control(&schema, SchemaChange::CreateTable, 1_700_000_000_123, 7);
    let want = serde_json::json!({
        "control": {"table-def": {
            "columns": {
                "id": {"type": "UINT8", "nullable": false},
                "price": {"type": "NUMERIC", "precision": 10, "scale": 2, "nullable": true},
                "name": {"type": "WSTRING", "nullable": true},
                "at": {"type": "DATETIME", "precision": 3, "nullable": true},
                "doc": {"type": "NCLOB", "nullable": true},
                "raw": {"type": "BYTES", "nullable": true},
            },
            "primary-key": ["id"],
        }},
        "metadata": {
            "timestamp": "2023-11-14T22:13:20.123000Z",
            "record-type": "control",
            "operation": "create-table",
            "partition-key-type": "schema-table",
            "schema-name": "shop",
            "table-name": "users",
            "seq": 7,
        }
    });
    assert_eq!(got, want);
    // Column order is the table's, as DMS lists it.
    let names: Vec<&String> = got["control"]["table-def"]["columns"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["id", "price", "name", "at", "doc", "raw"]);
}

/// One control record per DDL kind, each with the definition after it.
#[test]
fn dms_golden_alter_records_follow_the_tracker() {
    let base =
        vec![col("id", SqlType::Int { bits: 32, unsigned: false }, false), col("v", SqlType::Int { bits: 32, unsigned: false }, true)];
    let mut tracker = SchemaTracker::default();
    let s0 = schema_of(base.clone(), vec![0]);
    assert_eq!(tracker.observe(&s0), Some(SchemaChange::CreateTable));
    assert_eq!(tracker.observe(&s0), None, "same Arc");
    assert_eq!(tracker.observe(&schema_of(base.clone(), vec![0])), None, "an equal definition is no change");

    let mut added = base.clone();
    added.push(col("note", SqlType::Text, true));
    let s1 = schema_of(added, vec![0]);
    assert_eq!(tracker.observe(&s1), Some(SchemaChange::AddColumn));
    let j = dms_control(&s1, SchemaChange::AddColumn, 0, 9);
    let want = serde_json::json!({
        "control": {"table-def": {
            "columns": {
                "id": {"type": "INT4", "nullable": false},
                "v": {"type": "INT4", "nullable": true},
                "note": {"type": "WSTRING", "nullable": true},
            },
            "primary-key": ["id"],
        }},
        "metadata": {
            "timestamp": "1970-01-01T00:00:00.000000Z",
            "record-type": "control",
            "operation": "add-column",
            "partition-key-type": "schema-table",
            "schema-name": "shop",
            "table-name": "users",
            "seq": 9,
        }
    });
    assert_eq!(j, want);

    let s2 = schema_of(base.clone(), vec![0]);
    assert_eq!(tracker.observe(&s2), Some(SchemaChange::DropColumn));
    assert_eq!(dms_control(&s2, SchemaChange::DropColumn, 0, 10)["metadata"]["operation"], "drop-column");

    let retyped = vec![base[0].clone(), col("v", SqlType::Int { bits: 64, unsigned: false }, true)];
    let s3 = schema_of(retyped, vec![0]);
    assert_eq!(tracker.observe(&s3), Some(SchemaChange::ColumnTypeChange));
    let j = dms_control(&s3, SchemaChange::ColumnTypeChange, 0, 11);
    assert_eq!(j["metadata"]["operation"], "column-type-change");
    assert_eq!(j["control"]["table-def"]["columns"]["v"]["type"], "INT8");

    let renamed = vec![base[0].clone(), col("w", SqlType::Int { bits: 64, unsigned: false }, true)];
    let s4 = schema_of(renamed, vec![0]);
    assert_eq!(tracker.observe(&s4), Some(SchemaChange::ChangeColumns));
    assert_eq!(dms_control(&s4, SchemaChange::ChangeColumns, 0, 12)["metadata"]["operation"], "change-columns");

    tracker.reset();
    assert_eq!(tracker.observe(&s4), Some(SchemaChange::CreateTable), "after a restart every table is announced again");
}
