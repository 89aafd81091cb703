//! `[http]` inside `sluice run`: `/metrics` counts equal the workload, `/status` is live JSON,
//! `/healthz` answers 200 while the pipeline runs and keeps up.
#![allow(clippy::unwrap_used)]

mod common;

use common::workload::seed_table;
use common::{closed_port, config_text, eventually, Workdir};
use sluice_testkit::MariaDb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A GET over plain HTTP/1.1: status code and body.
async fn get(port: u16, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect to the status server");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let code = raw.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (code, body)
}

fn metric(text: &str, line_start: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(line_start)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_status_and_health_match_the_workload() {
    let db = MariaDb::start();
    seed_table(&db, 100).await;
    let port = closed_port();
    let w = Workdir::with_config(&config_text(&db.url(), 6401, &format!("\n[http]\nlisten = \"127.0.0.1:{port}\"\n")));
    let mut run = w.spawn("run", "run", &[]);
    eventually("the snapshot is delivered", || {
        run.assert_running();
        w.events().len() >= 100
    })
    .await;
    for i in 0..10 {
        db.exec(&format!("INSERT INTO shop.acct VALUES ({}, 1, 'n')", 1000 + i)).await;
    }
    db.exec("UPDATE shop.acct SET v = v + 1 WHERE id <= 5").await;
    db.exec("DELETE FROM shop.acct WHERE id BETWEEN 6 AND 8").await;
    eventually("every change is delivered", || w.events().len() >= 100 + 10 + 5 + 3).await;
    eventually("every change is committed", || {
        common::state_json(&w.state_file()).is_some_and(|s| s["checkpoint"]["next_seq"].as_u64() >= Some(118))
    })
    .await;

    let mut text = String::new();
    for _ in 0..100 {
        let (code, body) = get(port, "/metrics").await;
        assert_eq!(code, 200, "{body}");
        text = body;
        if metric(&text, "sluice_events_total{table=\"shop.acct\",op=\"d\"}") == Some(3.0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let ev = |op: &str| metric(&text, &format!("sluice_events_total{{table=\"shop.acct\",op=\"{op}\"}}"));
    assert_eq!((ev("r"), ev("c"), ev("u"), ev("d")), (Some(100.0), Some(10.0), Some(5.0), Some(3.0)), "{text}");
    assert_eq!(metric(&text, "sluice_snapshot_rows_total{table=\"shop.acct\"}"), Some(100.0), "{text}");
    for name in [
        "sluice_source_lag_seconds",
        "sluice_committed_seq",
        "sluice_errors_total{kind=\"transient\"}",
        "sluice_sink_lag_seconds{sink=\"jsonl\"}",
    ] {
        assert!(metric(&text, name).is_some(), "{name} missing:\n{text}");
    }
    assert!(!text.contains("seed"), "a row value in the metrics:\n{text}");

    let (code, body) = get(port, "/healthz").await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = get(port, "/status").await;
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("/status is not JSON ({e}): {body}"));
    assert_eq!(status["phase"], "streaming", "{status}");
    assert_eq!(status["tables"]["shop.acct"]["inserts"], 10, "{status}");
    assert!(!body.contains("seed"), "a row value in /status: {body}");
    // Caught up and idle: lag 0, in the metrics as in status.
    eventually("lag 0 once idle", || {
        let (_, t) = futures_block(get(port, "/metrics"));
        metric(&t, "sluice_source_lag_seconds") == Some(0.0)
    })
    .await;

    run.sigterm();
    let out = run.wait().await;
    assert_eq!(out.code, Some(0), "{out}");
}

/// `eventually` takes a plain closure: run one request to its end on a helper thread.
fn futures_block<F: std::future::Future + Send + 'static>(f: F) -> F::Output
where
    F::Output: Send + 'static,
{
    std::thread::spawn(move || tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)).join().unwrap()
}
