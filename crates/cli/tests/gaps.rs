//! No silent initial-load gap: a pattern that matches nothing fails `check`; a table that starts
//! to match `[source] tables`, or a sink added to a pipeline that already ran, makes `run` refuse
//! to start with the table or sink and the fix, instead of loading only new changes.
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
async fn a_table_that_newly_matches_is_refused_until_it_is_loaded() {
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

    // The user widens the selection: shop.orders' three rows were never loaded.
    std::fs::write(w.config(), with_tables(&base, "\"shop.users\", \"shop.orders\"")).unwrap();
    let out = w.sluice("run", &["--once"]).await;
    assert_ne!(out.code, Some(0), "{out}");
    assert!(out.stderr.contains("shop.orders now match [source] tables but were not captured before"), "{out}");
    assert!(out.stderr.contains("mode = \\\"always\\\"") || out.stderr.contains("mode = \"always\""), "{out}");
    assert_eq!(w.events().len(), 2, "nothing delivered while refusing");

    // The fix it names: one run that reads every table again.
    std::fs::write(w.config(), with_tables(&base, "\"shop.users\", \"shop.orders\"") + "\n[snapshot]\nmode = \"always\"\n").unwrap();
    w.run_once().await;
    let orders = w.events().iter().filter(|e| e["source"]["table"] == "orders" && common::op(e) == "r").count();
    assert_eq!(orders, 3);
    // Back to the default mode: nothing newly matches any more.
    std::fs::write(w.config(), with_tables(&base, "\"shop.users\", \"shop.orders\"")).unwrap();
    w.run_once().await;
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
