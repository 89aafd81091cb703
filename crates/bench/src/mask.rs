//! `mask`: the masking transform alone, in process, on the reference users rows — its cost per
//! row, to set against the per-row cost of a full load (the end-to-end comparison is noisy).
use std::time::Instant;

use serde_json::{json, Value};
/// The bench builds no sink: their sections are left as they are.
type Config = sluice_core::config::Config<sluice_mysql::MysqlConfig, toml::Table>;
use sluice_core::event::{ChangeEvent, Op};
use sluice_core::transform::Transform;
use sluice_transform::Masker;

const BATCH: usize = 1024;

pub fn run(rows: usize, config: &str) -> anyhow::Result<Value> {
    let cfg = Config::parse(config, "sluice-bench mask")?;
    let mut masker = Masker::from_config(&cfg)?.ok_or_else(|| anyhow::anyhow!("the config masks nothing"))?;
    masker.open(None)?;
    let schema = crate::users::schema();
    let events: Vec<ChangeEvent> = crate::users::rows(rows)
        .enumerate()
        .map(|(i, row)| ChangeEvent {
            op: Op::Read,
            schema: schema.clone(),
            before: None,
            after: Some(row),
            ts_ms: 0,
            tx: None,
            seq: i as u64,
            source: Default::default(),
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
