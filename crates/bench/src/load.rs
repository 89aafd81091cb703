//! `load`: a writer whose rows carry their own send time, and two observers.
//!
//! Writer: `--connections` connections share one open-loop schedule of `--rate` transactions/s
//! (slot k is due at start + k/rate; a late slot is sent at once, so a server that cannot keep
//! up shows as a lower achieved rate). `--rate 0` writes as fast as the server accepts. Each
//! transaction is one autocommit `INSERT` of `--rows-per-tx` rows `(id, sent_us, pad)`, ids
//! consecutive above the table's max id at start, `sent_us` the wall clock (µs since the epoch)
//! just before the statement is sent — so every latency includes the commit itself.
//!
//! Event observer (`--events FILE`): follows the JSON-lines events file from its end at start
//! (a 1 ms poll), and for each change of the table takes `now − sent_us` when its line is read.
//!
//! Lake observer (`--sluice BIN --config FILE`): runs `sluice query "SELECT id, sent_us FROM
//! db.t WHERE id > N"` back to back (`--poll-ms` apart); a row's latency is taken when the
//! first query that returns it has finished, i.e. what a user running that query sees.
use std::fmt::Write as _;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Args;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};
use serde_json::{json, Value};

use crate::stats::summary;

#[derive(Args)]
pub struct LoadArgs {
    /// Server URL of a user that may create and insert into the table.
    #[arg(long)]
    url: String,
    /// Table `db.t`, created if missing: (id BIGINT PRIMARY KEY, sent_us BIGINT, pad VARCHAR(64)).
    #[arg(long, default_value = "bench.lat")]
    table: String,
    /// Transactions per second across all connections; 0 = as fast as the server accepts.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Rows per transaction (one multi-row INSERT).
    #[arg(long, default_value_t = 1)]
    rows_per_tx: u64,
    /// Writer connections.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Seconds of writing.
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    /// JSON-lines events file written by `sluice run` ([sink.jsonl], debezium format).
    #[arg(long)]
    events: Option<PathBuf>,
    /// The sluice binary, to poll `sluice query` (needs --config).
    #[arg(long, requires = "config")]
    sluice: Option<PathBuf>,
    /// The sluice.toml of the running pipeline (for `sluice query`).
    #[arg(long, requires = "sluice")]
    config: Option<PathBuf>,
    /// Pause between two `sluice query` polls, ms.
    #[arg(long, default_value_t = 100)]
    poll_ms: u64,
    /// After writing, wait at most this many seconds for the observers to see every row.
    #[arg(long, default_value_t = 20.0)]
    drain: f64,
}

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// Latency per row index (id − base − 1); `u64::MAX` = not seen yet.
struct Seen {
    lat_us: Vec<u64>,
    count: u64,
    /// Lowest index not seen yet.
    low: usize,
}

impl Seen {
    fn new() -> Self {
        Self { lat_us: Vec::new(), count: 0, low: 0 }
    }

    fn record(&mut self, idx: usize, lat_us: u64) {
        if idx >= self.lat_us.len() {
            let len = (idx + 1).max(self.lat_us.len() * 2).max(1024);
            self.lat_us.resize(len, u64::MAX);
        }
        if self.lat_us[idx] == u64::MAX {
            self.lat_us[idx] = lat_us;
            self.count += 1;
            while self.low < self.lat_us.len() && self.lat_us[self.low] != u64::MAX {
                self.low += 1;
            }
        }
    }

    /// Latencies of the first `n` rows, and how many of them were never seen. A row never seen
    /// counts with the lower bound `stop_us − sent_us` (`sent_us(i)` of row i), so percentiles
    /// and the maximum stay honest lower bounds instead of ignoring the slowest rows.
    fn result(&self, n: usize, sent_us: impl Fn(usize) -> u64, stop_us: u64) -> (Vec<u64>, u64) {
        let mut lats = Vec::with_capacity(n);
        let mut missing = 0;
        for i in 0..n {
            match self.lat_us.get(i).copied() {
                Some(l) if l != u64::MAX => lats.push(l),
                _ => {
                    missing += 1;
                    lats.push(stop_us.saturating_sub(sent_us(i)));
                }
            }
        }
        (lats, missing)
    }
}

