//! SIGTERM while `sluice run` is busy: it commits and exits 0, and the next `run --once`
//! continues exactly there: every change once, seqs consecutive, nothing emitted twice.
#![allow(clippy::unwrap_used)]
mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{config_text, eventually, op, seq, state_json, Workdir};
use mysql_async::prelude::Queryable;
use serde_json::Value as Json;
use sluice_testkit::MariaDb;

fn id_of(ev: &Json) -> i64 {
    let image = if op(ev) == "d" { &ev["before"] } else { &ev["after"] };
    image["id"].as_i64().unwrap_or_else(|| panic!("no id in {ev}"))
}

/// Seqs are exactly 0..n in file order, and each (op, id) appears once.
fn assert_exactly_once(events: &[Json]) -> BTreeMap<(String, i64), usize> {
    let seqs: Vec<u64> = events.iter().map(seq).collect();
    assert_eq!(seqs, (0..events.len() as u64).collect::<Vec<_>>(), "seqs not consecutive from 0 (duplicates or gaps)");
    let mut seen = BTreeMap::new();
    for e in events {
        *seen.entry((op(e).to_string(), id_of(e))).or_insert(0) += 1;
    }
    let dups: Vec<_> = seen.iter().filter(|(_, &n)| n > 1).collect();
    assert!(dups.is_empty(), "emitted more than once: {dups:?}");
    seen
}

fn next_seq(w: &Workdir) -> u64 {
    let st = state_json(&w.state_file()).expect("state.json after SIGTERM");
    st["checkpoint"]["next_seq"].as_u64().unwrap_or_else(|| panic!("no next_seq in {st}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_streaming_then_run_once_resumes_exactly() {
    let db = MariaDb::start();
    let values: Vec<String> = (1..=50).map(|i| format!("({i}, 'u{i}')")).collect();
    db.exec(&format!(
        "CREATE DATABASE shop; CREATE TABLE shop.users (id INT PRIMARY KEY, name VARCHAR(40)); INSERT INTO shop.users VALUES {}",
        values.join(", ")
    ))
    .await;
    let w = Workdir::for_url(&db.url());
    let mut run = w.spawn("run", "run", &[]);
    let state = w.state_file();
    eventually("run to commit its snapshot", || {
        run.assert_running();
        state_json(&state).is_some_and(|s| s["checkpoint"]["next_seq"].as_u64() >= Some(50))
    })
    .await;

    // A writer committing one insert per transaction until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let mut conn = db.root_conn().await;
        tokio::spawn(async move {
            let mut id = 1000;
            while !stop.load(Ordering::Relaxed) && id < 6000 {
                conn.query_drop(format!("INSERT INTO shop.users VALUES ({id}, 'w{id}')")).await.expect("insert");
                id += 1;
            }
            id - 1000
        })
    };

    // Stop the pipeline in the middle of the stream.
    eventually("some streamed inserts in the events file", || {
        run.assert_running();
        w.events().len() > 50 + 30
    })
    .await;
    run.sigterm();
    let out = run.wait().await;
    assert_eq!(out.code, Some(0), "run should exit 0 on SIGTERM:\n{out}");
    // It committed what it had written: at least the 30 inserts seen before the signal
    // (each event line is followed by its transaction's checkpoint before the next line).
    assert!(next_seq(&w) >= 50 + 30, "committed next_seq {} too small", next_seq(&w));

    stop.store(true, Ordering::Relaxed);
    let inserted = writer.await.expect("writer");
    assert!(inserted > 30);

    w.run_once().await;
    let events = w.events();
    let seen = assert_exactly_once(&events);
    let reads: Vec<i64> = seen.keys().filter(|(o, _)| o == "r").map(|(_, id)| *id).collect();
    let inserts: Vec<i64> = events.iter().filter(|e| op(e) == "c").map(id_of).collect();
    assert_eq!(reads, (1..=50).collect::<Vec<_>>());
    assert_eq!(inserts, (1000..1000 + inserted).collect::<Vec<_>>(), "every insert once, in commit order");
    assert_eq!(events.len() as i64, 50 + inserted);
    let st = w.status().await;
    assert_eq!(st["tables"]["shop.users"]["inserts"], inserted, "{st}");
    assert_eq!(st["tables"]["shop.users"]["full_load_rows"], 50, "{st}");

    // And a further run finds nothing new.
    w.run_once().await;
    assert_eq!(w.events().len(), events.len());
}

#[tokio::test]
async fn sigterm_during_snapshot_then_run_once_reads_every_row_once() {
    const ROWS: i64 = 30_000;
    let db = MariaDb::start();
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.items (id INT PRIMARY KEY, label VARCHAR(40))").await;
    for start in (1..=ROWS).step_by(2000) {
        let values: Vec<String> = (start..start + 2000).map(|i| format!("({i}, 'item {i}')")).collect();
        db.exec(&format!("INSERT INTO shop.items VALUES {}", values.join(", "))).await;
    }
    // Small chunks: many checkpoints during the snapshot.
    let w = Workdir::with_config(&config_text(&db.url(), 6401, "[snapshot]\nchunk_size = 500\n"));
    let mut run = w.spawn("run", "run", &[]);
    let events_path = w.events_path();
    eventually("the snapshot to start writing", || {
        run.assert_running();
        std::fs::metadata(&events_path).is_ok_and(|m| m.len() > 0)
    })
    .await;
    run.sigterm();
    let out = run.wait().await;
    assert_eq!(out.code, Some(0), "run should exit 0 on SIGTERM:\n{out}");
    let committed = next_seq(&w);
    eprintln!("SIGTERM after {} rows committed", committed);

    w.run_once().await;
    let events = w.events();
    let seen = assert_exactly_once(&events);
    assert_eq!(events.len() as i64, ROWS, "one read per row");
    assert!(seen.keys().all(|(o, _)| o == "r"));
    assert_eq!(seen.keys().map(|(_, id)| *id).collect::<Vec<_>>(), (1..=ROWS).collect::<Vec<_>>());
    let st = w.status().await;
    assert_eq!(st["tables"]["shop.items"]["full_load_rows"], ROWS, "{st}");
    assert_eq!(st["next_seq"], ROWS, "{st}");
}
