pub mod check;
pub mod run;
pub mod status;
pub mod tail;

use std::path::Path;

use anyhow::Context;
use sluice_core::config::Config;

pub fn load_config(path: &Path) -> anyhow::Result<Config> {
    Config::load(path).context("invalid configuration")
}
