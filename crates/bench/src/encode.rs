//! `encode`: the JSON encoders alone, in process, on N reference users rows as inserts — the
//! per-event cost of the JSON-lines sink's encoding (one buffer per batch of lines, as the sink
//! does), in Debezium and DMS. `checksum` (FNV-1a of every byte written) shows that two builds
//! wrote the same bytes (`--no-checksum` leaves it out, for a profile of the encoders alone).
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use sluice_core::config::EventFormat;
use sluice_core::event::{ChangeEvent, Op, SourceInfo};
use sluice_core::schema::SchemaRef;
use sluice_core::value::Row;

const BATCH: usize = 1024;

pub fn run(rows: usize, rounds: usize, with_checksum: bool) -> anyhow::Result<Value> {
    let schema = crate::users::schema();
    let events: Vec<ChangeEvent> = crate::users::rows(rows).enumerate().map(|(i, row)| insert(&schema, i, row)).collect();
    let mut out = serde_json::Map::new();
    out.insert("rows".into(), json!(rows));
    for (name, format) in [("debezium", EventFormat::Debezium), ("dms", EventFormat::Dms)] {
        // The best of `rounds` runs: the machine is shared.
        let mut best = f64::INFINITY;
        let (mut bytes, mut checksum) = (0usize, 0u64);
        for _ in 0..rounds.max(1) {
            let mut buf = Vec::with_capacity(1 << 20);
            let (mut total, mut hash) = (0usize, FNV_OFFSET);
            let mut secs = 0.0;
            for batch in events.chunks(BATCH) {
                buf.clear();
                let started = Instant::now();
                encode_lines(batch, format, &mut buf)?;
                secs += started.elapsed().as_secs_f64();
                total += buf.len();
                if with_checksum {
                    hash = fnv(hash, &buf);
                }
            }
            best = best.min(secs);
            (bytes, checksum) = (total, hash);
        }
        out.insert(
            name.into(),
            json!({
                "secs": best,
                "rows_per_s": rows as f64 / best,
                "ns_per_row": best * 1e9 / rows as f64,
                "bytes_per_row": bytes as f64 / rows as f64,
                "checksum": format!("{checksum:016x}"),
            }),
        );
    }
    Ok(Value::Object(out))
}

/// Row `i` as an insert of a transaction of ten rows, read from the binlog.
// `.into()`: the source becomes an `Arc<SourceInfo>` on a branch being merged.
#[allow(clippy::useless_conversion)]
fn insert(schema: &SchemaRef, i: usize, row: Row) -> ChangeEvent {
    let gtid = format!("0-1-{}", 1000 + i / 10);
    let source = SourceInfo {
        connector: "mysql",
        file: "mysql-bin.000001".into(),
        pos: 4 + 180 * i as u64,
        gtid: Some(gtid.as_str().into()),
        server_id: 1,
        snapshot: false,
        replayed: false,
    };
    ChangeEvent {
        op: Op::Insert,
        schema: Arc::clone(schema),
        before: None,
        after: Some(row),
        ts_ms: 1_700_000_000_000 + i as i64,
        tx: Some(gtid.as_str().into()),
        seq: i as u64,
        source: source.into(),
    }
}

/// The lines of `batch` at the end of `buf`, as the JSON-lines sink writes them.
fn encode_lines(batch: &[ChangeEvent], format: EventFormat, buf: &mut Vec<u8>) -> anyhow::Result<()> {
    for ev in batch {
        sluice_core::encode::encode_into(ev, format, 1_732_550_400_123, buf)?;
        buf.push(b'\n');
    }
    Ok(())
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
