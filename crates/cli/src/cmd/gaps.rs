//! No silent initial-load gap: a run that resumes snapshots a table that newly matches
//! `[source] tables` (its existing rows were never loaded) by watermarks while the others
//! stream on, and refuses to start when a sink was added (it would get only changes from now
//! on), naming the sink and the fix. `[snapshot] mode = "always"` loads everything again, and
//! `"never"` asks for no initial load: both skip this.
use anyhow::bail;
use serde_json::{json, Value as Json};
use sluice_core::config::{SnapshotMode, SourceSettings, TablePattern};
use sluice_core::requests::SnapshotRequests;
use sluice_core::state::State;

use crate::config::Config;

/// What the state records of the selection ([`State::capture`]).
pub fn capture(cfg: &Config) -> Json {
    let names = |ps: &[TablePattern]| ps.iter().map(ToString::to_string).collect::<Vec<_>>();
    let selection = cfg.source.selection();
    json!({ "tables": names(selection.tables), "exclude": names(selection.exclude) })
}

pub async fn refuse_gaps(cfg: &Config, state: &State) -> anyhow::Result<()> {
    if state.checkpoint.is_none() || cfg.snapshot.mode != SnapshotMode::Initial {
        return Ok(());
    }
    refuse_added_sinks(
        cfg,
        state,
        "run once with [snapshot] mode = \"always\" (every sink receives all rows again as snapshot reads), or start over with an empty state dir",
    )?;
    let Some(before) = state.capture.as_ref().and_then(Selection::from_json) else { return Ok(()) };
    let server = super::server(cfg, "finding tables that newly match [source] tables")?;
    let mut conn = sluice_mysql::conn::connect(&server.url).await?;
    let mut newly = Vec::new();
    for id in sluice_mysql::schema::list_tables(&mut conn, server).await? {
        if !before.captures(&id.db, &id.table) && sluice_mysql::schema::has_rows(&mut conn, &id).await? {
            newly.push(id);
        }
    }
    // Their rows were never loaded: the source reads them by watermarks while the other tables
    // stream on from their position.
    let requests = SnapshotRequests::new(&cfg.state.dir);
    for id in &newly {
        requests.request(id)?;
        tracing::info!(table = %id, "table newly matches [source] tables: its rows are snapshotted while streaming goes on");
    }
    Ok(())
}

/// A sink added after the first run would get only the changes from now on: refused, saying
/// how to `fill` it.
pub fn refuse_added_sinks(cfg: &Config, state: &State, fill: &str) -> anyhow::Result<()> {
    if state.checkpoint.is_none() {
        return Ok(());
    }
    let dir = cfg.state.dir.display();
    for s in cfg.sink.configured() {
        if !state.sinks.contains_key(s.name()) {
            bail!(
                "[sink.{name}] was added after this pipeline first ran (state dir {dir}): it would get only the changes from now on, \
                 never the rows captured before. To fill it, {fill}; or remove [sink.{name}]",
                name = s.name()
            );
        }
    }
    Ok(())
}

/// The selection a previous run recorded.
struct Selection {
    tables: Vec<TablePattern>,
    exclude: Vec<TablePattern>,
}

impl Selection {
    fn from_json(v: &Json) -> Option<Self> {
        let list = |k: &str| -> Option<Vec<TablePattern>> {
            v.get(k)?.as_array()?.iter().map(|p| p.as_str().and_then(|s| TablePattern::parse(s).ok())).collect()
        };
        Some(Self { tables: list("tables")?, exclude: list("exclude")? })
    }

    fn captures(&self, db: &str, table: &str) -> bool {
        let no_keys = Default::default();
        sluice_core::config::Selection { tables: &self.tables, exclude: &self.exclude, keys: &no_keys }.captures(db, table)
    }
}
