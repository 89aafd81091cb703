//! What the sink puts on the topics for each kind of change: keys, values, tombstones, schema
//! changes, and that a resend is byte for byte the first copy.
#![allow(clippy::unwrap_used)]
use std::sync::Arc;

use serde_json::{json, Value as Json};
use sluice_core::event::{ChangeEvent, Op, SourceInfo};
use sluice_core::schema::{Column, SqlType, TableId, TableSchema};
use sluice_core::value::Value;

use crate::{KafkaConfig, KafkaSink};

fn schema(key: Vec<usize>, extra: bool) -> Arc<TableSchema> {
    let mut columns = vec![
        Column { name: "id".into(), ty: SqlType::Int { bits: 64, unsigned: false }, nullable: false },
        Column { name: "email".into(), ty: SqlType::Text, nullable: true },
    ];
    if extra {
        columns.push(Column { name: "age".into(), ty: SqlType::Int { bits: 8, unsigned: true }, nullable: true });
    }
    Arc::new(TableSchema { id: TableId::new("shop", "users"), columns, key, configured_key: false })
}

fn event(schema: &Arc<TableSchema>, op: Op, before: Option<i64>, after: Option<i64>, seq: u64) -> ChangeEvent {
    let row = |id: i64| {
        let mut r = vec![Value::Int(id), Value::Text("a@x.io".into())];
        r.resize(schema.columns.len(), Value::Null);
        r
    };
    ChangeEvent {
        op,
        schema: Arc::clone(schema),
        before: before.map(row),
        after: after.map(row),
        ts_ms: 1_700_000_000_123,
        tx: Some("0-1-9".into()),
        seq,
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

fn sink(extra: &str) -> KafkaSink {
    let cfg: KafkaConfig = toml::from_str(&format!("brokers = \"127.0.0.1:9092\"\ntopic_prefix = \"cdc\"\n{extra}")).unwrap();
    KafkaSink::new(cfg)
}

/// (topic, key, value, seq) of a queued record.
type Queued = (String, Option<Json>, Option<Json>, Option<u64>);

fn records(s: &KafkaSink) -> Vec<Queued> {
    let json = |b: &Option<Vec<u8>>| b.as_ref().map(|b| serde_json::from_slice(b).unwrap());
    s.pending.iter().map(|r| (r.topic.to_string(), json(&r.key), json(&r.value), r.seq)).collect()
}

#[test]
fn a_delete_is_followed_by_a_tombstone_of_its_key() {
    let t = schema(vec![0], false);
    let mut s = sink("");
    s.encode(&event(&t, Op::Delete, Some(7), None, 3)).unwrap();
    let r = records(&s);
    assert_eq!(r.len(), 3, "schema change, delete, tombstone");
    assert_eq!((r[0].0.as_str(), r[0].1.clone()), ("cdc", Some(json!({ "databaseName": "shop" }))));
    assert_eq!(r[0].2.as_ref().unwrap()["tableChanges"][0]["type"], "CREATE");
    assert_eq!(r[0].2.as_ref().unwrap()["source"]["seq"], 3);
    assert_eq!(r[1].0, "cdc.shop.users");
    assert_eq!(r[1].1, Some(json!({ "id": 7 })));
    assert_eq!(r[1].2.as_ref().unwrap()["op"], "d");
    assert_eq!(r[1].2.as_ref().unwrap()["source"]["seq"], 3);
    assert_eq!((r[2].1.clone(), r[2].2.clone(), r[2].3), (Some(json!({ "id": 7 })), None, Some(3)));
}

#[test]
fn a_key_change_goes_under_the_new_key_and_retires_the_old_one() {
    let t = schema(vec![0], false);
    let mut s = sink("");
    s.encode(&event(&t, Op::Update, Some(1), Some(1), 1)).unwrap();
    s.encode(&event(&t, Op::Update, Some(1), Some(2), 2)).unwrap();
    let r = records(&s);
    assert_eq!(r.len(), 1 + 1 + 2, "no tombstone for an update that keeps its key");
    assert_eq!(r[2].1, Some(json!({ "id": 2 })));
    assert_eq!(r[2].2.as_ref().unwrap()["before"]["id"], 1);
    assert_eq!((r[3].1.clone(), r[3].2.clone()), (Some(json!({ "id": 1 })), None));
}

#[test]
fn keyless_tables_have_null_keys_and_no_tombstones() {
    let t = schema(vec![], false);
    let mut s = sink("");
    s.encode(&event(&t, Op::Delete, Some(7), None, 0)).unwrap();
    let r = records(&s);
    assert_eq!(r.len(), 2);
    assert_eq!(r[1].1, None);
    let mut s = sink("tombstones = false");
    s.encode(&event(&schema(vec![0], false), Op::Delete, Some(7), None, 0)).unwrap();
    assert_eq!(records(&s).len(), 2, "tombstones = false: none");
}

#[test]
fn a_new_column_is_an_alter_on_the_schema_topic_before_the_change() {
    let mut s = sink("");
    s.encode(&event(&schema(vec![0], false), Op::Insert, None, Some(1), 0)).unwrap();
    s.encode(&event(&schema(vec![0], true), Op::Insert, None, Some(2), 1)).unwrap();
    let r = records(&s);
    assert_eq!(r.len(), 4);
    let alter = r[2].2.as_ref().unwrap();
    assert_eq!(r[2].0, "cdc");
    assert_eq!(alter["tableChanges"][0]["type"], "ALTER");
    assert_eq!(alter["tableChanges"][0]["change"], "add-column");
    assert_eq!(
        alter["tableChanges"][0]["table"]["columns"][2],
        json!({ "typeName": "TINYINT UNSIGNED", "name": "age", "position": 3, "optional": true })
    );
}

#[test]
fn dms_values_and_control_records() {
    let mut s = sink("format = \"dms\"");
    s.encode(&event(&schema(vec![0], false), Op::Update, Some(1), Some(1), 5)).unwrap();
    let r = records(&s);
    assert_eq!(r[0].2.as_ref().unwrap()["metadata"]["operation"], "create-table");
    let v = r[1].2.as_ref().unwrap();
    assert_eq!((v["metadata"]["operation"].as_str(), v["metadata"]["seq"].as_u64()), (Some("update"), Some(5)));
    assert_eq!(v["before-image"]["id"], 1);
}

#[test]
fn a_resend_is_identical_to_the_first_copy() {
    let t = schema(vec![0], false);
    let bytes = |s: &KafkaSink| s.pending.iter().map(|r| (r.key.clone(), r.value.clone())).collect::<Vec<_>>();
    let mut a = sink("");
    let mut b = sink("");
    for s in [&mut a, &mut b] {
        s.encode(&event(&t, Op::Update, Some(1), Some(2), 9)).unwrap();
    }
    assert_eq!(bytes(&a), bytes(&b));
}
