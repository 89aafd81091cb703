//! `[source]` for `kind = "mysql"` (MySQL and MariaDB): the connection, the replica id, the
//! tables, and how the binlog connection is kept alive.
use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use sluice_core::config::{HumanDuration, Selection, SourceSettings, TablePattern};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlConfig {
    pub kind: SourceKind,
    pub url: DbUrl,
    /// Replica id of sluice's binlog connection; must differ from every server and replica.
    pub server_id: NonZeroU32,
    /// `db.table` patterns (`*` and `?` globs) of the tables to capture.
    pub tables: Vec<TablePattern>,
    #[serde(default)]
    pub exclude: Vec<TablePattern>,
    /// Patterns of `tables` for tables that will be created later: `check` does not fail when
    /// they match nothing yet (any other pattern that matches nothing is taken for a typo).
    #[serde(default)]
    pub later: Vec<TablePattern>,
    /// Key columns for tables without a primary key, e.g. `{ "demo.users" = ["userid"] }`,
    /// so the lake can keep their current state.
    #[serde(default)]
    pub keys: BTreeMap<String, Vec<String>>,
    /// How long to keep reconnecting after the server goes away before giving up.
    #[serde(default = "default_reconnect_timeout")]
    pub reconnect_timeout: HumanDuration,
    /// Heartbeat period asked of the server while the binlog is idle.
    #[serde(default = "default_heartbeat")]
    pub heartbeat: HumanDuration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Mysql,
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
