//! Crash recovery: `kill -9` at random moments during snapshot and streaming while a workload
//! runs, a server restart mid-stream, and a purged resume point. After recovery the events
//! file must hold every change exactly once (seqs 0..n, no gap, no repeat), and replaying it
//! must rebuild the source table exactly.
#![allow(clippy::unwrap_used)]
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::workload::{replay, seed_table, source_table, workload};
use common::{config_text, eventually, Workdir};
use mysql_async::prelude::Queryable;
use rand::{Rng, SeedableRng};
use sluice_testkit::MariaDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_snapshot_and_stream_loses_and_repeats_nothing() {
    let db = MariaDb::start();
    seed_table(&db, 20_000).await;
    let w = Workdir::with_config(&config_text(&db.url(), 6401, "[snapshot]\nchunk_size = 1000\n"));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = workload(&db, stop.clone(), 7);
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let mut kills = 0;
    for round in 0..6 {
        // Early rounds land inside the snapshot, later ones in the stream.
        let wait_ms = if round < 3 { rng.gen_range(100..700) } else { rng.gen_range(300..1500) };
        w.spawn(&format!("run{round}"), "run", &[]).kill_9_after(Duration::from_millis(wait_ms)).await;
        kills += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let txs = writer.await.unwrap();
    assert!(txs > 50, "the workload ran only {txs} transactions");
    let out = w.run_once().await;
    let events = w.events();
    let expected = source_table(&db).await;
    let got = replay(&events);
    assert_eq!(got.len(), expected.len(), "row count after {kills} kill -9 (stderr of last run:\n{})", out.stderr);
    assert!(got == expected, "replayed events differ from the source table");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_mid_stream_reconnects_and_resumes() {
    let db = MariaDb::start();
    seed_table(&db, 100).await;
    let w = Workdir::for_url(&db.url());
    let mut bg = w.spawn("run", "run", &[]);
    eventually("snapshot delivered", || w.events().len() >= 100).await;
    db.exec("INSERT INTO shop.acct VALUES (5001, 1, 'before restart')").await;
    eventually("insert before restart delivered", || w.events().len() >= 101).await;
    db.restart();
    bg.assert_running();
    db.exec("INSERT INTO shop.acct VALUES (5002, 2, 'after restart'); UPDATE shop.acct SET v = 9 WHERE id = 1").await;
    eventually("changes after restart delivered", || w.events().len() >= 103).await;
    bg.sigterm();
    let out = bg.wait().await;
    assert_eq!(out.code, Some(0), "run did not exit cleanly:\n{out}");
    assert!(out.stderr.contains("reconnecting"), "no reconnect logged:\n{}", out.stderr);
    assert!(replay(&w.events()) == source_table(&db).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purged_resume_point_is_a_clear_error() {
    let db = MariaDb::start();
    seed_table(&db, 10).await;
    let w = Workdir::for_url(&db.url());
    w.run_once().await;
    db.exec("INSERT INTO shop.acct VALUES (11, 1, 'x'); FLUSH BINARY LOGS; INSERT INTO shop.acct VALUES (12, 1, 'y'); FLUSH BINARY LOGS")
        .await;
    let mut conn = db.root_conn().await;
    let current: (String, u64) =
        conn.query_first("SHOW MASTER STATUS").await.unwrap().map(|r: mysql_async::Row| (r.get(0).unwrap(), r.get(1).unwrap())).unwrap();
    // MariaDB keeps a file until InnoDB has checkpointed past it: retry the purge.
    let purged = |files: &[String]| !files.iter().any(|f| f.ends_with(".000001"));
    for _ in 0..300 {
        conn.query_drop(format!("PURGE BINARY LOGS TO '{}'", current.0)).await.unwrap();
        let files: Vec<String> = conn.query_map("SHOW BINARY LOGS", |r: mysql_async::Row| r.get::<String, _>(0).unwrap()).await.unwrap();
        if purged(&files) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = std::fs::read(w.events_path()).unwrap();
    let out = w.sluice("run", &["--once"]).await;
    assert_eq!(out.code, Some(1), "{out}");
    let err = out.all();
    assert!(err.contains("no longer on the server") && err.contains("mode = \"always\""), "{err}");
    assert_eq!(std::fs::read(w.events_path()).unwrap(), before, "events file changed on a failed resume");
}
