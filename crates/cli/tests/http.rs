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
    // Any address beyond loopback is allowed when given explicitly, with a warning.
    let w = Workdir::with_config(&config_text(&db.url(), 6401, &format!("\n[http]\nlisten = \"0.0.0.0:{port}\"\n")));
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
    // Every metric the Grafana dashboard in examples/ queries is served.
    let dashboard = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/grafana-dashboard.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard).expect("examples/grafana-dashboard.json is JSON");
    let exprs: Vec<&str> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap())
        .filter_map(|t| t["expr"].as_str())
        .collect();
    assert!(exprs.len() >= 10, "{exprs:?}");
    for expr in exprs {
        for name in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| w.starts_with("sluice_")) {
            assert!(text.contains(&format!("\n{name}")), "the dashboard queries {name}, which /metrics does not serve:\n{text}");
        }
    }

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
    assert!(out.stderr.contains("listens beyond this host"), "no warning about a non-loopback address:\n{out}");
}

/// `eventually` takes a plain closure: run one request to its end on a helper thread.
fn futures_block<F: std::future::Future + Send + 'static>(f: F) -> F::Output
where
    F::Output: Send + 'static,
{
    std::thread::spawn(move || tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)).join().unwrap()
}

/// Debian's chromium, installed by scripts/browser.sh when missing.
fn browser() -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/browser.sh");
    let out = std::process::Command::new(script).output().expect("run scripts/browser.sh");
    assert!(out.status.success(), "no browser: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Loads `url` in headless chromium and returns the DOM after its scripts ran; with
/// `screenshot`, also writes a PNG of the page there.
async fn render(browser: &str, profile: &std::path::Path, url: &str, screenshot: Option<&std::path::Path>) -> String {
    let mut cmd = tokio::process::Command::new(browser);
    cmd.args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run", "--virtual-time-budget=5000"])
        .arg(format!("--user-data-dir={}", profile.display()));
    match screenshot {
        Some(png) => cmd.arg("--window-size=1280,1500").arg(format!("--screenshot={}", png.display())),
        None => cmd.arg("--dump-dom"),
    };
    let out = tokio::time::timeout(std::time::Duration::from_secs(90), cmd.arg(url).output())
        .await
        .expect("chromium did not finish within 90 s")
        .expect("run chromium");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The text of the `<td data-field="{field}">` inside the `<tr {row}>` of `dom`.
fn cell(dom: &str, row: &str, field: &str) -> Option<String> {
    let start = dom.find(row)?;
    let tr = &dom[start..start + dom[start..].find("</tr>")?];
    let at = tr.find(&format!("data-field=\"{field}\""))?;
    let text = &tr[at..];
    let text = &text[text.find('>')? + 1..];
    Some(text[..text.find('<')?].to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_the_workload_in_a_browser() {
    let chromium = browser();
    let db = MariaDb::start();
    seed_table(&db, 3000).await;
    let emails: Vec<String> = (0..30).map(|i| format!("page.{i}.qz7@example.com")).collect();
    let rows: Vec<String> = emails.iter().enumerate().map(|(i, e)| format!("({i}, '{e}', 'Person {i}')")).collect();
    db.exec(&format!(
        "CREATE TABLE shop.people (id INT PRIMARY KEY, contact VARCHAR(64), name VARCHAR(32)); INSERT INTO shop.people VALUES {}",
        rows.join(",")
    ))
    .await;
    let port = closed_port();
    let extra = format!("\n[http]\nlisten = \"127.0.0.1:{port}\"\n\n[[mask]]\ncolumns = [\"shop.acct.note\"]\nmethod = \"redact\"\n\n[detect]\nsample = 10\n");
    let w = Workdir::with_config(&config_text(&db.url(), 6402, &extra));
    let mut run = w.spawn("run", "run", &[]);
    eventually("the snapshot is delivered", || {
        run.assert_running();
        w.events().len() >= 3030
    })
    .await;
    db.exec("INSERT INTO shop.acct VALUES (5001, 1, 'new'), (5002, 2, 'new')").await;
    db.exec("UPDATE shop.acct SET v = v + 1 WHERE id <= 7").await;
    db.exec("DELETE FROM shop.acct WHERE id > 2990 AND id <= 3000").await;
    db.exec("UPDATE shop.people SET name = 'Renamed' WHERE id < 4").await;
    eventually("every change is committed", || {
        common::state_json(&w.state_file()).is_some_and(|s| s["checkpoint"]["next_seq"].as_u64() >= Some(3030 + 2 + 7 + 10 + 4))
    })
    .await;
    // Idle now: the page and `sluice status` must both say lag 0.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;

    let url = format!("http://127.0.0.1:{port}/");
    let profile = w.path().join("chromium");
    let dom = render(&chromium, &profile, &url, None).await;
    assert!(dom.contains("data-ready=\"1\""), "the page did not render its data:\n{dom}");
    let acct = "data-table=\"shop.acct\"";
    let people = "data-table=\"shop.people\"";
    assert_eq!(cell(&dom, acct, "full_load_rows").as_deref(), Some("3,000"), "{dom}");
    assert_eq!(cell(&dom, acct, "inserts").as_deref(), Some("2"), "{dom}");
    assert_eq!(cell(&dom, acct, "updates").as_deref(), Some("7"), "{dom}");
    assert_eq!(cell(&dom, acct, "deletes").as_deref(), Some("10"), "{dom}");
    assert_eq!(cell(&dom, people, "full_load_rows").as_deref(), Some("30"), "{dom}");
    assert_eq!(cell(&dom, people, "updates").as_deref(), Some("4"), "{dom}");
    assert_eq!(cell(&dom, acct, "eta").as_deref().map(|e| e.starts_with("done in")), Some(true), "{dom}");
    let sink_row = dom.find("data-sink=\"jsonl\"").map(|i| &dom[i..i + dom[i..].find("</tr>").unwrap_or(0)]);
    assert!(sink_row.is_some_and(|r| r.contains("data-lag-ms=\"0\"")), "the sink's lag is not 0 while idle: {sink_row:?}");
    assert!(sink_row.is_some_and(|r| r.contains(">0 B<")), "the sink's queue is not empty while idle: {sink_row:?}");
    assert!(dom.contains("data-percent=\"100\""), "full-load progress missing:\n{dom}");
    assert!(
        dom.contains("data-column=\"shop.people.contact\"") && dom.contains("EMAIL in 10 of 10 sampled values"),
        "PII decision missing:\n{dom}"
    );
    assert!(dom.contains("[[mask]] rule 1"), "mask rule missing:\n{dom}");
    assert!(dom.contains("id=\"lag\" data-lag-ms=\"0\""), "the page's lag is not 0 while idle:\n{dom}");
    let status = w.status().await;
    assert_eq!(status["lag_ms"], 0, "sluice status disagrees with the page on lag: {status}");
    let (_, live) = get(port, "/status").await;
    let live_json: serde_json::Value = serde_json::from_str(&live).unwrap();
    assert_eq!((live_json["lag_ms"].as_i64(), live_json["sinks"][0]["lag_ms"].as_i64()), (Some(0), Some(0)), "{live_json}");
    let (_, history) = get(port, "/history").await;
    let (_, metrics) = get(port, "/metrics").await;
    assert!(metrics.contains("sluice_sink_flush_duration_seconds_bucket{sink=\"jsonl\",le=\"+Inf\"}"), "{metrics}");
    // Nothing the server shows holds a row value, masked or not.
    for (what, text) in [("page", &dom), ("/status", &live), ("/history", &history), ("/metrics", &metrics)] {
        for v in emails.iter().map(String::as_str).chain(["seed1", "Person 1", "Renamed", "########", "new'"]) {
            assert!(!text.contains(v), "{what} shows the row value {v:?}");
        }
        assert!(!text.contains("@example.com"), "{what} shows an email");
    }

    let png = w.path().join("status-page.png");
    render(&chromium, &profile, &url, Some(&png)).await;
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(size > 10_000, "the screenshot is missing or empty ({size} bytes)");
    // The work dir goes away with the test: keep the screenshot for the docs.
    let kept = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    std::fs::copy(&png, &kept).unwrap();
    eprintln!("screenshot of the status page: {}", kept.display());

    run.sigterm();
    let out = run.wait().await;
    assert_eq!(out.code, Some(0), "{out}");
}
