use std::collections::BTreeSet;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use crate::config::Config;
use anyhow::bail;
use clap::ValueEnum;
use sluice_core::config::{EventFormat, TablePattern};
use sluice_core::encode::{debezium, dms_keyed};
use sluice_core::state::StateStore;
use sluice_core::tailing::TailOptions;
use sluice_core::TableId;
use sluice_jsonl::{JsonlConfig, TailFrom};
use sluice_lake::changelog::ChangelogReader;
use sluice_lake::query::{discover, existing};
use sluice_lake::Storage;

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
    /// The events file when [sink.jsonl] writes one, else the lake's changelog tables, else
    /// the Kinesis stream.
    Auto,
    /// The [sink.jsonl] events file.
    Events,
    /// The lake's changelog tables (`db.t__changes`).
    Lake,
    /// Every shard of the [sink.kinesis] stream.
    Kinesis,
    /// Every partition of the [sink.kafka] topics.
    Kafka,
}

impl Format {
    fn event_format(self) -> EventFormat {
        match self {
            Format::Debezium => EventFormat::Debezium,
            Format::Dms => EventFormat::Dms,
        }
    }
}

/// What `sluice tail` was asked for.
pub struct TailArgs {
    pub source: Source,
    pub from: From,
    pub limit: Option<usize>,
    pub follow: bool,
    pub table: Option<String>,
    /// `None`: Debezium, except for a stream, shown as it carries its records.
    pub format: Option<Format>,
}

pub async fn run(path: &Path, args: TailArgs) -> anyhow::Result<ExitCode> {
    let cfg = super::load_config(path)?;
    // `auto` reads a stream when it is the only sink that can be read back.
    let no_file_or_lake = cfg.sink.jsonl.as_ref().is_none_or(|j| j.path == "-") && cfg.sink.lake.is_none();
    let source = match args.source {
        Source::Auto if no_file_or_lake && cfg.sink.kinesis.is_some() => Source::Kinesis,
        Source::Auto if no_file_or_lake && cfg.sink.kafka.is_some() => Source::Kafka,
        s => s,
    };
    if matches!(source, Source::Kinesis | Source::Kafka) {
        return tail_stream(&cfg, &args, source).await;
    }
    let events_file = cfg.sink.jsonl.as_ref().filter(|j| j.path != "-");
    let use_lake = match args.source {
        Source::Lake => true,
        Source::Events => false,
        Source::Auto => events_file.is_none() && cfg.sink.lake.as_ref().is_some(),
        Source::Kinesis | Source::Kafka => unreachable!("handled above"),
    };
    if nothing_captured(&cfg, events_file)? {
        bail!(
            "nothing was captured yet (no events file, no lake tables, no committed state): run `sluice run -c {}` first",
            path.display()
        );
    }
    let mut out = BufWriter::new(std::io::stdout());
    let printing = async {
        if use_lake {
            return tail_lake(&cfg, &args, &mut out).await;
        }
        let Some(j) = events_file else {
            bail!("`tail --source events` follows the [sink.jsonl] file, and the config has none (or it writes to stdout): add [sink.jsonl] path = \"./events.jsonl\", or tail the lake with --source lake");
        };
        let opts = sluice_jsonl::TailOptions {
            from: match args.from {
                From::Earliest => TailFrom::Earliest,
                From::Latest => TailFrom::Latest,
            },
            limit: args.limit,
            table: args.table.clone(),
            format: args.format.unwrap_or(Format::Debezium).event_format(),
            follow: args.follow,
            poll: Duration::from_millis(50),
            keyless: match (j.format, args.format) {
                (EventFormat::Debezium, Some(Format::Dms)) => keyless_tables(&cfg).await?,
                _ => BTreeSet::new(),
            },
        };
        sluice_jsonl::tail(Path::new(&j.path), j.format, &opts, &mut out).await.map(drop)
    };
    tokio::select! {
        r = printing => r?,
        _ = tokio::signal::ctrl_c() => {}
    }
    out.flush().ok();
    Ok(ExitCode::SUCCESS)
}

