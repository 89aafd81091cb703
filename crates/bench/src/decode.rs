//! `decode`: the binlog from FILE:POS to the end as seen at start, through `MysqlSource` — the
//! source `sluice run` uses (replication connection, table maps, row decoding into typed
//! `ChangeEvent`s, checkpoints) — with no sink behind it.
use std::time::Instant;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use sluice_core::checkpoint::Checkpoint;
type Config = sluice_core::config::Config<sluice_mysql::MysqlConfig, toml::Table>;
use sluice_core::source::{Source, SourceMsg};
use sluice_core::Op;
use sluice_mysql::position::{BinlogPos, MysqlPosition};
use sluice_mysql::MysqlSource;
use tokio::sync::mpsc;

pub async fn run(url: &str, tables: &[String], file: &str, pos: u64, server_id: u32) -> anyhow::Result<Value> {
    let patterns = tables.iter().map(|t| format!("{t:?}")).collect::<Vec<_>>().join(", ");
    let toml = format!(
        "[source]\nkind = \"mysql\"\nurl = {url:?}\nserver_id = {server_id}\ntables = [{patterns}]\n\n\
         [snapshot]\nmode = \"never\"\n\n[sink.jsonl]\npath = \"-\"\n"
    );
    let cfg = Config::parse(&toml, "sluice-bench decode").context("building the source config")?;
    let start_pos = MysqlPosition { binlog: BinlogPos { file: file.to_string(), pos }, gtid: None, snapshot: None };
    let resume = Checkpoint { position: start_pos.to_json(), next_seq: 0 };

    let (tx, mut rx) = mpsc::channel(32);
    let source: Box<dyn Source> = Box::new(MysqlSource::new(cfg.source, cfg.snapshot, None));
    let started = Instant::now();
    let (_committed_tx, committed) = tokio::sync::watch::channel(None);
    let mut task = tokio::spawn(async move { source.run(Some(resume), tx, committed).await });

    let (mut rows, mut inserts, mut updates, mut deletes, mut batches, mut checkpoints) = (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    let mut first_event: Option<f64> = None;
    loop {
        match rx.recv().await {
            Some(SourceMsg::Events(evs)) => {
                first_event.get_or_insert_with(|| started.elapsed().as_secs_f64());
                batches += 1;
                for ev in &evs {
                    match ev.op {
                        Op::Insert => inserts += 1,
                        Op::Update => updates += 1,
                        Op::Delete => deletes += 1,
                        Op::Read => {}
                    }
                }
                rows += evs.len() as u64;
            }
            Some(SourceMsg::Checkpoint(_)) => checkpoints += 1,
            Some(SourceMsg::Idle | SourceMsg::FullLoad { .. } | SourceMsg::Retrying(_) | SourceMsg::TableDdl(_)) => {}
            Some(SourceMsg::CaughtUp) => break,
            None => {
                let res = (&mut task).await;
                match res {
                    Ok(Err(e)) => bail!("the source failed: {e}"),
                    Ok(Ok(())) => bail!("the source stopped before reaching the binlog end"),
                    Err(e) => bail!("the source task failed: {e}"),
                }
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    drop(rx);
    task.abort();
    eprintln!("sluice-bench decode: {rows} row changes from {file}:{pos} in {secs:.3} s");
    Ok(json!({
        "rows": rows,
        "inserts": inserts,
        "updates": updates,
        "deletes": deletes,
        "batches": batches,
        "checkpoints": checkpoints,
        "seconds": secs,
        "first_event_s": first_event,
        "rows_per_s": if secs > 0.0 { rows as f64 / secs } else { 0.0 },
    }))
}
