use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;
use clap::ValueEnum;
use sluice_lake::ddl::{statements, Engine as LakeEngine};
use sluice_lake::query::existing;

#[derive(Clone, Copy, ValueEnum)]
pub enum Engine {
    Athena,
    Trino,
}

/// One statement per lake table there is (a table without primary key has only its changelog).
pub async fn ddl(path: &Path, engine: Engine) -> anyhow::Result<ExitCode> {
    let cfg = super::load_config(path)?;
    let storage = super::lake_storage(&cfg, "lake ddl")?;
    let tables = existing(&storage, &super::known_tables(&cfg)?).await?;
    if tables.is_empty() {
        bail!("{}", super::empty_lake(&cfg, path));
    }
    let engine = match engine {
        Engine::Athena => LakeEngine::Athena,
        Engine::Trino => LakeEngine::Trino,
    };
    for s in statements(&storage, &tables, engine) {
        println!("{s}\n");
    }
    Ok(ExitCode::SUCCESS)
}
