//! `/metrics`: the live stats in Prometheus' text format, with the contract names of DESIGN.md.
use std::fmt::Write as _;

use sluice_core::stats::StatsSnapshot;

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
    let mut hist = String::new();
    for k in &s.sinks {
        let sink = escape(&k.name);
        for (le, n) in k.flush_seconds.cumulative() {
            let le = le.map_or("+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(hist, "sluice_sink_flush_duration_seconds_bucket{{sink=\"{sink}\",le=\"{le}\"}} {n}");
        }
        let _ = writeln!(hist, "sluice_sink_flush_duration_seconds_sum{{sink=\"{sink}\"}} {}", k.flush_seconds.sum_seconds);
        let _ = writeln!(hist, "sluice_sink_flush_duration_seconds_count{{sink=\"{sink}\"}} {}", k.flush_seconds.count);
    }
    gauge(
        &mut out,
        "sluice_sink_flush_duration_seconds",
        "histogram",
        "Durations of the sink's flushes (lake commits, fsyncs): what makes changes durable.",
        &hist,
    );
    gauge(
        &mut out,
        "sluice_sink_errors_total",
        "counter",
        "Failed writes or flushes of the sink since start (each retried or stopping the pipeline).",
        &per_sink(&|k| k.errors.to_string(), "sluice_sink_errors_total"),
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
