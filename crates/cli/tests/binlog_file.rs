//! `[source] kind = "binlog-file"` end to end: `sluice run --once` replays binlog files (MySQL 8
//! and MariaDB fixtures from ../shared/fixtures/mysql-binlogs) into the events file and the lake,
//! a second run delivers nothing new, and config mistakes are refused at load. No server.
#![allow(clippy::unwrap_used)]
mod common;

use std::path::PathBuf;

use common::lake::query;
use common::{seq, Workdir};

fn fixtures() -> Option<PathBuf> {
    let dir = std::env::var_os("SLUICE_BINLOG_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/mysql-binlogs"));
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("SKIPPED: no binlog fixtures at {} (set SLUICE_BINLOG_FIXTURES)", dir.display());
        None
    }
}

const CONFIG: &str = r#"[source]
kind = "binlog-file"
files = ["./binlogs/mysql-bin.*"]
tables = ["*.*"]
exclude = ["mysql.*"]

[sink.jsonl]
path = "events.jsonl"
flush_interval = "100ms"

[sink.lake]
path = "lake"

[state]
dir = ".sluice"
"#;

/// A work dir whose `binlogs/` holds the given fixtures under the names `mysql-bin.00000N`.
fn workdir(text: &str, fixtures: &std::path::Path, files: &[&str]) -> Workdir {
    let w = Workdir::with_config(text);
    std::fs::create_dir_all(w.path().join("binlogs")).unwrap();
    for (i, f) in files.iter().enumerate() {
        std::fs::copy(fixtures.join(f), w.path().join(format!("binlogs/mysql-bin.{:06}", i + 1))).unwrap();
    }
    w
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_once_replays_the_files_and_a_second_run_adds_nothing() {
    let Some(fx) = fixtures() else { return };
    // MariaDB rows with FULL metadata, then a MySQL 8 compressed transaction (names @0..).
    let w = workdir(CONFIG, &fx, &["mariadb-bin.000001", "transaction_compression.000001"]);
    w.run_once().await;
    let events = w.events();
    let seqs: Vec<u64> = events.iter().map(seq).collect();
    assert_eq!(seqs, [0, 1, 2], "{events:?}");
    let tables: Vec<String> =
        events.iter().map(|e| format!("{}.{}", e["source"]["db"].as_str().unwrap(), e["source"]["table"].as_str().unwrap())).collect();
    assert_eq!(tables, ["toddy_test.outbox", "toddy_test.outbox", "test.tb1"]);
    assert_eq!(events[0]["after"]["topic"], "foo");
    assert_eq!(events[2]["after"]["@0"], 1);
    assert_eq!(events[2]["source"]["file"], "mysql-bin.000002");

    let ids = query(&w, "SELECT id, topic FROM toddy_test.outbox ORDER BY id").await;
    assert_eq!(ids.iter().map(|r| r["id"].as_i64().unwrap()).collect::<Vec<_>>(), [62, 63]);

    let state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(w.state_file()).unwrap()).unwrap();
    let pos = &state["checkpoint"]["position"]["binlog"];
    assert_eq!(pos["file"], "mysql-bin.000002", "{state}");
    assert_eq!(pos["pos"], std::fs::metadata(w.path().join("binlogs/mysql-bin.000002")).unwrap().len());

    let before = std::fs::read_to_string(w.events_path()).unwrap();
    w.run_once().await;
    assert_eq!(std::fs::read_to_string(w.events_path()).unwrap(), before, "the second run delivered changes again");
    let n = query(&w, "SELECT count(*) AS n FROM toddy_test.outbox__changes").await;
    assert_eq!(n[0]["n"], 2);

    // A file added later (name order: after the others) is read by the next run, from its start.
    std::fs::copy(fx.join("mysql_type_bit.000001"), w.path().join("binlogs/mysql-bin.000003")).unwrap();
    let text = CONFIG.replace("exclude = [\"mysql.*\"]", "exclude = []");
    std::fs::write(w.config(), text).unwrap();
    w.run_once().await;
    let events = w.events();
    assert_eq!(events.len(), 4, "{events:?}");
    assert_eq!((seq(&events[3]), events[3]["source"]["table"].as_str()), (3, Some("foo")));
}

#[tokio::test]
async fn a_refused_file_stops_the_run_with_its_position_and_nothing_after_it() {
    let Some(fx) = fixtures() else { return };
    let w = workdir(CONFIG, &fx, &["mariadb-bin.000001", "binlog_truncated_prev_gtid_event.000001"]);
    let out = w.sluice("run", &["--once"]).await;
    assert_ne!(out.code, Some(0), "{out}");
    assert!(out.stderr.contains("truncated event at mysql-bin.000002:120"), "{out}");
    // What came before the broken file is delivered and committed.
    assert_eq!(w.events().len(), 2);
}

#[tokio::test]
async fn bad_files_are_refused_at_load() {
    let Some(fx) = fixtures() else { return };
    let cases: [(&str, &str); 4] = [
        ("./binlogs/nothing.*", "[source] files: "),
        ("./binlogs/notes.txt", "is not a binlog file"),
        ("./missing/mysql-bin.000001", "matches no file"),
        ("./binlogs/[", "not a valid file pattern"),
    ];
    for (pattern, want) in cases {
        let w = workdir(&CONFIG.replace("./binlogs/mysql-bin.*", pattern), &fx, &["mariadb-bin.000001"]);
        std::fs::write(w.path().join("binlogs/notes.txt"), "not a binlog").unwrap();
        let out = w.sluice("run", &["--once"]).await;
        assert_eq!(out.code, Some(1), "{pattern}: {out}");
        assert!(out.stderr.contains(want), "{pattern}: `{want}` expected in:\n{out}");
        assert!(out.stderr.contains("sluice.toml"), "{pattern}: the config file is named:\n{out}");
        assert!(!w.events_path().exists(), "{pattern}: run wrote events");
    }
    // Keys of the other kind, and commands that need a server.
    let w = workdir(&CONFIG.replace("tables =", "server_id = 7\ntables ="), &fx, &["mariadb-bin.000001"]);
    let out = w.sluice("run", &["--once"]).await;
    assert!(out.code == Some(1) && out.stderr.contains("[source] server_id is for kind = \"mysql\""), "{out}");
    let w = workdir(CONFIG, &fx, &["mariadb-bin.000001"]);
    let out = w.sluice("check", &[]).await;
    assert!(out.code == Some(1) && out.stderr.contains("needs a server"), "{out}");
    let w = workdir(&CONFIG.replace("kind = \"binlog-file\"", "kind = \"mysql\""), &fx, &["mariadb-bin.000001"]);
    let out = w.sluice("check", &[]).await;
    assert!(out.code == Some(1) && out.stderr.contains("[source] files is for kind = \"binlog-file\""), "{out}");
}

#[tokio::test]
async fn a_sink_added_later_is_refused() {
    let Some(fx) = fixtures() else { return };
    let only_events = CONFIG.replace("[sink.lake]\npath = \"lake\"\n", "");
    let w = workdir(&only_events, &fx, &["mariadb-bin.000001"]);
    w.run_once().await;
    std::fs::write(w.config(), CONFIG).unwrap();
    let out = w.sluice("run", &["--once"]).await;
    assert!(out.code == Some(1) && out.stderr.contains("[sink.lake] was added after this pipeline first ran"), "{out}");
    assert!(out.stderr.contains("start over with an empty state dir"), "{out}");
}
