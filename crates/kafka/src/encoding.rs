//! Keys and the records that are not changes (schema changes, heartbeats), in Debezium's
//! shapes. Change values themselves are core's encoders ([`sluice_core::encode`]).
use serde_json::{json, Value as Json};
use sluice_core::encode::{debezium_source, dms_control, write_json, RowObject, SchemaChange};
use sluice_core::event::ChangeEvent;
use sluice_core::schema::{SqlType, TableSchema};
use sluice_core::value::Row;

/// The record key of a row: its key columns as a JSON object (`{"id":42}`), as Debezium's JSON
/// converter writes it without schemas. `None` for a table without a key: Debezium's null key.
pub fn row_key(schema: &TableSchema, row: &Row) -> Option<Vec<u8>> {
    if schema.key.is_empty() {
        return None;
    }
    // Written straight into the key's bytes: no map, no copy of the column names.
    let mut buf = Vec::with_capacity(16 * schema.key.len());
    write_json(&RowObject { schema, row, cols: Some(schema.key.as_slice()) }, &mut buf).ok()?;
    Some(buf)
}

/// The key of a schema-change record (Debezium: the database name).
pub fn schema_key(db: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({ "databaseName": db })).unwrap_or_default()
}

/// A record for the schema-change topic `<prefix>`, sent before the first change made under a
/// table's new definition. `dms`: DMS's control record; else Debezium's schema-change event
/// (without the `ddl` text, which the source does not carry: `tableChanges` has the definition).
/// It carries the `seq` of that first change in `source.seq` / `metadata.seq`.
pub fn schema_change(ev: &ChangeEvent, change: SchemaChange, dms: bool) -> Json {
    let schema = &ev.schema;
    if dms {
        return dms_control(schema, change, ev.ts_ms, ev.seq);
    }
    let columns: Vec<Json> = schema
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut col = type_def(&c.ty);
            col["name"] = json!(c.name);
            col["position"] = json!(i + 1);
            col["optional"] = json!(c.nullable);
            col
        })
        .collect();
    json!({
        "source": debezium_source(ev),
        "ts_ms": ev.ts_ms,
        "databaseName": schema.id.db,
        "schemaName": null,
        "ddl": null,
        "tableChanges": [{
            "type": if change == SchemaChange::CreateTable { "CREATE" } else { "ALTER" },
            "change": change.dms_operation(),
            "id": format!("\"{}\".\"{}\"", schema.id.db, schema.id.table),
            "table": {
                "primaryKeyColumnNames": schema.key_names(),
                "columns": columns,
            }
        }]
    })
}

/// A heartbeat (Debezium's `__debezium-heartbeat.<prefix>` record).
pub fn heartbeat(prefix: &str, now_ms: i64) -> (Vec<u8>, Vec<u8>) {
    let key = serde_json::to_vec(&json!({ "serverName": prefix })).unwrap_or_default();
    let value = serde_json::to_vec(&json!({ "ts_ms": now_ms })).unwrap_or_default();
    (key, value)
}

/// A column's MySQL type as Debezium's `tableChanges` names it.
fn type_def(ty: &SqlType) -> Json {
    let name = match ty {
        SqlType::Int { bits, unsigned } => {
            let base = match bits {
                8 => "TINYINT",
                16 => "SMALLINT",
                24 => "MEDIUMINT",
                32 => "INT",
                _ => "BIGINT",
            };
            return json!({ "typeName": if *unsigned { format!("{base} UNSIGNED") } else { base.to_string() } });
        }
        SqlType::Decimal { precision, scale } => return json!({ "typeName": "DECIMAL", "length": precision, "scale": scale }),
        SqlType::DateTime { fsp } => return json!({ "typeName": "DATETIME", "length": fsp }),
        SqlType::Timestamp { fsp } => return json!({ "typeName": "TIMESTAMP", "length": fsp }),
        SqlType::Time { fsp } => return json!({ "typeName": "TIME", "length": fsp }),
        SqlType::Bit { bits } => return json!({ "typeName": "BIT", "length": bits }),
        SqlType::Enum { labels } => return json!({ "typeName": "ENUM", "enumValues": labels }),
        SqlType::Set { labels } => return json!({ "typeName": "SET", "enumValues": labels }),
        SqlType::Float => "FLOAT",
        SqlType::Double => "DOUBLE",
        SqlType::Date => "DATE",
        SqlType::Year => "YEAR",
        SqlType::Text => "VARCHAR",
        SqlType::Json => "JSON",
        SqlType::Binary => "VARBINARY",
        SqlType::Geometry => "GEOMETRY",
    };
    json!({ "typeName": name })
}
