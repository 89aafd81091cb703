//! The Kinesis sink against moto's Kinesis (a real server, started by scripts/moto-server.sh):
//! DMS records read back by the example boto3 consumer rebuild the source; `tail --source
//! kinesis` reads every shard; throttling and partial failures (injected by an
//! [`AwsFaultProxy`], moto never returns them) lose nothing and keep per-key order; kill -9
//! under a workload with key changes loses nothing, and records sent again are identical; a
//! missing stream, an unreachable endpoint and a record over 1 MiB stop with a clear message.
#![allow(clippy::unwrap_used)]
mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::kinesis::{assert_key_order, dedup_by_seq, read_stream, replay_dms, section, unique_by_seq};
use common::moto::Moto;
use common::workload::{seed_table, source_table, workload};
use common::{closed_port, config_text, Workdir};
use sluice_testkit::{AwsFaultProxy, MariaDb};

/// moto with a 2-shard `stream`, a MariaDB with `rows` rows in `shop.acct`, and a work dir
/// whose config sends `shop.*` to the stream (and to an events file).
async fn stream_and_table(stream: &str, rows: i64) -> (Moto, MariaDb, Workdir) {
    let moto = Moto::start();
    moto.create_stream(stream, 2);
    let db = MariaDb::start();
    seed_table(&db, rows).await;
    let w = Workdir::with_config(&config_text(&db.url(), 6401, &section(&moto.endpoint(), stream)));
    (moto, db, w)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dms_records_rebuild_the_source_and_tail_reads_every_shard() {
    let (moto, db, w) = stream_and_table("cdc", 300).await;
    let check = w.sluice("check", &[]).await;
    assert!(check.stdout.contains("sink kinesis") && check.stdout.contains("stream cdc is ACTIVE with 2 open shard(s)"), "{check}");
    w.run_once().await;
    db.exec("UPDATE shop.acct SET v = 0 WHERE id <= 10; UPDATE shop.acct SET id = 5000 WHERE id = 11; DELETE FROM shop.acct WHERE id = 12")
        .await;
    w.run_once().await;

    let records = read_stream(&moto.endpoint(), "cdc");
    let shards: std::collections::HashSet<&str> = records.iter().map(|r| r.shard.as_str()).collect();
    assert_eq!(shards.len(), 2, "records in both shards");
    // The table's definition comes first, as DMS sends it, with DMS types and the key.
    let first = records.iter().find(|r| r.is_control()).expect("a control record");
    assert_eq!(first.record["metadata"]["operation"], "create-table");
    assert_eq!(first.record["control"]["table-def"]["primary-key"], serde_json::json!(["id"]));
    assert_eq!(first.record["control"]["table-def"]["columns"]["id"]["type"], "INT8");
    let data = dedup_by_seq(&records);
    assert_eq!(data.len(), 300 + 12);
    assert_eq!(data[0].record["metadata"]["operation"], "load");
    assert_eq!(data[0].record["metadata"]["partition-key-type"], "primary-key");
    assert!(data.iter().any(|r| r.record["metadata"]["operation"] == "update" && r.record["before-image"]["id"] == 11));
    assert!(replay_dms(&data) == source_table(&db).await, "replaying the stream does not give the source table");
    assert_key_order(&records);

    let tail = w.sluice("tail", &["--source", "kinesis", "--limit", "10"]).await;
    assert_eq!(tail.code, Some(0), "{tail}");
    let lines = common::parse_lines(&tail.stdout);
    assert_eq!(lines.len(), 10, "{tail}");
    assert_eq!(lines[0]["metadata"]["record-type"], "control", "the definition sorts before the first change");
    let all = w.sluice("tail", &["--source", "kinesis", "--no-follow", "--table", "shop.acct"]).await;
    assert_eq!(common::parse_lines(&all.stdout).len(), records.len(), "{all}");
    let none = w.sluice("tail", &["--source", "kinesis", "--no-follow", "--table", "other.*"]).await;
    assert_eq!(none.stdout.trim(), "", "{none}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_follows_new_records_live_from_latest() {
    let (_moto, db, w) = stream_and_table("live", 20).await;
    w.run_once().await;
    let mut run = w.spawn("run", "run", &[]);
    let tail = w.spawn("tail", "tail", &["--source", "kinesis", "--from", "latest", "--limit", "4", "--format", "dms"]);
    // `latest` starts where the shards end when tail asked: wait until it has its iterators.
    common::eventually("tail reading the stream", || tail.stderr_text().contains("reading the stream")).await;
    for i in 1..=3 {
        db.exec(&format!("UPDATE shop.acct SET v = {} WHERE id = {i}", 100 + i)).await;
    }
    let out = tail.wait().await;
    run.assert_running();
    run.sigterm();
    run.wait().await;
    let lines = common::parse_lines(&out.stdout);
    assert_eq!(lines.len(), 4, "{out}");
    // A new run announces the table again before its first change.
    assert_eq!(lines[0]["metadata"]["operation"], "create-table", "{out}");
    assert!(lines[1..].iter().all(|l| l["metadata"]["operation"] == "update"), "only the new changes: {out}");
}

/// Throttled calls and failed entries, injected over and over while a workload streams: nothing
/// is lost, no key is reordered, and the throttling shows in the logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_partial_failures_lose_nothing_and_keep_key_order() {
    let moto = Moto::start();
    moto.create_stream("faulty", 2);
    let proxy = AwsFaultProxy::start(SocketAddr::from((Ipv4Addr::LOCALHOST, moto.port)));
    let db = MariaDb::start();
    seed_table(&db, 2_000).await;
    let w = Workdir::with_config(&config_text(&db.url(), 6401, &section(&proxy.endpoint(), "faulty")));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = workload(&db, stop.clone(), 11);
    let mut run = w.spawn("run", "run", &[]);
    let until = Instant::now() + Duration::from_secs(4);
    let mut round = 0u64;
    while Instant::now() < until {
        run.assert_running();
        if round.is_multiple_of(2) {
            proxy.throttle_calls(3);
        } else {
            proxy.fail_entries(5, 2 + round % 5);
        }
        round += 1;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let txs = writer.await.unwrap();
    assert!(txs > 20, "the workload ran only {txs} transactions");
    // Everything the source wrote reaches the stream once the faults stop.
    let events = w.events().len();
    common::eventually("the stream holds every change", || {
        let n = read_stream(&proxy.endpoint(), "faulty").iter().filter(|r| !r.is_control()).count();
        n >= events.max(2_000)
    })
    .await;
    run.sigterm();
    let out = run.wait().await;
    assert_eq!(out.code, Some(0), "{out}");
    assert!(proxy.throttled_calls() > 0 && proxy.failed_entries() > 0, "no fault was injected");
    assert!(out.stderr.contains("throttled"), "throttling not reported:\n{}", out.stderr);
    // A stop can leave a batch in the events file's queue and not yet in the stream's (the
    // stream's queue was full): the checkpoint does not cover it, and the next run sends it.
    w.run_once().await;
    let records = read_stream(&moto.endpoint(), "faulty");
    let data = dedup_by_seq(&records);
    let tail: Vec<&str> = out.stderr.lines().rev().take(15).collect();
    assert_eq!(data.len(), w.events().len(), "the stream and the events file differ; last log lines (newest first):\n{}", tail.join("\n"));
    assert!(replay_dms(&data) == source_table(&db).await, "replaying the stream does not give the source table");
    assert_key_order(&records);
    eprintln!(
        "kinesis faults: {} throttled calls, {} failed entries, {} records, {} transactions",
        proxy.throttled_calls(),
        proxy.failed_entries(),
        records.len(),
        txs
    );
}

/// kill -9 at random moments while a workload with key changes streams: after a last run,
/// every change is on the stream, per key in order, records sent again are identical to the
/// first copy, and replaying by seq (dropping seqs seen) gives the source table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_a_workload_loses_nothing_and_resends_identical_records() {
    let (moto, db, w) = stream_and_table("crashy", 5_000).await;
    let txs = common::kill_9_loop(&w, &db, 21, 300..1500).await;
    let records = read_stream(&moto.endpoint(), "crashy");
    let data = dedup_by_seq(&records);
    let resent = records.iter().filter(|r| !r.is_control()).count() - data.len();
    assert_eq!(data.len(), w.events().len(), "the stream and the events file differ");
    assert!(replay_dms(&data) == source_table(&db).await, "replaying the stream does not give the source table");
    assert_key_order(&records);
    eprintln!("kinesis kill -9: {} changes, {resent} sent again, {txs} transactions", data.len());
}

/// kill -9 during the snapshot: a resumed snapshot reads again at a new point, so the changes
/// after the checkpoint are not those sent before the crash. The sink reads back what it sent
/// since its last commit and the source numbers above it: no `seq` ever names two different
/// changes, and replaying by seq still gives the source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_the_snapshot_never_gives_one_seq_two_changes() {
    let moto = Moto::start();
    moto.create_stream("snap", 2);
    let db = MariaDb::start();
    seed_table(&db, 20_000).await;
    let w = Workdir::with_config(&config_text(
        &db.url(),
        6401,
        &format!("[snapshot]\nchunk_size = 1000\n{}", section(&moto.endpoint(), "snap")),
    ));
    common::kill_9_rounds(&w, &db, 31, 4, 400..1200).await;
    let records = read_stream(&moto.endpoint(), "snap");
    let data = unique_by_seq(&records);
    assert!(replay_dms(&data) == source_table(&db).await, "replaying the stream does not give the source table");
    assert_key_order(&records);
}

