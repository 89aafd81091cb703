//! Snapshot progress: on a terminal a bar for the whole load and one for the table being read
//! (rows, rows/s, ETA against the server's estimate); elsewhere (a service, a pipe) the same
//! figures as a log line every [`LOG_EVERY`].
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sluice_core::source::SourceMsg;
use sluice_core::TableId;
use tokio::sync::mpsc;
use tracing::info;

use crate::schema::TableInfo;

const LOG_EVERY: Duration = Duration::from_secs(2);

pub(crate) struct Progress {
    bars: MultiProgress,
    total: ProgressBar,
    /// The table being read: its name and bar.
    table: Option<(String, ProgressBar)>,
    log: bool,
    started: Instant,
    logged: Instant,
}

/// The progress over every table still to read, and the server's row estimate of each.
pub(crate) async fn progress_bar(conn: &mut Conn, tables: &[&TableInfo]) -> (Progress, Vec<u64>) {
    let mut estimates = Vec::with_capacity(tables.len());
    for t in tables {
        let est: Option<u64> = conn
            .exec_first(
                "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (&t.schema.id.db, &t.schema.id.table),
            )
            .await
            .ok()
            .flatten();
        estimates.push(est.unwrap_or(0));
    }
    let bars = MultiProgress::new();
    let total = bars.add(ProgressBar::new(estimates.iter().sum()));
    if let Ok(style) = ProgressStyle::with_template("snapshot {prefix:>28} {bar:30} {pos:>9}/~{len} rows  {per_sec:>12}  eta {eta}") {
        total.set_style(style);
    }
    total.set_prefix(format!("{} table(s)", tables.len()));
    let log = !std::io::stderr().is_terminal();
    (Progress { bars, total, table: None, log, started: Instant::now(), logged: Instant::now() }, estimates)
}

impl Progress {
    /// A table's read starts (or resumes): its own bar, sized by the server's estimate.
    fn table(&mut self, name: &str, estimated_rows: u64) {
        self.table_done();
        let bar = self.bars.add(ProgressBar::new(estimated_rows));
        if let Ok(style) = ProgressStyle::with_template("         {prefix:>28} {bar:30} {pos:>9}/~{len} rows  {per_sec:>12}  eta {eta}") {
            bar.set_style(style);
        }
        bar.set_prefix(name.to_string());
        self.table = Some((name.to_string(), bar));
    }

    /// A table's read starts: its bar, and the pipeline told (the status page's progress).
    /// False if the pipeline closed the channel.
    pub(crate) async fn start_table(&mut self, table: &TableId, estimated_rows: u64, out: &mpsc::Sender<SourceMsg>) -> bool {
        self.table(&table.to_string(), estimated_rows);
        out.send(SourceMsg::FullLoad { table: table.clone(), estimated_rows, done: false }).await.is_ok()
    }

    /// A table is read completely: logged, its bar gone, the pipeline told.
    pub(crate) async fn finish_table(&mut self, table: &TableId, estimated_rows: u64, out: &mpsc::Sender<SourceMsg>) -> bool {
        info!(table = %table, "snapshot of table done");
        self.table_done();
        out.send(SourceMsg::FullLoad { table: table.clone(), estimated_rows, done: true }).await.is_ok()
    }

    /// The current table is read completely.
    fn table_done(&mut self) {
        if let Some((_, bar)) = self.table.take() {
            bar.finish_and_clear();
            self.bars.remove(&bar);
        }
    }

    pub(crate) fn inc(&mut self, rows: u64) {
        self.total.inc(rows);
        if let Some((_, bar)) = &self.table {
            bar.inc(rows);
            // The estimate may be low: grow the bar rather than overflow it.
            if bar.position() > bar.length().unwrap_or(0) {
                bar.set_length(bar.position());
            }
        }
        if self.log && self.logged.elapsed() >= LOG_EVERY {
            self.logged = Instant::now();
            let done = self.total.position();
            let total = self.total.length().unwrap_or(0).max(done);
            let per_s = done as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
            let eta_s = if per_s > 0.0 { ((total - done) as f64 / per_s).round() as u64 } else { 0 };
            let (table, table_rows) = self.table.as_ref().map_or(("", 0), |(n, b)| (n.as_str(), b.position()));
            info!(rows = done, estimated_total = total, rows_per_s = per_s.round() as u64, eta_s, table, table_rows, "snapshot progress");
        }
    }

    pub(crate) fn finish_and_clear(&mut self) {
        // Read before finishing: indicatif's finish sets the position to the length, which is
        // the server's estimate, not the rows read.
        let rows = self.total.position();
        self.table_done();
        self.total.finish_and_clear();
        let per_s = rows as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        info!(rows, rows_per_s = per_s.round() as u64, seconds = self.started.elapsed().as_secs_f64(), "snapshot read done");
    }
}
