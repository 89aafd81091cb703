//! The Kafka sink against tansu (a real Kafka-compatible broker, started by
//! scripts/tansu-server.sh), read back with a plain librdkafka consumer and `sluice tail
//! --source kafka`: snapshot and changes with key changes rebuild the source by `seq`;
//! tombstones follow deletes; schema changes reach the `<prefix>` topic; kill -9 under a
//! workload loses nothing and resends identical records in key order; unreachable brokers stop
//! the run with one clear error after retry_for, and a rerun delivers everything.
#![allow(clippy::unwrap_used)]
mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::kafka::{assert_key_order, dedup_by_seq, read_topics, replay, section, unique_by_seq, Tansu};
use common::workload::{seed_table, source_table};
use common::{closed_port, config_text, Workdir};
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
    db.exec("UPDATE shop.acct SET v = 0 WHERE id <= 10; UPDATE shop.acct SET id = 5000 WHERE id = 11; DELETE FROM shop.acct WHERE id = 12")
        .await;
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
    let cols: Vec<&str> =
        alter["tableChanges"][0]["table"]["columns"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
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

/// Whole-table DDL (rename, truncate, drop), which no row event shows, reaches the schema-change
/// topic in order, each record before the change it precedes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_ddl_reaches_the_schema_change_topic_in_order() {
    let kafka = Tansu::start();
    let db = MariaDb::start();
    seed_table(&db, 3).await;
    let w = Workdir::with_config(&config_text(&db.url(), 6401, &section(&kafka.brokers(), "")));
    w.run_once().await;
    db.exec(
        "CREATE TABLE shop.t2 (id INT PRIMARY KEY); INSERT INTO shop.t2 VALUES (1); RENAME TABLE shop.t2 TO shop.t3; \
         INSERT INTO shop.t3 VALUES (2); TRUNCATE TABLE shop.t3; DROP TABLE shop.t3",
    )
    .await;
    w.run_once().await;
    // The reader stops after a quiet second: give it the time a fresh consumer takes.
    let mut records = read_topics(&kafka.brokers(), "cdc");
    for _ in 0..10 {
        if records.iter().filter(|r| r.topic == "cdc").count() >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        records = read_topics(&kafka.brokers(), "cdc");
    }
    let changes: Vec<String> = records
        .iter()
        .filter(|r| r.topic == "cdc")
        .filter_map(|r| r.value.as_ref())
        .map(|v| format!("{} {}", v["tableChanges"][0]["type"].as_str().unwrap(), v["tableChanges"][0]["id"].as_str().unwrap()))
        .collect();
    assert_eq!(
        changes,
        [
            r#"CREATE "shop"."acct""#,
            r#"CREATE "shop"."t2""#,
            r#"ALTER "shop"."t3""#,
            r#"CREATE "shop"."t3""#,
            r#"TRUNCATE "shop"."t3""#,
            r#"DROP "shop"."t3""#
        ]
    );
    let rename = records.iter().filter_map(|r| r.value.as_ref()).find(|v| v["tableChanges"][0]["type"] == "ALTER").unwrap();
    assert_eq!(rename["tableChanges"][0]["previousId"], r#""shop"."t2""#);
    let second =
        records.iter().filter(|r| r.topic == "cdc.shop.t3").filter_map(|r| r.value.as_ref()).find(|v| v["after"]["id"] == 2).unwrap();
    assert_eq!(rename["source"]["seq"], second["source"]["seq"], "the rename precedes the next change");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_follows_new_dms_records_live_from_latest() {
    let kafka = Tansu::start();
    let db = MariaDb::start();
    seed_table(&db, 20).await;
    let w = Workdir::with_config(&config_text(&db.url(), 6401, &section(&kafka.brokers(), "format = \"dms\"")));
    w.run_once().await;
    let mut run = w.spawn("run", "run", &[]);
    let tail = w.spawn("tail", "tail", &["--source", "kafka", "--from", "latest"]);
    // `latest` starts where the partitions end when tail asked: wait until they are assigned.
    common::eventually("tail reading the topics", || tail.stderr_text().contains("reading the topics")).await;
    for i in 1..=3 {
        db.exec(&format!("UPDATE shop.acct SET v = {} WHERE id = {i}", 100 + i)).await;
    }
    let updates = |text: &str| common::parse_lines(text).into_iter().filter(|l| l["metadata"]["operation"] == "update").count();
    common::eventually("tail printing the 3 updates", || updates(&tail.stdout_text()) == 3).await;
    // A table created after tail started: its new topic is read too.
    db.exec("CREATE TABLE shop.fresh (id INT PRIMARY KEY); INSERT INTO shop.fresh VALUES (1)").await;
    let fresh = |text: &str| {
        common::parse_lines(text).into_iter().any(|l| l["metadata"]["table-name"] == "fresh" && l["metadata"]["operation"] == "insert")
    };
    common::eventually("tail printing the new table's insert", || fresh(&tail.stdout_text())).await;
    tail.sigterm();
    let out = tail.wait().await;
    run.assert_running();
    run.sigterm();
    run.wait().await;
    // tansu reports a partition's end at the start of its last batch, so `latest` can also show
    // that batch (snapshot loads); on Kafka it starts after the last record.
    let lines: Vec<_> = common::parse_lines(&out.stdout).into_iter().filter(|l| l["metadata"]["operation"] != "load").collect();
    // A new run announces the table again (on the schema-change topic) before its first change.
    let create = lines.iter().find(|l| l["metadata"]["operation"] == "create-table").expect("a create-table record");
    assert_eq!(create["control"]["table-def"]["primary-key"], json!(["id"]), "{out}");
    let updates: Vec<_> = lines.iter().filter(|l| l["metadata"]["operation"] == "update").collect();
    assert!(updates.iter().all(|l| l["before-image"]["id"] == l["data"]["id"]), "{out}");
    let ids: Vec<i64> = updates.iter().map(|l| l["data"]["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [1, 2, 3], "the updates in seq order: {out}");
    let records = read_topics(&kafka.brokers(), "cdc");
    let data: Vec<_> = records.iter().filter(|r| r.topic == "cdc.shop.acct").collect();
    assert_eq!(data.len(), 23);
    assert!(data.iter().all(|r| r.seq_header.is_some() && r.key.as_ref().is_some_and(|k| k["id"].is_i64())));
}

/// kill -9 at random moments while a workload with key changes streams: after a last run,
/// every change is on the topics, per key in order, records sent again are identical to the
/// first copy, and replaying by seq (dropping seqs seen) gives the source table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_a_workload_loses_nothing_and_resends_identical_records() {
    let kafka = Tansu::start();
    kafka.create_topic("cdc.shop.acct", 4);
    let db = MariaDb::start();
    seed_table(&db, 5_000).await;
    let w = Workdir::with_config(&config_text(&db.url(), 6401, &section(&kafka.brokers(), "")));
    let txs = common::kill_9_loop(&w, &db, 31, 1000..3000).await;
    let records = read_topics(&kafka.brokers(), "cdc");
    let data = dedup_by_seq(&records, "cdc");
    let changes = records.iter().filter(|r| r.value.is_some() && r.topic != "cdc").count();
    assert_eq!(data.len(), w.events().len(), "the topics and the events file differ");
    assert!(replay(&data) == source_table(&db).await, "replaying the topics does not give the source table");
    assert_key_order(&records, "cdc");
    let resent = changes - data.len();
    eprintln!("kafka kill -9: {} changes, {resent} sent again, {txs} transactions", data.len());
    assert!(resent > 0, "no kill landed after a delivery and before its commit: the test proved nothing");
}

/// kill -9 during the snapshot: a resumed snapshot reads again at a new point, so the changes
/// after the checkpoint are not those sent before the crash. The sink reads back what it sent
/// since its last commit and the source numbers above it: no `seq` ever names two different
/// changes, and replaying by seq still gives the source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_the_snapshot_never_gives_one_seq_two_changes() {
    let kafka = Tansu::start();
    kafka.create_topic("cdc.shop.acct", 3);
    let db = MariaDb::start();
    seed_table(&db, 20_000).await;
    let w =
        Workdir::with_config(&config_text(&db.url(), 6401, &format!("[snapshot]\nchunk_size = 1000\n{}", section(&kafka.brokers(), ""))));
    common::kill_9_rounds(&w, &db, 41, 4, 400..1200).await;
    let records = read_topics(&kafka.brokers(), "cdc");
    let data = unique_by_seq(&records, "cdc");
    assert!(replay(&data) == source_table(&db).await, "replaying the topic does not give the source table");
    assert_key_order(&records, "cdc");
}

/// Brokers unreachable mid-run (a proxy in front of tansu, which advertises the proxy, cuts
/// every connection): the run stops after retry_for with one message naming [sink.kafka]
/// brokers; once they are back, a rerun delivers everything, nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_brokers_stop_the_run_after_retry_for_and_a_rerun_loses_nothing() {
    let port = closed_port();
    let proxy = FaultProxy::start(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    let _kafka = Tansu::behind_proxy(port, proxy.port());
    let brokers = format!("127.0.0.1:{}", proxy.port());
    let db = MariaDb::start();
    seed_table(&db, 200).await;
    let w = Workdir::with_config(&config_text(&db.url(), 6401, &section(&brokers, "retry_for = \"4s\"")));
    let mut run = w.spawn("run", "run", &[]);
    common::eventually("the snapshot on the topic", || {
        read_topics(&brokers, "cdc").iter().filter(|r| r.topic == "cdc.shop.acct").count() >= 200
    })
    .await;
    run.assert_running();
    proxy.cut();
    db.exec(
        "UPDATE shop.acct SET v = -1 WHERE id <= 50; DELETE FROM shop.acct WHERE id = 60; UPDATE shop.acct SET id = 7000 WHERE id = 61",
    )
    .await;
    let cut_at = Instant::now();
    let out = run.wait_within(Duration::from_secs(40)).await;
    assert_eq!(out.code, Some(1), "{out}");
    let last = out.stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    assert!(last.contains("sink kafka") && last.contains("still failing after retrying for 4 s"), "{last}");
    assert!(last.contains(&format!("check [sink.kafka] brokers = \"{brokers}\"")), "{last}");
    assert!(cut_at.elapsed() < Duration::from_secs(25), "took {:?} to give up", cut_at.elapsed());
    assert!(!out.all().contains("seed1"), "a row value in the output");

    proxy.restore();
    w.run_once().await;
    let records = read_topics(&brokers, "cdc");
    let data = dedup_by_seq(&records, "cdc");
    assert_eq!(data.len(), w.events().len(), "the topic and the events file differ");
    assert!(replay(&data) == source_table(&db).await, "replaying the topic does not give the source table");
    assert_key_order(&records, "cdc");

    // Brokers that are not there at start: one clear error at once, from check and run.
    let w = Workdir::with_config(&config_text(&db.url(), 6402, &section(&format!("127.0.0.1:{}", closed_port()), "")));
    let check = w.sluice("check", &[]).await;
    assert_eq!(check.code, Some(1), "{check}");
    assert!(check.stdout.contains("FAIL  sink kafka") && check.stdout.contains("[sink.kafka] brokers"), "{check}");
    let started = Instant::now();
    let run = w.sluice("run", &["--once"]).await;
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("sink kafka: cannot reach the Kafka brokers"), "{run}");
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?} to give up", started.elapsed());
}

