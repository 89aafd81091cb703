//! `sluice check`: everything the source needs from the server, each problem with its fix.
use crate::config::MysqlConfig;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::conn::{connect, flavor, Flavor};
use crate::schema::list_tables;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone)]
pub struct CheckItem {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    /// What to do about it (empty when ok).
    pub fix: String,
}

impl CheckItem {
    pub fn new(name: &'static str, status: Status, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { name, status, detail: detail.into(), fix: fix.into() }
    }
    fn ok(name: &'static str, detail: impl Into<String>) -> Self {
        Self::new(name, Status::Ok, detail, "")
    }
}

/// Runs every check; connection failures end the list early (nothing else can be checked).
/// `claim` is the connection id holding this process's server_id claim, when it holds one.
pub async fn check(cfg: &MysqlConfig, snapshot: &sluice_core::config::SnapshotConfig, claim: Option<u64>) -> Vec<CheckItem> {
    let mut items = Vec::new();
    let mut conn = match connect(&cfg.url).await {
        Ok(c) => {
            items.push(CheckItem::ok("connection", format!("connected to {}", cfg.url)));
            c
        }
        Err(e) => {
            items.push(CheckItem::new(
                "connection",
                Status::Fail,
                e.message,
                "check host, port, user and password in [source] url, and that the server is running",
            ));
            return items;
        }
    };
    let fl = flavor(&mut conn).await.unwrap_or(Flavor::MySql);
    let var = |name: &'static str| format!("SELECT @@GLOBAL.{name}");

    let log_bin = get(&mut conn, var("log_bin")).await;
    items.push(match log_bin.as_deref() {
        Some("1") | Some("ON") => CheckItem::ok("log_bin", "ON"),
        other => CheckItem::new(
            "log_bin",
            Status::Fail,
            format!("log_bin is {}", other.unwrap_or("unknown")),
            "start the server with --log-bin (e.g. log_bin = mysql-bin in my.cnf) and restart it",
        ),
    });
    let format = get(&mut conn, var("binlog_format")).await.unwrap_or_default();
    items.push(if format.eq_ignore_ascii_case("ROW") {
        CheckItem::ok("binlog_format", "ROW")
    } else {
        CheckItem::new(
            "binlog_format",
            Status::Fail,
            format!("binlog_format is {format}"),
            "SET GLOBAL binlog_format = 'ROW' (and binlog_format = ROW in my.cnf so it survives a restart)",
        )
    });
    let image = get(&mut conn, var("binlog_row_image")).await.unwrap_or_default();
    items.push(if image.eq_ignore_ascii_case("FULL") {
        CheckItem::ok("binlog_row_image", "FULL")
    } else {
        CheckItem::new(
            "binlog_row_image",
            Status::Fail,
            format!("binlog_row_image is {image}"),
            "SET GLOBAL binlog_row_image = 'FULL' (and in my.cnf): sluice needs every column of before and after images",
        )
    });
    let meta = get(&mut conn, var("binlog_row_metadata")).await;
    items.push(match meta.as_deref() {
        Some(m) if m.eq_ignore_ascii_case("FULL") => CheckItem::ok("binlog_row_metadata", "FULL"),
        Some(m) => CheckItem::new(
            "binlog_row_metadata",
            Status::Warn,
            format!("binlog_row_metadata is {m}: column names come from information_schema, so events read long after an ALTER TABLE may be misnamed"),
            "SET GLOBAL binlog_row_metadata = 'FULL'",
        ),
        None => CheckItem::new("binlog_row_metadata", Status::Warn, "the server has no binlog_row_metadata (older than MySQL 8.0 / MariaDB 10.5)", "upgrade for column names in the binlog"),
    });
    let server_id = get(&mut conn, var("server_id")).await.unwrap_or_default();
    items.push(if server_id == cfg.server_id.to_string() {
        CheckItem::new(
            "server_id",
            Status::Fail,
            format!("[source] server_id {server_id} is the server's own id"),
            "choose another [source] server_id, unique among the server and its replicas",
        )
    } else if let Some(msg) = crate::claim::claimed_by_another(&mut conn, cfg, claim).await {
        CheckItem::new("server_id", Status::Fail, msg, "stop the other sluice, or choose another [source] server_id")
    } else {
        match crate::claim::replica_with_our_id(&mut conn, cfg).await {
            Ok(true) => CheckItem::new(
                "server_id",
                Status::Fail,
                format!("a replica is connected with server_id {}", cfg.server_id),
                "choose another [source] server_id; two replicas with one id disconnect each other",
            ),
            _ => CheckItem::ok("server_id", format!("{} is free", cfg.server_id)),
        }
    });

    let grants: Vec<String> = conn.query("SHOW GRANTS").await.unwrap_or_default();
    let has = |p: &str| grants.iter().any(|g| g.contains("ALL PRIVILEGES ON *.*") || (g.contains(p) && g.contains(" ON *.*")));
    let mut missing = Vec::new();
    if !has("REPLICATION SLAVE") {
        missing.push("REPLICATION SLAVE");
    }
    if !(has("REPLICATION CLIENT") || has("BINLOG MONITOR") || has("SUPER")) {
        missing.push("REPLICATION CLIENT");
    }
    let tables = list_tables(&mut conn, cfg).await.unwrap_or_default();
    let mut unreadable = Vec::new();
    for t in &tables {
        let sql = format!("SELECT 1 FROM `{}`.`{}` LIMIT 0", t.db.replace('`', "``"), t.table.replace('`', "``"));
        if conn.query_drop(sql).await.is_err() {
            unreadable.push(t.to_string());
        }
    }
    if !unreadable.is_empty() {
        missing.push("SELECT");
    }
    items.push(if missing.is_empty() {
        CheckItem::ok("privileges", "SELECT, REPLICATION SLAVE, REPLICATION CLIENT")
    } else {
        let user = cfg.url.redacted();
        CheckItem::new(
            "privileges",
            Status::Fail,
            format!(
                "missing {}{}",
                missing.join(", "),
                if unreadable.is_empty() { String::new() } else { format!(" (cannot read {})", unreadable.join(", ")) }
            ),
            format!("GRANT SELECT, RELOAD, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO the user of {user}"),
        )
    });
    let all = crate::schema::all_tables(&mut conn).await.unwrap_or_default();
    let unmatched: Vec<String> = cfg
        .tables
        .iter()
        .filter(|p| !all.iter().any(|t| p.matches(&t.db, &t.table)) && !cfg.later.iter().any(|l| l.to_string() == p.to_string()))
        .map(|p| p.to_string())
        .collect();
    items.push(if !unmatched.is_empty() {
        CheckItem::new(
            "tables",
            Status::Fail,
            format!("[source] tables pattern(s) {} match no table", unmatched.join(", ")),
            "fix the pattern (db.table, * and ? globs); for a table that will be created later, list its pattern in [source] later too",
        )
    } else if tables.is_empty() {
        CheckItem::new(
            "tables",
            Status::Warn,
            "no existing table matches [source] tables (every pattern is listed in [source] later)",
            "tables created later are captured when they appear",
        )
    } else {
        CheckItem::ok(
            "tables",
            format!("{} table(s): {}", tables.len(), tables.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ")),
        )
    });
    if fl == Flavor::MySql && snapshot.mode != sluice_core::config::SnapshotMode::Never {
        use sluice_core::config::SnapshotMethod;
        items.push(match snapshot.method {
            SnapshotMethod::Consistent => CheckItem::new(
                "snapshot",
                Status::Fail,
                "MySQL does not report the binlog position of a consistent snapshot, which [snapshot] method = \"consistent\" needs",
                "set [snapshot] method = \"watermark\" (or \"auto\")",
            ),
            _ => CheckItem::ok("snapshot", "by watermarks (MySQL reports no consistent-snapshot position): no lock, SELECT is enough"),
        });
    }
    items
}

async fn get(conn: &mut Conn, sql: String) -> Option<String> {
    conn.query_first::<Option<String>, _>(sql).await.ok().flatten().flatten()
}
