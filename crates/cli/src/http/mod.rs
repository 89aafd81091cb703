//! The status server inside `sluice run` (`[http]`): `/metrics` in Prometheus text with the
//! contract names of DESIGN.md, `/status` as JSON (the fields of `sluice status --json`, live),
//! `/healthz` for orchestrators, and `/` the live page (built into the binary: no CDN, as hosts
//! are often offline) that reads `/status` and `/history`. Everything comes from the pipeline's
//! live stats handle; nothing here ever holds a row value.
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use sluice_core::config::HttpConfig;
use sluice_core::stats::Stats;
use tracing::{info, warn};

mod history;
mod metrics;

use history::History;

/// The page: one self-contained file (markup, style, script).
const PAGE: &str = include_str!("page.html");

#[derive(Clone)]
struct App {
    stats: Stats,
    history: History,
    lag_alert: Duration,
}

/// Binds `[http] listen` and serves until the returned task is aborted.
pub async fn serve(cfg: &HttpConfig, stats: Stats) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let addr: SocketAddr = cfg.listen.parse().with_context(|| format!("[http] listen = {:?}", cfg.listen))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ([http] listen): is another process using it?"))?;
    if !addr.ip().is_loopback() {
        warn!(address = %addr, "the status server listens beyond this host ([http] listen): it shows table names, positions and errors to anyone who can reach it");
    }
    let history = History::default();
    let sampler = history.spawn(stats.clone());
    let app = App { stats, history, lag_alert: cfg.lag_alert.0 };
    let router = Router::new()
        .route("/", get(page))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .route("/history", get(history_json))
        .route("/healthz", get(healthz))
        .with_state(app);
    info!(address = %addr, "status server listening: http://{addr}/ (page), /metrics, /status, /healthz");
    Ok(tokio::spawn(async move {
        let _sampler = AbortOnDrop(sampler);
        if let Err(e) = axum::serve(listener, router).await {
            warn!(error = %e, "status server stopped");
        }
    }))
}

/// Stops the history sampler with the server.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn history_json(State(app): State<App>) -> Json<serde_json::Value> {
    Json(app.history.to_json())
}

async fn metrics(State(app): State<App>) -> Response {
    let text = metrics::prometheus(&app.stats.snapshot());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn status(State(app): State<App>) -> Json<serde_json::Value> {
    let s = app.stats.snapshot();
    let now_ms = chrono::Utc::now().timestamp_millis();
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
        "recent_errors": s.recent_errors,
        "full_load": full_load(&s, &app.history, now_ms),
        "columns": s.columns,
    }))
}

/// Per table read by this run's snapshot: rows read of the server's estimate, the rate over the
/// last 10 s and the time left at that rate.
fn full_load(s: &sluice_core::stats::StatsSnapshot, history: &History, now_ms: i64) -> serde_json::Value {
    let tables = s.full_load.iter().map(|(name, f)| {
        let rows = s.tables.get(name).map_or(0, |t| t.full_load_rows);
        let done = f.done_ms.is_some();
        let rate = if done { 0.0 } else { history.rate(name, 10) };
        let left = f.estimated_rows.saturating_sub(rows);
        let eta_s = (!done && rate > 0.0).then(|| (left as f64 / rate).ceil() as u64);
        let elapsed_ms = f.done_ms.unwrap_or(now_ms) - f.started_ms;
        let v = json!({
            "rows": rows,
            "estimated_rows": f.estimated_rows.max(rows),
            "done": done,
            "rows_per_s": rate.round(),
            "eta_s": if done { Some(0) } else { eta_s },
            "elapsed_ms": elapsed_ms.max(0),
        });
        (name.clone(), v)
    });
    serde_json::Value::Object(tables.collect())
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

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::state::TableStats;
    use sluice_core::stats::{FullLoad, StatsSnapshot};

    #[tokio::test]
    async fn healthz_is_503_with_the_reason_past_lag_alert() {
        let stats = Stats::default();
        let app = App { stats: stats.clone(), history: History::default(), lag_alert: Duration::from_secs(300) };
        assert_eq!(healthz(State(app.clone())).await.status(), StatusCode::OK);
        let err = sluice_core::SluiceError::new(sluice_core::ErrorKind::Transient, "binlog connection lost: reset by peer");
        stats.error("source", &err);
        let mut busy = stats.snapshot();
        busy.source.lag_ms = 301_000;
        let app = App { stats: stats_with(busy), ..app };
        let res = healthz(State(app)).await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap();
        assert_eq!(std::str::from_utf8(&body).unwrap(), "source lag 301 s is above lag_alert 300 s\n");
    }

    fn stats_with(s: StatsSnapshot) -> Stats {
        let stats = Stats::default();
        stats.replace(s);
        stats
    }

    #[test]
    fn full_load_eta_follows_the_recent_rate() {
        let history = History::default();
        let mut s = StatsSnapshot::default();
        s.full_load.insert("a.t".into(), FullLoad { estimated_rows: 10_000, rows_before: 0, started_ms: 0, done_ms: None });
        for (i, rows) in [0u64, 1000, 2000].into_iter().enumerate() {
            s.tables.insert("a.t".into(), TableStats { full_load_rows: rows, ..TableStats::default() });
            history.record(&s, i as i64 * 1000);
        }
        let f = full_load(&s, &history, 2000);
        assert_eq!(f["a.t"]["rows"], 2000);
        assert_eq!(f["a.t"]["rows_per_s"], 1000.0);
        assert_eq!(f["a.t"]["eta_s"], 8);
        assert_eq!(f["a.t"]["done"], false);
        s.full_load.get_mut("a.t").unwrap().done_ms = Some(2500);
        let f = full_load(&s, &history, 9000);
        assert_eq!((f["a.t"]["eta_s"].as_u64(), f["a.t"]["elapsed_ms"].as_i64()), (Some(0), Some(2500)));
    }
}