/// A table without a key: null keys (Debezium's convention), no tombstones. Heartbeats on
/// `__debezium-heartbeat.<prefix>` when asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_tables_get_null_keys_and_heartbeats_come_when_asked() {
    let kafka = Tansu::start();
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.log (at INT, msg VARCHAR(20)); INSERT INTO shop.log VALUES (1, 'a'), (2, 'b')").await;
    let w = Workdir::with_config(&config_text(&db.url(), 6401, &section(&kafka.brokers(), "heartbeat_interval = \"100ms\"")));
    w.run_once().await;
    db.exec("DELETE FROM shop.log WHERE at = 1").await;
    w.run_once().await;
    let records: Vec<_> = read_topics(&kafka.brokers(), "cdc").into_iter().filter(|r| r.topic == "cdc.shop.log").collect();
    assert_eq!(records.len(), 3, "{records:?}");
    assert!(records.iter().all(|r| r.key.is_none() && r.value.is_some()), "null keys, no tombstone: {records:?}");
    let beats = read_topics(&kafka.brokers(), "__debezium-heartbeat.cdc");
    assert!(!beats.is_empty(), "no heartbeat");
    assert_eq!(beats[0].key, Some(json!({ "serverName": "cdc" })));
    assert!(beats[0].value.as_ref().unwrap()["ts_ms"].as_i64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_over_the_size_limit_stops_naming_topic_and_seq_never_the_value() {
    let kafka = Tansu::start();
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.docs (id INT PRIMARY KEY, body LONGTEXT)").await;
    db.exec("INSERT INTO shop.docs VALUES (1, 'small'), (2, CONCAT('SECRETVALUE', REPEAT('x', 1100000)))").await;
    let w = Workdir::with_config(&config_text(&db.url(), 6401, &section(&kafka.brokers(), "")));
    let run = w.sluice("run", &["--once"]).await;
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("seq 1 for topic cdc.shop.docs") && run.stderr.contains("message.max.bytes"), "{run}");
    assert!(!run.all().contains("SECRETVALUE"), "a value in the output");
}
