//! Faults that stop `sluice run` part-way through delivering: the lake on a full disk (commits
//! started by `flush_interval`, then by `flush_rows`), the events file on a full disk, and an S3
//! endpoint unreachable for longer than the lake's retry budget. Each test streams a random
//! workload until the run stops by itself on the fault, naming the cause; then removes the fault,
//! runs `sluice run --once`, and checks that every change arrived exactly once: the lake's
//! current state equals the source, each `_cdc_seq` is in the changelog once, and the events
//! file replays to the source with the same changes the changelog holds.
//!
//! Each lake fault runs twice: with commits started by `flush_interval` (the pipeline flushes
//! the lake just before it writes a checkpoint) and by `flush_rows` (the lake commits inside a
//! write, between checkpoints: a failed commit there must not let a later checkpoint cover the
//! changes it held).
//!
//! The snapshot is taken before the fault (a first `run --once`): a snapshot interrupted while the
//! lake already holds part of it resumes with seqs above the lake's (see
//! `kill_9_during_the_snapshot_loses_nothing_in_the_lake` in lake.rs), so its seqs would not be
//! 0..n and the sinks could not be compared change by change.
//!
//! Needs root: the full disks are small tmpfs mounts.
#![allow(clippy::unwrap_used)]
mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::lake::{assert_changelog_exact, lake_table, query};
use common::moto::Moto;
use common::tmpfs::Tmpfs;
use common::workload::{replay, seed_table, source_table, workload, Table};
use common::{read_events, Out, Workdir};
use sluice_testkit::{FaultProxy, MariaDb};

/// `retry_for` of every sink: how long a failing write or commit is retried before the run stops.
const RETRY_FOR: Duration = Duration::from_secs(3);

/// How long a run may take to stop by itself once its sink fails for good.
const STOP_WITHIN: Duration = Duration::from_secs(40);

/// Source and state; `sinks` appended verbatim.
fn config(db: &MariaDb, sinks: &str) -> String {
    format!(
        "[source]\nkind = \"mysql\"\nurl = \"{}\"\nserver_id = 6401\ntables = [\"shop.*\"]\nheartbeat = \"200ms\"\n\n[state]\ndir = \".sluice\"\n\n{sinks}",
        db.url()
    )
}

/// `[sink.jsonl]` at `path`, flushed every `flush_interval`.
fn jsonl_sink(path: &str, flush_interval: &str) -> String {
    let retry = RETRY_FOR.as_secs();
    format!("[sink.jsonl]\npath = \"{path}\"\nflush_interval = \"{flush_interval}\"\nretry_for = \"{retry}s\"\n\n")
}

/// `[sink.lake]` at `path`, committing every `flush_interval`, with the `extra` keys.
fn lake_sink(path: &str, flush_interval: &str, extra: &str) -> String {
    let retry = RETRY_FOR.as_secs();
    format!("[sink.lake]\npath = \"{path}\"\nflush_interval = \"{flush_interval}\"\nretry_for = \"{retry}s\"\n{extra}\n")
}

/// `sluice run` under a random workload until it stops by itself (at most [`STOP_WITHIN`]).
async fn run_until_it_stops(w: &Workdir, db: &MariaDb, seed: u64) -> Out {
    let stop = Arc::new(AtomicBool::new(false));
    let writer = workload(db, stop.clone(), seed);
    let out = w.spawn("run", "run", &[]).wait_within(STOP_WITHIN).await;
    stop.store(true, Ordering::Relaxed);
    let txs = writer.await.unwrap();
    assert!(txs > 20, "the workload ran only {txs} transactions before the run stopped:\n{out}");
    out
}

/// The run failed by itself (an exit code that is not 0, nor a signal's, nor a panic's) and its
/// output names `cause`. (delta-rs may log a panic it caught on a failed write: not ours.)
fn assert_stopped_on(out: &Out, cause: &str) {
    assert!(out.code.is_some_and(|c| c != 0 && c != 101), "the run did not fail on the fault:\n{out}");
    assert!(out.stderr.contains(cause), "the run's output does not name the cause ({cause}):\n{out}");
    // The message a user sees, in the test's output (--nocapture) for the record.
    eprintln!("stopped as expected: {}", out.stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default());
}

/// How `got` differs from `expected`, in counts (no row values in messages).
fn differences(expected: &Table, got: &Table) -> String {
    let missing = expected.keys().filter(|k| !got.contains_key(k)).count();
    let extra = got.keys().filter(|k| !expected.contains_key(k)).count();
    let changed = expected.iter().filter(|(k, v)| got.get(k).is_some_and(|g| g != *v)).count();
    format!("{missing} rows missing, {extra} extra, {changed} with other values (the source has {})", expected.len())
}

/// After the fault: the events file at `events` replays to the source, and with `lake`, the lake
/// equals the source and its changelog holds each of the events file's changes exactly once.
async fn assert_everything_once(w: &Workdir, db: &MariaDb, events: &Path, lake: bool) {
    let source = source_table(db).await;
    let events = read_events(events);
    let replayed = replay(&events);
    assert!(replayed == source, "the events file does not replay to the source: {}", differences(&source, &replayed));
    if !lake {
        return;
    }
    let current = lake_table(w).await;
    assert!(current == source, "the lake's current state differs from the source: {}", differences(&source, &current));
    let v = w.sluice("validate", &[]).await;
    assert_eq!(v.code, Some(0), "validate found a mismatch:\n{v}");
    let repeated =
        query(w, "SELECT _cdc_seq, count(*) AS c FROM shop.acct__changes GROUP BY _cdc_seq HAVING count(*) > 1 ORDER BY _cdc_seq").await;
    assert!(repeated.is_empty(), "{} seqs appear more than once in the changelog, the first: {}", repeated.len(), repeated[0]);
    let n = assert_changelog_exact(w).await;
    assert_eq!(n, events.len() as u64, "the changelog holds {n} changes, the events file {}", events.len());
}

