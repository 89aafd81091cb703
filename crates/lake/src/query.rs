//! SQL over the lake with DataFusion: every lake table registered as `db.t` and
//! `db.t__changes`.
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use deltalake::arrow::array::{ArrayRef, StringArray};
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::datafusion::catalog::MemorySchemaProvider;
use deltalake::datafusion::common::{DataFusionError, TableReference};
use deltalake::datafusion::prelude::{SessionConfig, SessionContext};
use deltalake::datafusion::sql::parser::Statement as DfStatement;
use deltalake::datafusion::sql::sqlparser::ast::Statement as SqlStatement;
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

/// The SQL name of a lake table: `db.t` (current state) or `db.t__changes` (changelog).
pub fn sql_name(id: &TableId, changes: bool) -> String {
    if changes {
        format!("{id}__changes")
    } else {
        id.to_string()
    }
}

/// Where lake tables may be: under a local root, the Delta tables found there (the listing is
/// the truth, so a table without primary key appears as its changelog only); on S3, which is
/// not listed, both tables of every `known` table (e.g. from the state file): [`existing`]
/// keeps those that are there.
pub fn discover(storage: &Storage, known: &[TableId]) -> Vec<(TableId, bool)> {
    let mut found: BTreeSet<(TableId, bool)> = BTreeSet::new();
    let Some(root) = storage.local_root() else {
        for id in known {
            found.insert((id.clone(), false));
            found.insert((id.clone(), true));
        }
        return found.into_iter().collect();
    };
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
    found.into_iter().collect()
}

fn read_dirs(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    rd.flatten().filter(|e| e.path().is_dir()).filter_map(|e| e.file_name().into_string().ok()).collect()
}

/// The lake tables that exist (have a first commit), opened.
async fn open_existing(storage: &Storage, known: &[TableId]) -> Result<Vec<(TableId, bool, DeltaTable)>, SluiceError> {
    let mut out = Vec::new();
    for (id, changes) in discover(storage, known) {
        let url = storage.table_url(&id, changes)?;
        match DeltaTable::try_from_url_with_storage_options(url, storage.options().clone()).await {
            Ok(t) if t.version().is_some() => out.push((id, changes, t)),
            Ok(_) => {}
            Err(e) => return Err(lake_err(&format!("open {}", sql_name(&id, changes)), e)),
        }
    }
    Ok(out)
}

/// The lake tables that exist: `(table, changelog?)`, sorted.
pub async fn existing(storage: &Storage, known: &[TableId]) -> Result<Vec<(TableId, bool)>, SluiceError> {
    Ok(open_existing(storage, known).await?.into_iter().map(|(id, changes, _)| (id, changes)).collect())
}

/// A SQL session over every table of the lake: `db.t` and `db.t__changes`.
pub struct Lake {
    ctx: SessionContext,
    tables: Vec<(TableId, bool)>,
}

