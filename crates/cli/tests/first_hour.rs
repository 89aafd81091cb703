//! The first hour (issue 14): every dead end a new user hits, driven through the CLI as a user
//! would — the README's quick start as written, a table without primary key, commands that need
//! a lake, commands before any run, logs at `SLUICE_LOG=debug`, and the messages they print.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::lake::lake_config;
use common::{closed_port, config_text, eventually, parse_lines, sluice, state_json, Out, Workdir};
use serde_json::Value as Json;
use sluice_testkit::MariaDb;

/// `shop.orders` with a primary key, `shop.users` without one.
async fn shop_with_keyless_users(db: &MariaDb) {
    db.exec(
        "CREATE DATABASE shop;
         CREATE TABLE shop.users (name VARCHAR(40), city VARCHAR(40));
         CREATE TABLE shop.orders (id INT PRIMARY KEY, total DECIMAL(10,2));
         INSERT INTO shop.users VALUES ('ann', 'Oslo'), ('bob', 'Rome'), ('cy', 'Lima');
         INSERT INTO shop.orders VALUES (1, 9.99), (2, 12.30);",
    )
    .await;
}

fn assert_fails_with(out: &Out, needles: &[&str]) {
    assert_eq!(out.code, Some(1), "{out}");
    for n in needles {
        assert!(out.stderr.contains(n), "`{n}` expected in stderr:\n{out}");
    }
}

/// `(table, partition-key-type)` of DMS lines; every timestamp has six fractional digits.
fn dms_partitioning(out: &Out) -> BTreeSet<(String, String)> {
    assert_eq!(out.code, Some(0), "{out}");
    let lines = parse_lines(&out.stdout);
    assert!(!lines.is_empty(), "{out}");
    lines
        .iter()
        .map(|d| {
            let m = &d["metadata"];
            let ts = m["timestamp"].as_str().unwrap_or_else(|| panic!("no timestamp in {d}"));
            let b = ts.as_bytes();
            assert!(ts.len() == 27 && b[19] == b'.' && ts.ends_with('Z') && b[20..26].iter().all(u8::is_ascii_digit), "{ts} in {d}");
            (m["table-name"].as_str().unwrap().to_string(), m["partition-key-type"].as_str().unwrap().to_string())
        })
        .collect()
}

