use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use sluice_core::state::StateStore;
use sluice_core::transform::Transform;
use sluice_core::TableId;
use sluice_lake::convert::{to_batch, Kind, LakeRow};
use sluice_lake::deltalake::arrow::datatypes::{DataType, Field};
use sluice_lake::validate::Comparison;
use sluice_mysql::schema::{list_tables, load_table};
use sluice_mysql::snapshot::scan_table;

pub async fn run(path: &Path, only: Option<&str>) -> anyhow::Result<ExitCode> {
    let cfg = super::load_config(path)?;
    let lake = super::open_lake(&cfg, path, "validate").await?;
    let server = super::server(&cfg, "`sluice validate`")?;
    let mut conn = sluice_mysql::conn::connect(&server.url).await?;
    let mut ids = list_tables(&mut conn, server).await?;
    if let Some(t) = only {
        let (db, table) = t.split_once('.').context("--table must be db.table")?;
        ids.retain(|id| id.db == db && id.table == table);
        anyhow::ensure!(!ids.is_empty(), "{t} is not a captured table of the source");
    }
    // The lake holds masked rows: mask the source's the same way, with the committed decisions.
    let mut masker = sluice_transform::Masker::from_config(&cfg)?;
    if let Some(m) = &mut masker {
        let state = StateStore::open_read_only(&cfg.state.dir).load()?;
        m.open(state.transforms.get(m.name()).cloned())?;
    }
    let mut failed = false;
    let mut keyless: Vec<&TableId> = Vec::new();
    println!("{:<32} {:>10} {:>10} {:>8}  result", "table", "source", "lake", "buckets");
    for id in &ids {
        let mut info = load_table(&mut conn, id).await?;
        cfg.apply_keys(std::sync::Arc::make_mut(&mut info.schema));
        let masked_schema = match &mut masker {
            Some(m) => m.mask_rows(&info.schema, Vec::new())?.0,
            None => info.schema.clone(),
        };
        if info.schema.key.is_empty() {
            println!("{:<32} {:>10} {:>10} {:>8}  skipped: no current state (no primary key)", id.to_string(), "-", "-", "-");
            keyless.push(id);
            continue;
        }
        if !lake.has(id, false) {
            failed = true;
            println!("{:<32} {:>10} {:>10} {:>8}  MISMATCH: not in the lake", id.to_string(), "-", "-", "-");
            continue;
        }
        let batches = lake.sql(&format!("SELECT * FROM \"{}\".\"{}\"", id.db, id.table)).await?;
        let fields: Vec<Field> = batches
            .first()
            .map(|b| {
                // Columns the source dropped stay in the lake (older rows keep their values):
                // compare the columns both sides have.
                b.schema()
                    .fields()
                    .iter()
                    .filter(|f| !f.name().starts_with("_cdc_") && masked_schema.columns.iter().any(|c| c.name.to_lowercase() == *f.name()))
                    .map(|f| plain(f))
                    .collect()
            })
            .unwrap_or_default();
        let cols: Vec<String> = fields.iter().map(|f| f.name().clone()).collect();
        let keys: Vec<String> = masked_schema.key_names().iter().map(|k| k.to_lowercase()).collect();
        let mut cmp = Comparison::new(cols, keys);
        batches.iter().for_each(|b| cmp.add_lake(b));
        if fields.is_empty() {
            // Empty lake table: compare counts only.
            let mut n = 0u64;
            scan_table(&server.url, &info, |rows| {
                n += rows.len() as u64;
                Ok(())
            })
            .await?;
            let ok = n == 0;
            failed |= !ok;
            println!("{:<32} {:>10} {:>10} {:>8}  {}", id.to_string(), n, 0, "-", if ok { "ok" } else { "MISMATCH" });
            continue;
        }
        scan_table(&server.url, &info, |rows| {
            let (schema, rows) = match &mut masker {
                Some(m) => m.mask_rows(&info.schema, rows)?,
                None => (info.schema.clone(), rows),
            };
            let lake_rows: Vec<LakeRow<'_>> =
                rows.iter().map(|r| LakeRow { values: r, op: "r", ts_ms: 0, seq: 0, tx: None, before_key: None, deleted: false }).collect();
            let batch = to_batch(&fields, &schema, Kind::Current, &lake_rows).map_err(sluice_core::SluiceError::permanent)?;
            cmp.add_source(&batch);
            Ok(())
        })
        .await?;
        let r = cmp.finish();
        let ok = r.ok();
        failed |= !ok;
        println!(
            "{:<32} {:>10} {:>10} {:>8}  {}",
            id.to_string(),
            r.source_rows,
            r.lake_rows,
            format!("{}/64", r.differing_buckets),
            if ok { "ok" } else { "MISMATCH" }
        );
        for (what, keys) in [("differs", &r.differ), ("missing from the lake", &r.missing), ("only in the lake", &r.extra)] {
            if !keys.is_empty() {
                println!("    {what}: key {}", keys.join("; key "));
            }
        }
    }
    for id in keyless {
        println!(
            "note: {id} has no primary key: the lake keeps only its changelog ({id}__changes), so there is no current \
             state to compare; give it a key with [source] keys = {{ \"{id}\" = [\"column\", ...] }} to validate it"
        );
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// DataFusion reads strings and binaries as view types; the sink's conversion builds the plain
/// ones, and the comparison renders both the same.
fn plain(f: &Field) -> Field {
    match f.data_type() {
        DataType::Utf8View | DataType::LargeUtf8 => f.clone().with_data_type(DataType::Utf8),
        DataType::BinaryView | DataType::LargeBinary => f.clone().with_data_type(DataType::Binary),
        _ => f.clone(),
    }
}
