//! Shared fixtures: events built by hand, as a source would produce them.
mod sink;
mod tail;

use std::sync::Arc;

use crate::JsonlConfig;
use sluice_core::config::{EventFormat, HumanDuration};
use sluice_core::event::SourceInfo;
use sluice_core::schema::{Column, SqlType, TableId, TableSchema};
use sluice_core::{ChangeEvent, Op, Value};

fn schema(db: &str, table: &str) -> Arc<TableSchema> {
    Arc::new(TableSchema {
        id: TableId::new(db, table),
        columns: vec![
            Column { name: "id".into(), ty: SqlType::Int { bits: 32, unsigned: false }, nullable: false },
            Column { name: "email".into(), ty: SqlType::Text, nullable: true },
        ],
        key: vec![0],
        configured_key: false,
    })
}

/// An insert into `db.table` with change sequence `seq`.
fn event(db: &str, table: &str, seq: u64) -> ChangeEvent {
    ChangeEvent {
        op: Op::Insert,
        schema: schema(db, table),
        before: None,
        after: Some(vec![Value::Int(seq as i64), Value::Text(format!("u{seq}@x.io"))]),
        ts_ms: 1_700_000_000_000 + seq as i64,
        tx: Some(format!("0-1-{seq}").into()),
        seq,
        source: Arc::new(SourceInfo {
            connector: "mysql",
            file: "mysql-bin.000001".into(),
            pos: 4 + seq,
            gtid: None,
            server_id: 1,
            snapshot: false,
            replayed: false,
        }),
    }
}

fn users(seqs: std::ops::RangeInclusive<u64>) -> sluice_core::sink::Batch {
    sluice_core::sink::EventBatch::new(seqs.map(|s| event("shop", "users", s)).collect())
}

fn config(path: &std::path::Path, format: EventFormat) -> JsonlConfig {
    JsonlConfig {
        path: path.display().to_string(),
        format,
        flush_interval: HumanDuration(std::time::Duration::from_secs(1)),
        retry_for: HumanDuration(std::time::Duration::from_secs(1)),
    }
}

/// The parsed lines of a file.
fn read_lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}
