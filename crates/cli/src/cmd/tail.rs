use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::ValueEnum;
use sluice_core::config::EventFormat;
use sluice_jsonl::{TailFrom, TailOptions};

#[derive(Clone, Copy, ValueEnum)]
pub enum From {
    Earliest,
    Latest,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Debezium,
    Dms,
}

pub async fn run(
    path: &Path,
    from: From,
    limit: Option<usize>,
    follow: bool,
    table: Option<String>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let cfg = super::load_config(path)?;
    let Some(j) = &cfg.sink.jsonl else {
        bail!("`tail` follows the [sink.jsonl] file, and the config has none: add [sink.jsonl] path = \"./events.jsonl\"");
    };
    if j.path == "-" {
        bail!("[sink.jsonl] writes to stdout; `tail` needs a file path");
    }
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
