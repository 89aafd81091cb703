//! Needs `mariadbd` (the script installs it with apt-get if missing).
#![allow(clippy::unwrap_used)]

use mysql_async::prelude::Queryable;
use sluice_testkit::{connect, users, MariaDb};

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

#[tokio::test]
async fn server_has_row_binlog_and_replication_user() {
    let db = MariaDb::start();
    let rows = db.query_rows("SELECT @@log_bin, @@binlog_format, @@binlog_row_image, @@binlog_row_metadata").await;
    assert_eq!(rows, vec![vec![s("1"), s("ROW"), s("FULL"), s("FULL")]]);

    let mut repl = connect(&db.url()).await;
    let status: Vec<mysql_async::Row> = repl.query("SHOW MASTER STATUS").await.expect("status");
    assert_eq!(status.len(), 1);
    let file: String = status[0].get(0).expect("File");
    assert!(file.starts_with("mysql-bin."), "{file}");
    repl.query_drop("SHOW BINARY LOGS").await.expect("binary logs");
    repl.disconnect().await.expect("disconnect");

    // Generated rows, including quotes in names, load and read back.
    db.create_db("t").await;
    let mut sql = format!("USE t; {};", users::USERS_DDL);
    for stmt in users::insert_sql_batches(users::generate(300, 5), 100) {
        sql += &stmt;
        sql += ";";
    }
    db.exec(&sql).await;
    let expected = users::generate(300, 5).filter(|u| u.lastname.contains('\'')).count();
    let rows = db.query_rows("SELECT COUNT(*), SUM(lastname LIKE '%''%') FROM t.users").await;
    assert_eq!(rows, vec![vec![s("300"), Some(expected.to_string())]]);

    let pid = db.pid().expect("pid file");
    let dir = db.dir().to_path_buf();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    drop(db);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}/cmdline")).exists() || {
            // An unreaped zombie keeps /proc/PID but has an empty cmdline.
            std::fs::read(format!("/proc/{pid}/cmdline")).map_or(true, |c| c.is_empty())
        }
    );
    assert!(!dir.exists(), "temp dir removed");
}

#[tokio::test]
async fn extra_args_override_defaults_and_servers_run_concurrently() {
    let handles: Vec<_> = (0..3)
        .map(|i| std::thread::spawn(move || if i == 0 { MariaDb::start_with(&["--binlog-format=STATEMENT"]) } else { MariaDb::start() }))
        .collect();
    let dbs: Vec<MariaDb> = handles.into_iter().map(|h| h.join().expect("start")).collect();
    let mut ports: Vec<u16> = dbs.iter().map(|d| d.port).collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 3);
    assert!(!ports.contains(&3306));
    let fmt = dbs[0].query_rows("SELECT @@binlog_format").await;
    assert_eq!(fmt, vec![vec![s("STATEMENT")]]);
    let fmt = dbs[1].query_rows("SELECT @@binlog_format").await;
    assert_eq!(fmt, vec![vec![s("ROW")]]);
}

#[test]
fn watchdog_stops_server_when_owner_dies() {
    let mut owner = std::process::Command::new("sleep").arg("60").spawn().expect("sleep");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("srv");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/mariadb-test-server.sh");
    let out = std::process::Command::new("bash")
        .args([script, "start"])
        .arg(&dir)
        .env("SLUICE_TEST_OWNER_PID", owner.id().to_string())
        .output()
        .expect("script");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("port="));
    let pid = std::fs::read_to_string(dir.join("pid")).expect("pid");
    let proc_cmdline = format!("/proc/{}/cmdline", pid.trim());

    owner.kill().expect("kill owner");
    owner.wait().expect("reap owner");
    // Polls every 2 s, then TERM; allow a generous margin on a loaded machine.
    let gone = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(200));
        !dir.exists() && std::fs::read(&proc_cmdline).map_or(true, |c| c.is_empty())
    });
    assert!(gone, "server {} or {} still there", pid.trim(), dir.display());
}
