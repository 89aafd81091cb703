//! `sluice check` against private MariaDB servers: each misconfiguration fails with exit 1,
//! naming the setting and its fix; a good server passes. `sluice run` refuses to start on a
//! failed check and writes nothing.
#![allow(clippy::unwrap_used)]
mod common;

use common::{closed_port, config_text, Out, Workdir};
use sluice_testkit::MariaDb;

/// A failed item of `check`'s report: name, detail, fix.
#[derive(Debug)]
struct Failed {
    name: String,
    detail: String,
    fix: String,
}

/// Parses `FAIL  name  detail` lines and the `fix: ...` line that follows each.
fn failures(out: &Out) -> Vec<Failed> {
    let lines: Vec<&str> = out.stdout.lines().collect();
    let mut failed = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let Some(rest) = l.strip_prefix("FAIL") else { continue };
        let rest = rest.trim_start();
        let (name, detail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let fix = lines.get(i + 1).and_then(|n| n.trim_start().strip_prefix("fix:")).unwrap_or_default();
        failed.push(Failed { name: name.to_string(), detail: detail.trim().to_string(), fix: fix.trim().to_string() });
    }
    failed
}

/// Exit 1 and exactly one failed item, `name`, whose detail and fix contain the given words.
fn assert_fails_only(out: &Out, name: &str, detail_has: &[&str], fix_has: &[&str]) {
    assert_eq!(out.code, Some(1), "{out}");
    let failed = failures(out);
    assert_eq!(failed.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), vec![name], "{out}");
    let f = &failed[0];
    for w in detail_has {
        assert!(f.detail.contains(w), "detail of {name} should mention `{w}`: {f:?}");
    }
    assert!(!f.fix.is_empty(), "{name} has no fix:\n{out}");
    for w in fix_has {
        assert!(f.fix.contains(w), "fix of {name} should mention `{w}`: {f:?}");
    }
}

async fn with_table(db: &MariaDb) {
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.users (id INT PRIMARY KEY, name VARCHAR(20)); INSERT INTO shop.users VALUES (1, 'a')")
        .await;
}

/// `run --once` must refuse (exit 1, the reason on stderr) and leave no events or state behind.
async fn assert_run_refuses(w: &Workdir, reason: &str) {
    let out = w.sluice("run", &["--once"]).await;
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains(reason), "stderr should name `{reason}`:\n{out}");
    assert!(out.stderr.contains("fix:"), "stderr should say how to fix it:\n{out}");
    let events = std::fs::metadata(w.events_path()).map(|m| m.len()).unwrap_or(0);
    assert_eq!(events, 0, "run wrote events despite the failed check");
    assert!(!w.state_file().exists(), "run wrote a state file despite the failed check");
}

#[tokio::test]
async fn passes_on_a_good_server() {
    let db = MariaDb::start();
    with_table(&db).await;
    let w = Workdir::for_url(&db.url());
    let out = w.sluice("check", &[]).await;
    assert_eq!(out.code, Some(0), "{out}");
    assert!(failures(&out).is_empty(), "{out}");
    for item in ["connection", "log_bin", "binlog_format", "binlog_row_image", "server_id", "privileges", "tables"] {
        assert!(out.stdout.lines().any(|l| l.starts_with("ok") && l.contains(item)), "no ok line for {item}:\n{out}");
    }
    assert!(out.stdout.contains("shop.users"), "{out}");
}

#[tokio::test]
async fn statement_binlog_format_fails_and_run_refuses() {
    let db = MariaDb::start_with(&["--binlog-format=STATEMENT"]);
    with_table(&db).await;
    let w = Workdir::for_url(&db.url());
    let out = w.sluice("check", &[]).await;
    assert_fails_only(&out, "binlog_format", &["STATEMENT"], &["binlog_format", "ROW"]);
    assert_run_refuses(&w, "binlog_format").await;
}

#[tokio::test]
async fn minimal_row_image_fails_and_run_refuses() {
    let db = MariaDb::start_with(&["--binlog-row-image=MINIMAL"]);
    with_table(&db).await;
    let w = Workdir::for_url(&db.url());
    let out = w.sluice("check", &[]).await;
    assert_fails_only(&out, "binlog_row_image", &["MINIMAL"], &["binlog_row_image", "FULL"]);
    assert_run_refuses(&w, "binlog_row_image").await;
}

#[tokio::test]
async fn log_bin_off_fails_and_run_refuses() {
    // The script passes --log-bin first; a later --skip-log-bin overrides it.
    let db = MariaDb::start_with(&["--skip-log-bin"]);
    assert_eq!(db.query_rows("SELECT @@log_bin").await, vec![vec![Some("0".to_string())]]);
    with_table(&db).await;
    let w = Workdir::for_url(&db.url());
    let out = w.sluice("check", &[]).await;
    assert_fails_only(&out, "log_bin", &[], &["log-bin"]);
    assert_run_refuses(&w, "log_bin").await;
}

#[tokio::test]
async fn wrong_password_fails_without_printing_it() {
    const PW: &str = "Wr0ng-Pass-7731-xyzzy";
    let db = MariaDb::start();
    with_table(&db).await;
    let w = Workdir::for_url(&format!("mysql://sluice:{PW}@127.0.0.1:{}", db.port));
    let out = w.sluice("check", &[]).await;
    assert_fails_only(&out, "connection", &["password"], &["password", "[source] url"]);
    assert!(!out.all().contains(PW), "password printed:\n{out}");
    assert!(out.stdout.contains("sluice:***@"), "redacted url expected:\n{out}");

    let run = w.sluice("run", &["--once"]).await;
    assert!(!run.all().contains(PW), "password printed by run:\n{run}");
    assert_run_refuses(&w, "connection").await;
}

#[tokio::test]
async fn missing_privileges_fail_and_run_refuses() {
    let db = MariaDb::start();
    with_table(&db).await;
    let mut sql = String::new();
    for host in ["%", "127.0.0.1", "localhost"] {
        sql += &format!("CREATE USER 'reader'@'{host}' IDENTIFIED BY 'reader'; GRANT SELECT ON *.* TO 'reader'@'{host}';");
    }
    db.exec(&sql).await;
    let w = Workdir::for_url(&format!("mysql://reader:reader@127.0.0.1:{}", db.port));
    let out = w.sluice("check", &[]).await;
    assert_fails_only(
        &out,
        "privileges",
        &["REPLICATION SLAVE", "REPLICATION CLIENT"],
        &["GRANT", "REPLICATION SLAVE", "REPLICATION CLIENT"],
    );
    assert_run_refuses(&w, "privileges").await;
}

#[tokio::test]
async fn server_id_clash_fails_and_run_refuses() {
    let db = MariaDb::start();
    with_table(&db).await;
    // The test server runs with --server-id=1.
    let w = Workdir::with_config(&config_text(&db.url(), 1, ""));
    let out = w.sluice("check", &[]).await;
    assert_fails_only(&out, "server_id", &["1"], &["server_id"]);
    assert_run_refuses(&w, "server_id").await;
}

#[tokio::test]
async fn unreachable_server_fails_and_run_refuses() {
    let port = closed_port();
    let w = Workdir::for_url(&format!("mysql://sluice:sluice@127.0.0.1:{port}"));
    let out = w.sluice("check", &[]).await;
    assert_fails_only(&out, "connection", &[&port.to_string()], &["server is running"]);
    assert_run_refuses(&w, "connection").await;
}
