//! `[source]`: `kind = "mysql"` (MySQL and MariaDB: the connection, the replica id, the tables,
//! and how the binlog connection is kept alive) or `kind = "binlog-file"` (binlog files read
//! from disk, [`BinlogFileConfig`]).
//!
//! Both kinds are read through one flat [`SourceSection`] and then checked per kind: an
//! internally tagged enum would buffer the section and lose the line numbers of its errors.
use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use sluice_core::config::{HumanDuration, Selection, SourceSettings, TablePattern};

pub use crate::file::BinlogFileConfig;

/// The `[source]` section of either kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "SourceSection")]
pub enum SourceConfig {
    Mysql(MysqlConfig),
    BinlogFile(BinlogFileConfig),
}

impl SourceConfig {
    /// The server source, or an error saying that `what` needs one.
    pub fn server(&self, what: &str) -> Result<&MysqlConfig, String> {
        match self {
            SourceConfig::Mysql(m) => Ok(m),
            SourceConfig::BinlogFile(_) => Err(format!(
                "{what} needs a server, and [source] kind = \"binlog-file\" reads binlog files: use it with `sluice run`, \
                 `tail`, `status` and `query`"
            )),
        }
    }
}

impl SourceSettings for SourceConfig {
    fn selection(&self) -> Selection<'_> {
        match self {
            SourceConfig::Mysql(m) => m.selection(),
            SourceConfig::BinlogFile(f) => f.selection(),
        }
    }

    fn validate(&self) -> Result<(), String> {
        match self {
            SourceConfig::Mysql(m) => m.validate(),
            SourceConfig::BinlogFile(f) => f.validate(),
        }
    }

    fn resolve_paths(&mut self, base: &Path) {
        if let SourceConfig::BinlogFile(f) = self {
            f.resolve_paths(base);
        }
    }

    fn validate_resolved(&self) -> Result<(), String> {
        match self {
            SourceConfig::Mysql(_) => Ok(()),
            SourceConfig::BinlogFile(f) => f.validate_resolved(),
        }
    }
}

/// Every key `[source]` may have, of either kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSection {
    kind: SourceKind,
    url: Option<DbUrl>,
    server_id: Option<NonZeroU32>,
    files: Option<Vec<String>>,
    tables: Vec<TablePattern>,
    #[serde(default)]
    exclude: Vec<TablePattern>,
    later: Option<Vec<TablePattern>>,
    #[serde(default)]
    keys: BTreeMap<String, Vec<String>>,
    reconnect_timeout: Option<HumanDuration>,
    heartbeat: Option<HumanDuration>,
}

impl TryFrom<SourceSection> for SourceConfig {
    type Error = String;
    fn try_from(s: SourceSection) -> Result<Self, String> {
        Ok(match s.kind {
            SourceKind::Mysql => SourceConfig::Mysql(s.try_into()?),
            SourceKind::BinlogFile => SourceConfig::BinlogFile(s.try_into()?),
        })
    }
}

impl TryFrom<SourceSection> for MysqlConfig {
    type Error = String;
    fn try_from(s: SourceSection) -> Result<Self, String> {
        if s.kind != SourceKind::Mysql {
            return Err("[source] kind = \"binlog-file\" is not a server source; this tool needs kind = \"mysql\"".into());
        }
        if s.files.is_some() {
            return Err("[source] files is for kind = \"binlog-file\"; kind = \"mysql\" reads the binlog from the server: remove it".into());
        }
        let url = s.url.ok_or("[source] url is missing: kind = \"mysql\" reads from a server, e.g. url = \"mysql://sluice:${SLUICE_DB_PASSWORD}@127.0.0.1:3306\"")?;
        let server_id = s.server_id.ok_or("[source] server_id is missing: the replica id of sluice's binlog connection, unique among the server and its replicas (e.g. 6401)")?;
        Ok(MysqlConfig {
            kind: s.kind,
            url,
            server_id,
            tables: s.tables,
            exclude: s.exclude,
            later: s.later.unwrap_or_default(),
            keys: s.keys,
            reconnect_timeout: s.reconnect_timeout.unwrap_or_else(default_reconnect_timeout),
            heartbeat: s.heartbeat.unwrap_or_else(default_heartbeat),
        })
    }
}

