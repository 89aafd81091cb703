use std::sync::Arc;

use super::*;
use crate::event::{Op, SourceInfo};
use crate::schema::{Column, SqlType, TableId, TableSchema};
use crate::value::Value;

fn event(op: Op) -> ChangeEvent {
    let schema = Arc::new(TableSchema {
        id: TableId::new("shop", "users"),
        columns: vec![
            Column { name: "id".into(), ty: SqlType::Int { bits: 32, unsigned: false }, nullable: false },
            Column { name: "email".into(), ty: SqlType::Text, nullable: true },
        ],
        key: vec![0],
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
        ts_ms: 1_700_000_000_123,
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
        let via = debezium_to_dms(&debezium(&ev, 5)).unwrap();
        assert_eq!(direct, via, "{op:?}");
    }
    let d = dms(&event(Op::Delete));
    assert_eq!(d["metadata"]["operation"], "delete");
    assert_eq!(d["data"]["id"], 1, "delete carries the before image");
    assert_eq!(d["metadata"]["timestamp"], "2023-11-14T22:13:20.123000Z");
    assert_eq!(dms(&event(Op::Read))["metadata"]["operation"], "load");
}
