//! Shared harness for the MySQL source's integration tests: a per-process MariaDB, a source run
//! driven through its channel, and a "same datum both ways" type check.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use sluice_core::checkpoint::Checkpoint;
/// The source's tests build no sink: sink sections stay unparsed.
type Config = sluice_core::config::Config<sluice_mysql::MysqlConfig, toml::Table>;
use sluice_core::source::{Source, SourceMsg};
use sluice_core::value::{days_from_ymd, micros_from_parts};
use sluice_core::{ChangeEvent, Op, SluiceError, Value};
use sluice_mysql::MysqlSource;
use sluice_testkit::MariaDb;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Longest wait for any one message from the source.
pub const WAIT: Duration = Duration::from_secs(60);

/// Starts a private server (scripts/mariadb-test-server.sh gives each its own tmpdir: MariaDB
/// deletes `#sql*` files in its tmpdir at start, which crashed servers sharing /tmp).
pub fn start_server(extra: &[&str]) -> MariaDb {
    MariaDb::start_with(extra)
}

/// One server for the whole test binary (its watchdog stops it when the process exits).
pub fn server() -> &'static MariaDb {
    static DB: OnceLock<MariaDb> = OnceLock::new();
    DB.get_or_init(|| start_server(&[]))
}

/// Each concurrent binlog connection needs its own replica id: the server drops the older
/// dump thread of a duplicate id.
pub fn next_server_id() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(7000);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

pub fn config(db: &MariaDb, tables: &str) -> Config {
    config_with(db, tables, "consistent")
}

/// [`config`] with `[snapshot] method` set.
pub fn config_with(db: &MariaDb, tables: &str, method: &str) -> Config {
    let toml = format!(
        "[source]\nkind = \"mysql\"\nurl = \"{}\"\nserver_id = {}\ntables = [\"{tables}\"]\nheartbeat = \"200ms\"\n\
         [snapshot]\nmode = \"initial\"\nmethod = \"{method}\"\n",
        db.url(),
        next_server_id()
    );
    Config::parse(&toml, "test").unwrap_or_else(|e| panic!("test config: {e}"))
}

/// A running source and its channel.
pub struct Run {
    rx: mpsc::Receiver<SourceMsg>,
    handle: JoinHandle<Result<(), SluiceError>>,
    pub last_checkpoint: Option<Checkpoint>,
    /// Nothing is committed in these tests; kept so the source's watch stays open.
    _committed: tokio::sync::watch::Sender<Option<Checkpoint>>,
}

impl Run {
    pub fn start(cfg: Config, resume: Option<Checkpoint>) -> Self {
        let (tx, rx) = mpsc::channel(64);
        let source: Box<dyn Source> = Box::new(MysqlSource::new(cfg.source, cfg.snapshot, None));
        let (committed_tx, committed) = tokio::sync::watch::channel(None);
        let handle = tokio::spawn(source.run(resume, tx, committed));
        Self { rx, handle, last_checkpoint: None, _committed: committed_tx }
    }

    /// Every event up to the next `CaughtUp`, remembering the last checkpoint on the way.
    pub async fn until_caught_up(&mut self, what: &str) -> Vec<ChangeEvent> {
        let mut events = Vec::new();
        loop {
            match tokio::time::timeout(WAIT, self.rx.recv()).await {
                Err(_) => panic!("{what}: no message from the source within {WAIT:?}"),
                Ok(None) => {
                    let ended = tokio::time::timeout(WAIT, &mut self.handle).await;
                    panic!("{what}: the source stopped before catching up: {ended:?}")
                }
                Ok(Some(SourceMsg::Events(batch))) => events.extend(batch),
                Ok(Some(SourceMsg::Checkpoint(cp))) => self.last_checkpoint = Some(cp),
                Ok(Some(SourceMsg::Idle | SourceMsg::FullLoad { .. } | SourceMsg::Retrying(_) | SourceMsg::TableDdl(_))) => {}
                Ok(Some(SourceMsg::CaughtUp)) => return events,
            }
        }
    }

    /// Closes the channel: the source must notice and return `Ok(())`.
    pub async fn stop(self, what: &str) {
        drop(self.rx);
        match tokio::time::timeout(WAIT, self.handle).await {
            Ok(Ok(Ok(()))) => {}
            other => panic!("{what}: the source did not stop cleanly after its channel closed: {other:?}"),
        }
    }
}

/// One column type and the data to push through it: `(SQL literal, expected value)`.
pub struct Case {
    pub name: &'static str,
    pub column: &'static str,
    /// SQL run on the inserting connection first (time zone, SQL mode).
    pub session: &'static str,
    pub values: Vec<(String, Value)>,
}

pub fn case(name: &'static str, column: &'static str) -> Case {
    Case { name, column, session: "", values: Vec::new() }
}

impl Case {
    pub fn v(mut self, literal: impl Into<String>, expected: Value) -> Self {
        self.values.push((literal.into(), expected));
        self
    }
    pub fn session(mut self, sql: &'static str) -> Self {
        self.session = sql;
        self
    }
    /// The rows as `(id, literal, expected)`: the given values, then a NULL.
    fn rows(&self, offset: i64) -> Vec<(i64, String, Value)> {
        let nul = std::iter::once(("NULL".to_string(), Value::Null));
        self.values.iter().cloned().chain(nul).enumerate().map(|(i, (l, e))| (offset + i as i64 + 1, l, e)).collect()
    }
}

