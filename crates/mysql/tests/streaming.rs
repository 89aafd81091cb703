//! Binlog streaming semantics against a real MariaDB: transactions, large transactions,
//! rotation, keyless tables, key changes and schema changes mid-stream.
#![allow(clippy::unwrap_used)]
use std::time::Duration;

use sluice_core::checkpoint::Checkpoint;
/// The source's tests build no sink: sink sections stay unparsed.
type Config = sluice_core::config::Config<sluice_mysql::MysqlConfig, toml::Table>;
use sluice_core::source::{Source, SourceMsg};
use sluice_core::{ChangeEvent, Op, Value};
use sluice_mysql::MysqlSource;
use sluice_testkit::MariaDb;
use tokio::sync::mpsc;

const DEADLINE: Duration = Duration::from_secs(60);

fn config(db: &MariaDb, extra: &str) -> Config {
    let text =
        format!("[source]\nkind = \"mysql\"\nurl = \"{}\"\nserver_id = 6401\ntables = [\"s.*\"]\nheartbeat = \"200ms\"\n{extra}", db.url());
    Config::parse(&text, "test").expect("config")
}

/// Runs the source from `resume` until it reports it caught up; returns the events and the
/// last checkpoint. Checks the source's ordering contract on the way.
async fn run_once(cfg: &Config, resume: Option<Checkpoint>) -> (Vec<ChangeEvent>, Checkpoint, usize) {
    let (tx, mut rx) = mpsc::channel(16);
    let first_seq = resume.as_ref().map_or(0, |c| c.next_seq);
    let (_committed_tx, committed) = tokio::sync::watch::channel(None);
    let task = tokio::spawn(Box::new(MysqlSource::new(cfg.source.clone(), cfg.snapshot.clone(), None)).run(resume, tx, committed));
    let mut events: Vec<ChangeEvent> = Vec::new();
    let mut last = None;
    let mut checkpoints = 0;
    loop {
        let msg = tokio::time::timeout(DEADLINE, rx.recv()).await.expect("source stalled");
        match msg {
            Some(SourceMsg::Events(evs)) => events.extend(evs),
            Some(SourceMsg::Checkpoint(cp)) => {
                assert_eq!(cp.next_seq, first_seq + events.len() as u64, "checkpoint not at a batch boundary");
                checkpoints += 1;
                last = Some(cp);
            }
            Some(SourceMsg::CaughtUp) => break,
            Some(SourceMsg::Idle | SourceMsg::FullLoad { .. } | SourceMsg::Retrying(_) | SourceMsg::TableDdl(_)) => {}
            None => panic!("source ended: {:?}", task.await),
        }
    }
    drop(rx);
    let _ = tokio::time::timeout(DEADLINE, task).await;
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, first_seq + i as u64, "seqs must be gap-free and ordered");
    }
    (events, last.expect("at least one checkpoint"), checkpoints)
}

fn col(e: &ChangeEvent, row: &[Value], name: &str) -> Value {
    let i = e.schema.column_index(name).unwrap_or_else(|| panic!("no column {name} in {:?}", e.schema.columns));
    row[i].clone()
}