#[tokio::test]
async fn a_table_without_key_is_changelog_only_everywhere() {
    let db = MariaDb::start();
    shop_with_keyless_users(&db).await;
    let w = Workdir::with_config(&config_text(&db.url(), 6401, "[sink.lake]\npath = \"lake\"\n"));
    w.run_once().await;
    assert!(!w.path().join("lake/shop/users").exists(), "no current-state table for a table without key");

    // query works for the other table, and SHOW TABLES lists what the lake holds.
    let out = w.sluice("query", &["--format", "json", "SELECT id, CAST(total AS VARCHAR) AS total FROM shop.orders ORDER BY id"]).await;
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(parse_lines(&out.stdout), [serde_json::json!({"id": 1, "total": "9.99"}), serde_json::json!({"id": 2, "total": "12.30"})]);
    let out = w.sluice("query", &["--format", "json", "SHOW TABLES"]).await;
    assert_eq!(out.code, Some(0), "{out}");
    let tables: Vec<Json> = parse_lines(&out.stdout).iter().map(|r| r["table"].clone()).collect();
    assert_eq!(tables, ["shop.orders", "shop.orders__changes", "shop.users__changes"], "{out}");
    let out = w.sluice("query", &["SELECT count(*) AS n FROM shop.users__changes"]).await;
    assert!(out.code == Some(0) && out.stdout.contains("| 3 "), "{out}");

    // A table that is not there is named with the ones that are, never as datafusion.public.*.
    let out = w.sluice("query", &["SELECT * FROM users"]).await;
    assert_fails_with(
        &out,
        &["no table users in the lake", "tables: shop.orders, shop.orders__changes, shop.users__changes (use db.table)"],
    );
    let out = w.sluice("query", &["SELECT * FROM shop.users"]).await;
    assert_fails_with(&out, &["no table shop.users in the lake", "shop.users has no primary key", "shop.users__changes", "[source] keys"]);
    assert!(!out.stderr.contains("datafusion.public"), "{out}");

    // validate compares the table with a key and skips the other with a note: exit 0.
    let v = w.sluice("validate", &[]).await;
    assert_eq!(v.code, Some(0), "{v}");
    let line = |t: &str| v.stdout.lines().find(|l| l.starts_with(t)).unwrap_or_else(|| panic!("no {t} line:\n{v}")).to_string();
    assert!(line("shop.orders ").ends_with("ok"), "{v}");
    assert!(line("shop.users ").contains("skipped: no current state"), "{v}");
    assert!(v.stdout.contains("note: shop.users has no primary key") && v.stdout.contains("no current state to compare"), "{v}");
    // Only real mismatches fail it.
    db.exec("SET sql_log_bin = 0; UPDATE shop.orders SET total = 1 WHERE id = 2").await;
    let v = w.sluice("validate", &[]).await;
    assert_eq!(v.code, Some(1), "{v}");
    assert!(v.stdout.contains("differs: key 2"), "{v}");

    // lake ddl registers the tables there are, and no current state for shop.users.
    let cfg = w.config_str();
    let ddl = sluice(&["lake", "ddl", "-c", &cfg, "--engine", "athena"], &[]).await;
    assert_eq!(ddl.code, Some(0), "{ddl}");
    let created: Vec<&str> = ddl.stdout.lines().filter_map(|l| l.strip_prefix("CREATE EXTERNAL TABLE ")).collect();
    assert_eq!(created, ["`shop`.`orders`", "`shop`.`orders__changes`", "`shop`.`users__changes`"], "{ddl}");

    // DMS records: schema-table partitioning for the table without key, from the events file
    // (re-encoded from Debezium) and from the lake's changelog alike.
    let want: BTreeSet<(String, String)> =
        [("orders", "primary-key"), ("users", "schema-table")].iter().map(|(t, k)| (t.to_string(), k.to_string())).collect();
    assert_eq!(dms_partitioning(&w.sluice("tail", &["--format", "dms", "--no-follow"]).await), want);
    assert_eq!(dms_partitioning(&w.sluice("tail", &["--source", "lake", "--format", "dms", "--no-follow"]).await), want);
}

#[tokio::test]
async fn commands_that_read_the_lake_say_how_to_get_one() {
    // Only [sink.jsonl]; no server needed (the lake is looked for first).
    let url = format!("mysql://sluice:sluice@127.0.0.1:{}", closed_port());
    let w = Workdir::with_config(&config_text(&url, 6401, ""));
    let cfg = w.config_str();
    for args in [vec!["query", "-c", &cfg, "SELECT 1"], vec!["validate", "-c", &cfg], vec!["lake", "ddl", "-c", &cfg, "--engine", "trino"]]
    {
        let out = sluice(&args, &[]).await;
        assert_fails_with(&out, &["the config has no [sink.lake]", "add a [sink.lake] section (path = \"./lake\")", "`sluice run`"]);
        assert!(out.stdout.is_empty(), "{out}");
    }
}

/// Every file and directory under `dir`, relative.
fn tree(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p.clone());
            }
            out.insert(p.strip_prefix(dir).unwrap().to_path_buf());
        }
    }
    out
}

#[tokio::test]
async fn before_the_first_run_read_commands_say_so_and_create_nothing() {
    let url = format!("mysql://sluice:sluice@127.0.0.1:{}", closed_port());
    // The standard config (events file + state) with a lake, and a lake-only one.
    let both = config_text(&url, 6401, "[sink.lake]\npath = \"lake\"\n");
    let lake_only = config_text(&url, 6401, "").replace("[sink.jsonl]\npath = \"events.jsonl\"", "[sink.lake]\npath = \"lake\"");
    assert!(!lake_only.contains("jsonl"), "{lake_only}");
    for text in [both, lake_only] {
        let w = Workdir::with_config(&text);
        let before = tree(w.path());
        let cfg = w.config_str();
        let run_first = format!("run `sluice run -c {cfg}` first");
        for args in [&["tail"][..], &["tail", "--no-follow"], &["tail", "--source", "lake", "--from", "latest"]] {
            let out = w.sluice(args[0], &args[1..]).await;
            assert_fails_with(&out, &["nothing was captured yet", &run_first]);
        }
        let out = w.sluice("query", &["SELECT * FROM shop.orders"]).await;
        assert_fails_with(&out, &["holds no tables yet", &run_first]);
        let out = w.sluice("validate", &[]).await;
        assert_fails_with(&out, &["holds no tables yet", &run_first]);
        let out = sluice(&["lake", "ddl", "-c", &cfg, "--engine", "athena"], &[]).await;
        assert_fails_with(&out, &["holds no tables yet", &run_first]);
        assert!(out.stdout.is_empty(), "{out}");
        let out = w.sluice("status", &[]).await;
        assert!(out.code == Some(0) && out.stdout.contains("nothing captured yet"), "{out}");
        assert_eq!(tree(w.path()), before, "a read-only command created files in {}:\n{text}", w.path().display());
    }
}

