//! `sluice snapshot --table db.t`: asks the pipeline to read tables again while it streams.
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use sluice_core::requests::SnapshotRequests;
use sluice_core::TableId;

use super::load_config;

pub async fn run(config: &Path, tables: &[String]) -> anyhow::Result<ExitCode> {
    let cfg = load_config(config)?;
    let server = super::server(&cfg, "`sluice snapshot`")?;
    let mut conn = sluice_mysql::conn::connect(&server.url).await.context("connect to the source to find the tables")?;
    let captured = sluice_mysql::schema::list_tables(&mut conn, server).await?;
    let mut ids = Vec::with_capacity(tables.len());
    for name in tables {
        let Some((db, table)) = name.split_once('.') else {
            bail!("--table {name:?}: name a table as db.table");
        };
        let id = TableId::new(db, table);
        if !captured.contains(&id) {
            bail!(
                "--table {name}: no such table among those [source] tables captures ({} table(s)); check the name, or add it to [source] tables",
                captured.len()
            );
        }
        ids.push(id);
    }
    let requests = SnapshotRequests::new(&cfg.state.dir);
    for id in &ids {
        requests.request(id)?;
        println!("requested a snapshot of {id}: a running `sluice run` reads it by watermarks within a second, else the next run does");
    }
    Ok(ExitCode::SUCCESS)
}