impl TryFrom<SourceSection> for BinlogFileConfig {
    type Error = String;
    fn try_from(s: SourceSection) -> Result<Self, String> {
        let server_only = [
            ("url", s.url.is_some()),
            ("server_id", s.server_id.is_some()),
            ("later", s.later.is_some()),
            ("reconnect_timeout", s.reconnect_timeout.is_some()),
            ("heartbeat", s.heartbeat.is_some()),
        ];
        if let Some((key, _)) = server_only.iter().find(|(_, set)| *set) {
            return Err(format!(
                "[source] {key} is for kind = \"mysql\"; kind = \"binlog-file\" reads files and connects to no server: remove it"
            ));
        }
        let files = s.files.ok_or(
            "[source] files is missing: kind = \"binlog-file\" reads the binlog files it lists, e.g. files = [\"./binlogs/mysql-bin.*\"]",
        )?;
        Ok(BinlogFileConfig { files, tables: s.tables, exclude: s.exclude, keys: s.keys })
    }
}

/// `[source]` for `kind = "mysql"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "SourceSection")]
pub struct MysqlConfig {
    pub kind: SourceKind,
    pub url: DbUrl,
    /// Replica id of sluice's binlog connection; must differ from every server and replica.
    pub server_id: NonZeroU32,
    /// `db.table` patterns (`*` and `?` globs) of the tables to capture.
    pub tables: Vec<TablePattern>,
    pub exclude: Vec<TablePattern>,
    /// Patterns of `tables` for tables that will be created later: `check` does not fail when
    /// they match nothing yet (any other pattern that matches nothing is taken for a typo).
    pub later: Vec<TablePattern>,
    /// Key columns for tables without a primary key, e.g. `{ "demo.users" = ["userid"] }`,
    /// so the lake can keep their current state.
    pub keys: BTreeMap<String, Vec<String>>,
    /// How long to keep reconnecting after the server goes away before giving up.
    pub reconnect_timeout: HumanDuration,
    /// Heartbeat period asked of the server while the binlog is idle.
    pub heartbeat: HumanDuration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    Mysql,
    BinlogFile,
}

fn default_reconnect_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(300))
}

fn default_heartbeat() -> HumanDuration {
    HumanDuration(Duration::from_secs(1))
}

impl SourceSettings for MysqlConfig {
    fn selection(&self) -> Selection<'_> {
        Selection { tables: &self.tables, exclude: &self.exclude, keys: &self.keys }
    }

    fn validate(&self) -> Result<(), String> {
        match self.later.iter().find(|l| !self.tables.iter().any(|t| t.to_string() == l.to_string())) {
            Some(l) => Err(format!("[source] later lists {l}, which is not in [source] tables: list it in both")),
            None => Ok(()),
        }
    }
}

impl MysqlConfig {
    /// Whether `db.table` is captured.
    pub fn captures(&self, db: &str, table: &str) -> bool {
        self.selection().captures(db, table)
    }

    /// Applies configured key columns to a keyless table schema.
    pub fn apply_keys(&self, schema: &mut sluice_core::TableSchema) {
        self.selection().apply_keys(schema)
    }
}

/// A connection URL that may hold a password: `Debug`/`Display` never show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct DbUrl(String);

impl DbUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The full URL, for connecting only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with its password replaced by `***`.
    pub fn redacted(&self) -> String {
        let Some((scheme, rest)) = self.0.split_once("://") else { return "***".into() };
        match rest.rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split(':').next().unwrap_or("");
                format!("{scheme}://{user}:***@{host}")
            }
            None => self.0.clone(),
        }
    }
}

impl std::fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl std::fmt::Display for DbUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for DbUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if !s.starts_with("mysql://") && !s.starts_with("mariadb://") {
            return Err(serde::de::Error::custom(
                "source url must look like mysql://user:password@host:port (scheme mysql:// or mariadb://)",
            ));
        }
        Ok(Self(s.replacen("mariadb://", "mysql://", 1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_never_show_their_password() {
        let u = DbUrl::new("mysql://sluice:s3cret@127.0.0.1:3306");
        assert_eq!(u.redacted(), "mysql://sluice:***@127.0.0.1:3306");
        assert!(!format!("{u:?} {u}").contains("s3cret"));
    }
}
