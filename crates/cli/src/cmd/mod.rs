pub mod check;
pub mod gaps;
pub mod lake;
pub mod query;
pub mod run;
pub mod status;
pub mod tail;
pub mod validate;

use std::path::Path;

use crate::config::Config;
use anyhow::Context;

pub fn load_config(path: &Path) -> anyhow::Result<Config> {
    Config::load(path).context("invalid configuration")
}

/// The lake of a config, and the tables it holds (found on disk, and named in the state).
pub fn lake_tables(cfg: &Config) -> anyhow::Result<(sluice_lake::Storage, Vec<(sluice_core::TableId, bool)>)> {
    let lake = cfg.sink.lake.as_ref().context("the config has no [sink.lake]: nothing to query")?;
    let storage = sluice_lake::Storage::new(lake)?;
    let state = sluice_core::state::StateStore::open_read_only(&cfg.state.dir).load()?;
    let known: Vec<sluice_core::TableId> =
        state.tables.keys().filter_map(|k| k.split_once('.')).map(|(d, t)| sluice_core::TableId::new(d, t)).collect();
    Ok((storage.clone(), sluice_lake::query::discover(&storage, &known)))
}
