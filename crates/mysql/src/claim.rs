//! One sluice per `server_id`: a pipeline holds a server-wide named lock for its replica id for
//! as long as it runs, from before its snapshot on, so a second one with the same id is refused
//! before it writes anything, whatever phase the first is in (a snapshot has no binlog
//! connection the server could list). `GET_LOCK` needs no privilege and is released by the
//! server when the connection ends, so a killed sluice never leaves a stale claim.
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sluice_core::SluiceError;

use crate::config::MysqlConfig;
use crate::conn::{classify, connect};

/// How long a replica listed with our id may take to vanish before it counts as a clash: the
/// server notices a closed binlog connection (a `run --once` that just ended) only at its next
/// heartbeat write.
const STALE_DUMP_GRACE: Duration = Duration::from_secs(10);

/// The held claim; dropping it releases the id.
pub struct ServerIdClaim {
    _conn: Conn,
    /// The server's id of the claiming connection.
    pub connection_id: u64,
}

fn lock_name(cfg: &MysqlConfig) -> String {
    format!("sluice.server_id.{}", cfg.server_id)
}

/// Claims `[source] server_id` for this process.
pub async fn claim_server_id(cfg: &MysqlConfig) -> Result<ServerIdClaim, SluiceError> {
    let mut conn = connect(&cfg.url).await?;
    let name = lock_name(cfg);
    let got: Option<Option<i64>> =
        conn.exec_first("SELECT GET_LOCK(?, 0)", (&name,)).await.map_err(|e| classify(e, "claim the server_id"))?;
    if got.flatten() != Some(1) {
        return Err(in_use(cfg, holder(&mut conn, cfg).await));
    }
    let connection_id: Option<u64> = conn.query_first("SELECT CONNECTION_ID()").await.map_err(|e| classify(e, "claim the server_id"))?;
    Ok(ServerIdClaim { _conn: conn, connection_id: connection_id.unwrap_or_default() })
}

/// The connection id holding the claim on `cfg.server_id`, if any.
pub async fn holder(conn: &mut Conn, cfg: &MysqlConfig) -> Option<u64> {
    conn.exec_first::<Option<u64>, _, _>("SELECT IS_USED_LOCK(?)", (lock_name(cfg),)).await.ok().flatten().flatten()
}

fn in_use(cfg: &MysqlConfig, holder: Option<u64>) -> SluiceError {
    let who = holder.map(|h| format!(" (server connection {h})")).unwrap_or_default();
    SluiceError::permanent(format!(
        "another sluice is running with [source] server_id {}{who}, perhaps still in its snapshot: \
         stop it, or give this pipeline its own server_id",
        cfg.server_id
    ))
}

/// Whether a replica other than a just-closed sluice is connected with our id: a listing that
/// vanishes within [`STALE_DUMP_GRACE`] was a binlog connection the server had not yet noticed
/// was closed.
pub async fn replica_with_our_id(conn: &mut Conn, cfg: &MysqlConfig) -> Result<bool, SluiceError> {
    let deadline = Instant::now() + STALE_DUMP_GRACE;
    loop {
        let rows: Vec<mysql_async::Row> = match conn.query("SHOW SLAVE HOSTS").await {
            Ok(r) => r,
            // Without the privilege to list replicas nothing can be said.
            Err(_) => return Ok(false),
        };
        if !rows.iter().filter_map(|r| r.get::<u32, _>(0)).any(|id| id == cfg.server_id.get()) {
            return Ok(false);
        }
        if Instant::now() >= deadline {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `check`'s verdict on the server_id: `Err(message)` when another sluice holds it (and it is
/// not `ours`).
pub async fn claimed_by_another(conn: &mut Conn, cfg: &MysqlConfig, ours: Option<u64>) -> Option<String> {
    match holder(conn, cfg).await {
        Some(h) if Some(h) != ours => Some(in_use(cfg, Some(h)).message),
        _ => None,
    }
}
