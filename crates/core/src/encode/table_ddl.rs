//! Control records for whole-table DDL ([`TableDdl`]: drop, truncate, rename), which no row
//! event carries. Rare, so built as JSON trees. Like a table definition's control record, each
//! carries the `seq` of the change it precedes (readers order by it; it is not a change).
use serde_json::{json, Value as Json};

use super::dms::Timestamp;
use crate::schema::{TableDdl, TableDdlKind};

/// DMS's control record (`IncludeTableAlterOperations`): `metadata.operation` is `drop-table`,
/// `truncate-table` or `rename-table`; a rename names the new table in `control.rename-to`.
pub fn dms_table_ddl(ddl: &TableDdl) -> Json {
    let mut j = json!({
        "metadata": {
            "timestamp": Timestamp(ddl.ts_ms),
            "record-type": "control",
            "operation": ddl.kind.dms_operation(),
            "partition-key-type": "schema-table",
            "schema-name": ddl.table.db,
            "table-name": ddl.table.table,
            "seq": ddl.next_seq,
        }
    });
    if let TableDdlKind::Rename { to } = &ddl.kind {
        j["control"] = json!({ "rename-to": { "schema-name": to.db, "table-name": to.table } });
    }
    j
}

/// Debezium's schema-change event for it (`tableChanges[0].type` `DROP`, `TRUNCATE` or
/// `ALTER` for a rename, with the old name in `previousId`). No `ddl` text: the source does
/// not pass statements on, they may hold literals.
pub fn debezium_table_ddl(ddl: &TableDdl) -> Json {
    let id = |t: &crate::schema::TableId| format!("\"{}\".\"{}\"", t.db, t.table);
    let change = match &ddl.kind {
        TableDdlKind::Drop => json!({ "type": "DROP", "id": id(&ddl.table) }),
        TableDdlKind::Truncate => json!({ "type": "TRUNCATE", "id": id(&ddl.table) }),
        TableDdlKind::Rename { to } => json!({ "type": "ALTER", "id": id(to), "previousId": id(&ddl.table) }),
    };
    json!({
        "source": { "connector": ddl.connector, "db": ddl.table.db, "table": ddl.table.table, "ts_ms": ddl.ts_ms, "seq": ddl.next_seq },
        "ts_ms": ddl.ts_ms,
        "databaseName": ddl.table.db,
        "schemaName": null,
        "ddl": null,
        "tableChanges": [change],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::TableId;

    fn ddl(kind: TableDdlKind) -> TableDdl {
        TableDdl { connector: "mysql", table: TableId::new("shop", "users"), kind, ts_ms: 1_732_550_400_000, next_seq: 42 }
    }

    #[test]
    fn dms_records() {
        assert_eq!(
            dms_table_ddl(&ddl(TableDdlKind::Drop)).to_string(),
            r#"{"metadata":{"timestamp":"2024-11-25T16:00:00.000000Z","record-type":"control","operation":"drop-table","partition-key-type":"schema-table","schema-name":"shop","table-name":"users","seq":42}}"#
        );
        let rename = dms_table_ddl(&ddl(TableDdlKind::Rename { to: TableId::new("shop", "people") }));
        assert_eq!(rename["metadata"]["operation"], "rename-table");
        assert_eq!(rename["control"]["rename-to"], json!({"schema-name": "shop", "table-name": "people"}));
        assert_eq!(dms_table_ddl(&ddl(TableDdlKind::Truncate))["metadata"]["operation"], "truncate-table");
    }

    #[test]
    fn debezium_records() {
        let d = debezium_table_ddl(&ddl(TableDdlKind::Rename { to: TableId::new("shop", "people") }));
        assert_eq!(d["tableChanges"][0], json!({"type": "ALTER", "id": "\"shop\".\"people\"", "previousId": "\"shop\".\"users\""}));
        assert_eq!(debezium_table_ddl(&ddl(TableDdlKind::Drop))["tableChanges"][0]["type"], "DROP");
        assert_eq!(d["databaseName"], "shop");
        assert_eq!(crate::tailing::seq_order(d.to_string().as_bytes()), 84, "sorts before change 42");
    }
}
