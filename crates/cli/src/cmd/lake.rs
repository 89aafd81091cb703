use std::path::Path;
use std::process::ExitCode;

use clap::ValueEnum;
use sluice_lake::ddl::{statements, Engine as LakeEngine};

#[derive(Clone, Copy, ValueEnum)]
pub enum Engine {
    Athena,
    Trino,
}

pub async fn ddl(path: &Path, engine: Engine) -> anyhow::Result<ExitCode> {
    let cfg = super::load_config(path)?;
    let (storage, tables) = super::lake_tables(&cfg)?;
    let engine = match engine {
        Engine::Athena => LakeEngine::Athena,
        Engine::Trino => LakeEngine::Trino,
    };
    for s in statements(&storage, &tables, engine) {
        println!("{s}\n");
    }
    Ok(ExitCode::SUCCESS)
}
