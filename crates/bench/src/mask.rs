//! `mask`: the masking transform alone, in process, on the reference users rows — its cost per
//! row, to set against the per-row cost of a full load (the end-to-end comparison is noisy).
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
/// The bench builds no sink: their sections are left as they are.
type Config = sluice_core::config::Config<sluice_mysql::MysqlConfig, toml::Table>;
use sluice_core::event::{ChangeEvent, Op, SourceInfo};
use sluice_core::schema::{Column, SqlType, TableId, TableSchema};
use sluice_core::transform::Transform;
use sluice_testkit::users::generate;
use sluice_transform::Masker;

const BATCH: usize = 1024;

pub fn run(rows: usize, config: &str) -> anyhow::Result<Value> {
    let cfg = Config::parse(config, "sluice-bench mask")?;
    let mut masker = Masker::from_config(&cfg)?.ok_or_else(|| anyhow::anyhow!("the config masks nothing"))?;
    masker.open(None)?;
    let int = SqlType::Int { bits: 32, unsigned: false };
    let names = ["userid", "username", "firstname", "lastname", "city", "state", "email", "phone", "numberofdocuments"];
    let schema = Arc::new(TableSchema {
        id: TableId::new("bench", "users"),
        columns: names
            .iter()
            .map(|n| Column {
                name: (*n).into(),
                ty: if ["userid", "numberofdocuments"].contains(n) { int.clone() } else { SqlType::Text },
                nullable: true,
            })
            .collect(),
        key: vec![0],
        configured_key: false,
    });
    use sluice_core::Value as V;
    let events: Vec<ChangeEvent> = generate(rows, 42)
        .enumerate()
        .map(|(i, u)| ChangeEvent {
            op: Op::Read,
            schema: schema.clone(),
            before: None,
            after: Some(vec![
                V::Int(i64::from(u.userid)),
                V::Text(u.username),
                V::Text(u.firstname),
                V::Text(u.lastname),
                V::Text(u.city),
                V::Text(u.state),
                V::Text(u.email),
                V::Text(u.phone),
                V::Int(i64::from(u.numberofdocuments)),
            ]),
            ts_ms: 0,
            tx: None,
            seq: i as u64,
            source: SourceInfo::default().into(),
        })
        .collect();
    // The pipeline clones nothing here either: batches are moved through the transform.
    let mut batches: Vec<Vec<ChangeEvent>> = Vec::new();
    let mut it = events.into_iter().peekable();
    while it.peek().is_some() {
        batches.push(it.by_ref().take(BATCH).collect());
    }
    // Outputs are kept until the clock stops: freeing rows is the sink's cost, not masking's.
    let mut kept = Vec::with_capacity(batches.len());
    let started = Instant::now();
    for b in batches {
        kept.push(masker.apply(b)?);
    }
    let secs = started.elapsed().as_secs_f64();
    let out: usize = kept.iter().map(Vec::len).sum();
    Ok(json!({ "rows": out, "secs": secs, "rows_per_s": out as f64 / secs, "ns_per_row": secs * 1e9 / out as f64 }))
}
