//! Golden outputs of what the sink puts on the topics (keys, values, tombstones, schema
//! changes, heartbeats), byte for byte, over core's golden events (`tests/golden/kafka*.golden`;
//! `SLUICE_BLESS=1` rewrites it).
#![allow(clippy::unwrap_used)]
#[path = "../../core/tests/golden/cases.rs"]
mod cases;

use sluice_core::event::Op;
use sluice_core::value::Value;

use crate::encoding::{heartbeat, schema_change, schema_key};
use crate::{KafkaConfig, KafkaSink};

fn sink(extra: &str) -> KafkaSink {
    let cfg: KafkaConfig = toml::from_str(&format!("brokers = \"127.0.0.1:9092\"\ntopic_prefix = \"cdc\"\n{extra}")).unwrap();
    KafkaSink::new(cfg)
}

/// `topic\tkey\tvalue` of a record, `-` for a null key or value.
fn record(topic: &str, key: Option<&[u8]>, value: Option<&[u8]>) -> Vec<u8> {
    let mut out = format!("{topic}\t").into_bytes();
    out.extend_from_slice(key.unwrap_or(b"-"));
    out.push(b'\t');
    out.extend_from_slice(value.unwrap_or(b"-"));
    out
}

#[test]
fn records_of_every_event() {
    let mut lines = Vec::new();
    for extra in ["", "format = \"dms\"", "tombstones = false", "format = \"dms\"\nbefore_image = false"] {
        let mut s = sink(extra);
        for (n, ev) in cases::events() {
            s.encode(&ev).unwrap();
            for (i, r) in s.pending.drain(..).enumerate() {
                lines.push((format!("{extra:?}.{n}.{i}"), record(&r.topic, r.key.as_deref(), r.value.as_deref())));
            }
        }
    }
    cases::check(env!("CARGO_MANIFEST_DIR"), "kafka.golden", lines);
}

#[test]
fn schema_changes_and_heartbeats() {
    let mut lines = Vec::new();
    for (n, schema) in cases::schemas() {
        let row = vec![Value::Null; schema.columns.len()];
        let ev = cases::event(&schema, Op::Insert, &row, &row, 1_700_000_000_123, 77, Some("0-1-2"));
        for change in cases::CHANGES {
            for dms in [false, true] {
                let value = serde_json::to_vec(&schema_change(&ev, change, dms)).unwrap();
                lines.push((
                    format!("{n}.{}.dms={dms}", change.dms_operation()),
                    record("-", Some(&schema_key(&schema.id.db)), Some(&value)),
                ));
            }
        }
    }
    let (key, value) = heartbeat("cdc\"x", 1_700_000_000_123);
    lines.push(("heartbeat".into(), record("-", Some(&key), Some(&value))));
    cases::check(env!("CARGO_MANIFEST_DIR"), "kafka_schema.golden", lines);
}
