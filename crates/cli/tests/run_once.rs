//! `sluice run --once` end to end: snapshot, then exactly the binlog changes made since, in
//! commit order with consecutive seqs, and per-table counters in `status --json`.
#![allow(clippy::unwrap_used)]
mod common;

use common::{op, seq, Workdir};
use serde_json::Value as Json;
use sluice_testkit::MariaDb;

fn id_of(ev: &Json) -> i64 {
    let image = if op(ev) == "d" { &ev["before"] } else { &ev["after"] };
    image["id"].as_i64().unwrap_or_else(|| panic!("no id in {ev}"))
}

fn summary(events: &[Json]) -> Vec<(String, i64)> {
    events.iter().map(|e| (op(e).to_string(), id_of(e))).collect()
}

fn tx_id(ev: &Json) -> String {
    ev["transaction"]["id"].as_str().unwrap_or_else(|| panic!("no transaction.id in {ev}")).to_string()
}

#[tokio::test]
async fn snapshot_then_binlog_changes_exactly_once() {
    let db = MariaDb::start();
    let values: Vec<String> = (1..=100).map(|i| format!("({i}, 'user{i}', {i})")).collect();
    db.exec(&format!(
        "CREATE DATABASE shop; CREATE TABLE shop.users (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, score INT); \
         INSERT INTO shop.users VALUES {}",
        values.join(", ")
    ))
    .await;
    let w = Workdir::for_url(&db.url());
    let st = w.status().await;
    assert_eq!(st["phase"], "not started", "{st}");
    assert!(!w.path().join(".sluice").exists(), "status must not create the state dir");

    // 1. The snapshot: 100 reads, seq 0..99, in key order.
    w.run_once().await;
    let events = w.events();
    assert_eq!(events.len(), 100, "one read per row");
    assert!(events.iter().all(|e| op(e) == "r" && e["source"]["snapshot"] == true), "only snapshot reads");
    assert_eq!(events.iter().map(seq).collect::<Vec<_>>(), (0..100).collect::<Vec<_>>());
    let mut ids: Vec<i64> = events.iter().map(id_of).collect();
    ids.sort();
    assert_eq!(ids, (1..=100).collect::<Vec<_>>());
    assert_eq!(events[41]["after"], serde_json::json!({"id": 42, "name": "user42", "score": 42}));
    let st = w.status().await;
    assert_eq!(st["tables"]["shop.users"]["full_load_rows"], 100, "{st}");
    assert_eq!(st["next_seq"], 100, "{st}");

    // 2. Changes of every shape, then the second run.
    db.exec(
        "USE shop;
         INSERT INTO users VALUES (101, 'new', 0);
         UPDATE users SET name = 'renamed' WHERE id = 1;
         DELETE FROM users WHERE id = 2;
         INSERT INTO users VALUES (102, 'm1', 0), (103, 'm2', 0), (104, 'm3', 0);
         UPDATE users SET score = score + 1000 WHERE id BETWEEN 10 AND 12;
         BEGIN; INSERT INTO users VALUES (105, 'tx', 0); UPDATE users SET name = 'tx2' WHERE id = 105; DELETE FROM users WHERE id = 3; COMMIT;
         BEGIN; INSERT INTO users VALUES (106, 'gone', 0); UPDATE users SET name = 'gone' WHERE id = 4; DELETE FROM users WHERE id = 6; ROLLBACK;
         UPDATE users SET id = 200 WHERE id = 5;",
    )
    .await;
    w.run_once().await;
    let all = w.events();
    assert_eq!(all.iter().map(seq).collect::<Vec<_>>(), (0..all.len() as u64).collect::<Vec<_>>(), "consecutive seqs");
    let new = &all[100..];
    let expected: Vec<(String, i64)> = [
        ("c", 101),
        ("u", 1),
        ("d", 2),
        ("c", 102),
        ("c", 103),
        ("c", 104),
        ("u", 10),
        ("u", 11),
        ("u", 12),
        ("c", 105),
        ("u", 105),
        ("d", 3),
        ("u", 200),
    ]
    .iter()
    .map(|(o, i)| (o.to_string(), *i))
    .collect();
    assert_eq!(summary(new), expected, "new events:\n{}", lines(new));
    assert!(new.iter().all(|e| e["source"]["snapshot"] == false), "binlog events are not snapshot reads");

    // Row images.
    assert_eq!(new[0]["before"], Json::Null);
    assert_eq!(new[0]["after"], serde_json::json!({"id": 101, "name": "new", "score": 0}));
    assert_eq!(new[1]["before"]["name"], "user1");
    assert_eq!(new[1]["after"]["name"], "renamed");
    assert_eq!(new[2]["before"], serde_json::json!({"id": 2, "name": "user2", "score": 2}));
    assert_eq!(new[2]["after"], Json::Null);
    assert_eq!((new[6]["before"]["score"].as_i64(), new[6]["after"]["score"].as_i64()), (Some(10), Some(1010)));
    // The primary-key change: one update carrying the old key in `before`, the new in `after`.
    assert_eq!(new[12]["before"], serde_json::json!({"id": 5, "name": "user5", "score": 5}));
    assert_eq!(new[12]["after"], serde_json::json!({"id": 200, "name": "user5", "score": 5}));

    // Transactions: one id per transaction, shared by all of its changes.
    let txs: Vec<String> = new.iter().map(tx_id).collect();
    assert_eq!(txs[3], txs[4]);
    assert_eq!(txs[4], txs[5], "multi-row insert is one transaction");
    assert!(txs[6] == txs[7] && txs[7] == txs[8], "multi-row update is one transaction");
    assert!(txs[9] == txs[10] && txs[10] == txs[11], "BEGIN..COMMIT is one transaction");
    let distinct: std::collections::BTreeSet<&String> = txs.iter().collect();
    assert_eq!(distinct.len(), 7, "7 transactions: {txs:?}");
    // The rolled-back transaction left nothing.
    assert!(!all.iter().any(|e| id_of(e) == 106 || e["after"]["name"] == "gone"), "rolled-back changes emitted");

    let st = w.status().await;
    let t = &st["tables"]["shop.users"];
    assert_eq!(t["full_load_rows"], 100, "{st}");
    assert_eq!(t["inserts"], 5, "{st}");
    assert_eq!(t["updates"], 6, "{st}");
    assert_eq!(t["deletes"], 2, "{st}");
    assert!(t["last_change_ms"].as_i64().is_some(), "{st}");
    assert_eq!(st["next_seq"], 113, "{st}");
    assert_eq!(st["phase"], "streaming", "{st}");
    assert!(st["position"]["binlog"]["file"].as_str().is_some_and(|f| !f.is_empty()), "{st}");

    // 3. Nothing new: a third run adds nothing and changes no counter.
    let before = std::fs::read(w.events_path()).expect("events");
    w.run_once().await;
    assert_eq!(std::fs::read(w.events_path()).expect("events"), before, "a run without changes wrote events");
    assert_eq!(w.status().await["tables"], st["tables"]);
}