struct Shared {
    base: u64,
    stop: AtomicBool,
    events: Mutex<Seen>,
    lake: Mutex<Seen>,
    /// Time (µs since epoch) the last event line was read.
    last_event_us: AtomicU64,
    last_lake_us: AtomicU64,
}

pub async fn run(a: LoadArgs) -> anyhow::Result<Value> {
    anyhow::ensure!(a.connections > 0 && a.rows_per_tx > 0 && a.duration > 0.0, "connections, rows-per-tx and duration must be positive");
    let (db, table) = a.table.split_once('.').context("--table must be db.table")?;
    let opts = Opts::from_url(&a.url).context("--url")?;
    let mut conn = Conn::new(opts.clone()).await.context("connecting")?;
    conn.query_drop(format!(
        "CREATE DATABASE IF NOT EXISTS `{db}`; CREATE TABLE IF NOT EXISTS `{db}`.`{table}` \
         (id BIGINT NOT NULL PRIMARY KEY, sent_us BIGINT NOT NULL, pad VARCHAR(64))"
    ))
    .await
    .context("creating the table")?;
    let base: u64 = conn.query_first(format!("SELECT COALESCE(MAX(id), 0) FROM `{db}`.`{table}`")).await?.unwrap_or(0);
    drop(conn);

    let shared = Arc::new(Shared {
        base,
        stop: AtomicBool::new(false),
        events: Mutex::new(Seen::new()),
        lake: Mutex::new(Seen::new()),
        last_event_us: AtomicU64::new(0),
        last_lake_us: AtomicU64::new(0),
    });

    let follower = match &a.events {
        Some(path) => {
            let path = crate::existing(path)?.clone();
            let sh = shared.clone();
            let mut file = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
            let offset = file.seek(SeekFrom::End(0))?;
            Some(std::thread::spawn(move || follow(file, offset, &sh)))
        }
        None => None,
    };
    let poller = match (&a.sluice, &a.config) {
        (Some(bin), Some(cfg)) => {
            let sh = shared.clone();
            let (bin, cfg) = (crate::existing(bin)?.clone(), crate::existing(cfg)?.clone());
            let sql_table = format!("{db}.{table}");
            let pause = Duration::from_millis(a.poll_ms);
            Some(tokio::spawn(async move { poll_lake(bin, cfg, sql_table, pause, sh).await }))
        }
        _ => None,
    };

    // Writers.
    let mut conns = Vec::with_capacity(a.connections);
    for _ in 0..a.connections {
        conns.push(Conn::new(opts.clone()).await.context("connecting a writer")?);
    }
    let slots = Arc::new(AtomicU64::new(0));
    let pad: String = "x".repeat(48);
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(a.duration);
    let mut writers = Vec::new();
    for mut conn in conns {
        let (slots, pad, qualified) = (slots.clone(), pad.clone(), format!("`{db}`.`{table}`"));
        let (rate, rows_per_tx) = (a.rate, a.rows_per_tx);
        writers.push(tokio::spawn(async move {
            let mut sql = String::new();
            let mut late = 0u64;
            let mut sent_at: Vec<(u64, u64)> = Vec::new();
            while Instant::now() < deadline {
                let k = slots.fetch_add(1, Ordering::Relaxed);
                if rate > 0 {
                    let due = started + Duration::from_secs_f64(k as f64 / rate as f64);
                    let now = Instant::now();
                    if due > now {
                        tokio::time::sleep_until(due.into()).await;
                    } else if now - due > Duration::from_millis(10) {
                        late += 1;
                    }
                }
                sql.clear();
                sql.push_str("INSERT INTO ");
                sql.push_str(&qualified);
                sql.push_str(" (id, sent_us, pad) VALUES ");
                let sent = now_us();
                for r in 0..rows_per_tx {
                    let id = base + k * rows_per_tx + r + 1;
                    if r > 0 {
                        sql.push(',');
                    }
                    let _ = write!(sql, "({id},{sent},'{pad}')");
                }
                conn.query_drop(&sql).await?;
                sent_at.push((k, sent));
            }
            conn.disconnect().await?;
            Ok::<_, mysql_async::Error>((late, sent_at))
        }));
    }
    let mut late = 0;
    let mut slot_sent: Vec<u64> = Vec::new();
    for w in writers {
        let (l, sent_at) = w.await.context("writer task")?.context("writer")?;
        late += l;
        for (k, sent) in sent_at {
            if k as usize >= slot_sent.len() {
                slot_sent.resize(k as usize + 1, 0);
            }
            slot_sent[k as usize] = sent;
        }
    }
    let write_secs = started.elapsed().as_secs_f64();
    let write_end_us = now_us();
    let tx = slots.load(Ordering::Relaxed);
    let rows = tx * a.rows_per_tx;
    eprintln!("sluice-bench load: wrote {rows} rows in {tx} transactions in {write_secs:.2} s");

    // Drain: wait until the observers saw every row, or the drain time is up.
    let drain_deadline = Instant::now() + Duration::from_secs_f64(a.drain);
    loop {
        let ev_done = follower.is_none() || lock(&shared.events).count >= rows;
        let lake_done = poller.is_none() || lock(&shared.lake).count >= rows;
        if (ev_done && lake_done) || Instant::now() >= drain_deadline {
            break;
        }
        if follower.as_ref().is_some_and(|f| f.is_finished()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shared.stop.store(true, Ordering::Relaxed);
    let stop_us = now_us();
    let rows_per_tx = a.rows_per_tx as usize;
    let sent_of = |i: usize| slot_sent.get(i / rows_per_tx).copied().unwrap_or(0);
    let mut out = json!({
        "table": a.table,
        "rate_target_tps": a.rate,
        "rows_per_tx": a.rows_per_tx,
        "connections": a.connections,
        "write_seconds": write_secs,
        "transactions": tx,
        "rows": rows,
        "achieved_tps": tx as f64 / write_secs,
        "achieved_rows_per_s": rows as f64 / write_secs,
        "late_tx": late,
    });
    let after_write = |last: u64| if last > write_end_us { Some((last - write_end_us) as f64 / 1e6) } else { Some(0.0) };
    if let Some(f) = follower {
        match f.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => bail!("following the events file: {e:#}"),
            Err(_) => bail!("the events follower panicked"),
        }
        let (mut lats, missing) = lock(&shared.events).result(rows as usize, sent_of, stop_us);
        let mut s = summary(&mut lats);
        s["missing"] = json!(missing);
        s["lower_bound"] = json!(missing > 0);
        s["drain_s"] = json!(after_write(shared.last_event_us.load(Ordering::Relaxed)));
        out["event"] = s;
    }
    if let Some(p) = poller {
        let polls = p.await.context("lake poller")??;
        let (mut lats, missing) = lock(&shared.lake).result(rows as usize, sent_of, stop_us);
        let mut s = summary(&mut lats);
        s["missing"] = json!(missing);
        s["lower_bound"] = json!(missing > 0);
        s["drain_s"] = json!(after_write(shared.last_lake_us.load(Ordering::Relaxed)));
        s["polls"] = polls;
        out["queryable"] = s;
    }
    Ok(out)
}

fn lock(m: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    /// Records `now − sent` for every `(id, sent)` of a row above `base`; when any, stamps `last`.
    fn record_seen(&self, seen: &Mutex<Seen>, last: &AtomicU64, hits: impl Iterator<Item = (u64, u64)>, now: u64) {
        let mut seen = lock(seen);
        let mut any = false;
        for (id, sent) in hits.filter(|(id, _)| *id > self.base) {
            seen.record((id - self.base - 1) as usize, now.saturating_sub(sent));
            any = true;
        }
        drop(seen);
        if any {
            last.store(now, Ordering::Relaxed);
        }
    }
}

/// Follows the events file, recording `now − sent_us` for each change of rows above `base`.
fn follow(mut file: std::fs::File, mut offset: u64, sh: &Shared) -> anyhow::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut chunk = vec![0u8; 1 << 20];
    let mut start = 0usize; // start of the first incomplete line in buf
    loop {
        let n = file.read(&mut chunk)?;
        if n == 0 {
            if sh.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            // The sink may truncate the file back to its last commit on restart; we don't restart it.
            let len = file.metadata()?.len();
            if len < offset {
                bail!("the events file shrank from {offset} to {len} bytes");
            }
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        offset += n as u64;
        let now = now_us();
        buf.extend_from_slice(&chunk[..n]);
        let mut lines = Vec::new();
        while let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') {
            lines.extend(parse_line(&buf[start..start + nl]));
            start += nl + 1;
        }
        sh.record_seen(&sh.events, &sh.last_event_us, lines.into_iter(), now);
        buf.drain(..start);
        start = 0;
    }
}

