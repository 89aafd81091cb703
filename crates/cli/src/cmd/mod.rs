pub mod check;
pub mod gaps;
pub mod lake;
pub mod query;
pub mod run;
pub mod snapshot;
pub mod status;
pub mod tail;
pub mod validate;

use std::path::Path;

use crate::config::Config;
use anyhow::{bail, Context};
use sluice_core::state::StateStore;
use sluice_core::TableId;
use sluice_lake::query::Lake;
use sluice_lake::Storage;

pub fn load_config(path: &Path) -> anyhow::Result<Config> {
    Config::load(path).context("invalid configuration")
}

/// The server of `[source] kind = "mysql"`; for binlog files, an error saying `what` needs one.
pub fn server<'a>(cfg: &'a Config, what: &str) -> anyhow::Result<&'a sluice_mysql::MysqlConfig> {
    cfg.source.server(what).map_err(anyhow::Error::msg)
}

/// The lake of a config, as it is (nothing is created): `sluice <what>` reads it.
pub fn lake_storage(cfg: &Config, what: &str) -> anyhow::Result<Storage> {
    let lake = cfg.sink.lake.as_ref().with_context(|| {
        format!(
            "`sluice {what}` reads the lake, and the config has no [sink.lake]: add a [sink.lake] section \
             (path = \"./lake\") and run `sluice run` to fill it"
        )
    })?;
    Ok(Storage::new(lake)?)
}

/// The tables the committed state names: how tables are found on S3, which is not listed.
pub fn known_tables(cfg: &Config) -> anyhow::Result<Vec<TableId>> {
    let state = StateStore::open_read_only(&cfg.state.dir).load()?;
    Ok(state.tables.keys().filter_map(|k| k.split_once('.')).map(|(d, t)| TableId::new(d, t)).collect())
}

/// The lake's SQL session; an error saying what to do when it holds no table yet.
pub async fn open_lake(cfg: &Config, config_path: &Path, what: &str) -> anyhow::Result<Lake> {
    let storage = lake_storage(cfg, what)?;
    let lake = Lake::open(&storage, &known_tables(cfg)?).await?;
    if lake.is_empty() {
        bail!("{}", empty_lake(cfg, config_path));
    }
    Ok(lake)
}

/// "The lake … holds no tables yet": nothing was captured into it.
pub fn empty_lake(cfg: &Config, config_path: &Path) -> String {
    let path = cfg.sink.lake.as_ref().map_or("", |l| l.path.as_str());
    format!("the lake at {path} holds no tables yet: nothing was captured; run `sluice run -c {}` first", config_path.display())
}
