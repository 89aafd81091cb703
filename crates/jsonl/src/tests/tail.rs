use std::cell::RefCell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use sluice_core::config::EventFormat;
use sluice_core::sink::Sink;

use super::*;
use crate::{tail, JsonlSink, TailFrom, TailOptions};

/// shop.users 1, shop.orders 2, shop.users 3, written by the sink in `format`.
async fn events_file(dir: &Path, format: EventFormat) -> PathBuf {
    let path = dir.join("events.jsonl");
    let mut sink = JsonlSink::new(&config(&path, format));
    sink.open(None).await.unwrap();
    sink.write(&sluice_core::sink::EventBatch::new(vec![event("shop", "users", 1), event("shop", "orders", 2), event("shop", "users", 3)]))
        .await
        .unwrap();
    sink.flush().await.unwrap();
    path
}

async fn run(path: &Path, file_format: EventFormat, opts: TailOptions) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let n = tail(path, file_format, &opts, &mut out).await?;
    let lines: Vec<String> = String::from_utf8(out).unwrap().lines().map(str::to_string).collect();
    assert_eq!(n, lines.len());
    Ok(lines)
}

fn opts() -> TailOptions {
    TailOptions { poll: Duration::from_millis(10), ..TailOptions::default() }
}

fn seq_of(line: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    v["source"]["seq"].as_u64().or_else(|| v["metadata"]["seq"].as_u64()).unwrap()
}

#[tokio::test]
async fn prints_lines_as_stored_with_from_limit_and_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = events_file(dir.path(), EventFormat::Debezium).await;
    let dbz = EventFormat::Debezium;

    let all = run(&path, dbz, opts()).await.unwrap();
    assert_eq!(all.join("\n") + "\n", std::fs::read_to_string(&path).unwrap(), "verbatim");
    assert!(run(&path, dbz, TailOptions { from: TailFrom::Latest, ..opts() }).await.unwrap().is_empty());
    let two = run(&path, dbz, TailOptions { limit: Some(2), ..opts() }).await.unwrap();
    assert_eq!(two.iter().map(|l| seq_of(l)).collect::<Vec<_>>(), [1, 2]);
    let users = run(&path, dbz, TailOptions { table: Some("shop.users".into()), ..opts() }).await.unwrap();
    assert_eq!(users.iter().map(|l| seq_of(l)).collect::<Vec<_>>(), [1, 3]);
    let orders = run(&path, dbz, TailOptions { table: Some("shop.ord*".into()), ..opts() }).await.unwrap();
    assert_eq!(orders.iter().map(|l| seq_of(l)).collect::<Vec<_>>(), [2]);
    assert!(run(&path, dbz, TailOptions { table: Some("nodot".into()), ..opts() }).await.is_err());
    let missing = run(&dir.path().join("nope.jsonl"), dbz, opts()).await.unwrap_err();
    assert!(format!("{missing:#}").contains("nope.jsonl"));
}

#[tokio::test]
async fn reencodes_debezium_as_dms_but_not_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = events_file(dir.path(), EventFormat::Debezium).await;
    let dms = TailOptions { format: EventFormat::Dms, table: Some("shop.users".into()), ..opts() };
    let lines = run(&path, EventFormat::Debezium, dms.clone()).await.unwrap();
    let parsed: Vec<serde_json::Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    let expected = [sluice_core::encode::dms(&event("shop", "users", 1)), sluice_core::encode::dms(&event("shop", "users", 3))];
    assert_eq!(parsed, expected);

    let dir = tempfile::tempdir().unwrap();
    let path = events_file(dir.path(), EventFormat::Dms).await;
    let lines = run(&path, EventFormat::Dms, dms).await.unwrap();
    assert_eq!(lines.iter().map(|l| seq_of(l)).collect::<Vec<_>>(), [1, 3], "table filter on DMS metadata");
    let err = run(&path, EventFormat::Dms, opts()).await.unwrap_err();
    assert!(err.to_string().contains("cannot be shown as Debezium"), "{err}");
}

#[test]
fn tail_future_is_send_for_a_send_writer() {
    fn is_send<T: Send>(_: T) {}
    let mut out = Vec::new();
    is_send(tail(Path::new("x"), EventFormat::Debezium, &opts(), &mut out));
}

/// A `Write` the test can look into while `tail` holds it.
#[derive(Clone, Default)]
struct Shared(Rc<RefCell<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn text(&self) -> String {
        String::from_utf8(self.0.borrow().clone()).unwrap()
    }
}

fn append(path: &Path, bytes: &str) {
    std::fs::OpenOptions::new().append(true).create(true).open(path).unwrap().write_all(bytes.as_bytes()).unwrap();
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(150)).await;
}

#[tokio::test]
async fn follow_waits_for_complete_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    // Starting inside a line: it is not printed either.
    std::fs::write(&path, "old\npar").unwrap();
    let out = Shared::default();
    let follow = TailOptions { from: TailFrom::Latest, follow: true, limit: Some(2), ..opts() };
    let mut sink = out.clone();
    let reader = tail(&path, EventFormat::Debezium, &follow, &mut sink);
    let writer = async {
        settle().await;
        append(&path, "tial\none\ntw");
        settle().await;
        assert_eq!(out.text(), "one\n", "a partial line is not printed");
        append(&path, "o\n");
    };
    let (n, ()) = tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(reader, writer) }).await.unwrap();
    assert_eq!(n.unwrap(), 2);
    assert_eq!(out.text(), "one\ntwo\n");
}

#[tokio::test]
async fn follow_survives_truncation_and_waits_for_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("later/events.jsonl");
    let out = Shared::default();
    let follow = TailOptions { follow: true, limit: Some(6), ..opts() };
    let mut sink = out.clone();
    let reader = tail(&path, EventFormat::Debezium, &follow, &mut sink);
    let writer = async {
        settle().await;
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        append(&path, "aaaa\nbbbb\ncccc\n");
        settle().await;
        // The pipeline restarted from its commit after "aaaa" and sends "bbbb" again.
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(5).unwrap();
        settle().await;
        append(&path, "bbbb\n");
        settle().await;
        assert_eq!(out.text(), "aaaa\nbbbb\ncccc\nbbbb\n");
        // Truncated and grown past our position between two polls: no fragment is printed.
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(5).unwrap();
        append(&path, "xxxxxxxxxxxxxxxxxxxxxxxxx\ndddd\neeee\n");
    };
    let (n, ()) = tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(reader, writer) }).await.unwrap();
    assert_eq!(n.unwrap(), 6);
    assert_eq!(out.text(), "aaaa\nbbbb\ncccc\nbbbb\ndddd\neeee\n");
}