/// The lake on a disk with 3 MB left after the snapshot; the events file elsewhere.
async fn lake_on_a_full_disk(flush_interval: &str, lake_extra: &str, seed: u64) {
    let disk = Tmpfs::mount("256m");
    let db = MariaDb::start();
    seed_table(&db, 20_000).await;
    let lake = disk.path().join("lake").display().to_string();
    let sinks = format!("{}{}", jsonl_sink("events.jsonl", flush_interval), lake_sink(&lake, flush_interval, lake_extra));
    let w = Workdir::with_config(&config(&db, &sinks));
    w.run_once().await;
    disk.leave_free(3 << 20);

    let out = run_until_it_stops(&w, &db, seed).await;
    assert_stopped_on(&out, "No space left on device");

    disk.resize("512m");
    w.run_once().await;
    assert_everything_once(&w, &db, &w.events_path(), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lake_on_a_full_disk_commits_by_interval() {
    lake_on_a_full_disk("300ms", "", 101).await;
}

/// The lake commits every 5000 changes, in the middle of a batch, long before the pipeline's
/// next checkpoint (30 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lake_on_a_full_disk_commits_by_rows() {
    lake_on_a_full_disk("30s", "flush_rows = 5000\n", 102).await;
}

/// The events file on a disk with 1 MB left after the snapshot; no lake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_file_on_a_full_disk() {
    let disk = Tmpfs::mount("256m");
    let db = MariaDb::start();
    seed_table(&db, 20_000).await;
    let events = disk.path().join("events.jsonl");
    let w = Workdir::with_config(&config(&db, &jsonl_sink(&events.display().to_string(), "300ms")));
    w.run_once().await;
    disk.leave_free(1 << 20);

    let out = run_until_it_stops(&w, &db, 103).await;
    assert_stopped_on(&out, "No space left on device");

    disk.resize("512m");
    w.run_once().await;
    assert_everything_once(&w, &db, &events, false).await;
}

/// The S3 endpoint (moto behind a [`FaultProxy`]) stops answering mid-stream, for longer than
/// the lake's retry budget: the run gives up by itself with a message naming the endpoint, and
/// once it is back, `run --once` delivers everything exactly once.
async fn s3_unreachable_for_longer_than_the_retry_budget(flush_interval: &str, lake_extra: &str, seed: u64) {
    let moto = Moto::start();
    moto.create_bucket("lake");
    let proxy = FaultProxy::start(SocketAddr::from((Ipv4Addr::LOCALHOST, moto.port)));
    let endpoint = format!("http://{}", proxy.addr());
    let db = MariaDb::start();
    seed_table(&db, 2_000).await;
    let s3 = format!(
        "[sink.lake.s3]\nregion = \"us-east-1\"\nendpoint = \"{endpoint}\"\naccess_key_id = \"k\"\nsecret_access_key = \"s\"\nallow_http = true\n"
    );
    let lake = lake_sink("s3://lake/prefix", flush_interval, lake_extra);
    let w = Workdir::with_config(&config(&db, &format!("{}{lake}{s3}", jsonl_sink("events.jsonl", flush_interval))));
    w.run_once().await;
    let snapshot = changelog_len(&w).await;

    let stop = Arc::new(AtomicBool::new(false));
    let writer = workload(&db, stop.clone(), seed);
    let mut run = w.spawn("run", "run", &[]);
    // Streaming changes committed to the lake through the proxy, then the cut.
    let deadline = Instant::now() + Duration::from_secs(30);
    while changelog_len(&w).await <= snapshot {
        assert!(Instant::now() < deadline, "no streaming changes reached the lake within 30 s:\n{}", run.stderr_text());
        run.assert_running();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    proxy.cut();
    let cut_at = Instant::now();
    let out = run.wait_within(STOP_WITHIN).await;
    let gave_up_after = cut_at.elapsed();
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();

    assert!(out.code.is_some_and(|c| c != 0 && c != 101), "the run did not fail with S3 unreachable:\n{out}");
    let error = out.stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    assert!(error.contains(&proxy.addr().to_string()), "the last message does not name the endpoint {endpoint}:\n{out}");
    let lower = error.to_lowercase();
    assert!(
        ["unreachable", "connect", "connection", "sending request", "network"].iter().any(|w| lower.contains(w)),
        "the last message does not say the endpoint is unreachable:\n{out}"
    );
    assert!(error.len() < 1500, "the last message is {} characters long:\n{error}", error.len());
    assert!(gave_up_after >= RETRY_FOR, "gave up {gave_up_after:?} after the cut, within its retry budget of {RETRY_FOR:?}");

    proxy.restore();
    w.run_once().await;
    assert_everything_once(&w, &db, &w.events_path(), true).await;
}

/// Rows in the lake's changelog (read through the proxy).
async fn changelog_len(w: &Workdir) -> u64 {
    query(w, "SELECT count(*) AS n FROM shop.acct__changes").await[0]["n"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_unreachable_for_longer_than_the_retry_budget_commits_by_interval() {
    s3_unreachable_for_longer_than_the_retry_budget("500ms", "", 104).await;
}

/// As in `lake_on_a_full_disk_commits_by_rows`: lake commits in the middle of a batch, the
/// pipeline's checkpoint every 30 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_unreachable_for_longer_than_the_retry_budget_commits_by_rows() {
    s3_unreachable_for_longer_than_the_retry_budget("30s", "flush_rows = 1000\n", 105).await;
}
