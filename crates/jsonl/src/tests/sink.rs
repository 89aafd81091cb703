use serde_json::json;
use sluice_core::config::EventFormat;
use sluice_core::error::ErrorKind;
use sluice_core::sink::Sink;

use super::*;
use crate::JsonlSink;

fn seqs(path: &std::path::Path) -> Vec<u64> {
    read_lines(path).iter().map(|l| l["source"]["seq"].as_u64().unwrap()).collect()
}

#[tokio::test]
async fn reopening_at_a_mark_drops_what_came_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out/nested/events.jsonl");
    let cfg = config(&path, EventFormat::Debezium);

    let mut sink = JsonlSink::new(&cfg);
    assert_eq!(sink.name(), "jsonl");
    sink.open(None).await.unwrap();
    sink.write(&users(1..=2)).await.unwrap();
    sink.write(&users(3..=3)).await.unwrap();
    let mark = sink.mark();
    // Handed to the OS at the end of every write, so the mark matches the file already.
    assert_eq!(mark, json!({ "bytes": std::fs::metadata(&path).unwrap().len() }));
    sink.flush().await.unwrap();
    sink.write(&users(4..=5)).await.unwrap();
    assert_eq!(seqs(&path), [1, 2, 3, 4, 5]);
    drop(sink); // a crash before the next commit

    let mut sink = JsonlSink::new(&cfg);
    sink.open(Some(mark.clone())).await.unwrap();
    assert_eq!(seqs(&path), [1, 2, 3]);
    assert_eq!(sink.mark(), mark);
    sink.write(&users(4..=5)).await.unwrap();
    sink.flush().await.unwrap();
    assert_eq!(seqs(&path), [1, 2, 3, 4, 5]);
    let line = &read_lines(&path)[0];
    assert_eq!(line["op"], "c");
    assert_eq!(line["after"]["email"], "u1@x.io");
    assert_eq!(line["source"]["table"], "users");
}

#[tokio::test]
async fn fresh_start_refuses_a_file_with_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    std::fs::write(&path, "{}\n").unwrap();
    let err = JsonlSink::new(&config(&path, EventFormat::Debezium)).open(None).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Permanent);
    assert!(err.message.contains("already has data"), "{}", err.message);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "{}\n", "left untouched");

    // An empty file is fine, and so is state written while the sink was on stdout.
    std::fs::write(&path, "").unwrap();
    let mut sink = JsonlSink::new(&config(&path, EventFormat::Debezium));
    sink.open(Some(json!({ "stdout": true }))).await.unwrap();
    sink.write(&users(1..=1)).await.unwrap();
    assert_eq!(seqs(&path), [1]);
}

#[tokio::test]
async fn a_file_shorter_than_the_mark_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    std::fs::write(&path, "{}\n").unwrap();
    let err = JsonlSink::new(&config(&path, EventFormat::Debezium)).open(Some(json!({ "bytes": 100 }))).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Permanent);
    assert!(err.message.contains("has 3 bytes but the last checkpoint covered 100"), "{}", err.message);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "{}\n");

    let err = JsonlSink::new(&config(&path, EventFormat::Debezium)).open(Some(json!({ "bytes": "x" }))).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Permanent);
}

#[tokio::test]
async fn dms_format_and_stdout_marks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let mut sink = JsonlSink::new(&config(&path, EventFormat::Dms));
    sink.open(None).await.unwrap();
    sink.write(&users(7..=7)).await.unwrap();
    let lines = read_lines(&path);
    assert_eq!(lines, [sluice_core::encode::dms(&users(7..=7).events[0])]);

    let mut out = JsonlSink::new(&config(std::path::Path::new("-"), EventFormat::Debezium));
    out.open(Some(json!({ "bytes": 5 }))).await.unwrap();
    out.write(&sluice_core::sink::EventBatch::new(Vec::new())).await.unwrap();
    out.flush().await.unwrap();
    assert_eq!(out.mark(), json!({ "stdout": true }));
}
