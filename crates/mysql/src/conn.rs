//! Connections and the classification of MySQL errors into transient and permanent.
use mysql_async::{Conn, Opts, OptsBuilder};
use sluice_core::SluiceError;

use crate::config::DbUrl;

/// Server flavour, which decides how GTIDs and consistent snapshots work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    MariaDb,
    MySql,
}

pub fn opts(url: &DbUrl) -> Result<Opts, SluiceError> {
    let opts = Opts::from_url(url.expose())
        .map_err(|_| SluiceError::permanent(format!("invalid source url {url}: expected mysql://user:password@host:port")))?;
    Ok(OptsBuilder::from_opts(opts).prefer_socket(false).into())
}

pub async fn connect(url: &DbUrl) -> Result<Conn, SluiceError> {
    let opts = opts(url)?;
    Conn::new(opts).await.map_err(|e| classify(e, &format!("cannot connect to {url}")))
}

pub async fn flavor(conn: &mut Conn) -> Result<Flavor, SluiceError> {
    use mysql_async::prelude::Queryable;
    let version: Option<String> = conn.query_first("SELECT VERSION()").await.map_err(|e| classify(e, "SELECT VERSION()"))?;
    Ok(if version.unwrap_or_default().to_lowercase().contains("mariadb") { Flavor::MariaDb } else { Flavor::MySql })
}

/// Maps a driver error to sluice's error kinds, with a message that says what to do.
/// Never includes the password (the driver's messages don't carry it; `what` is redacted).
///
/// The driver's errors repeat their cause in their own text at every level ("Input/output
/// error: Input/output error: Connection refused"), so printing them with their chain says
/// it three times: the message carries the innermost cause once, and the driver's error is
/// not kept as the source.
pub fn classify(e: mysql_async::Error, what: &str) -> SluiceError {
    use mysql_async::Error as E;
    match &e {
        E::Server(s) => {
            let (kind_permanent, hint) = match s.code {
                1045 => (true, "wrong user or password: check [source] url"),
                1044 | 1142 | 1227 | 1143 => (true, "missing privilege: GRANT SELECT, RELOAD, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO the sluice user"),
                1049 => (true, "unknown database"),
                4052 => (true, "another replica (or sluice) connected with the same server_id and the server dropped this one: give each its own [source] server_id"),
                1236 => (true, "the server cannot serve the binlog from the requested position (purged or invalid); take a new snapshot: remove the state dir or set [snapshot] mode = \"always\""),
                1040 | 1053 | 1205 | 1213 | 2006 | 2013 => (false, "the server went away or is busy; retrying"),
                _ => (true, "see the server's message"),
            };
            let msg = format!("{what}: server error {} ({}): {} — {hint}", s.code, s.state, s.message);
            if kind_permanent {
                SluiceError::permanent(msg)
            } else {
                SluiceError::transient(msg)
            }
        }
        E::Io(_) | E::Driver(_) => SluiceError::transient(format!("{what}: {}", innermost(&e))),
        _ => SluiceError::permanent(format!("{what}: {}", innermost(&e))),
    }
}

/// The text of the last error in `e`'s cause chain (it holds what all the others repeat).
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    std::iter::successors(Some(e), |c| c.source()).last().unwrap_or(e).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_driver_error_says_its_cause_once() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused (os error 111)");
        let e = classify(mysql_async::Error::Io(mysql_async::IoError::Io(refused)), "cannot connect to mysql://u:***@h:1");
        assert_eq!(e.chain(), "cannot connect to mysql://u:***@h:1: Connection refused (os error 111)");
        assert!(e.is_transient());
    }
}
