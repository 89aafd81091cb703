//! A private MariaDB per test: own temp dir, own port, binlog in ROW/FULL/FULL.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, Value};
use tempfile::TempDir;

/// A running server; `Drop` stops it (and a watchdog stops it if the test process dies).
pub struct MariaDb {
    dir: TempDir,
    pub port: u16,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/mariadb-test-server.sh")
}

impl MariaDb {
    /// Starts a server with the standard options; panics if it cannot.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Like [`MariaDb::start`], with extra `mariadbd` args that override the defaults
    /// (e.g. `--binlog-format=STATEMENT`).
    pub fn start_with(extra_args: &[&str]) -> Self {
        Self::try_start_with(extra_args).unwrap_or_else(|e| panic!("starting MariaDB: {e:#}"))
    }

    /// Non-panicking start. Retries with a fresh dir and port, since another test may grab
    /// the chosen port between the script's check and the server's bind.
    pub fn try_start_with(extra_args: &[&str]) -> anyhow::Result<Self> {
        let mut last = None;
        for _ in 0..3 {
            match Self::start_once(extra_args) {
                Ok(db) => return Ok(db),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("not attempted")))
    }

    fn start_once(extra_args: &[&str]) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("sluice-mariadb-").tempdir()?;
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(dir.path())
            .args(extra_args)
            .env("SLUICE_TEST_OWNER_PID", std::process::id().to_string())
            .output()
            .context("running mariadb-test-server.sh")?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let port = stdout.lines().find_map(|l| l.strip_prefix("port=")?.trim().parse().ok());
        match port {
            Some(port) if out.status.success() => Ok(MariaDb { dir, port }),
            _ => bail!("mariadb-test-server.sh start failed ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr)),
        }
    }

    /// Stops the server and starts it again on the same data and port (blocking), so clients
    /// see a real server restart.
    pub fn restart(&self) {
        let out = Command::new("bash").arg(script()).arg("restart").arg(self.dir.path()).output().expect("run mariadb-test-server.sh");
        assert!(out.status.success(), "restart failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// The server's directory (data/, err.log, pid, sock).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's pid, if it is (still) running.
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir().join("pid")).ok()?.trim().parse().ok()
    }

    pub fn root_url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}", self.port)
    }

    /// The replication user `sluice` (SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE/CLIENT).
    pub fn url(&self) -> String {
        format!("mysql://sluice:sluice@127.0.0.1:{}", self.port)
    }

    pub async fn root_conn(&self) -> Conn {
        connect(&self.root_url()).await
    }

    /// Runs a (multi-statement) batch as root; panics on error.
    pub async fn exec(&self, sql: &str) {
        let mut conn = self.root_conn().await;
        if let Err(e) = conn.query_drop(sql).await {
            panic!("exec failed: {e}\nSQL: {}", abbreviate(sql));
        }
        let _ = conn.disconnect().await;
    }

    /// Runs a query as root and returns every value as text (`None` for NULL).
    pub async fn query_rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let mut conn = self.root_conn().await;
        let rows: Vec<mysql_async::Row> = conn.query(sql).await.unwrap_or_else(|e| panic!("query failed: {e}\nSQL: {}", abbreviate(sql)));
        let _ = conn.disconnect().await;
        rows.into_iter().map(|r| r.unwrap_raw().into_iter().map(|v| v.and_then(text)).collect()).collect()
    }

    pub async fn create_db(&self, name: &str) {
        self.exec(&format!("CREATE DATABASE IF NOT EXISTS `{}`", name.replace('`', "``"))).await;
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        // Errors are only reported: panicking in Drop would abort an already failing test.
        match Command::new("bash").arg(script()).arg("stop").arg(self.dir.path()).output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!("stopping MariaDB: {}", String::from_utf8_lossy(&o.stderr)),
            Err(e) => eprintln!("stopping MariaDB: {e}"),
        }
    }
}

/// Connects to `url`; panics with the url on failure.
pub async fn connect(url: &str) -> Conn {
    let opts = Opts::from_url(url).unwrap_or_else(|e| panic!("bad url {url}: {e}"));
    Conn::new(opts).await.unwrap_or_else(|e| panic!("connecting to {url}: {e}"))
}

fn text(v: Value) -> Option<String> {
    Some(match v {
        Value::NULL => return None,
        Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Double(d) => d.to_string(),
        other => other.as_sql(false).trim_matches('\'').to_string(),
    })
}

fn abbreviate(sql: &str) -> &str {
    sql.get(..500).unwrap_or(sql)
}
