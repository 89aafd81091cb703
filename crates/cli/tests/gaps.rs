//! No silent initial-load gap: a pattern that matches nothing fails `check`; a table that starts
//! to match `[source] tables` is snapshotted by watermarks while the others stream on; a sink
//! added to a pipeline that already ran makes `run` refuse to start with the fix, instead of
//! loading only new changes.
mod common;

use common::{config_text, Workdir};
use sluice_testkit::MariaDb;

fn with_tables(text: &str, tables: &str) -> String {
    text.replace("tables = [\"shop.*\"]", &format!("tables = [{tables}]"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pattern_that_matches_nothing_fails_check_unless_expected_later() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.users (id INT PRIMARY KEY)").await;
    let typo = Workdir::with_config(&with_tables(&config_text(&db.url(), 6401, ""), "\"shop.users\", \"shop.oders\""));
    let out = typo.sluice("check", &[]).await;
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stdout.contains("FAIL  tables") && out.stdout.contains("shop.oders match no table"), "{out}");
    let run = typo.sluice("run", &["--once"]).await;
    assert_ne!(run.code, Some(0), "run must refuse what check fails:\n{run}");
    assert!(!typo.state_file().exists(), "nothing may be committed:\n{run}");

    let later = with_tables(&config_text(&db.url(), 6401, ""), "\"shop.users\", \"shop.audit_*\"")
        .replace("heartbeat = \"200ms\"", "heartbeat = \"200ms\"\nlater = [\"shop.audit_*\"]");
    let w = Workdir::with_config(&later);
    let out = w.sluice("check", &[]).await;
    assert_eq!(out.code, Some(0), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_that_newly_matches_is_snapshotted_while_the_others_stream() {
    let db = MariaDb::start();
    db.exec(
        "CREATE DATABASE shop; CREATE TABLE shop.users (id INT PRIMARY KEY); CREATE TABLE shop.orders (id INT PRIMARY KEY);
         INSERT INTO shop.users VALUES (1), (2); INSERT INTO shop.orders VALUES (10), (11), (12)",
    )
    .await;
    let base = config_text(&db.url(), 6401, "");
    let w = Workdir::with_config(&with_tables(&base, "\"shop.users\""));
    w.run_once().await;
    assert_eq!(w.events().len(), 2);
    db.exec("INSERT INTO shop.users VALUES (3); INSERT INTO shop.orders VALUES (13)").await;

    // The user widens the selection: shop.orders' rows were never loaded. The run reads them
    // by watermarks and streams shop.users on from its position (no second read of it).
    std::fs::write(w.config(), with_tables(&base, "\"shop.users\", \"shop.orders\"")).unwrap();
    let out = w.run_once().await;
    assert!(out.stderr.contains("shop.orders") && out.stderr.contains("snapshotted while streaming goes on"), "{out}");
    let ids = |table: &str, op: &str| -> Vec<i64> {
        w.events()
            .iter()
            .filter(|e| e["source"]["table"] == table && common::op(e) == op)
            .map(|e| e["after"]["id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(ids("users", "r"), vec![1, 2], "shop.users must not be read again");
    assert_eq!(ids("users", "c"), vec![3]);
    // Row 13 was inserted after the last run: the binlog carries it (and the read drops it).
    assert_eq!(ids("orders", "c"), vec![13]);
    assert_eq!(ids("orders", "r"), vec![10, 11, 12]);
    let left = std::fs::read_dir(w.path().join(".sluice/snapshot-requests")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "the request must be cleared once done");
    // Nothing newly matches any more.
    let n = w.events().len();
    w.run_once().await;
    assert_eq!(w.events().len(), n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_added_later_is_refused_with_the_fix() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.users (id INT PRIMARY KEY); INSERT INTO shop.users VALUES (1), (2)").await;
    let base = config_text(&db.url(), 6401, "");
    let w = Workdir::with_config(&base);
    w.run_once().await;

    std::fs::write(w.config(), format!("{base}\n[sink.lake]\npath = \"lake\"\n")).unwrap();
    let out = w.sluice("run", &["--once"]).await;
    assert_ne!(out.code, Some(0), "{out}");
    assert!(out.stderr.contains("[sink.lake] was added after this pipeline first ran"), "{out}");
    assert!(!w.path().join("lake").join("shop").exists(), "the lake got rows while refusing");
}