const AFTER: &[u8] = b"\"after\":{\"id\":";
const SENT: &[u8] = b",\"sent_us\":";

/// `(id, sent_us)` of a debezium line for the bench table: `..."after":{"id":N,"sent_us":M,...`.
fn parse_line(line: &[u8]) -> Option<(u64, u64)> {
    let at = find(line, AFTER)? + AFTER.len();
    let (id, rest) = number(&line[at..])?;
    let rest = rest.strip_prefix(SENT)?;
    let (sent, _) = number(rest)?;
    Some((id, sent))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn number(s: &[u8]) -> Option<(u64, &[u8])> {
    let end = s.iter().position(|b| !b.is_ascii_digit()).unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    let n = std::str::from_utf8(&s[..end]).ok()?.parse().ok()?;
    Some((n, &s[end..]))
}

/// Polls `sluice query` until stopped; returns poll statistics.
async fn poll_lake(bin: PathBuf, cfg: PathBuf, table: String, pause: Duration, sh: Arc<Shared>) -> anyhow::Result<Value> {
    let mut durations = Vec::new();
    let mut errors = 0u64;
    let mut last_error = String::new();
    while !sh.stop.load(Ordering::Relaxed) {
        let low = lock(&sh.lake).low as u64 + sh.base;
        let sql = format!("SELECT id, sent_us FROM {table} WHERE id > {low}");
        let t0 = Instant::now();
        let out = tokio::process::Command::new(&bin)
            .arg("query")
            .arg("-c")
            .arg(&cfg)
            .arg(&sql)
            .args(["--format", "csv"])
            .kill_on_drop(true)
            .output()
            .await
            .with_context(|| format!("running {}", bin.display()))?;
        let done = now_us();
        durations.push(t0.elapsed().as_micros() as u64);
        if !out.status.success() {
            // Before the first lake commit the table does not exist yet.
            errors += 1;
            last_error = String::from_utf8_lossy(&out.stderr).trim().chars().take(300).collect();
        } else {
            let text = String::from_utf8_lossy(&out.stdout);
            let hits = text.lines().skip(1).filter_map(|line| {
                let mut parts = line.split(',');
                Some((parts.next()?.parse::<u64>().ok()?, parts.next()?.parse::<u64>().ok()?))
            });
            sh.record_seen(&sh.lake, &sh.last_lake_us, hits, done);
        }
        tokio::time::sleep(pause).await;
    }
    let mut d = durations;
    let mut s = summary(&mut d);
    s["errors"] = json!(errors);
    if errors > 0 {
        s["last_error"] = json!(last_error);
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_debezium_lines() {
        let line = br#"{"before":null,"after":{"id":42,"sent_us":1700000000123456,"pad":"xx"},"op":"c","ts_ms":1}"#;
        assert_eq!(parse_line(line), Some((42, 1_700_000_000_123_456)));
        assert_eq!(parse_line(br#"{"before":null,"after":{"userid":1}}"#), None);
    }

    #[test]
    fn seen_tracks_lowest_unseen() {
        let mut s = Seen::new();
        s.record(1, 5);
        assert_eq!(s.low, 0);
        s.record(0, 7);
        assert_eq!(s.low, 2);
        s.record(0, 9); // first sighting wins
        let (lats, missing) = s.result(3, |i| 100 + i as u64, 1000);
        assert_eq!(lats, vec![7, 5, 898]); // row 2 never seen: at least stop − sent
        assert_eq!(missing, 1);
    }
}