#[tokio::test]
async fn a_lake_path_that_is_a_file_is_named_as_such() {
    let db = MariaDb::start();
    shop_with_keyless_users(&db).await;
    let w = Workdir::with_config(&lake_config(&db, "[sink.lake]\npath = \"lakefile\"\n"));
    std::fs::write(w.path().join("lakefile"), "not a lake").unwrap();
    let cfg = w.config_str();
    for args in [vec!["run", "--once", "-c", &cfg], vec!["query", "-c", &cfg, "SELECT 1"], vec!["tail", "-c", &cfg, "--no-follow"]] {
        let out = sluice(&args, &[]).await;
        assert_fails_with(&out, &["[sink.lake] path ", "lakefile is a file, not a directory"]);
        assert!(!out.stderr.contains("os error 17"), "{out}");
    }
}

#[tokio::test]
async fn an_unreachable_server_is_reported_once() {
    let url = format!("mysql://sluice:sluice@127.0.0.1:{}", closed_port());
    let w = Workdir::with_config(&config_text(&url, 6401, ""));
    for (cmd, args) in [("check", &[][..]), ("run", &["--once"][..])] {
        let out = w.sluice(cmd, args).await;
        assert_eq!(out.code, Some(1), "{out}");
        assert_eq!(out.all().matches("Connection refused").count(), 1, "the cause once:\n{out}");
        assert!(!out.all().contains("Input/output error: Input/output error"), "{out}");
    }
    // The same error through anyhow's chain (validate connects after opening the lake).
    let db = MariaDb::start();
    shop_with_keyless_users(&db).await;
    let w = Workdir::with_config(&lake_config(&db, ""));
    w.run_once().await;
    let text = std::fs::read_to_string(w.config()).unwrap().replace(&db.url(), &url);
    std::fs::write(w.config(), text).unwrap();
    let out = w.sluice("validate", &[]).await;
    assert_eq!(out.code, Some(1), "{out}");
    assert_eq!(out.stderr.matches("Connection refused").count(), 1, "the cause once:\n{out}");
}

/// Log lines (JSON) whose target is in the Delta / DataFusion / object store stack.
fn dependency_lines(stderr: &str) -> usize {
    const DEPS: [&str; 5] = ["deltalake", "datafusion", "object_store", "delta_kernel", "parquet"];
    parse_lines(stderr).iter().filter(|l| l["target"].as_str().is_some_and(|t| DEPS.iter().any(|d| t.starts_with(d)))).count()
}

#[tokio::test]
async fn debug_logs_are_sluices_own_and_known_harmless_warnings_are_hidden() {
    let db = MariaDb::start();
    shop_with_keyless_users(&db).await;
    let w = Workdir::with_config(&lake_config(&db, ""));
    let cfg = w.config_str();
    let run = |env: &'static str| {
        let cfg = cfg.clone();
        async move { sluice(&["--log-format", "json", "run", "--once", "-c", &cfg], &[("SLUICE_LOG", env)]).await }
    };
    let out = run("debug").await;
    assert_eq!(out.code, Some(0), "{out}");
    let lines = parse_lines(&out.stderr);
    let own_debug = lines.iter().filter(|l| l["level"] == "DEBUG" && l["target"].as_str().is_some_and(|t| t.starts_with("sluice"))).count();
    assert!(own_debug > 0, "no sluice debug line:\n{}", out.stderr);
    let deps = dependency_lines(&out.stderr);
    assert!(deps < 200, "{deps} of {} lines from dependencies at SLUICE_LOG=debug", lines.len());

    // An update makes the next commit a MERGE, which delta-rs follows with a harmless warning.
    db.exec("UPDATE shop.orders SET total = 5 WHERE id = 1").await;
    let out = run("info").await;
    assert_eq!(out.code, Some(0), "{out}");
    assert!(!out.stderr.contains("Missing target skipped-file metric"), "{}", out.stderr);
    // A full filter is used as given: asking for delta-rs's warnings shows that one.
    db.exec("UPDATE shop.orders SET total = 6 WHERE id = 1").await;
    let out = run("info,deltalake_core=warn").await;
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stderr.contains("Missing target skipped-file metric"), "{}", out.stderr);
    let rows = common::lake::query(&w, "SELECT CAST(total AS VARCHAR) AS total FROM shop.orders WHERE id = 1").await;
    assert_eq!(rows, [serde_json::json!({"total": "6.00"})]);
}

