//! The lake sink end to end: current state and changelog against the source, schema changes,
//! exactly once under kill -9, S3 (moto), independent readers (python deltalake, DuckDB),
//! `validate` and `lake ddl`.
#![allow(clippy::unwrap_used)]
mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::lake::{assert_changelog_exact, explain_mismatch, lake_config, lake_table, query};
use common::moto::{python_bin, Moto};
use common::workload::{seed_table, source_table, workload, Table};
use common::{parse_lines, Workdir};
use rand::{Rng, SeedableRng};
use serde_json::Value as Json;
use sluice_testkit::MariaDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lake_is_the_default_sink_and_matches_the_source() {
    let db = MariaDb::start();
    seed_table(&db, 300).await;
    let w = Workdir::with_config(&lake_config(&db, ""));
    w.run_once().await;
    assert!(w.path().join("lake/shop/acct/_delta_log").is_dir(), "no current-state table");
    assert_eq!(lake_table(&w).await, source_table(&db).await);
    db.exec(
        "UPDATE shop.acct SET v = v * 10 WHERE id <= 50; UPDATE shop.acct SET id = 5000 WHERE id = 60; \
         DELETE FROM shop.acct WHERE id BETWEEN 100 AND 120; INSERT INTO shop.acct VALUES (7000, 1, 'new'); \
         BEGIN; UPDATE shop.acct SET note = 'twice' WHERE id = 1; UPDATE shop.acct SET note = 'thrice' WHERE id = 1; COMMIT",
    )
    .await;
    w.run_once().await;
    assert_eq!(lake_table(&w).await, source_table(&db).await, "current state after updates, key change, deletes");
    let ops = query(&w, "SELECT _cdc_op AS op, count(*) AS n FROM shop.acct__changes GROUP BY _cdc_op ORDER BY op").await;
    assert_eq!(ops.len(), 4, "r, c, u, d all in the changelog: {ops:?}");
    assert_changelog_exact(&w).await;

    // Schema evolution: a new column appears (null before), a dropped one stays as nulls.
    db.exec("ALTER TABLE shop.acct ADD COLUMN extra VARCHAR(8); INSERT INTO shop.acct VALUES (8000, 2, 'x', 'hello'); UPDATE shop.acct SET extra = 'e' WHERE id = 2").await;
    db.exec("ALTER TABLE shop.acct DROP COLUMN note; INSERT INTO shop.acct VALUES (8001, 3, 'bye')").await;
    w.run_once().await;
    let rows = query(&w, "SELECT id, note, extra FROM shop.acct WHERE id IN (2, 3, 8000, 8001) ORDER BY id").await;
    assert_eq!(rows[0]["extra"], "e");
    assert!(rows[1]["extra"].is_null(), "{rows:?}");
    assert_eq!(rows[2]["extra"], "hello");
    assert!(rows[3]["note"].is_null() && rows[3]["extra"] == "bye", "{rows:?}");
    assert_changelog_exact(&w).await;

    let v = w.sluice("validate", &[]).await;
    assert_eq!(v.code, Some(0), "{v}");
    // A change the binlog never saw is a mismatch that names the key.
    db.exec("SET sql_log_bin = 0; UPDATE shop.acct SET v = -1 WHERE id = 7").await;
    let v = w.sluice("validate", &[]).await;
    assert_eq!(v.code, Some(1), "{v}");
    assert!(v.stdout.contains("MISMATCH") && v.stdout.contains("differs: key 7"), "{v}");

    let cfg = w.config_str();
    let ddl = common::sluice(&["lake", "ddl", "-c", &cfg, "--engine", "athena"], &[]).await;
    assert!(ddl.stdout.contains("CREATE EXTERNAL TABLE `shop`.`acct__changes`") && ddl.stdout.contains("'table_type' = 'DELTA'"), "{ddl}");
    let ddl = common::sluice(&["lake", "ddl", "-c", &cfg, "--engine", "trino"], &[]).await;
    assert!(ddl.stdout.contains("delta.system.register_table(schema_name => 'shop', table_name => 'acct'"), "{ddl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_never_applies_a_change_twice_to_the_lake() {
    let db = MariaDb::start();
    seed_table(&db, 20_000).await;
    let w = Workdir::with_config(&lake_config(
        &db,
        "[snapshot]\nchunk_size = 2000\n[sink.lake]\npath = \"lake\"\nflush_interval = \"200ms\"\n",
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = workload(&db, stop.clone(), 11);
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    for round in 0..6 {
        w.spawn(&format!("run{round}"), "run", &[]).kill_9_after(Duration::from_millis(rng.gen_range(300..2500))).await;
    }
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    let out = w.spawn("final", "run", &["--once"]).wait().await;
    assert_eq!(out.code, Some(0), "{out}");
    let expected = source_table(&db).await;
    let got = lake_table(&w).await;
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "lake current state differs from the source after kill -9");
    let n = assert_changelog_exact(&w).await;
    let next_seq = w.status().await["next_seq"].as_u64().unwrap();
    assert_eq!(n, next_seq, "changelog holds every change up to the committed position");
}

fn read_with(reader: &str, path: &str, opts: &[String]) -> Table {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/lake-readers.py");
    let out =
        Command::new(format!("{}/python", python_bin())).args([script, reader, path, "id,v,note"]).args(opts).output().expect("python");
    assert!(out.status.success(), "{reader}: {}", String::from_utf8_lossy(&out.stderr));
    parse_lines(&String::from_utf8_lossy(&out.stdout))
        .iter()
        .map(|r| (r["id"].as_i64().unwrap(), (r["v"].as_i64(), r["note"].as_str().map(String::from))))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_readers_agree_with_the_source() {
    let db = MariaDb::start();
    seed_table(&db, 2_000).await;
    let w = Workdir::with_config(&lake_config(&db, ""));
    w.run_once().await;
    db.exec("UPDATE shop.acct SET v = 0, note = NULL WHERE id % 7 = 0; DELETE FROM shop.acct WHERE id % 11 = 0; UPDATE shop.acct SET id = id + 100000 WHERE id % 13 = 0").await;
    w.run_once().await;
    let path = w.path().join("lake/shop/acct").display().to_string();
    let expected = source_table(&db).await;
    assert!(read_with("deltalake", &path, &[]) == expected, "python deltalake disagrees with the source");
    assert!(read_with("duckdb", &path, &[]) == expected, "DuckDB disagrees with the source");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_lake_on_an_s3_compatible_server() {
    let moto = Moto::start();
    let endpoint = format!("http://127.0.0.1:{}", moto.port);
    // moto accepts any credentials; the bucket must exist.
    let py = format!("{}/python", python_bin());
    let mk = format!("import boto3; boto3.client('s3', endpoint_url='{endpoint}', region_name='us-east-1', aws_access_key_id='k', aws_secret_access_key='s').create_bucket(Bucket='lake')");
    assert!(Command::new(&py).args(["-c", &mk]).status().unwrap().success());
    let db = MariaDb::start();
    seed_table(&db, 500).await;
    let extra = format!(
        "[sink.lake]\npath = \"s3://lake/prefix\"\n[sink.lake.s3]\nregion = \"us-east-1\"\nendpoint = \"{endpoint}\"\naccess_key_id = \"k\"\nsecret_access_key = \"s\"\nallow_http = true\n"
    );
    let w = Workdir::with_config(&lake_config(&db, &extra));
    w.run_once().await;
    db.exec("UPDATE shop.acct SET v = 1 WHERE id < 10; DELETE FROM shop.acct WHERE id > 490").await;
    w.run_once().await;
    assert_eq!(lake_table(&w).await, source_table(&db).await);
    assert_changelog_exact(&w).await;
    let opts: Vec<String> = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "k"),
        ("AWS_SECRET_ACCESS_KEY", "s"),
        ("AWS_ALLOW_HTTP", "true"),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={v}"))
    .collect();
    assert!(read_with("deltalake", "s3://lake/prefix/shop/acct", &opts) == source_table(&db).await, "python deltalake over S3");
}

/// Upkeep: with `compact_every = 3`, small files are compacted and replaced ones vacuumed, so
/// the number of live files stays small however many commits a table takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_keeps_live_files_few() {
    let db = MariaDb::start();
    seed_table(&db, 100).await;
    let w = Workdir::with_config(&lake_config(&db, "[sink.lake]\npath = \"lake\"\ncompact_every = 3\nretention = \"0s\"\n"));
    w.run_once().await;
    for i in 0..9 {
        db.exec(&format!("INSERT INTO shop.acct VALUES ({}, 1, 'x')", 1000 + i)).await;
        w.run_once().await;
    }
    let py = format!("{}/python", python_bin());
    let count = |table: &str| {
        let path = w.path().join("lake/shop").join(table).display().to_string();
        let code = format!("from deltalake import DeltaTable; print(len(DeltaTable('{path}').file_uris()))");
        let out = Command::new(&py).args(["-c", &code]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse::<usize>().unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)))
    };
    let parquet_on_disk = std::fs::read_dir(w.path().join("lake/shop/acct"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "parquet"))
        .count();
    assert!(count("acct") <= 2, "current state has {} live files after 10 commits", count("acct"));
    assert!(count("acct__changes") <= 4, "changelog has {} live files after 10 commits", count("acct__changes"));
    assert!(parquet_on_disk <= 3, "vacuum left {parquet_on_disk} parquet files in the current-state table");
    assert_eq!(lake_table(&w).await, source_table(&db).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_replays_and_follows_the_lake_changelog() {
    let db = MariaDb::start();
    seed_table(&db, 50).await;
    let w = Workdir::with_config(&lake_config(&db, ""));
    w.run_once().await;
    db.exec(
        "UPDATE shop.acct SET v = -v WHERE id <= 10; DELETE FROM shop.acct WHERE id > 45; INSERT INTO shop.acct VALUES (100, 1, 'new'); \
         UPDATE shop.acct SET id = 500 WHERE id = 20",
    )
    .await;
    w.run_once().await;

    // No [sink.jsonl]: tail reads the lake's changelog, durable and replayable from the start.
    let out = w.sluice("tail", &["--from", "earliest", "--no-follow"]).await;
    assert_eq!(out.code, Some(0), "{out}");
    let events = parse_lines(&out.stdout);
    let seqs: Vec<u64> = events.iter().map(common::seq).collect();
    assert_eq!(seqs, (0..67).collect::<Vec<u64>>(), "50 reads, 10 updates, 5 deletes, 1 insert, 1 key change in seq order");
    let moved = events.iter().find(|e| e["after"]["id"] == 500).unwrap();
    assert_eq!(moved["before"]["id"], 20, "a key-changing update keeps its old key: {moved}");
    assert_eq!(common::workload::replay(&events), source_table(&db).await, "replaying the lake's changelog rebuilds the table");
    let dms = w.sluice("tail", &["--from", "earliest", "--no-follow", "--format", "dms", "--limit", "3", "--table", "shop.acc*"]).await;
    let dms = parse_lines(&dms.stdout);
    assert_eq!(dms.len(), 3);
    assert_eq!(dms[0]["metadata"]["operation"], "load");

    // Following: only changes committed after tail started.
    let mut follower = w.spawn("tail", "tail", &["--source", "lake", "--from", "latest", "--limit", "2"]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    follower.assert_running();
    db.exec("INSERT INTO shop.acct VALUES (200, 2, 'a'); DELETE FROM shop.acct WHERE id = 1").await;
    w.run_once().await;
    let out = follower.wait().await;
    let live = parse_lines(&out.stdout);
    assert_eq!(live.iter().map(common::op).collect::<Vec<_>>(), ["c", "d"], "{out}");
    assert_eq!(live[1]["before"]["id"], 1, "a delete carries its before image");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn safe_widenings_apply_and_incompatible_changes_stop_with_the_fix() {
    let db = MariaDb::start();
    db.create_db("shop").await;
    db.exec("CREATE TABLE shop.w (id INT PRIMARY KEY, n SMALLINT, f FLOAT, amount DECIMAL(6,2), d DATE); INSERT INTO shop.w VALUES (1, 7, 1.5, 1234.56, '2024-01-15')").await;
    let w = Workdir::with_config(&lake_config(&db, ""));
    w.run_once().await;
    let types = "SELECT arrow_typeof(n) AS n, arrow_typeof(f) AS f, arrow_typeof(amount) AS a FROM shop.w LIMIT 1";
    assert_eq!(query(&w, types).await[0]["n"], "Int16");

    // Widenings: the lake columns take the wider types and keep every old value.
    db.exec("ALTER TABLE shop.w MODIFY n INT, MODIFY f DOUBLE, MODIFY amount DECIMAL(12,4); INSERT INTO shop.w VALUES (2, 100000, 1e300, 12345678.1234, NULL)").await;
    w.run_once().await;
    let t = &query(&w, types).await[0];
    assert_eq!((t["n"].as_str(), t["f"].as_str(), t["a"].as_str()), (Some("Int32"), Some("Float64"), Some("Decimal128(12, 4)")), "{t}");
    let rows = query(&w, "SELECT id, n, f, CAST(amount AS VARCHAR) AS a FROM shop.w ORDER BY id").await;
    assert_eq!((rows[0]["n"].as_i64(), rows[0]["f"].as_f64(), rows[0]["a"].as_str()), (Some(7), Some(1.5), Some("1234.5600")));
    assert_eq!((rows[1]["n"].as_i64(), rows[1]["f"].as_f64()), (Some(100_000), Some(1e300)));
    let ch = query(&w, "SELECT arrow_typeof(n) AS n, count(*) AS c FROM shop.w__changes GROUP BY 1").await;
    assert_eq!((ch[0]["n"].as_str(), ch[0]["c"].as_i64()), (Some("Int32"), Some(2)), "the changelog is widened too: {ch:?}");
    assert_changelog_exact_for(&w, "shop.w__changes", 2).await;

    // Incompatible: a DATE column that becomes INT stops the pipeline with what to do, and the
    // lake and the committed position stay where they were.
    let seq_before = w.status().await["next_seq"].clone();
    db.exec("ALTER TABLE shop.w MODIFY d INT; INSERT INTO shop.w VALUES (3, 1, 1, 1, 20240101)").await;
    let out = w.sluice("run", &["--once"]).await;
    assert_ne!(out.code, Some(0), "{out}");
    assert!(out.stderr.contains("shop.w.d") && out.stderr.contains("recreate the lake table"), "{out}");
    assert_eq!(w.status().await["next_seq"], seq_before, "the committed position covers a change that was not delivered");
    assert_eq!(query(&w, "SELECT count(*) AS c FROM shop.w").await[0]["c"], 2);
}

async fn assert_changelog_exact_for(w: &Workdir, table: &str, n: u64) {
    let r = &query(w, &format!("SELECT count(*) AS n, count(DISTINCT _cdc_seq) AS d FROM {table}")).await[0];
    assert_eq!((r["n"].as_u64(), r["d"].as_u64()), (Some(n), Some(n)), "{r}");
}

/// A long-running table stays cheap to open: Delta checkpoints (every 100 commits) bound the log
/// a reader replays, and compaction bounds the live files, however many commits it has taken.
/// With updates among the inserts, MERGEs and compactions of one table take turns: no commit
/// is retried and the state is exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_commits_stay_cheap_to_open() {
    let db = MariaDb::start();
    seed_table(&db, 10).await;
    let w = Workdir::with_config(&lake_config(
        &db,
        "[sink.lake]\npath = \"lake\"\nflush_interval = \"10ms\"\ncompact_every = 20\nretention = \"0s\"\n",
    ));
    let mut run = w.spawn("run", "run", &[]);
    let log = w.path().join("lake/shop/acct__changes/_delta_log");
    let commits =
        || std::fs::read_dir(&log).map(|d| d.flatten().filter(|e| e.path().extension().is_some_and(|x| x == "json")).count()).unwrap_or(0);
    let mut i = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    while commits() < 130 {
        assert!(std::time::Instant::now() < deadline, "only {} commits", commits());
        run.assert_running();
        if i % 3 == 2 {
            db.exec(&format!("UPDATE shop.acct SET v = v + 1 WHERE id = {}", 1 + i % 10)).await;
        } else {
            db.exec(&format!("INSERT INTO shop.acct VALUES ({}, {i}, 'c')", 10_000 + i)).await;
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    run.sigterm();
    let out = run.wait().await;
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stderr.contains("compacted and vacuumed"), "no compaction ran:\n{out}");
    assert!(!out.stderr.contains("retrying"), "a commit was retried:\n{out}");
    // Changes written after the stop signal come with the next run.
    w.run_once().await;
    assert!(log.join("_last_checkpoint").exists(), "no checkpoint after {} commits", commits());
    let checkpoint: Json = serde_json::from_str(&std::fs::read_to_string(log.join("_last_checkpoint")).unwrap()).unwrap();
    let since = commits() as i64 - 1 - checkpoint["version"].as_i64().unwrap();
    assert!(since < 100, "a reader replays {since} commits after the checkpoint");
    let live = query(&w, "SELECT count(DISTINCT _cdc_seq) AS n FROM shop.acct__changes").await[0]["n"].as_i64().unwrap();
    assert_eq!(live, 10 + i, "every change once");
    assert_eq!(lake_table(&w).await, source_table(&db).await);
    let parquet = std::fs::read_dir(w.path().join("lake/shop/acct"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "parquet"))
        .count();
    assert!(parquet <= 25, "{parquet} parquet files in the current state after {i} commits: compaction/vacuum not keeping up");
}

/// The lake commits on its own (every `flush_rows`) ahead of the pipeline's checkpoint. A
/// snapshot resumed after kill -9 reads again at a new point and replays the binlog in between,
/// so its events are numbered above what the lake holds: otherwise the lake would skip them as
/// already applied, losing the changes made while the snapshot ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_the_snapshot_loses_nothing_in_the_lake() {
    let db = MariaDb::start();
    seed_table(&db, 30_000).await;
    let w = Workdir::with_config(&lake_config(
        &db,
        "[snapshot]\nchunk_size = 500\n[sink.lake]\npath = \"lake\"\nflush_interval = \"5s\"\nflush_rows = 700\n",
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = workload(&db, stop.clone(), 23);
    let mut renumbered = 0;
    for round in 0..4 {
        let err = w.spawn(&format!("run{round}"), "run", &[]).kill_9_after(Duration::from_millis(1200 + 300 * round)).await.stderr;
        renumbered += usize::from(err.contains("the snapshot numbers above them"));
    }
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    let out = w.spawn("final", "run", &["--once"]).wait().await;
    assert_eq!(out.code, Some(0), "{out}");
    assert!(renumbered > 0, "no run resumed a snapshot behind the lake: the test did not exercise its case");
    let (lake, source) = (lake_table(&w).await, source_table(&db).await);
    if lake != source {
        explain_mismatch(&w, &lake, &source, &["run0", "run1", "run2", "run3", "final"]).await;
    }
    assert!(lake == source, "lake current state differs from the source");
    let r = &query(&w, "SELECT count(*) AS n, count(DISTINCT _cdc_seq) AS d FROM shop.acct__changes").await[0];
    assert_eq!(r["n"], r["d"], "a _cdc_seq appears twice: {r}");
}
