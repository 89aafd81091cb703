//! The Kafka sink against tansu (a real Kafka-compatible broker, started by
//! scripts/tansu-server.sh), read back with a plain librdkafka consumer and `sluice tail
//! --source kafka`: snapshot and changes with key changes rebuild the source by `seq`;
//! tombstones follow deletes; schema changes reach the `<prefix>` topic; kill -9 under a
//! workload loses nothing and resends identical records in key order; unreachable brokers stop
//! the run with one clear error after retry_for, and a rerun delivers everything.
#![allow(clippy::unwrap_used)]
mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::kafka::{assert_key_order, dedup_by_seq, read_topics, replay, section, Tansu};
use common::workload::{seed_table, source_table, workload};
use common::{closed_port, config_text, Workdir};
use rand::{Rng, SeedableRng};
use serde_json::json;
use sluice_testkit::{FaultProxy, MariaDb};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_tombstones_and_schema_changes_reach_the_topics_and_rebuild_the_source() {
    let kafka = Tansu::start();
    kafka.create_topic("cdc.shop.acct", 3);
    let db = MariaDb::start();
    seed_table(&db, 300).await;
    let w = Workdir::with_config(&config_text(&db.url(), 6401, &section(&kafka.brokers(), "")));
    let check = w.sluice("check", &[]).await;
    assert!(check.stdout.contains("sink kafka") && check.stdout.contains("broker(s) answered at"), "{check}");
    w.run_once().await;
    db.exec("UPDATE shop.acct SET v = 0 WHERE id <= 10; UPDATE shop.acct SET id = 5000 WHERE id = 11; DELETE FROM shop.acct WHERE id = 12").await;
    db.exec("ALTER TABLE shop.acct ADD COLUMN extra INT; UPDATE shop.acct SET extra = 1 WHERE id = 1").await;
    w.run_once().await;

    let records = read_topics(&kafka.brokers(), "cdc");
    let partitions: std::collections::HashSet<i32> = records.iter().filter(|r| r.topic == "cdc.shop.acct").map(|r| r.partition).collect();
    assert_eq!(partitions.len(), 3, "records in every partition");
    let data = dedup_by_seq(&records, "cdc");
    assert_eq!(data.len(), 300 + 10 + 1 + 1 + 1);
    assert_eq!(data[0].value.as_ref().unwrap()["op"], "r");
    assert_eq!(data[0].key, Some(json!({ "id": 1 })));
    assert!(replay(&data) == source_table(&db).await, "replaying the topic does not give the source table");
    assert_key_order(&records, "cdc");

    // A tombstone with the deleted key right after the delete, and one for the old key of the
    // row whose key changed.
    let tombstones: Vec<_> = records.iter().filter(|r| r.value.is_none()).collect();
    let keys: Vec<_> = tombstones.iter().map(|r| r.key.clone().unwrap()).collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.contains(&json!({ "id": 12 })) && keys.contains(&json!({ "id": 11 })), "{keys:?}");
    let in_partition: Vec<_> = records.iter().filter(|r| r.key == Some(json!({ "id": 12 }))).collect();
    assert_eq!(in_partition.last().unwrap().value, None, "the tombstone is the key's last record");
    assert_eq!(in_partition[in_partition.len() - 2].value.as_ref().unwrap()["op"], "d");

    // Schema changes: the table's definition on each run's first change, and the new column.
    let schema: Vec<_> = records.iter().filter(|r| r.topic == "cdc").collect();
    assert!(schema.len() >= 2, "{schema:?}");
    assert_eq!(schema[0].key, Some(json!({ "databaseName": "shop" })));
    let first = schema[0].value.as_ref().unwrap();
    assert_eq!(first["tableChanges"][0]["type"], "CREATE");
    assert_eq!(first["tableChanges"][0]["table"]["primaryKeyColumnNames"], json!(["id"]));
    let alter = schema.iter().filter_map(|r| r.value.as_ref()).find(|v| v["tableChanges"][0]["type"] == "ALTER").expect("an ALTER record");
    assert_eq!(alter["tableChanges"][0]["change"], "add-column");
    let cols: Vec<&str> = alter["tableChanges"][0]["table"]["columns"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(cols, ["id", "v", "note", "extra"]);

    let tail = w.sluice("tail", &["--source", "kafka", "--limit", "10"]).await;
    assert_eq!(tail.code, Some(0), "{tail}");
    assert_eq!(common::parse_lines(&tail.stdout).len(), 10, "{tail}");
    let all = w.sluice("tail", &["--source", "kafka", "--no-follow", "--table", "shop.acct"]).await;
    let lines = common::parse_lines(&all.stdout);
    let changes = records.iter().filter(|r| r.value.is_some() && r.topic != "cdc").count();
    assert_eq!(lines.len(), changes + schema.len(), "{all}");
    let dms = w.sluice("tail", &["--source", "kafka", "--no-follow", "--format", "dms"]).await;
    let dms = common::parse_lines(&dms.stdout);
    assert_eq!(dms.len(), changes, "DMS lines, without the Debezium schema changes");
    assert!(dms.iter().all(|l| l["metadata"]["record-type"] == "data"));
    let none = w.sluice("tail", &["--source", "kafka", "--no-follow", "--table", "other.*"]).await;
    assert_eq!(none.stdout.trim(), "", "{none}");
}