fn after(e: &ChangeEvent) -> &[Value] {
    e.after.as_deref().expect("after image")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_large_transactions_rotation_and_key_changes() {
    let db = MariaDb::start();
    db.exec("CREATE DATABASE s; CREATE TABLE s.t (id INT PRIMARY KEY, v VARCHAR(20)); CREATE TABLE s.other (id INT PRIMARY KEY)").await;
    let cfg = config(&db, "");
    let (snap, cp, _) = run_once(&cfg, None).await;
    assert!(snap.is_empty());

    db.exec(
        "BEGIN; INSERT INTO s.t VALUES (1,'a'),(2,'b'); UPDATE s.t SET v='B' WHERE id=2; COMMIT; \
         BEGIN; INSERT INTO s.t VALUES (3,'gone'); SAVEPOINT sp; INSERT INTO s.t VALUES (4,'undone'); ROLLBACK TO SAVEPOINT sp; COMMIT; \
         BEGIN; INSERT INTO s.t VALUES (99,'never'); ROLLBACK; \
         FLUSH BINARY LOGS; \
         UPDATE s.t SET id = 10 WHERE id = 1; DELETE FROM s.t WHERE id = 3; INSERT INTO s.other VALUES (1);",
    )
    .await;
    let (evs, cp, _) = run_once(&cfg, Some(cp)).await;
    let got: Vec<(Op, String)> = evs.iter().map(|e| (e.op, format!("{}:{}", e.schema.id, e.key_string()))).collect();
    let want: Vec<(Op, String)> = vec![
        (Op::Insert, "s.t:1".into()),
        (Op::Insert, "s.t:2".into()),
        (Op::Update, "s.t:2".into()),
        (Op::Insert, "s.t:3".into()),
        (Op::Update, "s.t:10".into()),
        (Op::Delete, "s.t:3".into()),
        (Op::Insert, "s.other:1".into()),
    ];
    assert_eq!(got, want);
    assert_eq!(evs[0].tx, evs[2].tx, "one transaction id for the whole transaction");
    assert_ne!(evs[2].tx, evs[3].tx);
    assert!(evs[0].tx.as_deref().unwrap().starts_with("0-1-"), "MariaDB GTID as transaction id");
    assert_eq!(col(&evs[4], evs[4].before.as_deref().unwrap(), "id"), Value::Int(1), "key change keeps the old key");
    assert_ne!(evs[0].source.file, evs[4].source.file, "events after FLUSH BINARY LOGS come from the next file");

    // A 30,000-row transaction arrives whole, in several batches, with one checkpoint after it.
    let values: Vec<String> = (100..30_100).map(|i| format!("({i},'x')")).collect();
    db.exec(&format!("BEGIN; INSERT INTO s.t VALUES {}; DELETE FROM s.t WHERE id = 2; COMMIT", values.join(","))).await;
    let (evs, _, checkpoints) = run_once(&cfg, Some(cp)).await;
    assert_eq!(evs.len(), 30_001);
    assert_eq!(evs.iter().filter(|e| e.op == Op::Insert).count(), 30_000);
    // Its rows events are decoded on two cores (rowqueue.rs): the changes still come in binlog order.
    let ids: Vec<Value> = evs[..30_000].iter().map(|e| col(e, after(e), "id")).collect();
    assert_eq!(ids, (100..30_100).map(Value::Int).collect::<Vec<_>>(), "changes in binlog order");
    assert_eq!(evs[30_000].op, Op::Delete);
    assert_eq!(checkpoints, 1, "no checkpoint inside a transaction");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_table_carries_full_images() {
    let db = MariaDb::start();
    db.exec(&format!("CREATE DATABASE s; USE s; {}", sluice_testkit::users::USERS_DDL)).await;
    db.exec("INSERT INTO s.users (userid, username, email) VALUES (1, 'a', 'a@x.io'), (2, 'b', 'b@x.io')").await;
    let cfg = config(&db, "");
    let (snap, cp, _) = run_once(&cfg, None).await;
    assert_eq!(snap.len(), 2);
    assert!(snap[0].schema.key.is_empty());
    db.exec("UPDATE s.users SET userid = 100 WHERE userid = 1; DELETE FROM s.users WHERE userid = 2").await;
    let (evs, _, _) = run_once(&cfg, Some(cp)).await;
    assert_eq!(evs.len(), 2);
    assert_eq!(col(&evs[0], evs[0].before.as_deref().unwrap(), "userid"), Value::Int(1));
    assert_eq!(col(&evs[0], after(&evs[0]), "userid"), Value::Int(100));
    assert_eq!(col(&evs[0], after(&evs[0]), "email"), Value::Text("a@x.io".into()));
    assert_eq!(evs[1].op, Op::Delete);
    assert_eq!(col(&evs[1], evs[1].before.as_deref().unwrap(), "email"), Value::Text("b@x.io".into()));
}

const DDL_STEPS: [&str; 5] = [
    "INSERT INTO s.t VALUES (1, 'one', 1)",
    "ALTER TABLE s.t ADD COLUMN c VARCHAR(10) DEFAULT 'new'; INSERT INTO s.t VALUES (2, 'two', 2, 'cee')",
    "ALTER TABLE s.t DROP COLUMN b; INSERT INTO s.t VALUES (3, 'three', 'c3')",
    "ALTER TABLE s.t MODIFY COLUMN a VARCHAR(40); UPDATE s.t SET a = 'a much longer value' WHERE id = 3",
    "ALTER TABLE s.t RENAME COLUMN a TO title; INSERT INTO s.t VALUES (4, 'four', 'c4')",
];

/// ALTER TABLE mid-stream: every event carries the columns valid at its position. `live`:
/// sluice reads each step right after it happens; otherwise it reads all of them afterwards.
async fn ddl_mid_stream(db: &MariaDb, live: bool) {
    db.exec("CREATE DATABASE s; CREATE TABLE s.t (id INT PRIMARY KEY, a VARCHAR(10), b INT)").await;
    let cfg = config(db, "[snapshot]\nmode = \"never\"\n");
    let (_, mut cp, _) = run_once(&cfg, None).await;
    let mut evs = Vec::new();
    if live {
        for step in DDL_STEPS {
            db.exec(step).await;
            let (more, next, _) = run_once(&cfg, Some(cp)).await;
            evs.extend(more);
            cp = next;
        }
    } else {
        db.exec(&DDL_STEPS.join("; ")).await;
        evs = run_once(&cfg, Some(cp)).await.0;
    }
    let names = |e: &ChangeEvent| e.schema.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>().join(",");
    assert_eq!(evs.len(), 5);
    assert_eq!(names(&evs[0]), "id,a,b");
    assert_eq!(col(&evs[0], after(&evs[0]), "b"), Value::Int(1));
    assert_eq!(names(&evs[1]), "id,a,b,c");
    assert_eq!(col(&evs[1], after(&evs[1]), "c"), Value::Text("cee".into()));
    assert_eq!(names(&evs[2]), "id,a,c");
    assert_eq!(col(&evs[3], after(&evs[3]), "a"), Value::Text("a much longer value".into()));
    assert_eq!(names(&evs[4]), "id,title,c");
    assert_eq!(col(&evs[4], after(&evs[4]), "title"), Value::Text("four".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_mid_stream_with_full_metadata_even_when_read_later() {
    ddl_mid_stream(&MariaDb::start(), false).await;
}

/// Without column names in the binlog, information_schema (refreshed at each DDL) names them;
/// that is right while sluice keeps up with the DDL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_mid_stream_with_minimal_metadata_read_live() {
    ddl_mid_stream(&MariaDb::start_with(&["--binlog-row-metadata=MINIMAL"]), true).await;
}

/// Read long after the DDL, MINIMAL metadata cannot say which columns a row had: sluice stops
/// with an error naming the fix instead of emitting misnamed values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_read_later_with_minimal_metadata_stops_with_a_clear_error() {
    let db = MariaDb::start_with(&["--binlog-row-metadata=MINIMAL"]);
    db.exec("CREATE DATABASE s; CREATE TABLE s.t (id INT PRIMARY KEY, a VARCHAR(10), b INT)").await;
    let cfg = config(&db, "[snapshot]\nmode = \"never\"\n");
    let (_, cp, _) = run_once(&cfg, None).await;
    db.exec(&DDL_STEPS[..3].join("; ")).await;
    let (tx, mut rx) = mpsc::channel(16);
    let (_committed_tx, committed) = tokio::sync::watch::channel(None);
    let task = tokio::spawn(Box::new(MysqlSource::new(cfg.source, cfg.snapshot, None)).run(Some(cp), tx, committed));
    while tokio::time::timeout(DEADLINE, rx.recv()).await.expect("stalled").is_some() {}
    let err = task.await.unwrap().expect_err("must stop");
    assert!(err.message.contains("binlog_row_metadata=FULL"), "{}", err.message);
}
