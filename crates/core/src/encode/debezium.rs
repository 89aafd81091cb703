use serde_json::{json, Value as Json};

use super::row_object;
use crate::event::ChangeEvent;

/// Debezium's envelope. `source.seq` is sluice's change sequence (unique, commit order).
pub fn debezium(ev: &ChangeEvent, processed_ms: i64) -> Json {
    let image = |r: &Option<crate::value::Row>| r.as_ref().map_or(Json::Null, |r| row_object(&ev.schema, r));
    json!({
        "before": image(&ev.before),
        "after": image(&ev.after),
        "op": ev.op.code(),
        "ts_ms": processed_ms,
        "source": debezium_source(ev),
        "transaction": ev.tx.as_deref().map(|id| json!({ "id": id })),
    })
}

/// Debezium's `source` block of `ev`: where the change came from, with sluice's `seq` (also in
/// the records that go with a change, such as a Kafka schema change).
pub fn debezium_source(ev: &ChangeEvent) -> Json {
    json!({
        "connector": ev.source.connector,
        "db": ev.schema.id.db,
        "table": ev.schema.id.table,
        "file": ev.source.file,
        "pos": ev.source.pos,
        "gtid": ev.source.gtid,
        "server_id": ev.source.server_id,
        "ts_ms": ev.ts_ms,
        "snapshot": ev.source.snapshot,
        "seq": ev.seq,
    })
}
