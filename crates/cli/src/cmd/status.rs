use std::path::Path;
use std::process::ExitCode;

use std::collections::BTreeMap;

use serde_json::json;
use sluice_core::state::StateStore;
use sluice_core::value::format_datetime;
use sluice_transform::Decision;

pub async fn run(path: &Path, as_json: bool) -> anyhow::Result<ExitCode> {
    let cfg = super::load_config(path)?;
    let state = StateStore::open_read_only(&cfg.state.dir).load()?;
    let now = chrono::Utc::now().timestamp_millis();
    let position = state.checkpoint.as_ref().map(|c| c.position.clone());
    let phase = match &position {
        None => "not started",
        Some(p) if p.get("snapshot").is_some() => "snapshot",
        Some(_) => "streaming",
    };
    // Lag at the last commit: 0 when it covered everything the server had (also while idle),
    // else how old the newest committed change was then. Older states lack the field.
    let lag_ms = state.lag_ms.or_else(|| state.source_ts_ms.map(|ts| (state.committed_at_ms - ts).max(0)));
    let next_seq = state.checkpoint.as_ref().map(|c| c.next_seq);
    // Per sink, everything below this seq is durable there (at least the committed checkpoint).
    let sinks: BTreeMap<&String, Option<u64>> =
        state.sinks.keys().map(|name| (name, state.durable.get(name).copied().or(next_seq))).collect();
    let decisions = pii_decisions(&state.transforms);
    if as_json {
        let v = json!({
            "phase": phase,
            "position": position,
            "next_seq": next_seq,
            "committed_at_ms": state.committed_at_ms,
            "source_ts_ms": state.source_ts_ms,
            "lag_ms": lag_ms,
            "sinks": sinks.iter().map(|(name, seq)| json!({ "name": name, "durable_seq": seq })).collect::<Vec<_>>(),
            "tables": state.tables,
            "pii_detection": decisions,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("phase:      {phase}");
    if position.is_none() {
        println!("            nothing captured yet: `sluice run -c {}` starts", path.display());
    }
    if let Some(p) = &position {
        println!("position:   {p}");
    }
    if state.committed_at_ms > 0 {
        println!("committed:  {} ({} s ago)", format_datetime(state.committed_at_ms * 1000, true), (now - state.committed_at_ms) / 1000);
    }
    if let Some(l) = lag_ms {
        println!("lag:        {l} ms at last commit");
    }
    for (name, seq) in &sinks {
        println!("sink {name:<6} durable below seq {}", seq.map_or_else(|| "-".to_string(), |s| s.to_string()));
    }
    println!();
    println!("{:<32} {:>12} {:>10} {:>10} {:>10}  last change", "table", "full load", "inserts", "updates", "deletes");
    for (name, t) in &state.tables {
        let last = t.last_change_ms.map(|ms| format_datetime(ms * 1000, true)).unwrap_or_else(|| "-".into());
        println!("{name:<32} {:>12} {:>10} {:>10} {:>10}  {last}", t.full_load_rows, t.inserts, t.updates, t.deletes);
    }
    if !decisions.is_empty() {
        println!();
        println!("{:<40} {:<10} {:<14} {:>8} {:>8}", "PII detection: column", "decision", "entity", "matched", "sampled");
        for (column, d) in &decisions {
            let (what, entity, matched, seen) = match d {
                Decision::Masked { entity, seen, hits } => ("masked", entity.name(), *hits, *seen),
                Decision::Clear { seen } => ("clear", "-", 0, *seen),
                Decision::Sampling { seen, hits } => ("sampling", "-", hits.values().copied().max().unwrap_or(0), *seen),
            };
            println!("{column:<40} {what:<10} {entity:<14} {matched:>8} {seen:>8}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The masking transform's persisted detection decisions, `db.table.column` → decision.
fn pii_decisions(transforms: &BTreeMap<String, serde_json::Value>) -> BTreeMap<String, Decision> {
    transforms.get("mask").and_then(|m| m.get("decisions")).and_then(|d| serde_json::from_value(d.clone()).ok()).unwrap_or_default()
}
