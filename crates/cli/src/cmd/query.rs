use std::path::Path;
use std::process::ExitCode;

use clap::ValueEnum;
use sluice_lake::query::{render, run_sql, session, Format as LakeFormat};

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

pub async fn run(path: &Path, sql: &str, format: Format) -> anyhow::Result<ExitCode> {
    let cfg = super::load_config(path)?;
    let (storage, tables) = super::lake_tables(&cfg)?;
    let ctx = session(&storage, &tables).await?;
    let batches = run_sql(&ctx, sql).await?;
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