/// Snapshot reads and binlog inserts of the same literals must decode to the same, expected
/// values. Returns one line per mismatch (empty when all agree).
pub async fn check_on(db: &MariaDb, c: &Case) -> Vec<String> {
    let table = format!("t_{}", c.name);
    db.exec(&format!(
        "CREATE DATABASE IF NOT EXISTS types; DROP TABLE IF EXISTS types.{table}; \
         CREATE TABLE types.{table} (id INT PRIMARY KEY, v {}) DEFAULT CHARSET = utf8mb4",
        c.column
    ))
    .await;
    insert(db, c, &table, 0).await;

    let mut snap = Run::start(config(db, &format!("types.{table}")), None);
    let reads = snap.until_caught_up(&format!("{}: snapshot", c.name)).await;
    let resume = snap.last_checkpoint.clone();
    assert!(resume.is_some(), "{}: no checkpoint before CaughtUp", c.name);
    snap.stop(c.name).await;
    // The watermark method reads the same rows through the same decoder.
    let mut by_watermark = Run::start(config_with(db, &format!("types.{table}"), "watermark"), None);
    let watermark_reads = by_watermark.until_caught_up(&format!("{}: watermark snapshot", c.name)).await;
    by_watermark.stop(c.name).await;

    insert(db, c, &table, 1000).await;
    let mut stream = Run::start(config(db, &format!("types.{table}")), resume);
    let inserts = stream.until_caught_up(&format!("{}: binlog", c.name)).await;
    stream.stop(c.name).await;

    let mut problems = Vec::new();
    problems.extend(compare(c, "snapshot", Op::Read, &reads, 0));
    problems.extend(compare(c, "watermark snapshot", Op::Read, &watermark_reads, 0));
    problems.extend(compare(c, "binlog", Op::Insert, &inserts, 1000));
    problems
}

/// [`check_on`] against the shared server, failing the test with every mismatch.
pub async fn check(c: Case) {
    let problems = check_on(server(), &c).await;
    assert!(problems.is_empty(), "type {} ({}):\n  {}", c.name, c.column, problems.join("\n  "));
}

async fn insert(db: &MariaDb, c: &Case, table: &str, offset: i64) {
    let values: Vec<String> = c.rows(offset).iter().map(|(id, lit, _)| format!("({id}, {lit})")).collect();
    let session = if c.session.is_empty() { String::new() } else { format!("{}; ", c.session) };
    db.exec(&format!("{session}INSERT INTO types.{table} (id, v) VALUES {}", values.join(", "))).await;
}

fn compare(c: &Case, path: &str, op: Op, events: &[ChangeEvent], offset: i64) -> Vec<String> {
    let mut problems = Vec::new();
    let rows = c.rows(offset);
    let ours: Vec<&ChangeEvent> = events.iter().filter(|e| e.schema.id.table == format!("t_{}", c.name)).collect();
    if ours.len() != rows.len() || ours.iter().any(|e| e.op != op) {
        let got: Vec<String> = ours.iter().map(|e| format!("{:?} {:?}", e.op, e.after)).collect();
        problems.push(format!("{path}: expected {} {op:?} events, got {got:?}", rows.len()));
        return problems;
    }
    for (event, (id, lit, expected)) in ours.iter().zip(&rows) {
        let after = event.after.as_deref().unwrap_or_default();
        match after {
            [Value::Int(got_id), got] if got_id == id => {
                if got != expected {
                    problems.push(format!("{path}: {lit} -> {got:?}, expected {expected:?}"));
                }
            }
            other => problems.push(format!("{path}: row {id}: unexpected image {other:?}")),
        }
    }
    problems
}

// Expected-value shorthands.
pub fn text(s: &str) -> Value {
    Value::Text(s.into())
}
pub fn dec(s: &str) -> Value {
    Value::Decimal(s.into())
}
pub fn bytes(b: &[u8]) -> Value {
    Value::Bytes(b.to_vec())
}
pub fn date(y: i32, m: u32, d: u32) -> Value {
    Value::Date(days_from_ymd(y, m, d).expect("valid date"))
}
fn micros(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, us: u32) -> i64 {
    micros_from_parts(y, mo, d, h, mi, s, us).expect("valid date-time")
}
pub fn datetime(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, us: u32) -> Value {
    Value::DateTime(micros(y, mo, d, h, mi, s, us))
}
/// A TIMESTAMP given as its UTC wall clock.
pub fn timestamp_utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, us: u32) -> Value {
    Value::Timestamp(micros(y, mo, d, h, mi, s, us))
}
/// TIME `[-]h:m:s.us`.
pub fn time(negative: bool, h: i64, m: i64, s: i64, us: i64) -> Value {
    let v = (h * 3600 + m * 60 + s) * 1_000_000 + us;
    Value::Time(if negative { -v } else { v })
}