impl Lake {
    /// Registers every existing lake table (see [`discover`] for what `known` adds).
    pub async fn open(storage: &Storage, known: &[TableId]) -> Result<Self, SluiceError> {
        // information_schema: `SHOW COLUMNS FROM db.t` and `SELECT … FROM information_schema.columns`.
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_information_schema(true));
        let catalog = ctx.catalog("datafusion").ok_or_else(|| SluiceError::permanent("no default catalog"))?;
        let mut tables = Vec::new();
        for (id, changes, table) in open_existing(storage, known).await? {
            if catalog.schema(&id.db).is_none() {
                catalog
                    .register_schema(&id.db, Arc::new(MemorySchemaProvider::new()))
                    .map_err(|e| SluiceError::permanent(format!("register schema {}: {e}", id.db)))?;
            }
            let name = sql_name(&id, changes);
            table.update_datafusion_session(&ctx.state()).map_err(|e| lake_err("register storage", e))?;
            let provider = table.table_provider().await.map_err(|e| SluiceError::permanent(format!("lake: read {name}: {e}")))?;
            let short = if changes { format!("{}__changes", id.table) } else { id.table.clone() };
            ctx.register_table(TableReference::partial(id.db.as_str(), short.as_str()), provider)
                .map_err(|e| SluiceError::permanent(format!("register {name}: {e}")))?;
            tables.push((id, changes));
        }
        Ok(Self { ctx, tables })
    }

    /// The registered tables, `(table, changelog?)`, sorted.
    pub fn tables(&self) -> &[(TableId, bool)] {
        &self.tables
    }

    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    pub fn has(&self, id: &TableId, changes: bool) -> bool {
        self.tables.iter().any(|(t, c)| t == id && *c == changes)
    }

    /// Runs one statement. `SHOW TABLES` lists the lake's tables (`table`, `kind`); a table
    /// that is not in the lake is named, with the tables there are.
    pub async fn sql(&self, sql: &str) -> Result<Vec<RecordBatch>, SluiceError> {
        let state = self.ctx.state();
        let dialect = state.config().options().sql_parser.dialect;
        let statement = state.sql_to_statement(sql, &dialect).map_err(query_err)?;
        if matches!(&statement, DfStatement::Statement(s) if matches!(**s, SqlStatement::ShowTables { .. })) {
            return self.show_tables().map(|b| vec![b]);
        }
        let refs = state.resolve_table_references(&statement).map_err(query_err)?;
        for r in refs {
            if !self.ctx.table_exist(r.clone()).unwrap_or(false) {
                return Err(SluiceError::permanent(self.unknown_table(&r)));
            }
        }
        run_sql(&self.ctx, sql).await
    }

    fn show_tables(&self) -> Result<RecordBatch, SluiceError> {
        let names: Vec<String> = self.tables.iter().map(|(id, c)| sql_name(id, *c)).collect();
        let kinds: Vec<&str> = self.tables.iter().map(|(_, c)| if *c { "changelog" } else { "current state" }).collect();
        RecordBatch::try_from_iter([
            ("table", Arc::new(StringArray::from(names)) as ArrayRef),
            ("kind", Arc::new(StringArray::from(kinds)) as ArrayRef),
        ])
        .map_err(|e| SluiceError::permanent(format!("list the lake's tables: {e}")))
    }

    /// "no table users in the lake; tables: …": names sluice's tables, not DataFusion's
    /// `datafusion.public.users`.
    fn unknown_table(&self, r: &TableReference) -> String {
        // `db.t` of a table without primary key: only `db.t__changes` is there.
        let changelog_only =
            self.tables.iter().find(|(id, c)| *c && id.table == r.table() && r.schema().is_none_or(|s| s == id.db) && !self.has(id, false));
        let mut msg = format!("no table {r} in the lake");
        if let Some((id, _)) = changelog_only {
            msg.push_str(&format!(
                " ({id} has no primary key, so the lake keeps only its changelog {id}__changes; give it one with [source] keys)"
            ));
        }
        if self.tables.is_empty() {
            msg.push_str("; the lake holds no tables yet: run `sluice run` first");
        } else {
            let names: Vec<String> = self.tables.iter().map(|(id, c)| sql_name(id, *c)).collect();
            msg.push_str(&format!("; tables: {} (use db.table)", names.join(", ")));
        }
        msg
    }
}

/// Runs `sql` on `ctx` (no checks; [`Lake::sql`] for users' statements).
pub async fn run_sql(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>, SluiceError> {
    let df = ctx.sql(sql).await.map_err(query_err)?;
    df.collect().await.map_err(query_err)
}

/// DataFusion's errors repeat their cause in their own text (`SQL error: ParserError("…")`
/// then the parser's `sql parser error: …`): the message says it once, without the chain.
fn query_err(e: DataFusionError) -> SluiceError {
    let text = match &e {
        DataFusionError::SQL(parser, _) => parser.to_string(),
        other => other.to_string(),
    };
    SluiceError::permanent(format!("query: {text}"))
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
