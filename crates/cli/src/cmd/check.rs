use std::path::Path;
use std::process::ExitCode;

use sluice_core::config::Config;
use sluice_mysql::check::{check, CheckItem, Status};

pub async fn run(path: &Path) -> anyhow::Result<ExitCode> {
    let cfg = super::load_config(path)?;
    let items = check(&cfg).await;
    print_items(&items);
    Ok(if failed(&items) { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

pub fn failed(items: &[CheckItem]) -> bool {
    items.iter().any(|i| i.status == Status::Fail)
}

pub fn print_items(items: &[CheckItem]) {
    for i in items {
        let tag = match i.status {
            Status::Ok => "ok  ",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        println!("{tag}  {:<20} {}", i.name, i.detail);
        if !i.fix.is_empty() {
            println!("      {:<20} fix: {}", "", i.fix);
        }
    }
}

/// Used by `run`: refuse to start when the server is not ready, printing why.
pub async fn preflight(cfg: &Config) -> anyhow::Result<()> {
    let items = check(cfg).await;
    if failed(&items) {
        for i in items.iter().filter(|i| i.status == Status::Fail) {
            eprintln!("FAIL  {}: {}\n      fix: {}", i.name, i.detail, i.fix);
        }
        anyhow::bail!("the source is not ready for capture (see above); nothing was written");
    }
    for i in items.iter().filter(|i| i.status == Status::Warn) {
        tracing::warn!(check = i.name, fix = %i.fix, "{}", i.detail);
    }
    Ok(())
}
