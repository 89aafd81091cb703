//! `sluice tail`: reading the events file back (limit, table filter, DMS re-encoding) and
//! following a running pipeline; SIGTERM stops `run` with exit 0 and a committed position.
#![allow(clippy::unwrap_used)]
mod common;

use common::{eventually, fd_offset, op, parse_lines, seq, Workdir};
use serde_json::Value as Json;
use sluice_testkit::MariaDb;

async fn shop(db: &MariaDb) {
    let users: Vec<String> = (1..=20).map(|i| format!("({i}, 'u{i}')")).collect();
    db.exec(&format!(
        "CREATE DATABASE shop;
         CREATE TABLE shop.users (id INT PRIMARY KEY, name VARCHAR(40));
         CREATE TABLE shop.orders (id INT PRIMARY KEY, user_id INT, total DECIMAL(10,2));
         INSERT INTO shop.users VALUES {};
         INSERT INTO shop.orders VALUES (1, 1, 9.99), (2, 2, 12.30);",
        users.join(", ")
    ))
    .await;
}

#[tokio::test]
async fn reads_back_with_limit_table_filter_and_dms_format() {
    let db = MariaDb::start();
    shop(&db).await;
    let w = Workdir::for_url(&db.url());
    w.run_once().await;
    db.exec(
        "USE shop;
         INSERT INTO orders VALUES (3, 3, 1.00);
         UPDATE users SET name = 'x' WHERE id = 1;
         UPDATE orders SET total = 2.50 WHERE id = 3;
         DELETE FROM orders WHERE id = 1;",
    )
    .await;
    w.run_once().await;
    let file = std::fs::read_to_string(w.events_path()).expect("events file");
    let file_lines: Vec<&str> = file.lines().collect();
    assert_eq!(file_lines.len(), 26, "22 reads + 4 changes");

    // --from earliest --limit N: the first N lines, byte for byte.
    let out = w.sluice("tail", &["--from", "earliest", "--limit", "7"]).await;
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(out.stdout.lines().collect::<Vec<_>>(), file_lines[..7], "{out}");

    // --table: only that table's events, in file order.
    let out = w.sluice("tail", &["--table", "shop.orders", "--limit", "5"]).await;
    assert_eq!(out.code, Some(0), "{out}");
    let orders = parse_lines(&out.stdout);
    let want: Vec<&str> = file_lines.iter().copied().filter(|l| l.contains(r#""table":"orders""#)).collect();
    assert_eq!(want.len(), 5);
    assert_eq!(out.stdout.lines().collect::<Vec<_>>(), want);
    assert!(orders.iter().all(|e| e["source"]["table"] == "orders"));
    assert_eq!(orders.iter().map(op).collect::<Vec<_>>(), ["r", "r", "c", "u", "d"]);
    // Globs work too.
    let out = w.sluice("tail", &["--table", "shop.us*", "--limit", "21"]).await;
    assert_eq!(out.code, Some(0), "{out}");
    assert!(parse_lines(&out.stdout).iter().all(|e| e["source"]["table"] == "users"), "{out}");

    // --format dms: DMS envelopes with the operation spelled out, same order and seqs.
    let out = w.sluice("tail", &["--format", "dms", "--limit", "26"]).await;
    assert_eq!(out.code, Some(0), "{out}");
    let dms = parse_lines(&out.stdout);
    let deb = parse_lines(&file);
    assert_eq!(dms.len(), 26);
    for (d, e) in dms.iter().zip(&deb) {
        let m = &d["metadata"];
        let want_op = match op(e) {
            "r" => "load",
            "c" => "insert",
            "u" => "update",
            "d" => "delete",
            other => panic!("unexpected op {other}"),
        };
        assert_eq!(m["operation"], want_op, "{d}");
        assert_eq!(m["record-type"], "data", "{d}");
        assert_eq!(m["partition-key-type"], "primary-key", "{d}");
        assert_eq!(m["schema-name"], "shop", "{d}");
        assert_eq!(m["table-name"], e["source"]["table"], "{d}");
        assert_eq!(m["seq"].as_u64(), Some(seq(e)), "{d}");
        let image = if op(e) == "d" { &e["before"] } else { &e["after"] };
        assert_eq!(&d["data"], image, "{d}");
        assert!(m["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{d}");
    }
    let ops: Vec<&str> = dms[22..].iter().map(|d| d["metadata"]["operation"].as_str().unwrap_or("")).collect();
    assert_eq!(ops, ["insert", "update", "update", "delete"]);
    assert_eq!(dms[25]["data"], serde_json::json!({"id": 1, "user_id": 1, "total": "9.99"}));
    assert_eq!(dms[24]["before-image"]["total"], "1.00", "updates carry the before image");

    // DMS with a table filter.
    let out = w.sluice("tail", &["--format", "dms", "--table", "shop.orders", "--limit", "5"]).await;
    assert_eq!(out.code, Some(0), "{out}");
    let ops: Vec<Json> = parse_lines(&out.stdout).iter().map(|d| d["metadata"]["operation"].clone()).collect();
    assert_eq!(ops, ["load", "load", "insert", "update", "delete"]);
}

#[tokio::test]
async fn follows_a_running_pipeline_and_sigterm_commits() {
    let db = MariaDb::start();
    shop(&db).await;
    let w = Workdir::for_url(&db.url());
    let mut run = w.spawn("run", "run", &[]);

    // Streaming: the snapshot is written and committed.
    let state = w.state_file();
    eventually("run to commit its snapshot", || {
        run.assert_running();
        common::state_json(&state).is_some_and(|s| s["checkpoint"]["next_seq"] == 22)
    })
    .await;
    let len = std::fs::metadata(w.events_path()).expect("events file").len();
    assert_eq!(w.events().len(), 22);

    // `tail --from latest` must only show what comes next: wait until it sits at the end.
    let mut tail = w.spawn("tail", "tail", &["--from", "latest", "--limit", "3"]);
    let pid = tail.pid();
    let events = w.events_path();
    eventually("tail to seek to the end of the events file", || {
        tail.assert_running();
        fd_offset(pid, &events) == Some(len)
    })
    .await;

    db.exec("INSERT INTO shop.users VALUES (101, 'live1'); INSERT INTO shop.users VALUES (102, 'live2'); INSERT INTO shop.users VALUES (103, 'live3');")
        .await;
    let out = tail.wait().await;
    assert_eq!(out.code, Some(0), "{out}");
    let got = parse_lines(&out.stdout);
    let ids: Vec<(String, i64)> = got.iter().map(|e| (op(e).to_string(), e["after"]["id"].as_i64().unwrap_or(-1))).collect();
    assert_eq!(ids, [("c".to_string(), 101), ("c".to_string(), 102), ("c".to_string(), 103)], "{out}");
    assert_eq!(got.iter().map(seq).collect::<Vec<_>>(), [22, 23, 24]);

    // SIGTERM: flush, commit, exit 0.
    run.assert_running();
    run.sigterm();
    let out = run.wait().await;
    assert_eq!(out.code, Some(0), "run should exit 0 on SIGTERM:\n{out}");
    let st = w.status().await;
    assert_eq!(st["next_seq"], 25, "{st}");
    assert_eq!(st["phase"], "streaming", "{st}");
    assert!(st["position"]["binlog"]["file"].as_str().is_some_and(|f| !f.is_empty()), "{st}");
    assert_eq!(st["tables"]["shop.users"]["inserts"], 3, "{st}");
    assert_eq!(st["tables"]["shop.users"]["full_load_rows"], 20, "{st}");
    assert_eq!(st["tables"]["shop.orders"]["full_load_rows"], 2, "{st}");
    let text = w.sluice("status", &[]).await;
    assert_eq!(text.code, Some(0), "{text}");
    assert!(text.stdout.contains("position:") && text.stdout.contains("shop.users"), "{text}");

    // Nothing was left uncommitted: another run adds nothing.
    w.run_once().await;
    assert_eq!(w.events().len(), 25);
}
