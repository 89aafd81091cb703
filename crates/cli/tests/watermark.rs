//! `[snapshot] method = "watermark"` (MySQL 8 / Aurora's path) forced on MariaDB: the handover
//! to the binlog under a concurrent workload with key changes, kill -9 during the snapshot, a
//! keyless table with a configured key, and a user with only SELECT, REPLICATION SLAVE and
//! REPLICATION CLIENT. Every time, replaying the events file must rebuild the source table.
#![allow(clippy::unwrap_used)]
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::workload::{replay, seed_table, source_table, workload};
use common::{config_text, eventually, Workdir};
use rand::{Rng, SeedableRng};
use sluice_testkit::MariaDb;

/// Three readers at once: ranges split by the server's index, resumed at chunk granularity.
const WATERMARK: &str = "[snapshot]\nmethod = \"watermark\"\nchunk_size = 500\nparallel = 3\n";

/// Runs `sluice run` while the workload writes, until the snapshot is over and the workload
/// stopped, then until everything is delivered; returns the run's stderr.
async fn run_under_workload(db: &MariaDb, w: &Workdir, seed: u64) -> String {
    let stop = Arc::new(AtomicBool::new(false));
    let writer = workload(db, stop.clone(), seed);
    let mut run = w.spawn("run", "run", &[]);
    let stderr = run.stderr.clone();
    let started = std::time::Instant::now();
    while common::state_json(&w.state_file()).is_none_or(|s| s["checkpoint"]["position"].get("snapshot").is_some()) {
        run.assert_running();
        let log = std::fs::read_to_string(&stderr).unwrap_or_default();
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the snapshot did not finish within 60 s:\n{}",
            &log[log.len().saturating_sub(4000)..]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let txs = writer.await.unwrap();
    assert!(txs > 20, "the workload ran only {txs} transactions");
    let expected = source_table(db).await;
    eventually("every change is delivered", || replay(&w.events()) == expected).await;
    run.sigterm();
    let out = run.wait().await;
    assert_eq!(out.code, Some(0), "{out}");
    out.stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handover_under_a_concurrent_workload_is_exact() {
    let db = MariaDb::start();
    seed_table(&db, 20_000).await;
    let w = Workdir::with_config(&config_text(&db.url(), 6401, WATERMARK));
    let stderr = run_under_workload(&db, &w, 11).await;
    assert!(stderr.contains("snapshot by watermarks"), "the watermark method was not used:\n{stderr}");
    // How many reads survive depends on how fast the workload touches rows inside the windows;
    // exactness is what the replay above checked.
    let reads = w.events().iter().filter(|e| common::op(e) == "r").count();
    assert!(reads > 0, "no row was read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_watermark_snapshot_loses_and_repeats_nothing() {
    let db = MariaDb::start();
    seed_table(&db, 20_000).await;
    let w = Workdir::with_config(&config_text(&db.url(), 6401, WATERMARK));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = workload(&db, stop.clone(), 5);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for round in 0..6 {
        let wait_ms = if round < 4 { rng.gen_range(150..700) } else { rng.gen_range(300..1500) };
        w.spawn(&format!("run{round}"), "run", &[]).kill_9_after(Duration::from_millis(wait_ms)).await;
    }
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    let out = w.run_once().await;
    let got = replay(&w.events());
    let expected = source_table(&db).await;
    assert_eq!(got.len(), expected.len(), "row count after kill -9 (stderr of last run:\n{})", out.stderr);
    assert!(got == expected, "replayed events differ from the source table");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_table_with_a_configured_key() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.acct (id BIGINT, v BIGINT, note VARCHAR(32))").await;
    let values: Vec<String> = (1..=5000).map(|i| format!("({i}, {i}, 'seed{i}')")).collect();
    db.exec(&format!("INSERT INTO shop.acct VALUES {}", values.join(","))).await;
    let text = config_text(&db.url(), 6401, WATERMARK)
        .replace("heartbeat = \"200ms\"", "heartbeat = \"200ms\"\nkeys = { \"shop.acct\" = [\"id\"] }");
    let w = Workdir::with_config(&text);
    run_under_workload(&db, &w, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_with_only_select_and_replication_grants_can_snapshot() {
    let db = MariaDb::start();
    seed_table(&db, 3000).await;
    db.exec(
        "CREATE USER 'reader'@'127.0.0.1' IDENTIFIED BY 'reader'; \
         GRANT SELECT, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'reader'@'127.0.0.1'",
    )
    .await;
    let url = db.url().replace("sluice:sluice@", "reader:reader@");
    let w = Workdir::with_config(&config_text(&url, 6401, WATERMARK));
    let check = w.sluice("check", &[]).await;
    assert_eq!(check.code, Some(0), "check refuses the three grants:\n{check}");
    let stderr = run_under_workload(&db, &w, 9).await;
    assert!(!stderr.contains("denied"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sluice_snapshot_rereads_a_table_while_streaming_goes_on() {
    let db = MariaDb::start();
    seed_table(&db, 5000).await;
    let w = Workdir::with_config(&config_text(&db.url(), 6401, "[snapshot]\nchunk_size = 500\n"));
    let wrong = w.sluice("snapshot", &["--table", "shop.nope"]).await;
    assert_eq!(wrong.code, Some(1), "{wrong}");
    assert!(wrong.stderr.contains("no such table among those [source] tables captures"), "{wrong}");

    let stop = Arc::new(AtomicBool::new(false));
    let writer = workload(&db, stop.clone(), 21);
    let mut run = w.spawn("run", "run", &[]);
    let reads = || w.events().iter().filter(|e| common::op(e) == "r").count();
    eventually("the initial snapshot", || {
        run.assert_running();
        reads() >= 5000
    })
    .await;
    let asked = w.sluice("snapshot", &["--table", "shop.acct"]).await;
    assert_eq!(asked.code, Some(0), "{asked}");
    assert!(asked.stdout.contains("requested a snapshot of shop.acct"), "{asked}");
    let first = reads();
    eventually("the table is read again while the workload streams", || {
        run.assert_running();
        reads() >= first + 4000
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    let expected = source_table(&db).await;
    eventually("every change is delivered", || replay(&w.events()) == expected).await;
    run.sigterm();
    let out = run.wait().await;
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stderr.contains("snapshot requested: reading the table by watermarks"), "{out}");
}

/// A composite key whose values are skewed (most rows share the first column), split among four
/// readers while rows change: the lake of events still replays to the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_readers_split_a_skewed_composite_key() {
    use mysql_async::prelude::Queryable;
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.pairs (a INT, b VARCHAR(16), v INT, PRIMARY KEY (a, b))").await;
    let values: Vec<String> = (0..6000).map(|i| format!("({}, 'k{:05}', {i})", if i % 10 == 0 { i } else { 1 }, i)).collect();
    db.exec(&format!("INSERT INTO shop.pairs VALUES {}", values.join(","))).await;
    let w = Workdir::with_config(&config_text(&db.url(), 6401, "[snapshot]\nmethod = \"watermark\"\nchunk_size = 250\nparallel = 4\n"));
    let stop = Arc::new(AtomicBool::new(false));
    let url = db.root_url();
    let flag = stop.clone();
    let writer = tokio::spawn(async move {
        let mut conn = sluice_testkit::connect(&url).await;
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        while !flag.load(Ordering::Relaxed) {
            let i = rng.gen_range(0..6000);
            let a = if i % 10 == 0 { i } else { 1 };
            let sql = match rng.gen_range(0..3) {
                0 => format!("UPDATE shop.pairs SET v = v + 1 WHERE a = {a} AND b = 'k{i:05}'"),
                1 => format!("DELETE FROM shop.pairs WHERE a = {a} AND b = 'k{i:05}'"),
                _ => format!("INSERT IGNORE INTO shop.pairs VALUES (1, 'n{:05}', {i})", rng.gen_range(0..99_999)),
            };
            conn.query_drop(sql).await.unwrap();
        }
    });
    let mut run = w.spawn("run", "run", &[]);
    eventually("the snapshot finishes", || {
        run.assert_running();
        common::state_json(&w.state_file()).is_some_and(|s| s["checkpoint"]["position"].get("snapshot").is_none())
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    let key = |img: &serde_json::Value| (img["a"].as_i64().unwrap(), img["b"].as_str().unwrap().to_string());
    let replay = |events: &[serde_json::Value]| {
        let mut t = std::collections::BTreeMap::new();
        for e in events {
            match common::op(e) {
                "d" => {
                    t.remove(&key(&e["before"]));
                }
                _ => {
                    if !e["before"].is_null() {
                        t.remove(&key(&e["before"]));
                    }
                    t.insert(key(&e["after"]), e["after"]["v"].as_i64().unwrap());
                }
            }
        }
        t
    };
    let mut conn = db.root_conn().await;
    let rows: Vec<(i64, String, i64)> = conn.query("SELECT a, b, v FROM shop.pairs").await.unwrap();
    let expected: std::collections::BTreeMap<(i64, String), i64> = rows.into_iter().map(|(a, b, v)| ((a, b), v)).collect();
    eventually("every change is delivered", || replay(&w.events()) == expected).await;
    run.sigterm();
    let out = run.wait().await;
    assert_eq!(out.code, Some(0), "{out}");
}
