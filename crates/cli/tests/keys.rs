//! Key columns: a key from `[source] keys` must identify each row, and a mask rule on a key
//! column is caught by `check` (and `run`) before anything is written.
mod common;

use common::{config_text, Workdir};
use sluice_testkit::MariaDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_key_that_repeats_stops_the_snapshot_with_the_count_not_the_values() {
    let db = MariaDb::start();
    db.exec(
        "CREATE DATABASE shop; CREATE TABLE shop.users (userid INT, email VARCHAR(64));
         INSERT INTO shop.users VALUES (1, 'a@x.io'), (2, 'b@x.io'), (2, 'dup-secret@x.io'), (3, 'c@x.io'), (3, 'd@x.io')",
    )
    .await;
    let w = Workdir::with_config(
        &config_text(&db.url(), 6401, "")
            .replace("heartbeat = \"200ms\"", "heartbeat = \"200ms\"\nkeys = { \"shop.users\" = [\"userid\"] }"),
    );
    let out = w.sluice("run", &["--once"]).await;
    assert_ne!(out.code, Some(0), "duplicate configured keys must stop the run:\n{out}");
    assert!(out.stderr.contains("[source] keys for shop.users (userid) is not unique: 2 row(s) repeat the key of another row"), "{out}");
    assert!(!out.all().contains("dup-secret") && !out.all().contains("a@x.io"), "a row value leaked:\n{out}");
    assert!(w.events().is_empty(), "no row may be delivered from a table whose key repeats");

    // With a unique key the same table loads.
    db.exec("DELETE FROM shop.users WHERE email IN ('dup-secret@x.io', 'd@x.io')").await;
    w.run_once().await;
    // The interrupted snapshot resumes: the two deletes replayed from the binlog, then the rows.
    let ops: Vec<String> = w.events().iter().map(|e| common::op(e).to_string()).collect();
    assert_eq!(ops.iter().filter(|o| *o == "r").count(), 3, "{ops:?}");
}

/// NULLs in a configured key group as `GROUP BY` groups them: one row per NULL-holding key is
/// unique, a second row with the same NULL-holding key repeats it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_key_with_nulls_counts_a_repeated_null_key_as_a_repeat() {
    let db = MariaDb::start();
    db.exec(
        "CREATE DATABASE shop; CREATE TABLE shop.pairs (a INT, b INT, v VARCHAR(16));
         INSERT INTO shop.pairs VALUES (1, 1, 'x'), (1, NULL, 'y'), (2, NULL, 'z'), (NULL, NULL, 'w')",
    )
    .await;
    let config = config_text(&db.url(), 6402, "")
        .replace("heartbeat = \"200ms\"", "heartbeat = \"200ms\"\nkeys = { \"shop.pairs\" = [\"a\", \"b\"] }");
    let unique = Workdir::with_config(&config);
    unique.run_once().await;
    assert_eq!(unique.events().len(), 4, "distinct keys with NULLs in them are unique");

    db.exec("INSERT INTO shop.pairs VALUES (1, NULL, 'secret-twin'), (1, 2, 'u')").await;
    let repeated = Workdir::with_config(&config);
    let out = repeated.sluice("run", &["--once"]).await;
    assert_ne!(out.code, Some(0), "a repeated NULL-holding key must stop the run:\n{out}");
    assert!(out.stderr.contains("(a, b) is not unique: 1 row(s) repeat the key of another row"), "{out}");
    assert!(!out.all().contains("secret-twin"), "a row value leaked:\n{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_refuses_a_mask_rule_on_a_key_column_without_a_masking_key() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.people (email VARCHAR(64) PRIMARY KEY, name VARCHAR(32))").await;
    let mask = "\n[[mask]]\ncolumns = [\"shop.people.email\"]\nmethod = \"redact\"\n";
    let w = Workdir::with_config(&config_text(&db.url(), 6401, mask));
    let out = common::sluice(&["check", "-c", &w.config_str()], &[("SLUICE_MASK_KEY", "")]).await;
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stdout.contains("FAIL  masked keys"), "{out}");
    assert!(out.stdout.contains("shop.people.email (rule 1)"), "{out}");
    let run = common::sluice(&["run", "--once", "-c", &w.config_str()], &[("SLUICE_MASK_KEY", "")]).await;
    assert_ne!(run.code, Some(0), "{run}");
    assert!(!w.state_file().exists(), "run wrote state before refusing:\n{run}");

    // With a key the column is hashed: a warning, not a failure.
    let out = common::sluice(&["check", "-c", &w.config_str()], &[("SLUICE_MASK_KEY", "0123456789abcdef0123")]).await;
    assert!(out.stdout.contains("warn  masked keys"), "{out}");
    assert!(!out.stdout.contains("FAIL"), "{out}");
}
