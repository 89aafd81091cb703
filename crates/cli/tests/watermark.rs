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

const WATERMARK: &str = "[snapshot]\nmethod = \"watermark\"\nchunk_size = 500\n";

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
