//! The status server inside `sluice run` (`[http]`): `/metrics` in Prometheus text with the
//! contract names of DESIGN.md, `/status` as JSON (the fields of `sluice status --json`, live),
//! and `/healthz` for orchestrators. Everything comes from the pipeline's live stats handle;
//! nothing here ever holds a row value.
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use sluice_core::config::HttpConfig;
use sluice_core::stats::{Stats, StatsSnapshot};
use tracing::info;

#[derive(Clone)]
struct App {
    stats: Stats,
    lag_alert: Duration,
}

/// Binds `[http] listen` and serves until the returned task is aborted.
pub async fn serve(cfg: &HttpConfig, stats: Stats) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let addr: SocketAddr = cfg.listen.parse().with_context(|| format!("[http] listen = {:?}", cfg.listen))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ([http] listen): is another process using it?"))?;
    let app = App { stats, lag_alert: cfg.lag_alert.0 };
    let router =
        Router::new().route("/metrics", get(metrics)).route("/status", get(status)).route("/healthz", get(healthz)).with_state(app);
    info!(address = %addr, "status server listening (/metrics, /status, /healthz)");
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::warn!(error = %e, "status server stopped");
        }
    }))
}

async fn metrics(State(app): State<App>) -> Response {
    let text = prometheus(&app.stats.snapshot());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn status(State(app): State<App>) -> Json<serde_json::Value> {
    let s = app.stats.snapshot();
    let phase = match &s.position {
        None => "not started",
        Some(p) if p.get("snapshot").is_some() => "snapshot",
        Some(_) => "streaming",
    };
    Json(json!({
        "phase": phase,
        "position": s.position,
        "next_seq": s.committed_seq,
        "committed_at_ms": s.committed_at_ms,
        "source_ts_ms": s.source.newest_change_ms,
        "lag_ms": s.source.lag_ms,
        "source": s.source,
        "sinks": s.sinks,
        "tables": s.tables,
        "errors": s.errors,
    }))
}

async fn healthz(State(app): State<App>) -> Response {
    let s = app.stats.snapshot();
    let lag = Duration::from_millis(u64::try_from(s.source.lag_ms).unwrap_or(0));
    if lag > app.lag_alert {
        let reason = format!("source lag {} s is above lag_alert {} s\n", lag.as_secs(), app.lag_alert.as_secs());
        return (StatusCode::SERVICE_UNAVAILABLE, reason).into_response();
    }
    (StatusCode::OK, "ok\n").into_response()
}

/// The metrics in Prometheus' text format. Labels carry table and sink names, never values.
pub fn prometheus(s: &StatsSnapshot) -> String {
    let mut out = String::with_capacity(4096);
    let mut family = |name: &str, kind: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    family("sluice_events_total", "counter", "Row changes read, by table and operation (c, u, d; r is the snapshot).");
    let mut lines = String::new();
    for (table, t) in &s.tables {
        for (op, n) in [("c", t.inserts), ("u", t.updates), ("d", t.deletes), ("r", t.full_load_rows)] {
            let _ = writeln!(lines, "sluice_events_total{{table=\"{}\",op=\"{op}\"}} {n}", escape(table));
        }
    }
    out.push_str(&lines);
    lines.clear();
    let gauge = |out: &mut String, name: &str, kind: &str, help: &str, body: &str| {
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{body}");
    };
    for (table, t) in &s.tables {
        let _ = writeln!(lines, "sluice_snapshot_rows_total{{table=\"{}\"}} {}", escape(table), t.full_load_rows);
    }
    gauge(&mut out, "sluice_snapshot_rows_total", "counter", "Rows read by the initial snapshot, by table.", &lines);
    gauge(
        &mut out,
        "sluice_source_lag_seconds",
        "gauge",
        "How far the reader is behind the server's log end, in commit time; 0 when caught up.",
        &format!("sluice_source_lag_seconds {}\n", secs(s.source.lag_ms)),
    );
    let per_sink = |f: &dyn Fn(&sluice_core::stats::SinkStats) -> String, name: &str| {
        s.sinks.iter().map(|k| format!("{name}{{sink=\"{}\"}} {}\n", escape(&k.name), f(k))).collect::<String>()
    };
    gauge(
        &mut out,
        "sluice_sink_lag_seconds",
        "gauge",
        "How far what each sink made durable is behind the source's log end; 0 when caught up.",
        &per_sink(&|k| secs(k.lag_ms), "sluice_sink_lag_seconds"),
    );
    gauge(
        &mut out,
        "sluice_sink_durable_seq",
        "gauge",
        "Every change below this seq is durable in the sink.",
        &per_sink(&|k| k.durable_seq.unwrap_or(0).to_string(), "sluice_sink_durable_seq"),
    );
    gauge(
        &mut out,
        "sluice_sink_queue_bytes",
        "gauge",
        "Bytes of events queued for the sink and not yet written.",
        &per_sink(&|k| k.queue_bytes.to_string(), "sluice_sink_queue_bytes"),
    );
    gauge(
        &mut out,
        "sluice_sink_flushes_total",
        "counter",
        "Flushes (commits, fsyncs) the sink made.",
        &per_sink(&|k| k.flushes.to_string(), "sluice_sink_flushes_total"),
    );
    gauge(
        &mut out,
        "sluice_sink_last_flush_seconds",
        "gauge",
        "Duration of the sink's last flush.",
        &per_sink(&|k| format!("{}", k.last_flush_ms / 1e3), "sluice_sink_last_flush_seconds"),
    );
    gauge(
        &mut out,
        "sluice_committed_seq",
        "gauge",
        "next_seq of the last committed checkpoint.",
        &format!("sluice_committed_seq {}\n", s.committed_seq.unwrap_or(0)),
    );
    let errors: String = ["transient", "exhausted", "permanent"]
        .iter()
        .map(|k| format!("sluice_errors_total{{kind=\"{k}\"}} {}\n", s.errors.get(*k).copied().unwrap_or(0)))
        .collect();
    gauge(&mut out, "sluice_errors_total", "counter", "Failures by kind since start.", &errors);
    out
}

fn secs(ms: i64) -> String {
    format!("{}", ms.max(0) as f64 / 1e3)
}

/// A label value in Prometheus' text format.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
