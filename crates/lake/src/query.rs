//! SQL over the lake with DataFusion: every lake table registered as `db.t` and
//! `db.t__changes`.
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use deltalake::arrow::record_batch::RecordBatch;
use deltalake::datafusion::catalog::MemorySchemaProvider;
use deltalake::datafusion::common::TableReference;
use deltalake::datafusion::prelude::SessionContext;
use deltalake::DeltaTable;
use sluice_core::{SluiceError, TableId};

use crate::storage::Storage;
use crate::table::lake_err;

/// Output formats of `sluice query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// Lake tables: those found under a local root, plus `known` (e.g. from the state file).
pub fn discover(storage: &Storage, known: &[TableId]) -> Vec<(TableId, bool)> {
    let mut found: BTreeSet<(TableId, bool)> = BTreeSet::new();
    for id in known {
        found.insert((id.clone(), false));
        found.insert((id.clone(), true));
    }
    if storage.is_local() {
        if let Ok(root) = storage.root().to_file_path() {
            for db in read_dirs(&root) {
                for t in read_dirs(&root.join(&db)) {
                    if root.join(&db).join(&t).join("_delta_log").is_dir() {
                        let (name, changes) = match t.strip_suffix("__changes") {
                            Some(n) => (n.to_string(), true),
                            None => (t.clone(), false),
                        };
                        found.insert((TableId::new(db.clone(), name), changes));
                    }
                }
            }
        }
    }
    found.into_iter().collect()
}

fn read_dirs(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    rd.flatten().filter(|e| e.path().is_dir()).filter_map(|e| e.file_name().into_string().ok()).collect()
}

/// A DataFusion session with every existing lake table registered.
pub async fn session(storage: &Storage, tables: &[(TableId, bool)]) -> Result<SessionContext, SluiceError> {
    let ctx = SessionContext::new();
    let catalog = ctx.catalog("datafusion").ok_or_else(|| SluiceError::permanent("no default catalog"))?;
    for (id, changes) in tables {
        let url = storage.table_url(id, *changes)?;
        let table = match DeltaTable::try_from_url_with_storage_options(url, storage.options().clone()).await {
            Ok(t) if t.version().is_some() => t,
            Ok(_) => continue,
            Err(e) => return Err(lake_err(&format!("open {id}"), e)),
        };
        if catalog.schema(&id.db).is_none() {
            catalog
                .register_schema(&id.db, Arc::new(MemorySchemaProvider::new()))
                .map_err(|e| SluiceError::permanent(format!("register schema {}: {e}", id.db)))?;
        }
        table.update_datafusion_session(&ctx.state()).map_err(|e| lake_err("register storage", e))?;
        let provider = table.table_provider().await.map_err(|e| SluiceError::permanent(format!("lake: read {id}: {e}")))?;
        let name = if *changes { format!("{}__changes", id.table) } else { id.table.clone() };
        ctx.register_table(TableReference::partial(id.db.as_str(), name.as_str()), provider)
            .map_err(|e| SluiceError::permanent(format!("register {id}: {e}")))?;
    }
    Ok(ctx)
}

pub async fn run_sql(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>, SluiceError> {
    let df = ctx.sql(sql).await.map_err(|e| SluiceError::permanent(format!("query: {e}")))?;
    df.collect().await.map_err(|e| SluiceError::permanent(format!("query: {e}")))
}

/// Renders batches as a text table, CSV (with header) or JSON lines.
pub fn render(batches: &[RecordBatch], format: Format) -> Result<String, SluiceError> {
    let err = |e: deltalake::arrow::error::ArrowError| SluiceError::permanent(format!("render results: {e}"));
    match format {
        Format::Table => Ok(deltalake::arrow::util::pretty::pretty_format_batches(batches).map_err(err)?.to_string()),
        Format::Csv => {
            let mut buf = Vec::new();
            {
                let mut w = deltalake::arrow::csv::WriterBuilder::new().with_header(true).build(&mut buf);
                for b in batches {
                    w.write(b).map_err(err)?;
                }
            }
            Ok(String::from_utf8_lossy(&buf).into_owned())
        }
        Format::Json => {
            let mut buf = Vec::new();
            {
                let mut w = deltalake::arrow::json::LineDelimitedWriter::new(&mut buf);
                for b in batches {
                    w.write(b).map_err(err)?;
                }
                w.finish().map_err(err)?;
            }
            Ok(String::from_utf8_lossy(&buf).into_owned())
        }
    }
}
