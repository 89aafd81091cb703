use std::path::Path;
use std::process::ExitCode;

use clap::ValueEnum;
use sluice_lake::query::{render, Format as LakeFormat};

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

pub async fn run(path: &Path, sql: &str, format: Format) -> anyhow::Result<ExitCode> {
    let cfg = super::load_config(path)?;
    let lake = super::open_lake(&cfg, path, "query").await?;
    let batches = lake.sql(sql).await?;
    let format = match format {
        Format::Table => LakeFormat::Table,
        Format::Csv => LakeFormat::Csv,
        Format::Json => LakeFormat::Json,
    };
    print!("{}", render(&batches, format)?);
    if format == LakeFormat::Table {
        println!();
    }
    Ok(ExitCode::SUCCESS)
}