#[tokio::test]
async fn only_configured_tables_are_captured() {
    let db = MariaDb::start();
    db.exec(
        "CREATE DATABASE shop; CREATE DATABASE other;
         CREATE TABLE shop.a (id INT PRIMARY KEY); CREATE TABLE other.a (id INT PRIMARY KEY);
         INSERT INTO shop.a VALUES (1); INSERT INTO other.a VALUES (1);",
    )
    .await;
    let w = Workdir::for_url(&db.url());
    w.run_once().await;
    db.exec("INSERT INTO shop.a VALUES (2); INSERT INTO other.a VALUES (2);").await;
    w.run_once().await;
    let events = w.events();
    let got: Vec<(String, String, i64)> =
        events.iter().map(|e| (e["source"]["db"].as_str().unwrap_or("").to_string(), op(e).to_string(), id_of(e))).collect();
    assert_eq!(got, vec![("shop".to_string(), "r".to_string(), 1), ("shop".to_string(), "c".to_string(), 2)]);
}

fn lines(events: &[Json]) -> String {
    events.iter().map(|e| format!("{e}\n")).collect()
}

/// Off a terminal (a service, a pipe) the snapshot reports its progress in the log: rows,
/// rows/s and ETA every few seconds, and a summary when the read is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_off_a_terminal_logs_its_progress() {
    let db = MariaDb::start();
    // The issue's case: 300k rows, which the debug build reads in several seconds.
    common::workload::seed_table(&db, 300_000).await;
    let w = Workdir::with_config(&common::config_text(&db.url(), 6401, "\n[snapshot]\nchunk_size = 500\n"));
    let started = std::time::Instant::now();
    let out = w.run_once().await;
    let took = started.elapsed();
    assert!(out.stderr.contains("snapshot read done rows=300000"), "{out}");
    assert!(out.stderr.contains("snapshot of table done table=shop.acct"), "{out}");
    let progress = out.stderr.lines().filter(|l| l.contains("snapshot progress")).count();
    // A line every 2 s while rows flow: a read that took longer than 3 s logged at least once.
    let done = out.stderr.lines().find(|l| l.contains("snapshot read done")).unwrap_or_default();
    let read_s: f64 = done.split("seconds=").nth(1).and_then(|s| s.split_whitespace().next()).and_then(|s| s.parse().ok()).unwrap_or(0.0);
    if read_s > 3.0 {
        assert!(progress >= 1, "no progress line in a {read_s} s read:\n{out}");
    }
    for l in out.stderr.lines().filter(|l| l.contains("snapshot progress")) {
        assert!(l.contains("rows=") && l.contains("rows_per_s=") && l.contains("eta_s="), "{l}");
    }
    eprintln!("snapshot of 300k rows: run took {took:?}, the read {read_s} s, {progress} progress line(s)");
}