/// Each startup problem: `check` says it with its fix, `run` stops with it at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_stream_an_unreachable_endpoint_or_no_credentials_is_one_clear_error() {
    let moto = Moto::start();
    let db = MariaDb::start();
    seed_table(&db, 5).await;
    let w = Workdir::with_config(&config_text(&db.url(), 6401, &section(&moto.endpoint(), "nope")));
    let check = w.sluice("check", &[]).await;
    assert_eq!(check.code, Some(1), "{check}");
    assert!(check.stdout.contains("FAIL  sink kinesis") && check.stdout.contains("stream nope does not exist"), "{check}");
    assert!(check.stdout.contains("fix: create it"), "{check}");
    let run = w.sluice("run", &["--once"]).await;
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("sink kinesis: Kinesis stream nope does not exist"), "{run}");

    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    let w = Workdir::with_config(&config_text(&db.url(), 6402, &section(&endpoint, "cdc")));
    let started = Instant::now();
    let run = w.sluice("run", &["--once"]).await;
    assert_eq!(run.code, Some(1), "{run}");
    let last = run.stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    assert!(last.contains(&format!("cannot reach {endpoint}")) && last.contains("check [sink.kinesis] endpoint"), "{run}");
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?} to give up", started.elapsed());

    // No credentials anywhere in the chain (no env, no profile, no instance metadata).
    moto.create_stream("cdc", 1);
    let w = Workdir::with_config(&config_text(&db.url(), 6403, &section(&moto.endpoint(), "cdc")));
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["check", "-c", &w.config_str()])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE")
        .env("HOME", w.path())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL  sink kinesis         no AWS credentials found") && stdout.contains("fix: set AWS_ACCESS_KEY_ID"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_over_1_mib_stops_naming_table_and_seq_never_the_value() {
    let moto = Moto::start();
    moto.create_stream("big", 1);
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.docs (id INT PRIMARY KEY, body LONGTEXT)").await;
    db.exec("INSERT INTO shop.docs VALUES (1, 'small'), (2, CONCAT('SECRETVALUE', REPEAT('x', 1100000)))").await;
    let w = Workdir::with_config(&config_text(&db.url(), 6401, &section(&moto.endpoint(), "big")));
    let run = w.sluice("run", &["--once"]).await;
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("of table shop.docs") && run.stderr.contains("seq 1 ") && run.stderr.contains("1 MiB"), "{run}");
    assert!(!run.all().contains("SECRETVALUE"), "a value in the output");
}

