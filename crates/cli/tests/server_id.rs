//! One sluice per `[source] server_id`: a second one is refused before it writes anything, also
//! while the first is still in its snapshot (it has no binlog connection yet for the server to
//! list), and a `run --once` right after another is not mistaken for a clash.
mod common;

use common::tmpfs::Tmpfs;
use common::workload::seed_table;
use common::{eventually, state_json, Workdir};
use sluice_testkit::MariaDb;

/// The standard test config with the events file at `events` (and its retry budget).
fn config(db: &MariaDb, server_id: u32, events: &str, retry_for: &str) -> String {
    format!(
        "[source]\nkind = \"mysql\"\nurl = \"{}\"\nserver_id = {server_id}\ntables = [\"shop.*\"]\nheartbeat = \"200ms\"\n\n\
         [sink.jsonl]\npath = \"{events}\"\nretry_for = \"{retry_for}\"\n\n[state]\ndir = \".sluice\"\n",
        db.url()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sluice_with_the_same_server_id_is_refused_even_during_the_snapshot() {
    let db = MariaDb::start();
    seed_table(&db, 2_000).await;
    // Hold the first pipeline inside its snapshot: its events file is on a disk too small for
    // the rows, so it commits the snapshot's starting point and then keeps retrying.
    let disk = Tmpfs::mount("16k");
    let events = disk.path().join("events.jsonl");
    let first = Workdir::with_config(&config(&db, 6401, &events.display().to_string(), "10m"));
    let mut run = first.spawn("first", "run", &[]);
    eventually("the first run commits its snapshot's starting point", || {
        run.assert_running();
        state_json(&first.state_file()).is_some_and(|s| s["checkpoint"]["position"].get("snapshot").is_some())
    })
    .await;

    let second = Workdir::with_config(&config(&db, 6401, "events.jsonl", "5m"));
    let check = second.sluice("check", &[]).await;
    assert_eq!(check.code, Some(1), "check must fail on a server_id in use:\n{check}");
    assert!(check.stdout.contains("another sluice is running with [source] server_id 6401"), "{check}");
    let out = second.sluice("run", &["--once"]).await;
    assert_ne!(out.code, Some(0), "a second sluice with the same server_id must be refused:\n{out}");
    assert!(out.stderr.contains("another sluice is running with [source] server_id 6401"), "{out}");
    assert!(out.stderr.contains("server_id"), "{out}");
    let written: Vec<_> = std::fs::read_dir(second.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(written, vec![std::ffi::OsString::from("sluice.toml")], "the refused run wrote something");

    // Another id is fine meanwhile, and the first goes on once the table is readable.
    let other = Workdir::with_config(&config(&db, 6402, "events.jsonl", "5m"));
    let check = other.sluice("check", &[]).await;
    assert!(check.stdout.contains("6402 is free"), "{check}");
    // Room again: the first one finishes its snapshot by itself.
    disk.resize("64m");
    eventually("the first run finishes its snapshot", || common::read_events(&events).len() >= 2_000).await;
    run.sigterm();
    let out = run.wait().await;
    assert_eq!(out.code, Some(0), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_to_back_runs_with_one_server_id_are_not_a_clash() {
    let db = MariaDb::start();
    seed_table(&db, 100).await;
    let w = Workdir::with_config(&config(&db, 6401, "events.jsonl", "5m"));
    w.run_once().await;
    // Right away, as a cron job or script would: the server may still list the first run's
    // binlog connection.
    db.exec("INSERT INTO shop.acct VALUES (1000001, 1, 'a')").await;
    w.run_once().await;
    db.exec("INSERT INTO shop.acct VALUES (1000002, 2, 'b')").await;
    let out = w.run_once().await;
    assert!(!out.stderr.contains("already connected"), "{out}");
    assert_eq!(w.events().len(), 102);
}

/// A replica that connects with sluice's server_id anyway makes the server drop sluice's binlog
/// connection: sluice stops, saying so once and naming the setting to change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_taking_the_server_id_stops_sluice_with_one_message_naming_the_fix() {
    use mysql_async::prelude::Queryable;
    let db = MariaDb::start();
    seed_table(&db, 10).await;
    let w = Workdir::with_config(&config(&db, 6401, "events.jsonl", "5m"));
    let mut run = w.spawn("run", "run", &[]);
    eventually("sluice streams", || {
        run.assert_running();
        state_json(&w.state_file()).is_some_and(|s| s["checkpoint"]["position"].get("snapshot").is_none())
    })
    .await;
    // An impostor replica with the same id.
    let mut conn = db.root_conn().await;
    conn.query_drop("SET @mariadb_slave_capability = 4").await.unwrap();
    let _impostor = conn.get_binlog_stream(mysql_async::BinlogStreamRequest::new(6401)).await.unwrap();
    let out = run.wait().await;
    assert_ne!(out.code, Some(0), "{out}");
    let mentions = out.stderr.matches("[source] server_id").count();
    assert!(mentions >= 1, "the message does not name [source] server_id:\n{out}");
    assert!(out.stderr.lines().filter(|l| l.contains("same server_id")).count() == 1, "said more than once:\n{out}");
    eprintln!("stopped as expected: {}", out.stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default());
}
