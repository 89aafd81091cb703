//! `sluice lake ddl`: statements that register the lake tables in Athena (Glue catalog) or Trino.
use sluice_core::TableId;

use crate::storage::Storage;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Athena,
    Trino,
}

/// One statement per lake table. Both engines read the schema from the Delta log, so no
/// column list is needed (and none can drift).
pub fn statements(storage: &Storage, tables: &[(TableId, bool)], engine: Engine) -> Vec<String> {
    let mut out = Vec::new();
    let mut dbs: Vec<&str> = tables.iter().map(|(id, _)| id.db.as_str()).collect();
    dbs.dedup();
    for db in dbs {
        out.push(match engine {
            Engine::Athena => format!("CREATE DATABASE IF NOT EXISTS `{db}`;"),
            Engine::Trino => format!("CREATE SCHEMA IF NOT EXISTS delta.\"{db}\";"),
        });
    }
    for (id, changes) in tables {
        let name = if *changes { format!("{}__changes", id.table) } else { id.table.clone() };
        let location = storage.table_url(id, *changes).map(|u| u.to_string()).unwrap_or_default();
        let location = location.trim_end_matches('/');
        out.push(match engine {
            Engine::Athena => {
                format!("CREATE EXTERNAL TABLE `{}`.`{name}`\nLOCATION '{location}'\nTBLPROPERTIES ('table_type' = 'DELTA');", id.db)
            }
            Engine::Trino => {
                format!(
                    "CALL delta.system.register_table(schema_name => '{}', table_name => '{name}', table_location => '{location}');",
                    id.db
                )
            }
        });
    }
    out
}