/// A DDL while streaming reaches the stream as its DMS control record, before the first change
/// made under the new definition; Debezium format and `schema-table` keys work too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_while_streaming_sends_a_control_record_before_the_next_change() {
    let moto = Moto::start();
    moto.create_stream("ddl", 2);
    moto.create_stream("dbz", 1);
    let db = MariaDb::start();
    seed_table(&db, 10).await;
    let dbz = "\n[sink.kinesis]\nstream = \"dbz\"\nregion = \"us-east-1\"\nformat = \"debezium\"\npartition_key = \"schema-table\"\n";
    let w = Workdir::with_config(&config_text(&db.url(), 6401, &section(&moto.endpoint(), "ddl")));
    let run = w.spawn("run", "run", &[]);
    let endpoint = moto.endpoint();
    common::eventually("the snapshot on the stream", || read_stream(&endpoint, "ddl").len() >= 11).await;
    db.exec("ALTER TABLE shop.acct ADD COLUMN extra INT; INSERT INTO shop.acct VALUES (100, 1, 'x', 7)").await;
    common::eventually("the insert on the stream", || read_stream(&endpoint, "ddl").iter().any(|r| r.record["data"]["extra"] == 7)).await;
    // Whole-table DDL, which no row event shows: rename, truncate, drop.
    db.exec(
        "CREATE TABLE shop.t2 (id INT PRIMARY KEY); INSERT INTO shop.t2 VALUES (1); RENAME TABLE shop.t2 TO shop.t3; \
         INSERT INTO shop.t3 VALUES (2); TRUNCATE TABLE shop.t3; DROP TABLE shop.t3",
    )
    .await;
    let dropped = |r: &common::kinesis::StreamRecord| r.record["metadata"]["operation"] == "drop-table";
    common::eventually("the drop on the stream", || read_stream(&endpoint, "ddl").iter().any(dropped)).await;
    run.sigterm();
    assert_eq!(run.wait().await.code, Some(0));
    let records = read_stream(&endpoint, "ddl");
    let ops = |key: &str| -> Vec<String> {
        let control = records.iter().filter(|r| r.is_control() && r.partition_key == key);
        control.map(|r| r.record["metadata"]["operation"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(ops("shop.acct"), ["create-table", "add-column"]);
    // Each table's control records in order on its key's shard; the rename names both tables.
    assert_eq!(ops("shop.t2"), ["create-table", "rename-table"]);
    assert_eq!(ops("shop.t3"), ["create-table", "truncate-table", "drop-table"]);
    let rename = records.iter().find(|r| r.record["metadata"]["operation"] == "rename-table").unwrap();
    assert_eq!(rename.record["control"]["rename-to"], serde_json::json!({"schema-name": "shop", "table-name": "t3"}));
    let second = records.iter().find(|r| r.record["data"]["id"] == 2 && r.record["metadata"]["table-name"] == "t3").unwrap();
    assert_eq!(rename.seq(), second.seq(), "the rename precedes the next change: {}", rename.text);
    let add = records.iter().find(|r| r.record["metadata"]["operation"] == "add-column").unwrap();
    assert_eq!(add.record["control"]["table-def"]["columns"]["extra"]["type"], "INT4");
    let insert = records.iter().find(|r| r.record["data"]["extra"] == 7).unwrap();
    assert_eq!(add.seq(), insert.seq(), "the control record carries the seq of the change it precedes");

    // The same source into a Debezium stream keyed by table: one shard, every change in order.
    let text = std::fs::read_to_string(w.config())
        .unwrap()
        .replace(&section(&endpoint, "ddl"), &dbz.replace("region", &format!("endpoint = \"{endpoint}\"\nregion")));
    let w2 = Workdir::with_config(&text.replace("server_id = 6401", "server_id = 6402"));
    w2.run_once().await;
    let records = read_stream(&endpoint, "dbz");
    assert_eq!(records.len(), 11, "no control records in Debezium format");
    assert!(records.iter().all(|r| r.partition_key == "shop.acct"));
    let seqs: Vec<u64> = records.iter().map(|r| r.record["source"]["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "schema-table keeps the table's order: {seqs:?}");
    assert_eq!(records[0].record["op"], "r");
}

/// `make demo-aws` end to end, small: it must pass on a fresh machine the first time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_demo_aws_runs_end_to_end() {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_sluice"));
    let target = bin.parent().and_then(|d| d.parent()).unwrap();
    if !target.join("debug/sluice-demo-data").exists() {
        panic!("sluice-demo-data is not built: run `cargo build --workspace --bins` (make test does) first");
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/demo-aws.sh");
    let out = tokio::process::Command::new("bash")
        .arg(script)
        .env("CARGO_TARGET_DIR", target)
        .env("DEMO_ROWS", "500")
        .env("DEMO_UPDATES", "3")
        .env("DEMO_INTERVAL", "0.2")
        .output();
    let out = tokio::time::timeout(Duration::from_secs(180), out).await.expect("demo-aws within 3 min").unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo-aws failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("'load': 500") && stdout.contains("'update': 4"), "{stdout}");
    assert!(stdout.matches("  [tail] ").count() == 4, "the 4 updates followed live:\n{stdout}");
    assert!(stdout.contains("CREATE EXTERNAL TABLE `demo`.`users`") && stdout.contains("s3://demo-lake/cdc/demo/users"), "{stdout}");
}
