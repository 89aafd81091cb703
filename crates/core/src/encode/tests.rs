use std::sync::Arc;

use super::*;
use crate::event::{Op, SourceInfo};
use crate::schema::{Column, SqlType, TableId, TableSchema};
use crate::value::Value;

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
        source: SourceInfo {
            connector: "mysql",
            file: "mysql-bin.000001".into(),
            pos: 400,
            gtid: Some("0-1-9".into()),
            server_id: 1,
            snapshot: false,
        },
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
