use std::path::Path;
use std::process::ExitCode;

use crate::config::Config;
use sluice_mysql::check::{check, CheckItem, Status};

pub async fn run(path: &Path) -> anyhow::Result<ExitCode> {
    let cfg = super::load_config(path)?;
    let mut items = check(&cfg.source, &cfg.snapshot, None).await;
    items.extend(masking(&cfg));
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
    let items = check(&cfg.source, &cfg.snapshot, None).await;
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

/// The masking setup: rules, detection and whether the key `hash` needs is there.
fn masking(cfg: &Config) -> Option<CheckItem> {
    if !cfg.masks_anything() {
        return None;
    }
    let detect = cfg.detect.as_ref().map(|d| d.entities.iter().map(|e| e.name()).collect::<Vec<_>>().join(", "));
    let what = format!("{} mask rule(s); detection: {}", cfg.mask.len(), detect.unwrap_or_else(|| "off".into()));
    Some(match sluice_transform::MaskKey::load(cfg) {
        Ok(key) => CheckItem::new(
            "masking",
            Status::Ok,
            format!("{what}; key: {}", if key.is_some() { "set" } else { "not set (hash unavailable)" }),
            "",
        ),
        Err(e) => CheckItem::new("masking", Status::Fail, what, e.message),
    })
}
