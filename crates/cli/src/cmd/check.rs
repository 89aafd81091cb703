use std::path::Path;
use std::process::ExitCode;

use crate::config::Config;
use sluice_mysql::check::{check, CheckItem, Status};

pub async fn run(path: &Path) -> anyhow::Result<ExitCode> {
    let cfg = super::load_config(path)?;
    let mut items = check(super::server(&cfg, "`sluice check`")?, &cfg.snapshot, None).await;
    items.extend(masking(&cfg));
    items.extend(masked_keys(&cfg).await);
    items.extend(sinks(&cfg).await);
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
    let mut items = check(super::server(cfg, "the server check")?, &cfg.snapshot, None).await;
    items.extend(masked_keys(cfg).await);
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

/// The sinks that talk to a service: reachable, credentials accepted, destination ready.
async fn sinks(cfg: &Config) -> Vec<CheckItem> {
    let mut items = Vec::new();
    if let Some(k) = &cfg.sink.kinesis {
        items.push(sink_item("sink kinesis", sluice_kinesis::check(k).await));
    }
    if let Some(k) = &cfg.sink.kafka {
        items.push(sink_item("sink kafka", sluice_kafka::check(k).await));
    }
    items
}

/// A sink's probe as a check line. Messages are "<cause>: <fix>".
fn sink_item(name: &'static str, probe: Result<String, sluice_core::SluiceError>) -> CheckItem {
    match probe {
        Ok(found) => CheckItem::new(name, Status::Ok, found, ""),
        Err(e) => {
            let (cause, fix) = e.message.split_once(": ").unwrap_or((&e.message, ""));
            CheckItem::new(name, Status::Fail, cause.to_string(), fix.to_string())
        }
    }
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

/// `[[mask]]` rules that cover a key column (a primary key or `[source] keys`): the lake merges
/// by key, so such a column can only be hashed, and only with a masking key.
async fn masked_keys(cfg: &Config) -> Option<CheckItem> {
    if cfg.mask.is_empty() {
        return None;
    }
    let server = cfg.source.server("").ok()?;
    let mut conn = sluice_mysql::conn::connect(&server.url).await.ok()?;
    let ids = sluice_mysql::schema::list_tables(&mut conn, server).await.ok()?;
    let mut covered = Vec::new();
    for id in ids {
        let Ok(mut t) = sluice_mysql::schema::load_table(&mut conn, &id).await else { continue };
        cfg.apply_keys(std::sync::Arc::make_mut(&mut t.schema));
        for &k in &t.schema.key {
            let col = &t.schema.columns[k].name;
            if let Some(n) = cfg.mask.iter().position(|r| r.columns.iter().any(|p| p.matches(&id.db, &id.table, col))) {
                covered.push(format!("{id}.{col} (rule {})", n + 1));
            }
        }
    }
    if covered.is_empty() {
        return None;
    }
    let list = covered.join(", ");
    Some(match sluice_transform::MaskKey::load(cfg) {
        Ok(Some(_)) => CheckItem::new(
            "masked keys",
            Status::Warn,
            format!("[[mask]] covers key column(s) {list}: they are hashed instead, so the lake can still merge by key"),
            "leave key columns out of [[mask]] columns if they hold no PII",
        ),
        _ => CheckItem::new(
            "masked keys",
            Status::Fail,
            format!("[[mask]] covers key column(s) {list}, which can only be masked with \"hash\" (the lake merges by key), and no masking key is set"),
            format!("leave the key columns out of [[mask]] columns, or set {} (or [mask_key] file) so they are hashed", sluice_core::config::MASK_KEY_ENV),
        ),
    })
}