/// No committed state, no events file and no lake table: no run has delivered anything.
fn nothing_captured(cfg: &Config, events_file: Option<&JsonlConfig>) -> anyhow::Result<bool> {
    let state = StateStore::open_read_only(&cfg.state.dir).load()?;
    if state.checkpoint.is_some() || state.committed_at_ms > 0 || events_file.is_some_and(|j| Path::new(&j.path).exists()) {
        return Ok(false);
    }
    match &cfg.sink.lake {
        // Without a state there are no known tables: on S3 (not listed) that means none.
        Some(lake) => Ok(discover(&Storage::new(lake)?, &[]).is_empty()),
        None => Ok(true),
    }
}

/// The tables the lake holds only the changelog of (no key), for DMS's `partition-key-type`
/// when re-encoding Debezium lines (which do not say). Empty without a lake.
async fn keyless_tables(cfg: &Config) -> anyhow::Result<BTreeSet<TableId>> {
    let Some(lake) = &cfg.sink.lake else { return Ok(BTreeSet::new()) };
    let storage = Storage::new(lake)?;
    let tables = existing(&storage, &super::known_tables(cfg)?).await?;
    let keyed: BTreeSet<&TableId> = tables.iter().filter(|(_, changes)| !changes).map(|(id, _)| id).collect();
    Ok(tables.iter().filter(|(id, changes)| *changes && !keyed.contains(id)).map(|(id, _)| id.clone()).collect())
}

/// Follows the lake's changelog tables: durable and replayable, no broker needed.
async fn tail_lake(cfg: &Config, args: &TailArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let storage = super::lake_storage(cfg, "tail --source lake")?;
    let known = super::known_tables(cfg)?;
    let filter = args.table.as_deref().map(TablePattern::parse).transpose().map_err(anyhow::Error::msg)?;
    let mut reader = ChangelogReader::new(storage, known, filter, args.from == From::Latest);
    let mut printed = 0usize;
    loop {
        let want = args.limit.map_or(usize::MAX, |l| l - printed);
        let events = reader.poll(want).await?;
        let idle = events.is_empty();
        for ev in events.iter().take(want) {
            let line = match args.format.unwrap_or(Format::Debezium) {
                // The changelog does not keep the key: whether there is one, the lake says.
                Format::Dms => dms_keyed(ev, reader.keyed(&ev.schema.id)),
                Format::Debezium => debezium(ev, ev.ts_ms),
            };
            if writeln!(out, "{line}").is_err() {
                return Ok(());
            }
            printed += 1;
        }
        out.flush().ok();
        if args.limit.is_some_and(|l| printed >= l) || (idle && !args.follow) {
            return Ok(());
        }
        if idle {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// Reads every shard of the [sink.kinesis] stream or every partition of the [sink.kafka] topics.
async fn tail_stream(cfg: &Config, args: &TailArgs, source: Source) -> anyhow::Result<ExitCode> {
    let opts = TailOptions {
        latest: args.from == From::Latest,
        limit: args.limit,
        table: args.table.clone(),
        format: args.format.map(Format::event_format),
        follow: args.follow,
    };
    let mut out = BufWriter::new(std::io::stdout());
    let printing = async {
        match source {
            Source::Kinesis => {
                let Some(k) = &cfg.sink.kinesis else {
                    bail!("`tail --source kinesis` reads the [sink.kinesis] stream, and the config has none: add [sink.kinesis] stream = \"...\" and region = \"...\"");
                };
                sluice_kinesis::tail(k, &opts, &mut out).await
            }
            _ => {
                let Some(k) = &cfg.sink.kafka else {
                    bail!("`tail --source kafka` reads the [sink.kafka] topics, and the config has none: add [sink.kafka] brokers = \"host:9092\"");
                };
                sluice_kafka::tail(k, &opts, &mut out).await
            }
        }
    };
    tokio::select! {
        r = printing => { r?; }
        _ = tokio::signal::ctrl_c() => {}
    }
    out.flush().ok();
    Ok(ExitCode::SUCCESS)
}