/// The README's quick start, as written: its config (with the test server's port and password)
/// and its commands, in order. `run` is stopped with SIGTERM as the comment says; `tail`,
/// which follows, gets `--no-follow`.
#[tokio::test]
async fn the_readme_quick_start_works_as_written() {
    let readme = include_str!("../../../README.md");
    let section = &readme[readme.find("## Quick start").expect("a Quick start section")..];
    let block = |lang: &str| {
        let start = section.find(&format!("```{lang}\n")).unwrap_or_else(|| panic!("no {lang} block")) + lang.len() + 4;
        &section[start..start + section[start..].find("```").expect("closed block")]
    };
    let db = MariaDb::start();
    db.exec(
        "CREATE DATABASE shop;
         CREATE TABLE shop.users (id INT PRIMARY KEY, name VARCHAR(40), email VARCHAR(80));
         CREATE TABLE shop.orders (id INT PRIMARY KEY, user_id INT, total DECIMAL(10,2));
         INSERT INTO shop.users VALUES (1, 'ann', 'ann@example.com'), (2, 'bob', 'bob@example.com');
         INSERT INTO shop.orders VALUES (1, 1, 9.99);",
    )
    .await;
    let toml = block("toml");
    assert!(toml.contains("127.0.0.1:3306") && toml.contains("[sink.lake]"), "{toml}");
    let w = Workdir::with_config(&toml.replace("127.0.0.1:3306", &format!("127.0.0.1:{}", db.port)));
    let env = [("SLUICE_DB_PASSWORD", "sluice")];
    let commands: Vec<Vec<String>> = block("sh").lines().filter(|l| l.starts_with("sluice ")).map(words).collect();
    assert!(commands.len() >= 7, "{commands:?}");
    for cmd in commands {
        let mut args: Vec<String> = cmd[1..].iter().map(|a| if a == "sluice.toml" { w.config_str() } else { a.clone() }).collect();
        if args[0] == "run" {
            let mut run = common::spawn_with_env(w.path(), "run", &args, &env);
            let state = w.state_file();
            eventually("run to commit its snapshot", || {
                run.assert_running();
                state_json(&state).is_some_and(|s| s["checkpoint"]["next_seq"] == 3)
            })
            .await;
            run.sigterm();
            let out = run.wait().await;
            assert_eq!(out.code, Some(0), "{cmd:?}\n{out}");
            continue;
        }
        if args[0] == "tail" {
            args.push("--no-follow".into());
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = sluice(&refs, &env).await;
        assert_eq!(out.code, Some(0), "{cmd:?}\n{out}");
        match args[0].as_str() {
            "tail" => assert_eq!(parse_lines(&out.stdout).len(), 3, "{out}"),
            "query" if args.iter().any(|a| a.contains("shop.users")) => assert!(out.stdout.contains("ann@example.com"), "{out}"),
            "query" => assert!(out.stdout.contains("shop.users__changes"), "{out}"),
            "lake" => assert!(out.stdout.contains("CREATE EXTERNAL TABLE `shop`.`users`"), "{out}"),
            _ => {}
        }
    }
}

/// A README command line as words: its comment dropped, "double quotes" kept together.
fn words(line: &str) -> Vec<String> {
    let line = line.split("  #").next().unwrap_or(line);
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}
