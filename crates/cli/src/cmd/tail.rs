use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::ValueEnum;
use sluice_core::config::{Config, EventFormat, TablePattern};
use sluice_core::TableId;
use sluice_jsonl::{TailFrom, TailOptions};
use sluice_lake::changelog::ChangelogReader;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum From {
    Earliest,
    Latest,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Debezium,
    Dms,
}

/// What `tail` reads.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Source {
    /// The events file when [sink.jsonl] writes one, else the lake's changelog tables.
    Auto,
    /// The [sink.jsonl] events file.
    Events,
    /// The lake's changelog tables (`db.t__changes`).
    Lake,
}

#[allow(clippy::too_many_arguments)]
pub async fn run(
    path: &Path,
    source: Source,
    from: From,
    limit: Option<usize>,
    follow: bool,
    table: Option<String>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let cfg = super::load_config(path)?;
    let events_file = cfg.sink.jsonl.as_ref().filter(|j| j.path != "-");
    let use_lake = match source {
        Source::Lake => true,
        Source::Events => false,
        Source::Auto => events_file.is_none() && cfg.lake().is_some(),
    };
    if use_lake {
        return tail_lake(&cfg, from, limit, follow, table, format).await;
    }
    let Some(j) = events_file else {
        bail!("`tail --source events` follows the [sink.jsonl] file, and the config has none (or it writes to stdout): add [sink.jsonl] path = \"./events.jsonl\", or tail the lake with --source lake");
    };
    let opts = TailOptions {
        from: match from {
            From::Earliest => TailFrom::Earliest,
            From::Latest => TailFrom::Latest,
        },
        limit,
        table,
        format: match format {
            Format::Debezium => EventFormat::Debezium,
            Format::Dms => EventFormat::Dms,
        },
        follow,
        poll: Duration::from_millis(50),
    };
    let mut out = BufWriter::new(std::io::stdout());
    tokio::select! {
        r = sluice_jsonl::tail(Path::new(&j.path), j.format, &opts, &mut out) => { r?; }
        _ = tokio::signal::ctrl_c() => {}
    }
    out.flush().ok();
    Ok(ExitCode::SUCCESS)
}

/// Follows the lake's changelog tables: durable and replayable, no broker needed.
async fn tail_lake(
    cfg: &Config,
    from: From,
    limit: Option<usize>,
    follow: bool,
    table: Option<String>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let (storage, tables) = super::lake_tables(cfg)?;
    let known: Vec<TableId> = tables.into_iter().map(|(id, _)| id).collect();
    let filter = table.as_deref().map(TablePattern::parse).transpose().map_err(anyhow::Error::msg)?;
    let mut reader = ChangelogReader::new(storage, known, filter, from == From::Latest);
    let format = match format {
        Format::Debezium => EventFormat::Debezium,
        Format::Dms => EventFormat::Dms,
    };
    let mut out = BufWriter::new(std::io::stdout());
    let mut printed = 0usize;
    let run = async {
        loop {
            let want = limit.map_or(usize::MAX, |l| l - printed);
            let events = reader.poll(want).await?;
            let idle = events.is_empty();
            for ev in events.iter().take(want) {
                let line = sluice_core::encode::encode(ev, format, ev.ts_ms);
                if writeln!(out, "{line}").is_err() {
                    return Ok(());
                }
                printed += 1;
            }
            out.flush().ok();
            if limit.is_some_and(|l| printed >= l) || (idle && !follow) {
                return Ok::<(), anyhow::Error>(());
            }
            if idle {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    };
    tokio::select! {
        r = run => r?,
        _ = tokio::signal::ctrl_c() => {}
    }
    out.flush().ok();
    Ok(ExitCode::SUCCESS)
}
